//! Who a caller is, held to what it claims (SPEC C3, C4): knowledge answers count once per
//! question on file, a national id belongs to one customer only (also when two registrations
//! race), and an agent's phone search outside an interaction alerts the supervisors like any
//! other look-up outside one.

use crate::calls::{
    by_national_id, by_security_answers, register_demo_customer, start_call_for, start_call_id,
    verify,
};
use crate::harness::{Account, Api, Backend, Server};
use crate::vault::{
    audit_entries, customer_body, ANSWER_1, ANSWER_2, EMAIL, NAME, PESEL, PHONE, SERVICE,
};
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    one_answer_sent_twice_is_not_two_answers_and_fails_verification,
    a_second_customer_with_a_registered_national_id_is_refused_naming_no_one,
    simultaneous_registrations_with_one_national_id_leave_exactly_one_customer,
    a_phone_search_outside_an_interaction_alerts_and_one_inside_does_not,
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
            [("Town of birth?", ANSWER_1), ("  town OF   birth? ", ANSWER_1)],
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
async fn alerts_once(api: &Api, supervisor: &Account, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let alerts = api
            .get("/api/v1/alerts", Some(&supervisor.token))
            .await
            .expect(200)
            .json()["alerts"]
            .as_array()
            .unwrap()
            .clone();
        if alerts.iter().any(&wanted) {
            return alerts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the expected alert never came");
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
    api.get("/api/v1/customers?phone=%2B48601234567", Some(&outside.token))
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
