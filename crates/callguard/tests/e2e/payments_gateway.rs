//! Payments charged end to end: the real binary charges through its Stripe client against the
//! local Stripe peer (a real HTTP server speaking Stripe's wire format, with its idempotency
//! store and test-card table). Link payments are authorised, each decline card is declined with
//! its reason, used links are refused, a gateway that answers too late is asked again with the
//! same key and charges once, a burst of submits of one link charges once, and supervisors
//! refund in part and in full.

use crate::harness::{Account, Answer, Api, Backend, Server};
use crate::payments::{link_payment, start_for_payments, verified_call};
use callguard_testkit::{SmsApiSink, StripePeer};
use serde_json::{json, Value};

both_backends!(
    a_link_payment_is_authorised_once_refunded_by_a_supervisor_and_its_link_refused_after,
    each_decline_card_is_declined_with_its_reason_and_uses_its_link_up,
    a_gateway_that_answers_too_late_is_asked_again_with_the_same_key_and_charges_once,
    a_burst_of_submits_of_one_link_charges_exactly_once,
    a_burst_of_refunds_never_returns_more_than_was_paid,
);

/// A server charging through `peer`, with `extra` settings; SMS and e-mail delivery too.
pub async fn start_with_peer(
    backend: Backend,
    peer: &StripePeer,
    extra: &[(&str, &str)],
) -> (Server, SmsApiSink) {
    let url = peer.base_url().to_string();
    let mut env: Vec<(&str, &str)> = vec![
        ("CALLGUARD_PAYMENTS_GATEWAY", "stripe"),
        ("CALLGUARD_PAYMENTS_STRIPE_URL", url.as_str()),
        ("CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY", peer.secret_key()),
    ];
    env.extend_from_slice(extra);
    let (server, sms, _smtp) = start_for_payments(backend, &env).await;
    (server, sms)
}

/// A new link payment in `call`: (payment id, link token).
pub async fn new_link(api: &Api, agent: &Account, call: &str) -> (String, String) {
    let created = api
        .post("/api/v1/payments", Some(&agent.token), link_payment(call))
        .await
        .expect(201)
        .json();
    let token = created["link_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    (created["id"].as_str().unwrap().to_owned(), token)
}

/// Submits `number` with a valid expiry and `cvc` on the hosted page, as the payer's browser
/// does (with the anti-forgery cookie the page sets): the answer.
pub async fn pay(api: &Api, token: &str, number: &str, cvc: &str) -> Answer {
    let csrf = "p".repeat(43);
    let form = [
        ("csrf", csrf.as_str()),
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "2030"),
        ("cvc", cvc),
    ];
    api.send_raw(
        format!("POST /pay/… {}", &number[number.len() - 4..]),
        api.client
            .post(api.url(&format!("/pay/{token}")))
            .header("cookie", format!("__Host-callguard_csrf={csrf}"))
            .form(&form),
    )
    .await
}

async fn payment(api: &Api, agent: &Account, id: &str) -> Value {
    api.get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json()
}

async fn a_link_payment_is_authorised_once_refunded_by_a_supervisor_and_its_link_refused_after(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("pia-agent", "agent").await;
    let supervisor = server.new_account("stan-supervisor", "supervisor").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let (id, token) = new_link(&api, &agent, &call).await;

    let page = api.get(&format!("/pay/{token}"), None).await.expect(200);
    let csp = page.header("content-security-policy").unwrap().to_owned();
    for directive in [
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "connect-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(page.text.contains("integrity=\"sha384-"), "{}", page.text);

    // A typing mistake: refused on the page, the number never echoed, nothing charged.
    let typo = pay(&api, &token, "4242424242424241", "123")
        .await
        .expect(422);
    assert!(typo.text.contains("check digit"), "{}", typo.text);
    assert!(!typo.text.contains("4242424242424241"));
    assert_eq!(peer.charges(), 0);

    let paid = pay(&api, &token, "4242 4242 4242 4242", "123")
        .await
        .expect(200);
    assert!(
        paid.text.contains("12.50 EUR") && paid.text.contains("ending 4242"),
        "{}",
        paid.text
    );
    let seen = payment(&api, &agent, &id).await;
    assert_eq!(seen["status"], "authorised", "{seen}");
    assert_eq!(seen["brand"], "visa");
    assert_eq!(seen["last4"], "4242");
    let reference = seen["gateway_reference"].as_str().unwrap().to_owned();
    assert_eq!(peer.charges(), 1);

    // The link is spent: the page and a second submit say so; nothing more is charged.
    let again = api.get(&format!("/pay/{token}"), None).await.expect(410);
    assert!(again.text.contains("made already"), "{}", again.text);
    pay(&api, &token, "4242424242424242", "123")
        .await
        .expect(410);
    assert_eq!(peer.charges(), 1);

    // Refunds: supervisors only, never more than was paid.
    let refunds = format!("/api/v1/payments/{id}/refunds");
    api.post(&refunds, Some(&agent.token), json!({"amount_minor": 500}))
        .await
        .expect_problem(403, "forbidden");
    api.post(
        &refunds,
        Some(&supervisor.token),
        json!({"amount_minor": 5000}),
    )
    .await
    .expect_problem(422, "validation-failed");
    let part = api
        .post(
            &refunds,
            Some(&supervisor.token),
            json!({"amount_minor": 500}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(part["status"], "refunded", "{part}");
    assert_eq!(peer.refunded(&reference), Some(500));
    api.post(&refunds, Some(&supervisor.token), json!({}))
        .await
        .expect(201);
    assert_eq!(peer.refunded(&reference), Some(1250));
    api.post(&refunds, Some(&supervisor.token), json!({}))
        .await
        .expect_problem(409, "wrong-state");
    assert_eq!(payment(&api, &agent, &id).await["refunded_minor"], 1250);
}

async fn each_decline_card_is_declined_with_its_reason_and_uses_its_link_up(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("dora-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    for (card, reason) in [
        ("4000000000000002", "generic"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000009987", "fraud"),
        ("4100000000000019", "fraud"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
    ] {
        let (id, token) = new_link(&api, &agent, &call).await;
        let answer = pay(&api, &token, card, "123").await.expect(402);
        assert!(
            answer.text.contains("did not go through"),
            "{}",
            answer.text
        );
        let seen = payment(&api, &agent, &id).await;
        assert_eq!(seen["status"], "declined", "{card}: {seen}");
        assert_eq!(seen["decline_reason"], reason, "{card}: {seen}");
        assert!(seen["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(seen["last4"], &card[12..]);
        // One card per link: the next try needs a new link.
        pay(&api, &token, "4242424242424242", "123")
            .await
            .expect(410);
    }
}

async fn a_gateway_that_answers_too_late_is_asked_again_with_the_same_key_and_charges_once(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(
        backend,
        &peer,
        &[("CALLGUARD_PAYMENTS_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let api = server.api();
    let agent = server.new_account("tea-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let (id, token) = new_link(&api, &agent, &call).await;
    // The charge is made at once but answered after the client gave up on it.
    peer.delay_next_on("/v1/payment_intents", 1, std::time::Duration::from_secs(3));
    let before = peer.requests();
    pay(&api, &token, "4242424242424242", "123")
        .await
        .expect(200);
    assert_eq!(payment(&api, &agent, &id).await["status"], "authorised");
    assert_eq!(peer.charges(), 1, "charged once");
    assert!(
        peer.requests() - before >= 3,
        "the payment method, the charge, and the charge again under its key"
    );
    // The attempt is in the audit log once, then its outcome once.
    let compliance = server.new_account("caro-compliance", "compliance").await;
    let audit = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .text;
    assert_eq!(audit.matches("\"payment.capture\"").count(), 1);
    assert_eq!(audit.matches("\"payment.authorise\"").count(), 1);
}

async fn a_burst_of_submits_of_one_link_charges_exactly_once(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("bo-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let (id, token) = new_link(&api, &agent, &call).await;
    let submits = (0..12).map(|_| {
        let (api, token) = (api.clone(), token.clone());
        tokio::spawn(async move { pay(&api, &token, "4242424242424242", "123").await.status })
    });
    let mut statuses = Vec::new();
    for s in submits {
        statuses.push(s.await.unwrap().as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 410),
        "{statuses:?}"
    );
    assert_eq!(peer.charges(), 1);
    assert_eq!(payment(&api, &agent, &id).await["status"], "authorised");
}

async fn a_burst_of_refunds_never_returns_more_than_was_paid(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("rua-agent", "agent").await;
    let supervisor = server.new_account("rex-supervisor", "supervisor").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let (id, token) = new_link(&api, &agent, &call).await;
    pay(&api, &token, "4242424242424242", "123")
        .await
        .expect(200);
    let reference = payment(&api, &agent, &id).await["gateway_reference"]
        .as_str()
        .unwrap()
        .to_owned();
    // Eight refunds of 500 at once against 1250 paid: at most two can fit.
    let path = format!("/api/v1/payments/{id}/refunds");
    let burst = (0..8).map(|_| {
        let (api, path, token) = (api.clone(), path.clone(), supervisor.token.clone());
        tokio::spawn(async move {
            api.post(&path, Some(&token), json!({"amount_minor": 500}))
                .await
                .status
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for b in burst {
        statuses.push(b.await.unwrap());
    }
    let made = statuses.iter().filter(|s| **s == 201).count();
    assert!((1..=2).contains(&made), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 201 | 409 | 422)),
        "{statuses:?}"
    );
    let refunded = payment(&api, &agent, &id).await["refunded_minor"]
        .as_i64()
        .unwrap();
    assert_eq!(refunded, 500 * made as i64);
    assert_eq!(peer.refunded(&reference), Some(refunded));
}
