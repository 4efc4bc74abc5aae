//! The national registry shared by every node on one PostgreSQL (issue #15 item 4): an import on
//! one node is stored in the database and every other node refuses its numbers within seconds,
//! without a file of its own; a node whose registry in force is not loaded is not ready
//! (`/readyz`), and a damaged stored registry is refused while the one in memory answers.

use crate::dnc::sha_of_output;
use crate::harness::{Backend, Server};
use serde_json::{json, Value};
use std::time::Duration;

/// `callguard dnc import` of `numbers` from `node`'s own data directory; the printed sha256.
fn import(node: &Server, numbers: &str) -> String {
    let file = node
        .root()
        .join(format!("registry-{}.txt", crate::harness::suffix()));
    std::fs::write(&file, numbers).unwrap();
    let ran = node.cli(&["dnc", "import", file.to_str().unwrap()]);
    assert!(ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stderr.contains("storing in the database"),
        "the import shows its progress storing the registry\n{}",
        ran.describe()
    );
    sha_of_output(&ran.stdout)
}

/// Whether `node` allows calling `number` now (no calling-hours check: a fixed midday time).
async fn allowed(node: &Server, token: &str, number: &str) -> Option<bool> {
    let answer = node
        .api()
        .post(
            "/api/v1/dnc/check",
            Some(token),
            json!({"numbers": [number], "at": "2025-07-15T17:00:00Z"}),
        )
        .await;
    if answer.status.as_u16() != 200 {
        return None;
    }
    let results = answer.json();
    let r = &results["results"][0];
    Some(r["allowed"].as_bool().unwrap())
}

/// Polls (bounded) until `node` answers `want` for `number`; what it answered last.
async fn until_answer(node: &Server, token: &str, number: &str, want: bool) -> Option<bool> {
    let mut last = None;
    for _ in 0..150 {
        last = allowed(node, token, number).await;
        if last == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

async fn readyz(node: &Server) -> (u16, Value) {
    let answer = node.api().get("/readyz", None).await;
    (answer.status.as_u16(), answer.json())
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {body}"))
}

#[tokio::test]
async fn a_registry_imported_on_one_node_is_refused_by_every_node_within_seconds() {
    let first = Server::start(Backend::Postgres).await;
    let second = Server::start_with(first.another_node(), &[]).await;
    let on_first = first.new_account("reg-agent-a", "agent").await;
    // Sessions live in the database: the same token works on either node.
    let on_second = on_first.token.clone();

    // Nothing imported yet: both nodes are ready and neither pretends a number is callable.
    let (status, body) = readyz(&second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(check(&body, "registry_loaded")["ok"], true, "{body}");
    assert_eq!(allowed(&second, &on_second, "+12025550123").await, None);

    let sha = import(&first, "2025550123\n3035550100\n");
    assert_eq!(
        until_answer(&second, &on_second, "+1 202 555 0123", false).await,
        Some(false),
        "the other node refuses a registered number\n{}",
        second.logs()
    );
    assert_eq!(
        allowed(&second, &on_second, "+1 212 555 0100").await,
        Some(true)
    );
    assert_eq!(
        allowed(&first, &on_first.token, "303-555-0100").await,
        Some(false)
    );
    let status = second
        .api()
        .get(
            "/api/v1/dnc/status",
            Some(&first.new_account("reg-sup", "supervisor").await.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(status["registry"]["sha256"], sha.as_str(), "{status}");
    assert_eq!(status["registry"]["numbers"], 2, "{status}");
    // The registry lives in the database: no node wrote a registry file of its own.
    for node in [&first, &second] {
        let files: Vec<String> = std::fs::read_dir(node.data_dir.join("dnc"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert!(files.is_empty(), "registry files on a node: {files:?}");
    }

    // A replacement imported on the second node reaches the first: the old number is callable
    // again only once the new registry answers, and the new number is refused.
    import(&second, "2125550100\n");
    assert_eq!(
        until_answer(&first, &on_first.token, "+1 212 555 0100", false).await,
        Some(false),
        "{}",
        first.logs()
    );
    assert_eq!(
        allowed(&first, &on_first.token, "+1 202 555 0123").await,
        Some(true)
    );
    let audit_types: Vec<(String, String)> = {
        let db = first.pg.as_ref().unwrap().connect().await;
        db.query(
            "SELECT count(*)::text, (SELECT count(*)::text FROM dnc_registry_versions) FROM dnc_registry_chunks",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(
        audit_types,
        vec![("1".to_owned(), "1".to_owned())],
        "only the version in force stays stored"
    );
}

#[tokio::test]
async fn a_node_is_not_ready_until_the_registry_in_force_is_loaded_and_refuses_a_damaged_one() {
    let first = Server::start(Backend::Postgres).await;
    let agent = first.new_account("reg-agent-b", "agent").await;
    import(&first, "2025550123\n");
    assert_eq!(
        until_answer(&first, &agent.token, "+12025550123", false).await,
        Some(false)
    );

    // The stored registry is damaged behind the nodes' back (one byte of its set changed).
    let db = first.pg.as_ref().unwrap().connect().await;
    let changed = db
        .execute(
            "UPDATE dnc_registry_chunks SET data = set_byte(data, length(data) - 1, get_byte(data, length(data) - 1) # 255)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);

    // A node starting now cannot load it: it listens, but is not ready, and says why.
    let late = Server::start_with(first.another_node(), &[]).await;
    let mut seen = None;
    for _ in 0..30 {
        let (status, body) = readyz(&late).await;
        if status == 503 && body["status"] == "registry loading" {
            seen = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = seen.expect("the late node reports the registry as loading");
    assert_eq!(check(&body, "registry_loaded")["ok"], false, "{body}");
    assert_eq!(check(&body, "database")["ok"], true, "{body}");
    assert_eq!(check(&body, "not_draining")["ok"], true, "{body}");
    let token = agent.token.clone();
    assert_eq!(
        allowed(&late, &token, "+12025550123").await,
        None,
        "no verdict from a node without its registry"
    );
    // It says why (its first attempt may still be under way when /readyz first answers).
    let mut told = false;
    for _ in 0..100 {
        if late.logs().contains("damaged") {
            told = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        told,
        "the node says why it did not load the registry\n{}",
        late.logs()
    );
    let (status, _) = readyz(&late).await;
    assert_eq!(status, 503, "still not ready after the refused load");
    // The node that loaded it before goes on answering from memory.
    assert_eq!(
        allowed(&first, &agent.token, "+12025550123").await,
        Some(false)
    );

    // A fresh import puts a sound registry in force: the late node loads it and becomes ready.
    import(&first, "2025550123\n2125550100\n");
    let mut ready = None;
    for _ in 0..150 {
        let (status, body) = readyz(&late).await;
        if status == 200 {
            ready = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = ready.unwrap_or_else(|| panic!("the late node never became ready\n{}", late.logs()));
    assert_eq!(body["status"], "ready");
    assert_eq!(check(&body, "registry_loaded")["ok"], true, "{body}");
    assert_eq!(allowed(&late, &token, "+12125550100").await, Some(false));
}
