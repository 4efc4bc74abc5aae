//! The customer portal and GDPR end to end: a customer invited by the CLI sets up their portal
//! account (password + TOTP), sees their own data in the clear, hands a one-time code to the
//! agent on the phone (it works once), sees who revealed what and why, and asks for erasure,
//! which two different compliance officers carry out; afterwards nothing brings the data back,
//! not even the customer's row restored from a copy of the database taken before.

use crate::calls::{
    by_portal_code, issue_portal_code, register_demo_customer, reveal_because, start_call_id,
    try_start_call, verify, verify_level1, verify_level2_with_portal_code,
};
use crate::harness::{Api, Backend, Server, Totp};
use crate::vault::{audit_entries, create_customer, customer_body, PESEL, PHONE};
use serde_json::{json, Value};

both_backends!(
    a_customer_hands_a_portal_code_to_the_agent_and_sees_who_looked,
    erasure_needs_two_compliance_officers_and_survives_no_backup,
);

/// A customer's portal session.
pub struct Customer {
    pub token: String,
}

/// Sets up a portal account; answers its first session token.
pub async fn portal_set_up(api: &Api, setup_token: &str, customer_id: &str) -> String {
    portal_set_up_full(api, setup_token, customer_id)
        .await
        .0
        .token
}

pub async fn portal_set_up_full(
    api: &Api,
    setup_token: &str,
    customer_id: &str,
) -> (Customer, String, Totp) {
    let password = crate::harness::new_password();
    let started = api
        .post(
            "/api/v1/portal/auth/setup",
            None,
            json!({"token": setup_token, "password": password}),
        )
        .await
        .expect(200)
        .json();
    let totp = Totp::from_base32(started["totp_secret"].as_str().unwrap());
    let confirmed = api
        .post(
            "/api/v1/portal/auth/setup/confirm",
            None,
            json!({"challenge": started["challenge"], "code": totp.next_code()}),
        )
        .await
        .expect(200)
        .json();
    let token = confirmed["token"].as_str().unwrap().to_owned();
    let me = api
        .get("/api/v1/portal/me", Some(&token))
        .await
        .expect(200)
        .json();
    assert_eq!(me["customer_id"], customer_id);
    (Customer { token }, password, totp)
}

pub fn invite(server: &Server, customer_id: &str) -> String {
    let ran = server.cli(&["customer", "invite", customer_id]);
    assert!(ran.status.success(), "{}", ran.describe());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "the token and nothing else: {:?}",
        ran.stdout
    );
    lines[0].to_owned()
}

async fn a_customer_hands_a_portal_code_to_the_agent_and_sees_who_looked(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("pola-agent", "agent").await;
    let id = register_demo_customer(&api, &agent).await;
    let other = {
        let mut b = customer_body();
        b["phones"] = json!(["+48605111222"]);
        b["national_id"] = json!({"kind": "nip", "value": "5260250274"});
        b["date_of_birth"] = Value::Null;
        create_customer(&api, &agent, b).await
    };

    // Inviting someone who is not a customer fails and says why.
    let ran = server.cli(&["customer", "invite", "999999999999"]);
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("no customer"), "{}", ran.describe());

    let setup_token = invite(&server, &id);
    // The refusals come from addresses of their own, so the per-address throttle they feed
    // does not slow down the rest of the story.
    let probe = server.api_from(crate::harness::loopback(7));
    let probe2 = server.api_from(crate::harness::loopback(8));
    // A customer's token does not set up a staff account, and vice versa.
    probe
        .post(
            "/api/v1/auth/setup",
            None,
            json!({"token": setup_token, "password": crate::harness::new_password()}),
        )
        .await
        .expect_problem(401, "setup-token-invalid");
    let (customer, password, totp) = portal_set_up_full(&api, &setup_token, &id).await;

    // Staff sign-in does not admit the customer; the portal does not admit staff.
    probe
        .login(&id, &password)
        .await
        .expect_problem(401, "invalid-credentials");
    probe2
        .post(
            "/api/v1/portal/auth/login",
            None,
            json!({"username": agent.username, "password": agent.password}),
        )
        .await
        .expect_problem(401, "invalid-credentials");
    let challenge = api
        .post(
            "/api/v1/portal/auth/login",
            None,
            json!({"username": id, "password": password}),
        )
        .await
        .expect(200)
        .str("challenge");
    api.post(
        "/api/v1/portal/auth/mfa",
        None,
        json!({"challenge": challenge, "method": "totp", "code": totp.next_code()}),
    )
    .await
    .expect(200);

    // My data, in the clear, for me only; no staff endpoint answers a customer.
    let me = api
        .get("/api/v1/portal/me", Some(&customer.token))
        .await
        .expect(200)
        .json();
    assert_eq!(me["phones"], json!([PHONE]));
    assert_eq!(me["national_id"]["value"], PESEL);
    for path in [
        format!("/api/v1/customers/{other}"),
        format!("/api/v1/customers/{id}"),
    ] {
        api.get(&path, Some(&customer.token))
            .await
            .expect_problem(403, "forbidden");
    }
    api.get("/api/v1/audit", Some(&customer.token))
        .await
        .expect_problem(403, "forbidden");
    // Staff cannot use the portal's own endpoints either.
    api.get("/api/v1/portal/me", Some(&agent.token))
        .await
        .expect_problem(403, "forbidden");

    // The call: identified by PESEL, then the code from the portal reaches level 2.
    let call_id = start_call_id(&api, &agent, PHONE).await;
    verify_level1(&api, &agent, &call_id, PESEL).await;
    let code = issue_portal_code(&api, &customer.token).await;
    assert_eq!(code.len(), 9, "ABCD-EFGH: {code}");
    assert!(
        code.chars()
            .all(|c| c == '-' || "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(c)),
        "{code}"
    );
    // Another customer's portal code does not verify this caller.
    let other_token = invite(&server, &other);
    let (other_customer, _, _) = portal_set_up_full(&api, &other_token, &other).await;
    let foreign = issue_portal_code(&api, &other_customer.token).await;
    verify(&api, &agent, &call_id, by_portal_code(&foreign))
        .await
        .expect_problem(422, "verification-failed");
    // Read out loud, in lower case and without the dash, it still works — once.
    let spoken = code.replace('-', " ").to_lowercase();
    let level = verify_level2_with_portal_code(&api, &agent, &call_id, &spoken)
        .await
        .json();
    assert_eq!(level["level"], 2);
    let call2 = start_call_id(&api, &agent, PHONE).await;
    verify_level1(&api, &agent, &call2, PESEL).await;
    verify(&api, &agent, &call2, by_portal_code(&code))
        .await
        .expect_problem(422, "verification-failed");

    // A reveal, then the customer sees it: when, which agent, which field, why.
    reveal_because(&api, &agent, &id, &call_id, "address", "service_issue")
        .await
        .expect(200);
    let log = api
        .get("/api/v1/portal/access-log", Some(&customer.token))
        .await
        .expect(200)
        .json();
    let reveal = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["what"] == "reveal")
        .unwrap_or_else(|| panic!("no reveal in {log}"));
    assert_eq!(reveal["by"], format!("user:{}", agent.id));
    assert_eq!(reveal["detail"], "address");
    assert_eq!(reveal["reason"], "service_issue");
    assert_eq!(reveal["interaction"], call_id.as_str());
    // The other customer's log knows nothing of it.
    let other_log = api
        .get("/api/v1/portal/access-log", Some(&other_customer.token))
        .await
        .expect(200)
        .json();
    assert!(!other_log.to_string().contains("\"reveal\""), "{other_log}");
    // The export holds everything, for the customer only.
    let export = api
        .get("/api/v1/portal/export", Some(&customer.token))
        .await
        .expect(200)
        .json();
    assert_eq!(export["data"]["national_id"]["value"], PESEL);
    assert!(!export["access"].as_array().unwrap().is_empty());
}

async fn erasure_needs_two_compliance_officers_and_survives_no_backup(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("ewa-agent", "agent").await;
    let first = server.new_account("filip-compliance", "compliance").await;
    let second = server.new_account("gosia-compliance", "compliance").await;
    let id = register_demo_customer(&api, &agent).await;
    let token = invite(&server, &id);
    let (customer, password, totp) = portal_set_up_full(&api, &token, &id).await;

    // The customer asks; compliance sees the request, never the data.
    api.post(
        "/api/v1/portal/requests",
        Some(&customer.token),
        json!({"kind": "erasure"}),
    )
    .await
    .expect(200);
    let pending = api
        .get("/api/v1/gdpr/requests", Some(&first.token))
        .await
        .expect(200)
        .json();
    assert_eq!(
        pending["requests"][0]["customer_id"],
        id.as_str(),
        "{pending}"
    );
    assert!(pending["requests"][0]["requests"]["erasure_asked_by_customer_at"].is_string());
    let receipt = api
        .post(
            &format!("/api/v1/customers/{id}/export"),
            Some(&first.token),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert!(!receipt.to_string().contains(PESEL), "{receipt}");
    // Agents and admins do not handle GDPR requests.
    api.post(
        &format!("/api/v1/customers/{id}/erasure"),
        Some(&agent.token),
        json!({}),
    )
    .await
    .expect_problem(403, "forbidden");

    // A "backup": the customer's row as it is before the erasure.
    let backup = read_row(&server, &id).await;

    // Approval before any request, and by the requesting officer, is refused.
    api.post(
        &format!("/api/v1/customers/{id}/erasure/approve"),
        Some(&first.token),
        json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");
    api.post(
        &format!("/api/v1/customers/{id}/erasure"),
        Some(&first.token),
        json!({}),
    )
    .await
    .expect(200);
    api.post(
        &format!("/api/v1/customers/{id}/erasure/approve"),
        Some(&first.token),
        json!({}),
    )
    .await
    .expect_problem(403, "four-eyes");
    api.get(&format!("/api/v1/customers/{id}"), Some(&agent.token))
        .await
        .expect(200);
    let done = api
        .post(
            &format!("/api/v1/customers/{id}/erasure/approve"),
            Some(&second.token),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(done["status"], "erased");

    // Gone for staff, for search, for the portal.
    api.get(&format!("/api/v1/customers/{id}"), Some(&agent.token))
        .await
        .expect_problem(404, "not-found");
    let found = api
        .get("/api/v1/customers?phone=%2B48601234567", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(found["customers"], json!([]));
    let challenge = api
        .post(
            "/api/v1/portal/auth/login",
            None,
            json!({"username": id, "password": password}),
        )
        .await;
    if challenge.status == 200 {
        api.post(
            "/api/v1/portal/auth/mfa",
            None,
            json!({"challenge": challenge.json()["challenge"], "method": "totp", "code": totp.next_code()}),
        )
        .await
        .expect_problem(403, "account-disabled");
    } else {
        challenge.expect_problem(401, "invalid-credentials");
    }
    api.get("/api/v1/portal/me", Some(&customer.token))
        .await
        .expect_problem(401, "unauthenticated");

    // Restoring the row from before the erasure brings nothing back: the key share that the
    // database never held is destroyed.
    restore_row(&server, &id, &backup).await;
    api.get(&format!("/api/v1/customers/{id}"), Some(&agent.token))
        .await
        .expect_problem(404, "not-found");
    let call = try_start_call(&api, &agent, PHONE, Some(&id)).await;
    assert_eq!(call.status, 404, "{}", call.text);

    // The log keeps a tombstone naming both officers, and no personal data.
    let entries = audit_entries(&api, &first).await;
    let erase = entries
        .iter()
        .find(|e| e["action"] == "customer.erase")
        .unwrap();
    assert_eq!(
        erase["details"]["requested_by"],
        format!("user:{}", first.id)
    );
    assert_eq!(
        erase["details"]["approved_by"],
        format!("user:{}", second.id)
    );
    assert_eq!(erase["details"]["asked_by_customer"], true);
    assert!(!serde_json::to_string(&entries).unwrap().contains(PESEL));
}

/// (wrapped_key, fields) of a customer row, straight from the database.
async fn read_row(server: &Server, id: &str) -> (Vec<u8>, String) {
    match &server.pg {
        Some(pg) => {
            let db = pg.connect().await;
            let r = db
                .query_one(
                    "SELECT wrapped_key, fields FROM customers WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        }
        None => {
            let db = rusqlite::Connection::open(server.data_dir.join("callguard.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.query_row(
                "SELECT wrapped_key, fields FROM customers WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        }
    }
}

async fn restore_row(server: &Server, id: &str, (wrapped, fields): &(Vec<u8>, String)) {
    let sql_pg =
        "UPDATE customers SET status = 'active', wrapped_key = $2, fields = $3 WHERE id = $1";
    match &server.pg {
        Some(pg) => {
            let db = pg.connect().await;
            assert_eq!(
                db.execute(sql_pg, &[&id, wrapped, fields]).await.unwrap(),
                1
            );
        }
        None => {
            let db = rusqlite::Connection::open(server.data_dir.join("callguard.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let n = db
                .execute(
                    "UPDATE customers SET status = 'active', wrapped_key = ?2, fields = ?3 WHERE id = ?1",
                    rusqlite::params![id, wrapped, fields],
                )
                .unwrap();
            assert_eq!(n, 1);
        }
    }
}
