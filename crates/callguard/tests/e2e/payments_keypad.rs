//! Keypad card capture end to end (issue 11 item 4): a test client plays the telephony edge,
//! with the `telephony` service account's token issued by the CLI, and streams the caller's key
//! events field by field to the real binary, which checks each field, charges the card at the
//! local Stripe peer (MOTO) and drops it. The agent's desk sees counts and the brand, never a
//! digit. Every denial around the capture API is tried; so are a burst of edges starting the
//! same capture, the server's capture timer, `*` and each field's rejection.

use crate::harness::{Account, Answer, Api, Backend, Server};
use crate::payments::verified_call;
use crate::payments_gateway::start_with_peer;
use callguard_testkit::StripePeer;
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    a_card_typed_on_the_keypad_is_authorised_and_the_desk_sees_only_counts_and_the_brand,
    each_field_is_rejected_with_a_reason_that_never_repeats_a_digit_and_star_restarts_it,
    a_decline_card_typed_on_the_keypad_is_declined_with_its_reason,
    a_capture_nobody_finishes_is_cancelled_by_the_servers_timer_or_the_edges_hang_up,
    of_many_edges_starting_the_same_capture_at_once_exactly_one_wins,
    a_burst_of_wrong_card_numbers_at_once_gets_only_the_allowed_attempts,
    only_the_telephony_token_reaches_the_capture_api_and_it_reaches_nothing_else,
);

/// `callguard telephony token issue|rotate`: the token it prints.
fn telephony_token(server: &Server, verb: &str) -> String {
    let ran = server.cli(&["telephony", "token", verb]);
    assert!(ran.status.success(), "{}", ran.describe());
    let token = ran.stdout.trim().to_owned();
    assert!(
        token.starts_with("cgtel_") && token.len() >= 49,
        "{token:?}"
    );
    token
}

/// A keypad payment of 12.50 EUR in a new call verified to level 2: its id.
async fn keypad_payment(api: &Api, agent: &Account, call: &str) -> String {
    let created = api
        .post(
            "/api/v1/payments",
            Some(&agent.token),
            json!({"interaction_id": call, "amount_minor": 1250, "currency": "EUR",
                   "method": "keypad", "description": "Invoice 2026/12"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(created["status"], "created");
    created["id"].as_str().unwrap().to_owned()
}

async fn keys(api: &Api, edge: &str, id: &str, keys: &str) -> Answer {
    api.post(
        &format!("/api/v1/payments/{id}/keypad/keys"),
        Some(edge),
        json!({ "keys": keys }),
    )
    .await
}

/// Sends `field` one key at a time, as a caller presses them, then `#`: the last answer.
async fn type_field(api: &Api, edge: &str, id: &str, field: &str) -> Value {
    for d in field.chars() {
        keys(api, edge, id, &d.to_string()).await.expect(200);
    }
    keys(api, edge, id, "#").await.expect(200).json()
}

async fn payment(api: &Api, agent: &Account, id: &str) -> Value {
    api.get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json()
}

async fn audit_text(server: &Server, api: &Api) -> String {
    let compliance = server
        .new_account(&format!("audit-{}", crate::harness::suffix()), "compliance")
        .await;
    api.get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .text
}

async fn a_card_typed_on_the_keypad_is_authorised_and_the_desk_sees_only_counts_and_the_brand(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("kai-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    let edge = telephony_token(&server, "issue");

    let started = api
        .post(
            &format!("/api/v1/payments/{id}/keypad"),
            Some(&edge),
            json!({}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(started["state"], "collecting");
    assert_eq!(started["field"], "number");
    assert_eq!(payment(&api, &agent, &id).await["status"], "capturing");

    // Seven digits in: the desk reads "card number: digit 7 of 16" and the brand, no digit.
    for d in "4242424".chars() {
        keys(&api, &edge, &id, &d.to_string()).await.expect(200);
    }
    let seen = payment(&api, &agent, &id).await;
    assert_eq!(seen["keypad"]["field"], "card number", "{seen}");
    assert_eq!(seen["keypad"]["digit"], 7);
    assert_eq!(seen["keypad"]["of"], 16);
    assert_eq!(seen["keypad"]["brand"], "Visa");
    assert!(!seen.to_string().contains("4242424"), "{seen}");
    let answer = keys(&api, &edge, &id, "242424242#").await.expect(200);
    let answer_json = answer.json();
    assert_eq!(answer_json["results"][0]["field"], "number");
    assert_eq!(answer_json["results"][0]["result"], "accepted");
    assert_eq!(answer_json["field"], "expiry");
    // The payment's random id may hold "4242" (one UUID in ~2,000 does): it is left out.
    assert!(
        !answer.text.replace(&id, "").contains("4242"),
        "{}",
        answer.text
    );
    let seen = payment(&api, &agent, &id).await;
    assert_eq!(seen["keypad"]["field"], "expiry");
    assert_eq!(seen["keypad"]["results"][0], "card number accepted");

    let after_expiry = type_field(&api, &edge, &id, "1230").await;
    assert_eq!(after_expiry["results"][0]["result"], "accepted");
    assert_eq!(after_expiry["field"], "cvc");
    let done = type_field(&api, &edge, &id, "123").await;
    assert_eq!(done["state"], "submitted", "{done}");
    assert_eq!(done["payment"]["status"], "authorised", "{done}");
    assert_eq!(done["payment"]["last4"], "4242");
    assert_eq!(peer.charges(), 1);

    let seen = payment(&api, &agent, &id).await;
    assert_eq!(seen["status"], "authorised");
    assert_eq!(seen["brand"], "visa");
    assert!(seen.get("keypad").is_none(), "{seen}");
    // Over: more keys and another start are refused.
    keys(&api, &edge, &id, "1")
        .await
        .expect_problem(409, "wrong-state");
    api.post(
        &format!("/api/v1/payments/{id}/keypad"),
        Some(&edge),
        json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");

    // The audit log tells the capture's story by ids, field names and brand; never a digit run.
    let audit = audit_text(&server, &api).await;
    for action in [
        "payment.keypad.start",
        "payment.keypad.field_accepted",
        "payment.keypad.submit",
        "payment.keypad.end",
        "payment.authorise",
    ] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action}");
    }
    assert_eq!(
        audit.matches("\"payment.keypad.field_accepted\"").count(),
        3
    );
    assert!(!audit.contains("4242424242424242") && !audit.contains("\"1230\""));
    assert!(!server.logs().contains("4242424242424242"));
}

async fn each_field_is_rejected_with_a_reason_that_never_repeats_a_digit_and_star_restarts_it(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(
        backend,
        &peer,
        &[("CALLGUARD_PAYMENTS_KEYPAD_POSTAL_CODE", "true")],
    )
    .await;
    let api = server.api();
    let agent = server.new_account("kim-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    let edge = telephony_token(&server, "issue");
    api.post(
        &format!("/api/v1/payments/{id}/keypad"),
        Some(&edge),
        json!({}),
    )
    .await
    .expect(201);

    // Not keys at all: refused, nothing changes.
    keys(&api, &edge, &id, "12a#")
        .await
        .expect_problem(422, "validation-failed");

    let rejected = |v: &Value, field: &str, words: &str| {
        let r = &v["results"][0];
        assert_eq!(r["field"], field, "{v}");
        assert_eq!(r["result"], "rejected", "{v}");
        assert!(r["reason"].as_str().unwrap().contains(words), "{v}");
    };
    // A typing mistake in the number, then `*` in the middle of the second try.
    let typo = keys(&api, &edge, &id, "4242424242424241#")
        .await
        .expect(200);
    assert!(!typo.text.contains("424242"), "{}", typo.text);
    rejected(&typo.json(), "number", "check digit");
    assert_eq!(typo.json()["results"][0]["attempts_left"], 2);
    let restarted = keys(&api, &edge, &id, "5555*").await.expect(200).json();
    assert_eq!(restarted["results"][0]["result"], "restarted");
    assert_eq!(restarted["digits"], 0);
    assert_eq!(restarted["field"], "number");
    let ok = keys(&api, &edge, &id, "378282246310005#")
        .await
        .expect(200)
        .json();
    assert_eq!(ok["results"][0]["result"], "accepted", "{ok}");
    assert_eq!(ok["brand"], "amex");

    // Expiry: past, then not MMYY; then right.
    rejected(
        &type_field(&api, &edge, &id, "0120").await,
        "expiry",
        "expired",
    );
    rejected(&type_field(&api, &edge, &id, "123").await, "expiry", "MMYY");
    assert_eq!(type_field(&api, &edge, &id, "1230").await["field"], "cvc");
    // American Express takes four digits.
    rejected(
        &type_field(&api, &edge, &id, "123").await,
        "cvc",
        "4 digits",
    );
    assert_eq!(
        type_field(&api, &edge, &id, "1234").await["field"],
        "postal_code"
    );
    rejected(
        &keys(&api, &edge, &id, "#").await.expect(200).json(),
        "postal_code",
        "1 to 10",
    );
    rejected(
        &type_field(&api, &edge, &id, "12345678901").await,
        "postal_code",
        "1 to 10",
    );
    // The third rejection of one field ends the capture: the payment is cancelled, no charge.
    let ended = keys(&api, &edge, &id, "#").await.expect(200).json();
    assert_eq!(ended["state"], "cancelled", "{ended}");
    assert_eq!(ended["ended_because"], "too_many_attempts");
    assert_eq!(ended["payment"]["status"], "cancelled");
    assert_eq!(peer.charges(), 0);
    keys(&api, &edge, &id, "1")
        .await
        .expect_problem(409, "wrong-state");
    let audit = audit_text(&server, &api).await;
    assert!(audit.matches("\"payment.keypad.field_rejected\"").count() >= 7);
    assert!(!audit.contains("4242424242424241") && !audit.contains("378282246310005"));
}

async fn a_decline_card_typed_on_the_keypad_is_declined_with_its_reason(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("kit-agent", "agent").await;
    let edge = telephony_token(&server, "issue");
    for (card, reason) in [
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000002", "generic"),
        ("4000000000009987", "fraud"),
    ] {
        let call = verified_call(&api, &agent, &sms, 2).await;
        let id = keypad_payment(&api, &agent, &call).await;
        api.post(
            &format!("/api/v1/payments/{id}/keypad"),
            Some(&edge),
            json!({}),
        )
        .await
        .expect(201);
        keys(&api, &edge, &id, &format!("{card}#"))
            .await
            .expect(200);
        keys(&api, &edge, &id, "1230#").await.expect(200);
        let done = keys(&api, &edge, &id, "123#").await.expect(200).json();
        assert_eq!(done["state"], "submitted", "{done}");
        assert_eq!(done["payment"]["status"], "declined", "{done}");
        assert_eq!(done["payment"]["decline_reason"], reason, "{done}");
        assert!(done["payment"]["message"].as_str().is_some(), "{done}");
    }
}

async fn a_capture_nobody_finishes_is_cancelled_by_the_servers_timer_or_the_edges_hang_up(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(
        backend,
        &peer,
        &[("CALLGUARD_PAYMENTS_KEYPAD_TIMEOUT_SECONDS", "5")],
    )
    .await;
    let api = server.api();
    let agent = server.new_account("ken-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    let edge = telephony_token(&server, "issue");
    api.post(
        &format!("/api/v1/payments/{id}/keypad"),
        Some(&edge),
        json!({}),
    )
    .await
    .expect(201);
    keys(&api, &edge, &id, "4242").await.expect(200);
    // Nobody sends another key: the server's own timer cancels the capture.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = payment(&api, &agent, &id).await;
        if seen["status"] == "cancelled" {
            assert_eq!(seen["decline_reason"], "keypad_timeout", "{seen}");
            assert!(seen.get("keypad").is_none());
            break;
        }
        assert_eq!(seen["status"], "capturing", "{seen}");
        assert!(std::time::Instant::now() < deadline, "never timed out");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    keys(&api, &edge, &id, "4242#")
        .await
        .expect_problem(409, "wrong-state");
    // The edge ends a capture when the caller hangs up: cancelled at once, keys refused after.
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    api.post(
        &format!("/api/v1/payments/{id}/keypad"),
        Some(&edge),
        json!({}),
    )
    .await
    .expect(201);
    keys(&api, &edge, &id, "42").await.expect(200);
    let hung_up = api
        .post(
            &format!("/api/v1/payments/{id}/keypad/cancel"),
            Some(&edge),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(hung_up["state"], "cancelled", "{hung_up}");
    assert_eq!(hung_up["ended_because"], "cancelled");
    assert_eq!(hung_up["payment"]["status"], "cancelled");
    keys(&api, &edge, &id, "4")
        .await
        .expect_problem(409, "wrong-state");
    assert_eq!(peer.charges(), 0);
    let audit = audit_text(&server, &api).await;
    assert!(audit.contains("\"payment.keypad.end\"") && audit.contains("\"timeout\""));
}

/// The attempt limit holds under a burst: 12 wrong card numbers sent at once get exactly the
/// allowed three rejections (attempts left 2, 1, 0), and no other request is answered as a
/// fresh attempt.
async fn a_burst_of_wrong_card_numbers_at_once_gets_only_the_allowed_attempts(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("kai-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    let edge = telephony_token(&server, "issue");
    api.post(
        &format!("/api/v1/payments/{id}/keypad"),
        Some(&edge),
        json!({}),
    )
    .await
    .expect(201);
    let mut sends = Vec::new();
    for _ in 0..12 {
        let (api, edge, id) = (server.api(), edge.clone(), id.clone());
        sends.push(tokio::spawn(async move {
            let a = keys(&api, &edge, &id, "4242424242424241#").await;
            (a.status.as_u16(), a.text.clone())
        }));
    }
    let mut attempts_left = Vec::new();
    for s in sends {
        let (status, text) = s.await.unwrap();
        assert!(!text.contains("424242"), "{text}");
        if status == 200 {
            let v: Value = serde_json::from_str(&text).unwrap();
            for r in v["results"].as_array().unwrap() {
                if r["result"] == "rejected" {
                    attempts_left.push(r["attempts_left"].as_u64().unwrap());
                }
            }
        }
    }
    attempts_left.sort_unstable();
    assert_eq!(attempts_left, vec![0, 1, 2], "three rejections and no more");
}

async fn of_many_edges_starting_the_same_capture_at_once_exactly_one_wins(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("kora-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    let edge = telephony_token(&server, "issue");
    let mut edges = Vec::new();
    for n in 0..24u8 {
        let api = server.api_from(crate::harness::loopback(n % 8 + 2));
        let (edge, path) = (edge.clone(), format!("/api/v1/payments/{id}/keypad"));
        edges.push(tokio::spawn(async move {
            api.post(&path, Some(&edge), json!({}))
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for e in edges {
        statuses.push(e.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let audit = audit_text(&server, &api).await;
    assert_eq!(audit.matches("\"payment.keypad.start\"").count(), 1);
    assert_eq!(audit.matches("\"payment.capture\"").count(), 1);
}

async fn only_the_telephony_token_reaches_the_capture_api_and_it_reaches_nothing_else(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("kuba-agent", "agent").await;
    let supervisor = server.new_account("kris-supervisor", "supervisor").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let id = keypad_payment(&api, &agent, &call).await;
    let start = format!("/api/v1/payments/{id}/keypad");

    // Nobody, a made-up token, and people's sessions are refused on the capture API.
    api.post(&start, None, json!({}))
        .await
        .expect_problem(401, "unauthenticated");
    api.post(
        &start,
        Some(&format!("cgtel_{}", "A".repeat(43))),
        json!({}),
    )
    .await
    .expect_problem(401, "unauthenticated");
    for who in [&agent, &supervisor] {
        api.post(&start, Some(&who.token), json!({}))
            .await
            .expect_problem(403, "forbidden");
        keys(&api, &who.token, &id, "4#")
            .await
            .expect_problem(403, "forbidden");
    }
    // No token issued yet: rotating and revoking say so.
    let ran = server.cli(&["telephony", "token", "rotate"]);
    assert!(
        !ran.status.success() && ran.stderr.contains("issue one"),
        "{}",
        ran.describe()
    );

    let edge = telephony_token(&server, "issue");
    let ran = server.cli(&["telephony", "token", "issue"]);
    assert!(
        !ran.status.success() && ran.stderr.contains("rotate"),
        "{}",
        ran.describe()
    );
    // The token reaches nothing but the capture API: no payment, customer, account or page.
    for path in [
        "/api/v1/payments".to_owned(),
        format!("/api/v1/payments/{id}"),
        "/api/v1/customers?phone=%2B48601234567".to_owned(),
        "/api/v1/me".to_owned(),
        "/api/v1/audit?start=0&limit=10".to_owned(),
    ] {
        api.get(&path, Some(&edge))
            .await
            .expect_problem(403, "forbidden");
    }
    api.post(
        "/api/v1/payments",
        Some(&edge),
        json!({"interaction_id": call, "amount_minor": 100, "currency": "EUR", "method": "keypad"}),
    )
    .await
    .expect_problem(403, "forbidden");
    // Sent as a session cookie it is no session at all.
    let as_cookie = api
        .send_raw(
            "GET /payments with the token as cookie".into(),
            api.client
                .get(api.url("/api/v1/payments"))
                .header("cookie", format!("__Host-callguard_session={edge}")),
        )
        .await;
    assert_eq!(as_cookie.status.as_u16(), 401, "{}", as_cookie.text);
    // A link payment is not captured by keypad.
    let link = api
        .post(
            "/api/v1/payments",
            Some(&agent.token),
            json!({"interaction_id": call, "amount_minor": 100, "currency": "EUR", "method": "link"}),
        )
        .await
        .expect(201)
        .json();
    api.post(
        &format!("/api/v1/payments/{}/keypad", link["id"].as_str().unwrap()),
        Some(&edge),
        json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");
    api.post(
        "/api/v1/payments/00000000-0000-0000-0000-000000000000/keypad",
        Some(&edge),
        json!({}),
    )
    .await
    .expect_problem(404, "not-found");

    // Rotated: the old token is refused at once, the new one works; revoked: refused.
    let rotated = telephony_token(&server, "rotate");
    api.post(&start, Some(&edge), json!({}))
        .await
        .expect_problem(401, "unauthenticated");
    api.post(&start, Some(&rotated), json!({}))
        .await
        .expect(201);
    let ran = server.cli(&["telephony", "token", "revoke"]);
    assert!(ran.status.success(), "{}", ran.describe());
    keys(&api, &rotated, &id, "4#")
        .await
        .expect_problem(401, "unauthenticated");
    // The agent stops the capture the edge can no longer drive.
    let cancelled = api
        .post(
            &format!("/api/v1/payments/{id}/cancel"),
            Some(&agent.token),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    let audit = audit_text(&server, &api).await;
    for action in [
        "telephony.token.issue",
        "telephony.token.rotate",
        "telephony.token.revoke",
    ] {
        assert_eq!(
            audit.matches(&format!("\"{action}\"")).count(),
            1,
            "{action}"
        );
    }
    assert!(!audit.contains(&edge) && !audit.contains(&rotated));
}
