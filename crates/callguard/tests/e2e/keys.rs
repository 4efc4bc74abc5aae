//! Key-encryption key rotation while the server runs (SPEC C3: keys rotate without downtime):
//! every wrapped data key and TOTP secret moves to the new key, the server keeps answering, the
//! old key file is gone, and a restart on the new key finds everything.

use crate::calls::register_demo_customer;
use crate::harness::{alert_when, Backend, Server};
use crate::vault::{audit_entries, create_customer, customer_body};
use serde_json::json;

both_backends!(the_key_encryption_key_rotates_under_a_running_server);

/// Runs one statement on the deployment's database (the server may be stopped).
async fn execute(deployment: &crate::harness::Deployment, sql: &str) {
    match &deployment.pg {
        Some(pg) => {
            pg.connect().await.batch_execute(sql).await.unwrap();
        }
        None => {
            let db = rusqlite::Connection::open(deployment.data_dir.join("callguard.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(sql).unwrap();
        }
    }
}

/// The user agent of each of `token`'s person's sessions, and the acknowledgement comment of
/// alert `alert`, as their owners see them.
async fn shown(api: &crate::harness::Api, token: &str, alert: &str) -> (Vec<String>, String) {
    let sessions = api
        .get("/api/v1/me/sessions", Some(token))
        .await
        .expect(200)
        .json();
    let agents = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap().to_owned())
        .collect();
    let alerts = api
        .get("/api/v1/alerts?status=acknowledged", Some(token))
        .await
        .expect(200)
        .json();
    let comment = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == alert)
        .map(|a| {
            a["acknowledge_comment"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    (agents, comment)
}

/// Signs `account` in with a recovery code from a browser naming itself `user_agent`.
async fn sign_in_as_browser(
    api: &crate::harness::Api,
    account: &crate::harness::Account,
    code: usize,
    user_agent: &str,
) -> String {
    let challenge = api
        .send_raw(
            "login".into(),
            api.client
                .post(api.url("/api/v1/auth/login"))
                .header("user-agent", user_agent)
                .json(&json!({"username": account.username, "password": account.password})),
        )
        .await
        .expect(200)
        .str("challenge");
    api.send_raw(
        "mfa".into(),
        api.client
            .post(api.url("/api/v1/auth/mfa"))
            .header("user-agent", user_agent)
            .json(&json!({"challenge": challenge, "method": "recovery", "code": account.recovery_codes[code]})),
    )
    .await
    .expect(200)
    .str("token")
}

async fn kek_ids(server: &Server) -> Vec<String> {
    match &server.pg {
        Some(pg) => pg
            .connect()
            .await
            .query("SELECT DISTINCT kek_id FROM customers UNION SELECT DISTINCT kek_id FROM vault_keys", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
        None => {
            let db = rusqlite::Connection::open(server.data_dir.join("callguard.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let mut st = db
                .prepare("SELECT DISTINCT kek_id FROM customers UNION SELECT DISTINCT kek_id FROM vault_keys")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
    }
}

async fn the_key_encryption_key_rotates_under_a_running_server(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("kai-agent", "agent").await;
    let compliance = server.new_account("kira-compliance", "compliance").await;
    let first = register_demo_customer(&api, &agent).await;
    let kek_file = server.data_dir.join("keys").join("kek");
    let old_key = std::fs::read_to_string(&kek_file).unwrap();
    let before = kek_ids(&server).await;
    assert_eq!(before.len(), 1, "{before:?}");
    // Sealed free text: a session's user agent and a comment on an alert (a new admin raises one).
    let officer = sign_in_as_browser(&api, &compliance, 0, "KeyringBrowser/2.0").await;
    let _admin = server.admin_session().await;
    let (alert, _) = alert_when(&api, &officer, |a| {
        a["rule"] == "privileged_account_created"
    })
    .await;
    let alert = alert["id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/v1/alerts/{alert}/acknowledge"),
        Some(&officer),
        json!({"comment": "known rotation drill"}),
    )
    .await
    .expect(200);

    let ran = server.cli(&["keys", "rotate"]);
    assert!(ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stdout.contains("rotated the key-encryption key"),
        "{}",
        ran.describe()
    );
    assert!(!ran.stdout.contains(old_key.trim()) && !ran.stderr.contains(old_key.trim()));
    let new_key = std::fs::read_to_string(&kek_file).unwrap();
    assert_ne!(new_key, old_key);
    assert!(
        !server.data_dir.join("keys").join("kek.previous").exists(),
        "the old key is deleted at the end"
    );
    let after = kek_ids(&server).await;
    assert_eq!(after.len(), 1, "every wrapped key moved: {after:?}");
    assert_ne!(after, before);

    // The running server switched by itself: old customers open, new ones are sealed with the
    // new key, and TOTP secrets (re-sealed) still sign people in.
    api.get(&format!("/api/v1/customers/{first}"), Some(&agent.token))
        .await
        .expect(200);
    let mut body = customer_body();
    body["phones"] = json!(["+48609000111"]);
    body["national_id"] = json!({"kind": "nip", "value": "5260250274"});
    body["date_of_birth"] = serde_json::Value::Null;
    let second = create_customer(&api, &agent, body).await;
    assert_eq!(kek_ids(&server).await, after);
    let fresh = api.sign_in(&agent).await;
    api.me(&fresh).await.expect(200);
    let (agents, comment) = shown(&api, &officer, &alert).await;
    assert!(
        agents.iter().any(|a| a == "KeyringBrowser/2.0"),
        "{agents:?}"
    );
    assert_eq!(comment, "known rotation drill");

    // The log records the rotation by key ids (public fingerprints), never key material.
    let entries = audit_entries(&api, &compliance).await;
    let rotation = entries
        .iter()
        .find(|e| e["action"] == "keys.rotate")
        .unwrap();
    assert_eq!(rotation["details"]["to"], after[0].as_str());
    assert!(rotation["details"]["data_keys"].as_u64().unwrap() >= 1);
    assert!(
        rotation["details"]["sealed_values"].as_u64().unwrap() >= 2,
        "TOTP secrets"
    );

    // A restart reads only the new key, and everything opens. Meanwhile a user agent kept in
    // the clear (as written before user agents were sealed) appears: the start seals it.
    let deployment = server.stop_keeping_data();
    execute(
        &deployment,
        &format!(
            "UPDATE sessions SET user_agent = 'LegacyBrowser/1.0' WHERE user_id = '{}'",
            agent.id
        ),
    )
    .await;
    let server = Server::start_with(deployment, &[]).await;
    let api = server.api();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let db = crate::storage::database_text(&server, backend).await;
        if !db
            .iter()
            .any(|(_, v)| crate::storage::contains(v, b"LegacyBrowser"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a user agent kept in the clear was not sealed at start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let token = api.sign_in(&agent).await;
    for id in [&first, &second] {
        api.get(&format!("/api/v1/customers/{id}"), Some(&token))
            .await
            .expect(200);
    }
    // What the rotation re-sealed opens under the new key alone; what the start sealed opens too.
    let (agents, comment) = shown(&api, &officer, &alert).await;
    assert!(
        agents.iter().any(|a| a == "KeyringBrowser/2.0"),
        "{agents:?}"
    );
    assert_eq!(comment, "known rotation drill");
    let sessions = api
        .get("/api/v1/me/sessions", Some(&token))
        .await
        .expect(200)
        .json();
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["user_agent"] == "LegacyBrowser/1.0"),
        "{sessions}"
    );
}
