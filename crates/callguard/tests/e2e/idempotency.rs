//! Retrying an operation without acting twice (SPEC C4, C6): a client that got no answer sends
//! the operation again with the same `Idempotency-Key` and gets the first answer, with one
//! change and one audit entry, also when the retries arrive all at once.

use crate::calls::{register_demo_customer, start_call_for, verify_level1};
use crate::harness::{Account, Answer, Api, Backend, Server};
use crate::vault::{audit_entries, PESEL, PHONE};
use serde_json::{json, Value};

both_backends!(
    a_retried_note_with_its_key_is_one_note_and_answers_as_the_first,
    sixteen_simultaneous_requests_with_one_key_are_one_note,
    a_key_sent_again_with_another_request_is_refused_and_changes_nothing,
);

/// `add_note` with `text`, under `key` when given.
async fn note(
    api: &Api,
    token: &str,
    customer: &str,
    call: &str,
    text: &str,
    key: Option<&str>,
) -> Answer {
    let path = format!("/api/v1/customers/{customer}/operations");
    let body = json!({"interaction_id": call, "kind": "add_note", "data": {"text": text}});
    let mut req = api
        .client
        .post(api.url(&path))
        .bearer_auth(token)
        .json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    api.send_raw(format!("POST {path}"), req).await
}

/// A verified call (level 1) of the demo customer: (customer id, interaction id).
async fn verified_call(api: &Api, agent: &Account) -> (String, String) {
    let customer = register_demo_customer(api, agent).await;
    let call = start_call_for(api, agent, PHONE, &customer).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    verify_level1(api, agent, &call, PESEL).await;
    (customer, call)
}

/// The `customer.operation` entries of kind `add_note` in the log.
async fn notes_logged(api: &Api, compliance: &Account) -> Vec<Value> {
    audit_entries(api, compliance)
        .await
        .into_iter()
        .filter(|e| e["action"] == "customer.operation" && e["details"]["kind"] == "add_note")
        .collect()
}

async fn a_retried_note_with_its_key_is_one_note_and_answers_as_the_first(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("ida-agent", "agent").await;
    let compliance = server.new_account("igor-compliance", "compliance").await;
    let (customer, call) = verified_call(&api, &agent).await;
    let key = "5b0e7c1a-9f3d-4e2b-8a6c-1d2e3f4a5b6c";

    let first = note(
        &api,
        &agent.token,
        &customer,
        &call,
        "Called about the invoice",
        Some(key),
    )
    .await
    .expect(200);
    assert!(first.header("idempotent-replayed").is_none());
    let again = note(
        &api,
        &agent.token,
        &customer,
        &call,
        "Called about the invoice",
        Some(key),
    )
    .await
    .expect(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["kind"], "add_note");
    assert_eq!(again.json()["level"], first.json()["level"]);
    assert_eq!(notes_logged(&api, &compliance).await.len(), 1);

    // Without a key, or with another key, a note is a new note.
    note(
        &api,
        &agent.token,
        &customer,
        &call,
        "Called about the invoice",
        None,
    )
    .await
    .expect(200);
    note(
        &api,
        &agent.token,
        &customer,
        &call,
        "Called about the invoice",
        Some("second"),
    )
    .await
    .expect(200);
    assert_eq!(notes_logged(&api, &compliance).await.len(), 3);

    // Keys are per account: another agent's same key is theirs (and refused for a call that is
    // not theirs, as without a key).
    let other = server.new_account("iwo-agent", "agent").await;
    note(
        &api,
        &other.token,
        &customer,
        &call,
        "Called about the invoice",
        Some(key),
    )
    .await
    .expect(404);
    assert_eq!(notes_logged(&api, &compliance).await.len(), 3);

    // A key that is no header value we accept is refused before anything happens.
    note(
        &api,
        &agent.token,
        &customer,
        &call,
        "x",
        Some(&"k".repeat(256)),
    )
    .await
    .expect_problem(422, "invalid-fields");
    assert_eq!(notes_logged(&api, &compliance).await.len(), 3);
}

async fn sixteen_simultaneous_requests_with_one_key_are_one_note(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("irena-agent", "agent").await;
    let compliance = server.new_account("ignacy-compliance", "compliance").await;
    let (customer, call) = verified_call(&api, &agent).await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let api = Api {
            client: api.client.clone(),
            base: api.base.clone(),
        };
        let (token, customer, call) = (agent.token.clone(), customer.clone(), call.clone());
        tasks.spawn(async move {
            note(
                &api,
                &token,
                &customer,
                &call,
                "Asked for a callback",
                Some("burst-1"),
            )
            .await
        });
    }
    let mut replayed = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap().expect(200);
        if answer.header("idempotent-replayed").is_some() {
            replayed += 1;
        }
    }
    assert_eq!(
        replayed, 15,
        "one request acted, fifteen answered as it did"
    );
    assert_eq!(notes_logged(&api, &compliance).await.len(), 1);
}

async fn a_key_sent_again_with_another_request_is_refused_and_changes_nothing(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("iza-agent", "agent").await;
    let compliance = server.new_account("ilona-compliance", "compliance").await;
    let (customer, call) = verified_call(&api, &agent).await;

    note(
        &api,
        &agent.token,
        &customer,
        &call,
        "Prefers e-mail",
        Some("k-1"),
    )
    .await
    .expect(200);
    let refused = note(
        &api,
        &agent.token,
        &customer,
        &call,
        "Prefers letters",
        Some("k-1"),
    )
    .await
    .expect_problem(422, "invalid-fields");
    assert!(
        refused.text.contains("Idempotency-Key") && !refused.text.contains("Prefers"),
        "the problem names the header, never the request: {}",
        refused.text
    );
    assert_eq!(notes_logged(&api, &compliance).await.len(), 1);
}
