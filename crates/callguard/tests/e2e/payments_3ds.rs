//! 3-D Secure on pay-by-link, end to end: the local Stripe peer asks for the bank's check on
//! Stripe's 3DS test card (4000 0027 6000 3184); the hosted page sends the card holder to the
//! peer's authentication page (allowed by the page's CSP `form-action`), which sends them back
//! to `/pay/{token}/return`; the server asks the gateway how it went and authorises or
//! declines. The return's own query string decides nothing.

use crate::harness::Backend;
use crate::payments::verified_call;
use crate::payments_gateway::{new_link, pay, start_with_peer};
use callguard_testkit::StripePeer;
use serde_json::Value;

both_backends!(
    a_card_that_needs_3ds_is_sent_to_the_bank_and_authorised_when_the_check_passes,
    a_card_whose_3ds_check_fails_is_declined_as_an_authentication_failure,
);

/// Pays a new link with the 3DS card, answers the bank's check with `result` (`pass` or
/// `fail`) and comes back: (the return page's status, its text, the payment).
async fn pay_with_3ds(backend: Backend, result: &str) -> (u16, String, Value) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("dora-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let (id, token) = new_link(&api, &agent, &call).await;

    // The page's form may lead to the gateway's check, and nowhere else.
    let page = api.get(&format!("/pay/{token}"), None).await.expect(200);
    let csp = page.header("content-security-policy").unwrap().to_owned();
    let origin = peer.base_url().origin().ascii_serialization();
    assert!(
        csp.contains(&format!("form-action 'self' {origin};")),
        "{csp}"
    );

    let sent = pay(&api, &token, "4000 0027 6000 3184", "123").await;
    assert_eq!(sent.status.as_u16(), 303, "{}", sent.text);
    let bank = sent.header("location").unwrap().to_owned();
    assert!(bank.starts_with(&format!("{origin}/3ds/")), "{bank}");
    let waiting = api
        .get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(waiting["status"], "capturing", "{waiting}");
    // While the bank checks, the link cannot be paid again nor the payment cancelled.
    api.get(&format!("/pay/{token}"), None).await.expect(410);
    api.post(
        &format!("/api/v1/payments/{id}/cancel"),
        Some(&agent.token),
        serde_json::json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");

    // The card holder at the bank (the peer's authentication page), then back.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let shown = plain.get(&bank).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    let done = plain
        .post(format!("{bank}?result={result}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 303);
    let back = done
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let path = back
        .split_once("/pay/")
        .map(|(_, rest)| format!("/pay/{rest}"))
        .unwrap();
    assert!(path.starts_with(&format!("/pay/{token}/return?")), "{back}");
    let returned = api.get(&path, None).await;
    let status = returned.status.as_u16();
    // Coming back twice shows the same outcome and changes nothing.
    let again = api.get(&path, None).await;
    assert_eq!(again.status.as_u16(), status, "{}", again.text);
    let seen = api
        .get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(peer.charges(), 1);
    (status, returned.text, seen)
}

async fn a_card_that_needs_3ds_is_sent_to_the_bank_and_authorised_when_the_check_passes(
    backend: Backend,
) {
    let (status, text, seen) = pay_with_3ds(backend, "pass").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ending 3184"), "{text}");
    assert_eq!(seen["status"], "authorised", "{seen}");
    assert_eq!(seen["last4"], "3184");
}

async fn a_card_whose_3ds_check_fails_is_declined_as_an_authentication_failure(backend: Backend) {
    let (status, text, seen) = pay_with_3ds(backend, "fail").await;
    assert_eq!(status, 402, "{text}");
    assert!(text.contains("did not complete the bank"), "{text}");
    assert_eq!(seen["status"], "declined", "{seen}");
    assert_eq!(seen["decline_reason"], "authentication_failed");
}
