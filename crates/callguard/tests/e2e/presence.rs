//! Agent states and the wallboard (issue #12) against the real binary: an agent sets ready and
//! not ready on the API and the desk, sees it live on their stream; a supervisor sees agents and
//! queues on the API, the live board stream, `/metrics` and the wallboard page; every change is
//! audited without personal data; bad input changes nothing; a burst of identical requests
//! changes the state once; signing out takes the agent out of the queues; and every other role
//! is refused.

use crate::harness::{Api, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    an_agent_sets_their_state_and_a_supervisor_sees_it_live,
    a_burst_of_the_same_state_changes_it_once_and_bad_input_changes_nothing,
    signing_out_takes_the_agent_out_of_the_queues,
    only_agents_set_states_and_only_supervisors_watch_the_queues,
);

async fn put_state(api: &Api, token: &str, body: Value) -> crate::harness::Answer {
    api.call(
        Method::PUT,
        "/api/v1/agents/me/state",
        Some(token),
        Some(&body),
    )
    .await
}

/// Reads an event stream until `done(seen)` holds, within 20 s.
pub(crate) async fn read_until(
    stream: &mut reqwest::Response,
    seen: &mut String,
    done: impl Fn(&str) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(seen) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream said only: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("open")));
    }
}

pub(crate) async fn open_stream(api: &Api, path: &str, token: &str) -> reqwest::Response {
    let s = api
        .client
        .get(api.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(s.status(), 200);
    s
}

/// The `agent.state_changed` entries about `user_id`, as compliance reads them.
async fn state_entries(api: &Api, compliance: &str, user_id: &str) -> Vec<Value> {
    let log = api
        .get("/api/v1/audit?start=0&limit=1000", Some(compliance))
        .await
        .expect(200)
        .json();
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "agent.state_changed" && e["target"] == format!("user:{user_id}")
        })
        .cloned()
        .collect()
}

async fn an_agent_sets_their_state_and_a_supervisor_sees_it_live(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("ada-agent", "agent").await;
    let supervisor = server.new_account("sam-supervisor", "supervisor").await;
    let compliance = server.new_account("cy-compliance", "compliance").await;

    // Signed out of the queues until the first choice; the reasons come with the state.
    let mine = api
        .get("/api/v1/agents/me/state", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(mine["agent"]["state"], "logged_out");
    assert!(mine["not_ready_reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("lunch")));

    let mut board = open_stream(&api, "/api/v1/queues/stream", &supervisor.token).await;
    let mut seen_board = String::new();
    read_until(&mut board, &mut seen_board, |s| s.contains("event: board")).await;
    let mut desk = open_stream(&api, "/api/v1/agents/me/stream", &agent.token).await;
    let mut seen_desk = String::new();
    read_until(&mut desk, &mut seen_desk, |s| s.contains("\"logged_out\"")).await;

    let ready = put_state(&api, &agent.token, json!({"state": "ready"}))
        .await
        .expect(200)
        .json();
    assert_eq!(ready["agent"]["state"], "ready");
    read_until(&mut desk, &mut seen_desk, |s| {
        s.contains("\"state\":\"ready\"")
    })
    .await;
    read_until(&mut board, &mut seen_board, |s| {
        s.contains("\"username\":\"ada-agent\"")
    })
    .await;

    put_state(
        &api,
        &agent.token,
        json!({"state": "not_ready", "reason": "lunch"}),
    )
    .await
    .expect(200);
    read_until(&mut desk, &mut seen_desk, |s| {
        s.contains("\"reason\":\"lunch\"")
    })
    .await;
    read_until(&mut board, &mut seen_board, |s| {
        s.contains("\"reason\":\"lunch\"")
    })
    .await;

    // The supervisor's API: the agent not ready for lunch, the menu's queues with no call yet.
    let agents = api
        .get("/api/v1/agents", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let ada = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "ada-agent")
        .unwrap()
        .clone();
    assert_eq!(
        (ada["state"].as_str(), ada["reason"].as_str()),
        (Some("not_ready"), Some("lunch"))
    );
    let queues = api
        .get("/api/v1/queues", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing", "support"]);
    assert_eq!(queues["queues"][0]["waiting"], 0);
    assert_eq!(
        queues["queues"][0]["calls_per_hour"]
            .as_array()
            .unwrap()
            .len(),
        24
    );

    // The same figures in /metrics (this machine reads it without a token).
    let metrics = api.get("/metrics", None).await.expect(200).text;
    assert!(
        metrics.contains("callguard_queue_waiting{queue=\"billing\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callguard_agents{state=\"not_ready\"} 1"),
        "{metrics}"
    );

    // The wallboard: the queues, the agent, the two charts as SVG with their text alternative.
    let page = api
        .get("/wallboard", Some(&supervisor.token))
        .await
        .expect(200)
        .text;
    for needle in [
        "data-testid=\"queues\"",
        "data-agent=\"ada-agent\" data-state=\"not_ready\"",
        "<svg role=\"img\"",
        "Calls per hour today (UTC)",
        "Waits today",
        "/static/wallboard.js",
    ] {
        assert!(page.contains(needle), "{needle} missing from {page}");
    }
    assert!(!page.contains("<script>"), "no inline script");
    let panel = api
        .get("/wallboard/panel", Some(&supervisor.token))
        .await
        .expect(200)
        .text;
    assert!(
        panel.contains("data-agent=\"ada-agent\"") && !panel.contains("<html"),
        "{panel}"
    );

    // The desk's button: ready again through the page form.
    let csrf = "e".repeat(43);
    let desk_page = api
        .send_raw(
            "POST /desk/state".into(),
            api.client
                .post(api.url("/desk/state"))
                .bearer_auth(&agent.token)
                .header("cookie", format!("__Host-callguard_csrf={csrf}"))
                .form(&[("csrf", csrf.as_str()), ("state", "ready")]),
        )
        .await
        .expect(200);
    assert!(
        desk_page.text.contains("You are ready"),
        "{}",
        desk_page.text
    );
    assert!(
        desk_page.text.contains("data-state=\"ready\""),
        "{}",
        desk_page.text
    );

    // Audited: logged_out → ready → not_ready (lunch) → ready, by the agent, no personal data.
    let entries = state_entries(&api, &compliance.token, &agent.id).await;
    let steps: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["details"]["from"].as_str().unwrap().to_owned(),
                e["details"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("logged_out".to_owned(), "ready".to_owned()),
            ("ready".to_owned(), "not_ready".to_owned()),
            ("not_ready".to_owned(), "ready".to_owned()),
        ]
    );
    assert_eq!(entries[1]["details"]["reason"], "lunch");
    assert!(entries
        .iter()
        .all(|e| e["actor"] == format!("user:{}", agent.id)));
}

async fn a_burst_of_the_same_state_changes_it_once_and_bad_input_changes_nothing(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("bo-agent", "agent").await;
    let compliance = server.new_account("cid-compliance", "compliance").await;

    // Twenty simultaneous "ready": one change, one audit entry.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (api, token) = (api.clone(), agent.token.clone());
        burst.spawn(async move {
            put_state(&api, &token, json!({"state": "ready"}))
                .await
                .status
        });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(
        state_entries(&api, &compliance.token, &agent.id)
            .await
            .len(),
        1
    );

    // Bad input: a clear 422, the state unchanged, nothing audited.
    for (body, says) in [
        (
            json!({"state": "not_ready", "reason": "gone fishing"}),
            "not-ready reasons",
        ),
        (json!({"state": "not_ready"}), "`reason` is required"),
        (
            json!({"state": "ready", "reason": "lunch"}),
            "only with not_ready",
        ),
    ] {
        let a = put_state(&api, &agent.token, body.clone())
            .await
            .expect(422);
        assert!(a.text.contains(says), "{body}: {}", a.text);
    }
    for body in [
        json!({"state": "asleep"}),
        json!({"state": "ready", "extra": 1}),
        json!({}),
    ] {
        let a = put_state(&api, &agent.token, body.clone()).await;
        assert!(
            matches!(a.status.as_u16(), 400 | 422),
            "{body}: {} {}",
            a.status,
            a.text
        );
    }
    let mine = api
        .get("/api/v1/agents/me/state", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(mine["agent"]["state"], "ready");
    assert_eq!(
        state_entries(&api, &compliance.token, &agent.id)
            .await
            .len(),
        1
    );

    // Twenty simultaneous "not ready, break" then "ready" again: one change each.
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (api, token) = (api.clone(), agent.token.clone());
        let body = json!({"state": "not_ready", "reason": "break"});
        burst.spawn(async move { (i, put_state(&api, &token, body).await.status) });
    }
    while let Some(r) = burst.join_next().await {
        assert_eq!(r.unwrap().1, 200);
    }
    let entries = state_entries(&api, &compliance.token, &agent.id).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["details"]["reason"], "break");
}

async fn signing_out_takes_the_agent_out_of_the_queues(backend: Backend) {
    let server = Server::start_with(
        crate::harness::Deployment::new(backend),
        &[("CALLGUARD_ALERTS_STREAM_CHECK_SECONDS", "1")],
    )
    .await;
    let api = server.api();
    let agent = server.new_account("cam-agent", "agent").await;
    let supervisor = server.new_account("sid-supervisor", "supervisor").await;
    let compliance = server.new_account("coe-compliance", "compliance").await;
    put_state(&api, &agent.token, json!({"state": "ready"}))
        .await
        .expect(200);
    let listed = |v: &Value| {
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["username"] == "cam-agent")
    };
    let agents = api
        .get("/api/v1/agents", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    assert!(listed(&agents));

    api.post("/api/v1/auth/logout", Some(&agent.token), json!({}))
        .await
        .expect(204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let agents = api
            .get("/api/v1/agents", Some(&supervisor.token))
            .await
            .expect(200)
            .json();
        if !listed(&agents) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed: {agents}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let entries = state_entries(&api, &compliance.token, &agent.id).await;
    let last = entries.last().unwrap();
    assert_eq!(
        (
            last["details"]["from"].as_str(),
            last["details"]["to"].as_str()
        ),
        (Some("ready"), Some("logged_out"))
    );
    assert_eq!(last["actor"], "system");
}

async fn only_agents_set_states_and_only_supervisors_watch_the_queues(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("dee-agent", "agent").await;
    let supervisor = server.new_account("dan-supervisor", "supervisor").await;
    let compliance = server.new_account("dot-compliance", "compliance").await;
    let admin = server.admin_session().await;

    for (who, token) in [
        ("agent", &agent.token),
        ("compliance", &compliance.token),
        ("admin", &admin.token),
    ] {
        for path in ["/api/v1/queues", "/api/v1/agents", "/api/v1/queues/stream"] {
            api.get(path, Some(token))
                .await
                .expect_problem(403, "forbidden");
        }
        let page = api.get("/wallboard", Some(token)).await.expect(403);
        assert!(
            page.text.contains("/problems/forbidden"),
            "{who}: {}",
            page.text
        );
        api.get("/wallboard/panel", Some(token)).await.expect(403);
    }
    for (who, token) in [
        ("supervisor", &supervisor.token),
        ("compliance", &compliance.token),
        ("admin", &admin.token),
    ] {
        put_state(&api, token, json!({"state": "ready"}))
            .await
            .expect_problem(403, "forbidden");
        api.get("/api/v1/agents/me/stream", Some(token))
            .await
            .expect(403);
        let csrf = "f".repeat(43);
        let page = api
            .send_raw(
                format!("{who} POST /desk/state"),
                api.client
                    .post(api.url("/desk/state"))
                    .bearer_auth(token)
                    .header("cookie", format!("__Host-callguard_csrf={csrf}"))
                    .form(&[("csrf", csrf.as_str()), ("state", "ready")]),
            )
            .await;
        assert_eq!(page.status, 403, "{who}");
    }
    for path in [
        "/api/v1/queues",
        "/api/v1/agents",
        "/api/v1/agents/me/state",
    ] {
        api.get(path, None).await.expect(401);
    }
    // The refusals changed nothing: nobody is on the board.
    let agents = api
        .get("/api/v1/agents", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    assert_eq!(agents["agents"], json!([]));
}
