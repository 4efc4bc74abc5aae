//! Separation of duties (issue #10, item 6): an admin who creates a compliance officer and sets
//! it up with the token the API returned holds a second pair of eyes. Such an officer may not
//! approve an erasure until an existing officer confirms the person behind it (or, with nobody
//! to confirm it, a waiting period has passed and someone independent handled the alerts about
//! it). Granting a privileged role needs a fresh re-authentication and raises an alert, as does
//! the account's first sign-in; the audit log and the users list name the creating admin.

use crate::calls::register_demo_customer;
use crate::harness::{alert_when, Account, Api, Backend, Deployment, Server};
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    an_admin_cannot_approve_an_erasure_through_an_officer_they_created_until_an_existing_officer_confirms_it,
    granting_a_privileged_role_needs_a_fresh_reauthentication_and_raises_alerts_naming_the_creator,
    with_nobody_to_confirm_it_a_new_officer_approves_only_after_the_wait_and_independent_handling_of_its_alerts,
);

/// Makes every session of `user_id` older than the re-authentication window, as if the person
/// had signed in long ago.
pub async fn age_sessions(server: &Server, user_id: &str) {
    let sql =
        format!("UPDATE sessions SET reauth_at = reauth_at - 3600 WHERE user_id = '{user_id}'");
    match &server.pg {
        Some(pg) => {
            pg.connect().await.batch_execute(&sql).await.unwrap();
        }
        None => {
            let db = rusqlite::Connection::open(server.data_dir.join("callguard.db")).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            db.execute_batch(&sql).unwrap();
        }
    }
}

/// Password and a recovery code again: the session may do sensitive things for five minutes.
pub async fn reauthenticate(api: &Api, who: &mut Account) {
    let code = who.recovery_codes.pop().expect("a recovery code left");
    api.post(
        "/api/v1/auth/reauth",
        Some(&who.token),
        json!({"password": who.password, "method": "recovery", "code": code}),
    )
    .await
    .expect(204);
}

/// The admin creates an account over the API: its id and one-time setup token.
async fn create(api: &Api, admin: &Account, username: &str, role: &str) -> (String, String) {
    let made = api
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"username": username, "role": role}),
        )
        .await
        .expect(201)
        .json();
    (made.str("id"), made.str("setup_token"))
}

trait Str {
    fn str(&self, key: &str) -> String;
}
impl Str for Value {
    fn str(&self, key: &str) -> String {
        self[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {self}"))
            .to_owned()
    }
}

/// Waits for an alert of `rule` about `subject` (the engine follows the log asynchronously).
async fn alert(api: &Api, watcher: &Account, rule: &str, subject: &str) -> Value {
    alert_when(api, &watcher.token, |a| {
        a["rule"] == rule && a["subject"] == subject
    })
    .await
    .0
}

/// The audit entries (as compliance reads them) with `action` on `target`.
async fn entries(api: &Api, reader: &Account, action: &str, target: &str) -> Vec<Value> {
    let page = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&reader.token))
        .await
        .expect(200)
        .json();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .cloned()
        .collect()
}

/// A customer whose erasure `officer` has requested.
async fn erasure_requested(server: &Server, officer: &Account) -> String {
    let api = server.api();
    let agent = server
        .new_account(&format!("agent-{}", crate::harness::suffix()), "agent")
        .await;
    let id = register_demo_customer(&api, &agent).await;
    api.post(
        &format!("/api/v1/customers/{id}/erasure"),
        Some(&officer.token),
        json!({}),
    )
    .await
    .expect(200);
    id
}

async fn approve(api: &Api, officer: &Account, customer: &str) -> crate::harness::Answer {
    api.post(
        &format!("/api/v1/customers/{customer}/erasure/approve"),
        Some(&officer.token),
        json!({}),
    )
    .await
}

async fn an_admin_cannot_approve_an_erasure_through_an_officer_they_created_until_an_existing_officer_confirms_it(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let admin = server.admin_session().await;
    // An officer the operator created (and so vouched for) asks for an erasure.
    let honest = server.new_account("hanna-compliance", "compliance").await;
    let customer = erasure_requested(&server, &honest).await;

    // The admin creates a compliance officer, keeps the setup token and sets the account up.
    let (id, token) = create(&api, &admin, "mallory-compliance", "compliance").await;
    let mallory = api.set_up(&token, "mallory-compliance", "compliance").await;
    assert_eq!(mallory.id, id);

    // Through it, the admin cannot be the second pair of eyes: refused, nothing erased.
    approve(&api, &mallory, &customer)
        .await
        .expect_problem(403, "four-eyes");
    api.get(
        &format!("/api/v1/customers/{customer}"),
        Some(&honest.token),
    )
    .await
    .expect(200);
    // Nor can the account vouch for itself.
    api.post(
        &format!("/api/v1/users/{id}/confirm"),
        Some(&mallory.token),
        json!({}),
    )
    .await
    .expect_problem(403, "four-eyes");
    let refused = entries(
        &api,
        &honest,
        "gdpr.erasure_approve",
        &format!("customer:{customer}"),
    )
    .await;
    assert!(
        refused.iter().any(|e| e["outcome"] == "failure"
            && e["details"]["refused"] == "unconfirmed_officer"
            && e["actor"] == format!("user:{id}")),
        "the refusal is in the log: {refused:?}"
    );

    // The audit log and the users list name the admin who created the account.
    let created = entries(&api, &honest, "user.create", &format!("user:{id}")).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["actor"], format!("user:{}", admin.id));
    assert_eq!(
        created[0]["details"]["created_by"],
        format!("user:{}", admin.id)
    );
    let users = api
        .get("/api/v1/users", Some(&admin.token))
        .await
        .expect(200)
        .json();
    let row = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["created_by"], format!("user:{}", admin.id), "{row}");
    assert!(row.get("confirmed_by").is_none(), "{row}");

    // The honest path: an existing officer confirms the person, who may then approve.
    let confirmed = api
        .post(
            &format!("/api/v1/users/{id}/confirm"),
            Some(&honest.token),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(confirmed["confirmed_by"], format!("user:{}", honest.id));
    api.post(
        &format!("/api/v1/users/{id}/confirm"),
        Some(&honest.token),
        json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");
    let done = approve(&api, &mallory, &customer).await.expect(200).json();
    assert_eq!(done["status"], "erased");
    let confirmations = entries(&api, &honest, "user.confirm", &format!("user:{id}")).await;
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0]["actor"], format!("user:{}", honest.id));
    assert_eq!(
        confirmations[0]["details"]["created_by"],
        format!("user:{}", admin.id)
    );

    // Resetting the account's credentials hands it to whoever holds the new token: confirmed
    // no more.
    let mut admin = admin;
    reauthenticate(&api, &mut admin).await;
    let reset = api
        .post(
            &format!("/api/v1/users/{id}/reset"),
            Some(&admin.token),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    let again = api
        .set_up(
            &reset.str("setup_token"),
            "mallory-compliance",
            "compliance",
        )
        .await;
    let next = erasure_requested(&server, &honest).await;
    approve(&api, &again, &next)
        .await
        .expect_problem(403, "four-eyes");
}

async fn granting_a_privileged_role_needs_a_fresh_reauthentication_and_raises_alerts_naming_the_creator(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let mut admin = server.admin_session().await;
    let watcher = server.new_account("sofia-supervisor", "supervisor").await;
    let auditor = server.new_account("anna-compliance", "compliance").await;
    age_sessions(&server, &admin.id).await;

    // Without a recent re-authentication, no privileged account and no privileged role.
    for role in ["supervisor", "compliance", "admin"] {
        api.post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"username": format!("new-{role}"), "role": role}),
        )
        .await
        .expect_problem(403, "reauthentication-required");
    }
    let (agent_id, _) = create(&api, &admin, "new-agent", "agent").await;
    api.call(
        reqwest::Method::PUT,
        &format!("/api/v1/users/{agent_id}/role"),
        Some(&admin.token),
        Some(&json!({"role": "compliance"})),
    )
    .await
    .expect_problem(403, "reauthentication-required");
    let users = api
        .get("/api/v1/users", Some(&admin.token))
        .await
        .expect(200)
        .json();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("new-") && *n != "new-agent"),
        "refused requests created nothing: {names:?}"
    );

    // With one, the account is created and the watchers are alerted, naming the admin.
    reauthenticate(&api, &mut admin).await;
    let (id, token) = create(&api, &admin, "new-compliance", "compliance").await;
    let subject = format!("user:{id}");
    let created = alert(&api, &watcher, "privileged_account_created", &subject).await;
    assert_eq!(created["severity"], "high");
    assert!(
        created["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("user:{}", admin.id)),
        "{created}"
    );
    // A role change to a privileged role is alerted too.
    api.call(
        reqwest::Method::PUT,
        &format!("/api/v1/users/{agent_id}/role"),
        Some(&admin.token),
        Some(&json!({"role": "supervisor"})),
    )
    .await
    .expect(200);
    alert(&api, &watcher, "role_change", &format!("user:{agent_id}")).await;

    // The account's first sign-in (its setup) raises an alert naming who created it, and the
    // log's setup entry says so as well.
    let _person = api.set_up(&token, "new-compliance", "compliance").await;
    let first = alert(&api, &watcher, "privileged_first_sign_in", &subject).await;
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("created by user:{}", admin.id)),
        "{first}"
    );
    let setup = entries(&api, &auditor, "auth.setup", &subject).await;
    let ok: Vec<_> = setup.iter().filter(|e| e["outcome"] == "success").collect();
    assert_eq!(ok.len(), 1, "{setup:?}");
    assert_eq!(ok[0]["details"]["created_by"], format!("user:{}", admin.id));
    assert_eq!(ok[0]["details"]["role"], "compliance");
}

async fn with_nobody_to_confirm_it_a_new_officer_approves_only_after_the_wait_and_independent_handling_of_its_alerts(
    backend: Backend,
) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_STAFF_CONFIRMATION_WAIT_SECONDS", "0")],
    )
    .await;
    let api = server.api();
    let admin = server.admin_session().await;
    let honest = server.new_account("olek-compliance", "compliance").await;
    let watcher = server.new_account("wiktor-supervisor", "supervisor").await;
    let customer = erasure_requested(&server, &honest).await;
    let (id, token) = create(&api, &admin, "newbie-compliance", "compliance").await;
    let newbie = api.set_up(&token, "newbie-compliance", "compliance").await;
    let subject = format!("user:{id}");
    let created = alert(&api, &watcher, "privileged_account_created", &subject).await;
    let first = alert(&api, &watcher, "privileged_first_sign_in", &subject).await;

    // The wait is over, but the alerts about the account are open: refused.
    approve(&api, &newbie, &customer)
        .await
        .expect_problem(403, "four-eyes");
    // Acknowledging them oneself does not count.
    api.post(
        &format!("/api/v1/alerts/{}/acknowledge", created.str("id")),
        Some(&newbie.token),
        json!({"comment": "that is me"}),
    )
    .await
    .expect(200);
    api.post(
        &format!("/api/v1/alerts/{}/acknowledge", first.str("id")),
        Some(&watcher.token),
        json!({"comment": "checked with HR"}),
    )
    .await
    .expect(200);
    approve(&api, &newbie, &customer)
        .await
        .expect_problem(403, "four-eyes");

    // A second new officer whose alerts someone independent handled may approve.
    let (id2, token2) = create(&api, &admin, "second-compliance", "compliance").await;
    let second = api.set_up(&token2, "second-compliance", "compliance").await;
    let subject2 = format!("user:{id2}");
    for rule in ["privileged_account_created", "privileged_first_sign_in"] {
        let a = alert(&api, &watcher, rule, &subject2).await;
        api.post(
            &format!("/api/v1/alerts/{}/acknowledge", a.str("id")),
            Some(&watcher.token),
            json!({"comment": "the new officer was expected"}),
        )
        .await
        .expect(200);
    }
    let done = approve(&api, &second, &customer).await.expect(200).json();
    assert_eq!(done["status"], "erased");
}
