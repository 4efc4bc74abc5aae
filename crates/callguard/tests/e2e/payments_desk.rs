//! The agent's call screen: a payment asked for from the page, and its status arriving live on
//! the payment stream (server-sent events) as the caller pays, with only brand and last four.

use crate::harness::Backend;
use crate::payments::verified_call;
use crate::payments_gateway::{pay, start_with_peer};
use callguard_testkit::StripePeer;
use std::time::Duration;

both_backends!(the_call_screen_asks_for_a_payment_and_sees_it_authorised_live);

async fn the_call_screen_asks_for_a_payment_and_sees_it_authorised_live(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(backend, &peer, &[]).await;
    let api = server.api();
    let agent = server.new_account("lea-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;

    // The call screen shows the panel; the agent asks for 19.99 EUR by SMS from it.
    let page = api
        .get(&format!("/desk/interactions/{call}"), Some(&agent.token))
        .await
        .expect(200);
    assert!(
        page.text.contains("data-testid=\"payment-form\""),
        "{}",
        page.text
    );
    let csrf = "d".repeat(43);
    let before = sms.messages().len();
    let asked = api
        .send_raw(
            "POST /desk/interactions/{id}/payments".into(),
            api.client
                .post(api.url(&format!("/desk/interactions/{call}/payments")))
                .bearer_auth(&agent.token)
                .header("cookie", format!("__Host-callguard_csrf={csrf}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("amount", "19.99"),
                    ("currency", "EUR"),
                    ("description", "Router"),
                    ("how", "sms"),
                ]),
        )
        .await
        .expect(303);
    assert_eq!(
        asked.header("location"),
        Some(format!("/desk/interactions/{call}#payments").as_str())
    );
    let messages = sms.wait_for(before + 1, Duration::from_secs(10)).await;
    let link = messages[before]
        .body
        .split_whitespace()
        .find(|w| w.contains("/pay/"))
        .unwrap()
        .to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();

    // The stream: the payment now, then its changes.
    let mut stream = api
        .client
        .get(api.url(&format!("/api/v1/payments/stream?interaction_id={call}")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("\"link_sent\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("in time");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("open")));
    }
    assert!(
        seen.contains("event: payment") && seen.contains("19.99 EUR"),
        "{seen}"
    );

    pay(&api, &token, "5555555555554444", "123")
        .await
        .expect(200);
    while !seen.contains("\"authorised\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("in time");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("open")));
    }
    assert!(
        seen.contains("\"last4\":\"4444\"") && seen.contains("\"brand\":\"mastercard\""),
        "{seen}"
    );
    assert!(!seen.contains("5555555555554444"));

    // The payments page: the agent's own and a supervisor's view list it with brand and last
    // four only; compliance and admins have no payments page.
    let supervisor = server.new_account("sue-supervisor", "supervisor").await;
    for who in [&agent, &supervisor] {
        let list = api.get("/payments", Some(&who.token)).await.expect(200);
        assert!(list.text.contains("mastercard •••• 4444"), "{}", list.text);
        assert!(list.text.contains("19.99 EUR") && !list.text.contains("5555555555554444"));
    }
    let compliance = server.new_account("cas-compliance", "compliance").await;
    api.get("/payments", Some(&compliance.token))
        .await
        .expect(403);

    // Another agent cannot watch this call's payments.
    let other = server.new_account("oli-agent", "agent").await;
    api.get(
        &format!("/api/v1/payments/stream?interaction_id={call}"),
        Some(&other.token),
    )
    .await
    .expect_problem(404, "not-found");
}
