//! The agent's side of a call, written once for every test that needs one: registering the demo
//! customer, starting an inbound phone call (an interaction), verifying the caller to level 1
//! and level 2, and what the agent then does for the caller (reveals, operations). A helper
//! asserts at most the status the inline code it replaced asserted, and answers the rest (the
//! body, or the whole answer) for the test to check.

use crate::harness::{Account, Answer, Api};
use crate::vault::{create_customer, customer_body};
use serde_json::{json, Value};

/// Registers the demo customer (`vault::customer_body`): their id.
pub async fn register_demo_customer(api: &Api, agent: &Account) -> String {
    create_customer(api, agent, customer_body()).await
}

/// `POST /api/v1/interactions`: an inbound phone call from `from`, naming the customer when
/// `customer_id` is given; the answer as it comes, whatever its status.
pub async fn try_start_call(
    api: &Api,
    agent: &Account,
    from: &str,
    customer_id: Option<&str>,
) -> Answer {
    let mut body = json!({"channel": "phone", "direction": "inbound", "from": from});
    if let Some(id) = customer_id {
        body["customer_id"] = json!(id);
    }
    post_as(api, agent, "/api/v1/interactions", body).await
}

/// An inbound phone call from `from` (201): the interaction.
pub async fn start_call(api: &Api, agent: &Account, from: &str) -> Value {
    try_start_call(api, agent, from, None)
        .await
        .expect(201)
        .json()
}

/// An inbound phone call from `from` for the customer `customer_id` (201): the interaction.
pub async fn start_call_for(api: &Api, agent: &Account, from: &str, customer_id: &str) -> Value {
    try_start_call(api, agent, from, Some(customer_id))
        .await
        .expect(201)
        .json()
}

/// An inbound phone call from `from` (201): its id.
pub async fn start_call_id(api: &Api, agent: &Account, from: &str) -> String {
    try_start_call(api, agent, from, None)
        .await
        .expect(201)
        .str("id")
}

/// `POST path` with `body` in the agent's session, as answered.
async fn post_as(api: &Api, agent: &Account, path: &str, body: Value) -> Answer {
    api.post(path, Some(&agent.token), body).await
}

/// `POST /api/v1/interactions/{interaction}/verify` with `body`, as answered.
pub async fn verify(api: &Api, agent: &Account, interaction: &str, body: Value) -> Answer {
    let path = format!("/api/v1/interactions/{interaction}/verify");
    post_as(api, agent, &path, body).await
}

/// A verification step: the national identifier (level 1).
pub fn by_national_id(value: &str) -> Value {
    json!({"method": "national_id", "value": value})
}

/// A verification step: answers to the security questions, `(question, answer)` (level 1).
pub fn by_security_answers(answers: &[(&str, &str)]) -> Value {
    let answers: Vec<Value> = answers
        .iter()
        .map(|(question, answer)| json!({"question": question, "answer": answer}))
        .collect();
    json!({"method": "security_answers", "answers": answers})
}

/// A verification step: send a one-time code over `channel` (`sms`, `email`).
pub fn otp_send(channel: &str) -> Value {
    json!({"method": "otp_send", "channel": channel})
}

/// A verification step: the one-time code sent (level 2).
pub fn by_otp(code: &str) -> Value {
    json!({"method": "otp", "code": code})
}

/// A verification step: the code the customer read from the portal (level 2).
pub fn by_portal_code(code: &str) -> Value {
    json!({"method": "portal_code", "code": code})
}

/// A verification step that must succeed (200): the answer.
pub async fn verify_ok(api: &Api, agent: &Account, interaction: &str, body: Value) -> Answer {
    verify(api, agent, interaction, body).await.expect(200)
}

/// Verifies the caller by national identifier (200): the answer.
pub async fn verify_level1(
    api: &Api,
    agent: &Account,
    interaction: &str,
    national_id: &str,
) -> Answer {
    verify_ok(api, agent, interaction, by_national_id(national_id)).await
}

/// Sends a one-time code over `channel` (200): the answer.
pub async fn send_otp(api: &Api, agent: &Account, interaction: &str, channel: &str) -> Answer {
    verify_ok(api, agent, interaction, otp_send(channel)).await
}

/// Verifies the caller by the one-time code sent (200): the answer.
pub async fn verify_level2_with_otp(
    api: &Api,
    agent: &Account,
    interaction: &str,
    code: &str,
) -> Answer {
    verify_ok(api, agent, interaction, by_otp(code)).await
}

/// Verifies the caller by a portal code (200): the answer.
pub async fn verify_level2_with_portal_code(
    api: &Api,
    agent: &Account,
    interaction: &str,
    code: &str,
) -> Answer {
    verify_ok(api, agent, interaction, by_portal_code(code)).await
}

/// `POST /api/v1/portal/verification-code` in a customer's portal session (200): the code.
pub async fn issue_portal_code(api: &Api, customer_token: &str) -> String {
    api.post(
        "/api/v1/portal/verification-code",
        Some(customer_token),
        json!({}),
    )
    .await
    .expect(200)
    .str("code")
}

/// `POST /api/v1/customers/{customer}/reveal` of `field` in the call `interaction`, for `reason`,
/// as answered.
pub async fn reveal_because(
    api: &Api,
    agent: &Account,
    customer: &str,
    interaction: &str,
    field: &str,
    reason: &str,
) -> Answer {
    let path = format!("/api/v1/customers/{customer}/reveal");
    let body = json!({"field": field, "reason": reason, "interaction_id": interaction});
    post_as(api, agent, &path, body).await
}

/// A reveal of `field` because the caller asked (`caller_request`), as answered.
pub async fn reveal(
    api: &Api,
    agent: &Account,
    customer: &str,
    interaction: &str,
    field: &str,
) -> Answer {
    reveal_because(api, agent, customer, interaction, field, "caller_request").await
}

/// `POST /api/v1/customers/{customer}/operations`: the operation `kind` with `data` in the call
/// `interaction`, as answered.
pub async fn operate(
    api: &Api,
    agent: &Account,
    customer: &str,
    interaction: &str,
    kind: &str,
    data: Value,
) -> Answer {
    let path = format!("/api/v1/customers/{customer}/operations");
    let body = json!({"interaction_id": interaction, "kind": kind, "data": data});
    post_as(api, agent, &path, body).await
}

/// The operation `add_note` (level 1) with `text`, as answered.
pub async fn add_note(
    api: &Api,
    agent: &Account,
    customer: &str,
    interaction: &str,
    text: &str,
) -> Answer {
    operate(
        api,
        agent,
        customer,
        interaction,
        "add_note",
        json!({"text": text}),
    )
    .await
}

/// The operation `change_contact` (level 2) to the phone numbers `phones`, as answered.
pub async fn change_contact(
    api: &Api,
    agent: &Account,
    customer: &str,
    interaction: &str,
    phones: &[&str],
) -> Answer {
    operate(
        api,
        agent,
        customer,
        interaction,
        "change_contact",
        json!({"phones": phones}),
    )
    .await
}
