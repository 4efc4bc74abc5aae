//! Payment requests end to end (SPEC C7), through the real binary: only the agent on a call
//! verified to level 2 asks for money; the link goes by SMS with nothing but the merchant, the
//! amount and the link; the hosted page refuses used, cancelled and expired links; every move is
//! in the audit log without card data.

use crate::calls::{register_demo_customer, send_otp, start_call_for, verify_level1};
use crate::harness::{Account, Api, Backend, Deployment, Server};
use crate::vault::{otp_env, NAME, PESEL, PHONE};
use callguard_testkit::{SmsApiSink, SmtpSink};
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    only_the_agent_of_a_call_verified_to_level_two_starts_a_payment_and_the_link_goes_by_sms,
    a_bad_payment_request_is_refused_field_by_field_and_nothing_is_stored,
    an_unpaid_link_expires_by_the_servers_clock_and_its_page_says_so,
);

/// A server with SMS and e-mail delivery, and `extra` settings.
pub async fn start_for_payments(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (Server, SmsApiSink, SmtpSink) {
    let sms = SmsApiSink::start("AC_test_account", "sms-token-for-tests").await;
    let smtp = SmtpSink::start().await;
    let mut env = otp_env(&sms, &smtp);
    env.push((
        "CALLGUARD_PAYMENTS_MERCHANT_NAME".into(),
        "Acme Hosting".into(),
    ));
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(Deployment::new(backend), &env).await;
    (server, sms, smtp)
}

/// A call with the demo customer (registered by the first call) verified to level 1, then to
/// level 2 by a code sent by SMS: the interaction id.
pub async fn verified_call(api: &Api, agent: &Account, sms: &SmsApiSink, level: u8) -> String {
    let found = api
        .get("/api/v1/customers?phone=%2B48601234567", Some(&agent.token))
        .await
        .expect(200)
        .json();
    let customer = match found["customers"][0]["id"].as_str() {
        Some(id) => id.to_owned(),
        None => register_demo_customer(api, agent).await,
    };
    let call = start_call_for(api, agent, PHONE, &customer).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if level >= 1 {
        verify_level1(api, agent, &call, PESEL).await;
    }
    if level >= 2 {
        let before = sms.messages().len();
        send_otp(api, agent, &call, "sms").await;
        let messages = sms.wait_for(before + 1, Duration::from_secs(10)).await;
        let text = &messages[before].body;
        let code = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 8)
            .unwrap()
            .to_owned();
        crate::calls::verify_level2_with_otp(api, agent, &call, &code).await;
    }
    call
}

pub fn link_payment(call: &str) -> Value {
    json!({"interaction_id": call, "amount_minor": 1250, "currency": "EUR", "method": "link",
           "description": "Invoice 2026/11", "send_to": "sms"})
}

async fn only_the_agent_of_a_call_verified_to_level_two_starts_a_payment_and_the_link_goes_by_sms(
    backend: Backend,
) {
    let (server, sms, _smtp) = start_for_payments(backend, &[]).await;
    let api = server.api();
    let agent = server.new_account("pola-agent", "agent").await;
    let other = server.new_account("olek-agent", "agent").await;
    let supervisor = server.new_account("sven-supervisor", "supervisor").await;
    let call = verified_call(&api, &agent, &sms, 1).await;

    // Level 1 is not enough for money.
    api.post("/api/v1/payments", Some(&agent.token), link_payment(&call))
        .await
        .expect_problem(403, "verification-required");
    // Nobody but an agent asks for money, whatever the call.
    for role in ["supervisor", "compliance", "admin"] {
        let someone = server.new_account(&format!("x-{role}"), role).await;
        api.post(
            "/api/v1/payments",
            Some(&someone.token),
            link_payment(&call),
        )
        .await
        .expect_problem(403, "forbidden");
    }
    // Another agent's call is not found.
    api.post("/api/v1/payments", Some(&other.token), link_payment(&call))
        .await
        .expect_problem(404, "not-found");

    let call = verified_call(&api, &agent, &sms, 2).await;
    let sent_before = sms.messages().len();
    let created = api
        .post("/api/v1/payments", Some(&agent.token), link_payment(&call))
        .await
        .expect(201)
        .json();
    assert_eq!(created["status"], "link_sent", "{created}");
    assert_eq!(created["amount"], "12.50 EUR");
    let link = created["link_url"].as_str().unwrap().to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();
    assert!(
        link.starts_with("https://") && link.contains("/pay/"),
        "{link}"
    );
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    let id = created["id"].as_str().unwrap().to_owned();

    // The message: merchant, amount and link only.
    let messages = sms.wait_for(sent_before + 1, Duration::from_secs(10)).await;
    let text = &messages[sent_before];
    assert_eq!(text.to, PHONE);
    assert!(text.body.contains("Acme Hosting") && text.body.contains("12.50 EUR"));
    assert!(text.body.contains(&link), "{}", text.body);
    for personal in [NAME, "Zdzisława", PESEL, "Invoice 2026/11"] {
        assert!(!text.body.contains(personal), "{}", text.body);
    }

    // The agent and a supervisor see it; another agent does not; the link is never shown again.
    let seen = api
        .get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(seen["status"], "link_sent");
    assert!(seen.get("link_url").is_none());
    api.get(&format!("/api/v1/payments/{id}"), Some(&supervisor.token))
        .await
        .expect(200);
    api.get(&format!("/api/v1/payments/{id}"), Some(&other.token))
        .await
        .expect_problem(404, "not-found");
    let listed = api
        .get(
            &format!("/api/v1/payments?interaction_id={call}"),
            Some(&agent.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(listed["payments"].as_array().unwrap().len(), 1);

    // The payer's page offers the form; after a cancel it refuses, and the cancel is final.
    let page = api.get(&format!("/pay/{token}"), None).await.expect(200);
    assert!(page.text.contains("12.50 EUR") && page.text.contains("Acme Hosting"));
    api.post(
        &format!("/api/v1/payments/{id}/cancel"),
        Some(&other.token),
        json!({}),
    )
    .await
    .expect_problem(404, "not-found");
    api.post(
        &format!("/api/v1/payments/{id}/cancel"),
        Some(&supervisor.token),
        json!({}),
    )
    .await
    .expect_problem(403, "forbidden");
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
    api.post(
        &format!("/api/v1/payments/{id}/cancel"),
        Some(&agent.token),
        json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");
    let refused = api.get(&format!("/pay/{token}"), None).await.expect(410);
    assert!(refused.text.contains("cancelled"), "{}", refused.text);
    // A made-up token is not a link.
    api.get(&format!("/pay/{}", "A".repeat(43)), None)
        .await
        .expect(404);

    // Every move is one audit entry, none with the link token.
    let compliance = server.new_account("cora-compliance", "compliance").await;
    let audit = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .text;
    for action in ["payment.create", "payment.link_sent", "payment.cancel"] {
        assert_eq!(
            audit.matches(&format!("\"{action}\"")).count(),
            1,
            "{action}"
        );
    }
    assert!(!audit.contains(&token));
}

async fn a_bad_payment_request_is_refused_field_by_field_and_nothing_is_stored(backend: Backend) {
    let (server, sms, _smtp) = start_for_payments(backend, &[]).await;
    let api = server.api();
    let agent = server.new_account("bea-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let bad = api
        .post(
            "/api/v1/payments",
            Some(&agent.token),
            json!({"interaction_id": call, "amount_minor": 0, "currency": "eur", "method": "link"}),
        )
        .await
        .expect_problem(422, "invalid-fields")
        .json();
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["currency"], "{bad}");
    let bad = api
        .post(
            "/api/v1/payments",
            Some(&agent.token),
            json!({"interaction_id": call, "amount_minor": -5, "currency": "EUR", "method": "keypad"}),
        )
        .await
        .expect_problem(422, "invalid-fields")
        .json();
    assert_eq!(bad["errors"][0]["field"], "amount_minor");
    api.post(
        "/api/v1/payments",
        Some(&agent.token),
        json!({"interaction_id": call, "amount_minor": 100, "currency": "EUR", "method": "cash"}),
    )
    .await
    .expect(400);
    api.post(
        "/api/v1/payments",
        Some(&agent.token),
        json!({"interaction_id": call, "amount_minor": 100, "currency": "EUR", "method": "link", "pan": "4242424242424242"}),
    )
    .await
    .expect(400);
    let listed = api
        .get("/api/v1/payments", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(listed["payments"], json!([]));
}

async fn an_unpaid_link_expires_by_the_servers_clock_and_its_page_says_so(backend: Backend) {
    let (server, sms, _smtp) =
        start_for_payments(backend, &[("CALLGUARD_PAYMENTS_LINK_TTL_SECONDS", "5")]).await;
    let api = server.api();
    let agent = server.new_account("ela-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let created = api
        .post("/api/v1/payments", Some(&agent.token), link_payment(&call))
        .await
        .expect(201)
        .json();
    let id = created["id"].as_str().unwrap();
    let token = created["link_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // Nobody reads it: the sweep expires it by itself (one audit entry, by the system).
    let compliance = server.new_account("cyryl-compliance", "compliance").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let audit = api
            .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
            .await
            .expect(200)
            .json();
        let expired: Vec<&Value> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "payment.expire")
            .collect();
        if let Some(e) = expired.first() {
            assert_eq!(expired.len(), 1);
            assert_eq!(e["actor"], "system");
            assert_eq!(e["target"], format!("payment:{id}"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the link never expired"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = api
        .get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(seen["status"], "expired");
    let page = api.get(&format!("/pay/{token}"), None).await.expect(410);
    assert!(page.text.contains("expired"), "{}", page.text);
    api.post(
        &format!("/api/v1/payments/{id}/cancel"),
        Some(&agent.token),
        json!({}),
    )
    .await
    .expect_problem(409, "wrong-state");
}
