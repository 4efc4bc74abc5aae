//! Who a caller is, held to what it claims (SPEC C3, C4): knowledge answers count once per
//! question on file, a national id belongs to one customer only (also when two registrations
//! race), and an agent's phone search outside an interaction alerts the supervisors like any
//! other look-up outside one.

use crate::calls::{
    add_note, by_national_id, by_security_answers, register_demo_customer, start_call_for,
    start_call_id, verify,
};
use crate::harness::{alert_when, Account, Api, Backend, Deployment, Server};
use crate::vault::{
    audit_entries, customer_body, ANSWER_1, ANSWER_2, EMAIL, NAME, PESEL, PHONE, SERVICE,
};
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    one_answer_sent_twice_is_not_two_answers_and_fails_verification,
    a_second_customer_with_a_registered_national_id_is_refused_naming_no_one,
    simultaneous_registrations_with_one_national_id_leave_exactly_one_customer,
    a_national_id_held_twice_before_the_rule_stays_with_the_first_holder_and_the_other_cannot_change,
    a_phone_search_outside_an_interaction_alerts_and_one_inside_does_not,
    wrong_answers_sent_at_once_lock_the_call_after_exactly_five_failures,
    wrong_answers_sent_at_once_on_many_calls_lock_the_customer_after_exactly_ten_failures,
);

/// How many customer rows the database holds (erased ones included).
async fn stored_customers(server: &Server) -> i64 {
    match &server.pg {
        Some(pg) => pg
            .connect()
            .await
            .query_one("SELECT COUNT(*) FROM customers", &[])
            .await
            .unwrap()
            .get(0),
        None => {
            let db = rusqlite::Connection::open(server.data_dir.join("callguard.db")).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            db.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))
                .unwrap()
        }
    }
}

/// Runs `sql` on a stopped deployment's database, as an older Callguard could have left it.
async fn on_database(deployment: &Deployment, sql: &str) {
    match &deployment.pg {
        Some(pg) => pg.connect().await.batch_execute(sql).await.unwrap(),
        None => {
            let db = rusqlite::Connection::open(deployment.data_dir.join("callguard.db")).unwrap();
            db.execute_batch(sql).unwrap();
        }
    }
}

/// Someone else, with the demo customer's PESEL (and date of birth, which the PESEL encodes).
fn impostor_body(n: usize) -> Value {
    let mut body = customer_body();
    body["full_name"] = json!(format!("Jan Podszywacz {n}"));
    body["phones"] = json!([format!("+4860777{n:04}")]);
    body["emails"] = json!([format!("podszywacz{n}@example.com")]);
    body["services"] = json!([format!("impostor-{n}")]);
    body
}

async fn one_answer_sent_twice_is_not_two_answers_and_fails_verification(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("kira-agent", "agent").await;
    let compliance = server.new_account("konrad-compliance", "compliance").await;
    // A customer cannot be registered with one question twice either.
    let mut body = customer_body();
    body["security_questions"][1]["question"] = json!("TOWN of  birth?");
    let refused = api
        .post("/api/v1/customers", Some(&agent.token), body)
        .await
        .expect_problem(422, "invalid-fields")
        .json();
    assert_eq!(
        refused["errors"][0]["field"], "security_questions[1].question",
        "{refused}"
    );
    assert_eq!(stored_customers(&server).await, 0);
    let id = register_demo_customer(&api, &agent).await;
    let call = start_call_for(&api, &agent, PHONE, &id).await;
    let call_id = call["id"].as_str().unwrap();

    // The same question twice, then in other letter case and spacing: one answer each time.
    for (twice, left) in [
        (
            [("Town of birth?", ANSWER_1), ("Town of birth?", ANSWER_1)],
            4,
        ),
        (
            [
                ("Town of birth?", ANSWER_1),
                ("  town OF   birth? ", ANSWER_1),
            ],
            3,
        ),
        ([("First pet?", ANSWER_2), ("FIRST PET?", ANSWER_2)], 2),
    ] {
        let refused = verify(&api, &agent, call_id, by_security_answers(&twice))
            .await
            .expect_problem(422, "verification-failed");
        assert!(
            refused.text.contains(&format!("{left} attempts left")),
            "a repeated answer counts as a failure: {}",
            refused.text
        );
    }
    // Two different questions, both right: level 1.
    let level = verify(
        &api,
        &agent,
        call_id,
        by_security_answers(&[("Town of birth?", ANSWER_1), ("first pet?", ANSWER_2)]),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(level["level"], 1);
    assert_eq!(level["attempts_left"], 2);

    let failures = audit_entries(&api, &compliance)
        .await
        .into_iter()
        .filter(|e| {
            e["action"] == "interaction.verify"
                && e["outcome"] == "failure"
                && e["details"]["method"] == "security_answers"
        })
        .count();
    assert_eq!(failures, 3, "each repeated answer is a logged failure");
}

async fn a_second_customer_with_a_registered_national_id_is_refused_naming_no_one(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("kamil-agent", "agent").await;
    let compliance = server.new_account("klara-compliance", "compliance").await;
    let genuine = register_demo_customer(&api, &agent).await;
    assert_eq!(stored_customers(&server).await, 1);

    // The same PESEL again, under another name: 409, and the answer names no one.
    let refused = api
        .post("/api/v1/customers", Some(&agent.token), impostor_body(1))
        .await
        .expect_problem(409, "duplicate-national-id");
    for shown in [
        genuine.as_str(),
        PESEL,
        NAME,
        PHONE,
        EMAIL,
        SERVICE,
        "Podszywacz",
    ] {
        assert!(
            !refused.text.contains(shown),
            "the refusal shows {shown:?}: {}",
            refused.text
        );
    }
    // The same PESEL written with spaces is the same PESEL.
    let mut spaced = impostor_body(2);
    spaced["national_id"]["value"] = json!("440514 01359");
    let spaced_answer = api
        .post("/api/v1/customers", Some(&agent.token), spaced)
        .await;
    assert_ne!(spaced_answer.status.as_u16(), 201, "{}", spaced_answer.text);
    assert_eq!(stored_customers(&server).await, 1, "nothing was stored");

    // The genuine customer is still the one their PESEL identifies.
    let call = start_call_id(&api, &agent, "+48609555444").await;
    let level = verify(&api, &agent, &call, by_national_id(PESEL))
        .await
        .expect(200)
        .json();
    assert_eq!(level["level"], 1);
    assert_eq!(level["customer_id"], genuine.as_str());

    // The refusal is logged, without the value.
    let entries = audit_entries(&api, &compliance).await;
    let refusal = entries
        .iter()
        .find(|e| e["action"] == "customer.create" && e["outcome"] == "failure")
        .expect("the refused registration is in the log");
    assert_eq!(refusal["details"]["refused"], "duplicate_national_id");
    assert_eq!(refusal["actor"], format!("user:{}", agent.id));
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains(PESEL), "the log holds the PESEL");
}

async fn simultaneous_registrations_with_one_national_id_leave_exactly_one_customer(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("kacper-agent", "agent").await;
    const AT_ONCE: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..AT_ONCE {
        let api = Api {
            client: api.client.clone(),
            base: api.base.clone(),
        };
        let token = agent.token.clone();
        tasks.spawn(async move {
            api.post("/api/v1/customers", Some(&token), impostor_body(n))
                .await
        });
    }
    let mut created = 0;
    let mut refused = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        match answer.status.as_u16() {
            201 => created += 1,
            _ => {
                answer.expect_problem(409, "duplicate-national-id");
                refused += 1;
            }
        }
    }
    assert_eq!((created, refused), (1, AT_ONCE - 1));
    assert_eq!(stored_customers(&server).await, 1);
}

/// Waits until the supervisors' alert list holds an alert that `wanted` picks: all alerts then.
async fn alerts_once(
    api: &Api,
    supervisor: &Account,
    wanted: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let (_, list) = alert_when(api, &supervisor.token, wanted).await;
    list["alerts"].as_array().unwrap().clone()
}

async fn a_phone_search_outside_an_interaction_alerts_and_one_inside_does_not(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let inside = server.new_account("ida-agent", "agent").await;
    let outside = server.new_account("otto-agent", "agent").await;
    let supervisor = server.new_account("sara-supervisor", "supervisor").await;
    register_demo_customer(&api, &inside).await;

    // Inside the agent's own call: no alert.
    let call = start_call_id(&api, &inside, PHONE).await;
    api.get(
        &format!("/api/v1/customers?phone=%2B48601234567&interaction_id={call}"),
        Some(&inside.token),
    )
    .await
    .expect(200);
    // Without a call: an alert on the agent who searched.
    api.get(
        "/api/v1/customers?phone=%2B48601234567",
        Some(&outside.token),
    )
    .await
    .expect(200);
    let on = |who: &Account| format!("user:{}", who.id);
    let alerts = alerts_once(&api, &supervisor, |a| {
        a["rule"] == "access_outside_interaction" && a["subject"] == on(&outside)
    })
    .await;
    // Alerts come in log order, so the search inside the call was looked at before.
    assert!(
        !alerts.iter().any(|a| a["subject"] == on(&inside)),
        "a search inside the agent's own call raised an alert: {alerts:?}"
    );
    let alert = alerts
        .iter()
        .find(|a| a["subject"] == on(&outside))
        .unwrap();
    assert!(
        !alert.to_string().contains("601234567"),
        "the alert holds the number: {alert}"
    );
}

async fn a_national_id_held_twice_before_the_rule_stays_with_the_first_holder_and_the_other_cannot_change(
    backend: Backend,
) {
    // An older database: the impostor registered while national ids were not unique (made here
    // by hiding the genuine customer's entry and the unique index for one registration).
    let server = Server::start(backend).await;
    let agent = server.new_account("kuba-agent", "agent").await;
    let genuine = register_demo_customer(&server.api(), &agent).await;
    let deployment = server.stop_keeping_data();
    on_database(
        &deployment,
        "UPDATE customer_index SET kind = 'hidden' WHERE kind = 'national_id';
         DROP INDEX customer_index_national_id_unique;",
    )
    .await;
    let server = Server::start_with(deployment, &[]).await;
    let api = server.api();
    // Sessions live in the database, so the agent's session survives the restart (and no further
    // authenticator codes are needed: the server takes each 30-second step once).
    let impostor = api
        .post("/api/v1/customers", Some(&agent.token), impostor_body(1))
        .await
        .expect(201)
        .str("id");
    let deployment = server.stop_keeping_data();
    on_database(
        &deployment,
        &format!(
            "UPDATE customer_index SET kind = 'national_id' WHERE kind = 'hidden';
             UPDATE customers SET created_at = created_at - 100 WHERE id = '{genuine}';
             DELETE FROM schema_migrations WHERE version = 8;"
        ),
    )
    .await;

    // The upgrade: migration 0008 runs on this database without failing.
    let server = Server::start_with(deployment, &[]).await;
    let api = server.api();
    // Sessions live in the database, so the agent's session survives the restart (and no further
    // authenticator codes are needed: the server takes each 30-second step once).
    // The genuine customer is the one their PESEL identifies, and their record changes as usual.
    let call = start_call_id(&api, &agent, "+48609555444").await;
    let level = verify(&api, &agent, &call, by_national_id(PESEL))
        .await
        .expect(200)
        .json();
    assert_eq!(level["customer_id"], genuine.as_str());
    add_note(&api, &agent, &genuine, &call, "asked about an invoice")
        .await
        .expect(200);
    // The later record can be reached otherwise, but cannot change until the duplicate is
    // resolved; the refusal names no one.
    let call = start_call_for(&api, &agent, "+48607770001", &impostor).await;
    let call = call["id"].as_str().unwrap();
    verify(
        &api,
        &agent,
        call,
        json!({"method": "service", "value": "impostor-1"}),
    )
    .await
    .expect(200);
    let refused = add_note(&api, &agent, &impostor, call, "wants a new address")
        .await
        .expect_problem(409, "duplicate-national-id");
    assert!(
        !refused.text.contains(&genuine) && !refused.text.contains(PESEL),
        "{}",
        refused.text
    );
}

/// How a burst of verification attempts was answered.
#[derive(Debug, Default)]
struct Burst {
    /// 422 verification-failed: a counted failure.
    failed: usize,
    /// 409 wrong-state: another attempt changed the call first; nothing counted.
    raced: usize,
    /// 423/4xx verification-locked: refused without checking.
    locked: usize,
}

/// Sends `body` to each of `calls` (agent token, interaction id) `per_call` times, all at once.
async fn verify_burst(
    api: &Api,
    calls: &[(String, String)],
    per_call: usize,
    body: &Value,
) -> Burst {
    let mut tasks = tokio::task::JoinSet::new();
    for (token, call) in calls {
        for _ in 0..per_call {
            let api = Api {
                client: api.client.clone(),
                base: api.base.clone(),
            };
            let (token, body) = (token.clone(), body.clone());
            let path = format!("/api/v1/interactions/{call}/verify");
            tasks.spawn(async move { api.post(&path, Some(&token), body).await });
        }
    }
    let mut burst = Burst::default();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        assert!(
            !answer.text.contains(ANSWER_1) && !answer.text.contains("Gdynia"),
            "an answer is never echoed: {}",
            answer.text
        );
        match answer.status.as_u16() {
            422 => {
                answer.expect_problem(422, "verification-failed");
                burst.failed += 1;
            }
            409 => {
                answer.expect_problem(409, "wrong-state");
                burst.raced += 1;
            }
            _ => {
                answer.expect_problem(423, "verification-locked");
                burst.locked += 1;
            }
        }
    }
    burst
}

/// Bursts of `body` until every attempt is refused as locked: the failures counted in all.
async fn burst_until_locked(
    api: &Api,
    calls: &[(String, String)],
    per_call: usize,
    body: &Value,
) -> usize {
    let mut failed = 0;
    for _ in 0..40 {
        let burst = verify_burst(api, calls, per_call, body).await;
        failed += burst.failed;
        if burst.locked == calls.len() * per_call {
            return failed;
        }
    }
    panic!("attempts were still checked after 40 bursts ({failed} failures counted)");
}

/// Counted verification failures in the audit log (refusals of a locked customer excluded),
/// and `interaction.verification_locked` entries.
async fn counted_failures(api: &Api, compliance: &Account) -> (usize, usize) {
    let entries = audit_entries(api, compliance).await;
    let failures = entries
        .iter()
        .filter(|e| {
            e["action"] == "interaction.verify"
                && e["outcome"] == "failure"
                && e["details"]["refused"].is_null()
        })
        .count();
    let locks = entries
        .iter()
        .filter(|e| e["action"] == "interaction.verification_locked")
        .count();
    (failures, locks)
}

fn wrong_answers() -> Value {
    by_security_answers(&[("Town of birth?", "Gdynia"), ("First pet?", "Gdynia")])
}

async fn wrong_answers_sent_at_once_lock_the_call_after_exactly_five_failures(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("kamil-agent", "agent").await;
    let compliance = server.new_account("klara-compliance", "compliance").await;
    let id = register_demo_customer(&api, &agent).await;
    let call = start_call_for(&api, &agent, PHONE, &id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let calls = [(agent.token.clone(), call.clone())];

    // Twenty wrong answers at once, again and again: five are checked, the rest wait their turn
    // (409) or find the call locked.
    let failed = burst_until_locked(&api, &calls, 20, &wrong_answers()).await;
    assert_eq!(failed, 5, "exactly five failures answered as such");
    assert_eq!(counted_failures(&api, &compliance).await, (5, 1));

    // The right answers now change nothing.
    verify(
        &api,
        &agent,
        &call,
        by_security_answers(&[("Town of birth?", ANSWER_1), ("First pet?", ANSWER_2)]),
    )
    .await
    .expect_problem(423, "verification-locked");
    let call_now = api
        .get(&format!("/api/v1/interactions/{call}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(call_now["verification_level"], 0, "{call_now}");
    assert_eq!(call_now["locked"], true, "{call_now}");
}

async fn wrong_answers_sent_at_once_on_many_calls_lock_the_customer_after_exactly_ten_failures(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let compliance = server.new_account("kornel-compliance", "compliance").await;
    let first = server.new_account("kuba-agent", "agent").await;
    let id = register_demo_customer(&api, &first).await;
    // Four agents, each with a call from the customer's number: twenty possible failures.
    let mut agents = vec![first];
    for n in 1..4 {
        agents.push(server.new_account(&format!("kuba{n}-agent"), "agent").await);
    }
    let mut calls = Vec::new();
    for agent in &agents {
        let call = start_call_for(&api, agent, PHONE, &id).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        calls.push((agent.token.clone(), call));
    }

    let failed = burst_until_locked(&api, &calls, 6, &wrong_answers()).await;
    assert_eq!(
        failed, 10,
        "the customer's ten failures in 24 hours, over every call"
    );
    let (failures, _) = counted_failures(&api, &compliance).await;
    assert_eq!(failures, 10);

    // A fifth call with the right answers is refused: the customer is locked.
    let late = server.new_account("kuba9-agent", "agent").await;
    let call = start_call_for(&api, &late, PHONE, &id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    verify(
        &api,
        &late,
        &call,
        by_security_answers(&[("Town of birth?", ANSWER_1), ("First pet?", ANSWER_2)]),
    )
    .await
    .expect_problem(423, "verification-locked");
}
