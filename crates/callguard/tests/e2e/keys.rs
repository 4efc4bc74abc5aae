//! Key-encryption key rotation while the server runs (SPEC C3: keys rotate without downtime):
//! every wrapped data key and TOTP secret moves to the new key, the server keeps answering, the
//! old key file is gone, and a restart on the new key finds everything.

use crate::calls::register_demo_customer;
use crate::harness::{Backend, Server};
use crate::vault::{audit_entries, create_customer, customer_body};
use serde_json::json;

both_backends!(the_key_encryption_key_rotates_under_a_running_server);

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

    // A restart reads only the new key, and everything opens.
    let deployment = server.stop_keeping_data();
    let server = Server::start_with(deployment, &[]).await;
    let api = server.api();
    let token = api.sign_in(&agent).await;
    for id in [&first, &second] {
        api.get(&format!("/api/v1/customers/{id}"), Some(&token))
            .await
            .expect(200);
    }
}
