//! The customer vault and two-step caller verification (SPEC C3, C4) end to end: a customer is
//! registered (every invalid field reported at once, nothing stored then), found by phone only
//! masked, and served in a call from level 0 to level 2 with every refusal on the way; one-time
//! codes travel through local servers that speak SMTP and the SMS provider's HTTP API; no
//! personal value ever reaches a file, a database row or the audit log.

use crate::calls::{
    add_note, by_national_id, by_otp, by_security_answers, change_contact, otp_send,
    register_demo_customer, reveal, reveal_because, send_otp, start_call, start_call_for,
    start_call_id, verify, verify_level1, verify_level2_with_otp,
};
use crate::harness::{alert_when, Account, Api, Backend, Deployment, Server};
use crate::storage::{contains, files_under};
use callguard_testkit::{SmsApiSink, SmtpSink};
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    a_call_goes_from_identification_to_a_level_two_change_with_every_refusal_on_the_way,
    verification_locks_after_five_failures_and_raises_an_alert,
    invalid_customers_are_refused_field_by_field_and_nothing_is_stored,
);

pub const PESEL: &str = "44051401359";
pub const NAME: &str = "Zdzisława Wiśniewska-Kowalczyk";
pub const PHONE: &str = "+48601234567";
pub const NEW_PHONE: &str = "+48602999888";
pub const EMAIL: &str = "zdzislawa.wisniewska@example.com";
pub const STREET: &str = "ul. Marszałkowska 140 m. 17";
pub const SERVICE: &str = "hosting-kowalczyk-pl";
pub const ANSWER_1: &str = "Bolesławiec nad Bobrem";
pub const ANSWER_2: &str = "Burek Pierwszy";

pub fn customer_body() -> Value {
    json!({
        "full_name": NAME,
        "phones": [PHONE],
        "emails": [EMAIL],
        "national_id": {"kind": "pesel", "value": PESEL},
        "date_of_birth": "1944-05-14",
        "address": {"line1": STREET, "postal_code": "00-950", "city": "Warszawa", "country": "PL"},
        "services": [SERVICE],
        "security_questions": [
            {"question": "Town of birth?", "answer": ANSWER_1},
            {"question": "First pet?", "answer": ANSWER_2}
        ]
    })
}

/// Every personal value the story uses, as it may appear on disk.
fn plaintexts() -> Vec<&'static str> {
    vec![
        PESEL,
        NAME,
        "Wiśniewska",
        PHONE,
        "601234567",
        NEW_PHONE,
        "602999888",
        EMAIL,
        STREET,
        "Marszałkowska",
        SERVICE,
        ANSWER_1,
        "bolesławiec nad bobrem",
        ANSWER_2,
        "burek pierwszy",
        "1944-05-14",
        NOTE,
    ]
}

const NOTE: &str = "Caller asked about the October outage refund";

pub fn otp_env(sms: &SmsApiSink, smtp: &SmtpSink) -> Vec<(String, String)> {
    vec![
        ("CALLGUARD_OTP_SMS_URL".into(), sms.base_url().to_string()),
        (
            "CALLGUARD_OTP_SMS_ACCOUNT_SID".into(),
            "AC_test_account".into(),
        ),
        (
            "CALLGUARD_OTP_SMS_AUTH_TOKEN".into(),
            "sms-token-for-tests".into(),
        ),
        ("CALLGUARD_OTP_SMS_FROM".into(), "+48500000000".into()),
        ("CALLGUARD_OTP_SMTP_HOST".into(), "127.0.0.1".into()),
        (
            "CALLGUARD_OTP_SMTP_PORT".into(),
            smtp.addr().port().to_string(),
        ),
        ("CALLGUARD_OTP_SMTP_TLS".into(), "none".into()),
        (
            "CALLGUARD_OTP_SMTP_FROM".into(),
            "codes@bank.example".into(),
        ),
    ]
}

pub async fn start_with_codes(backend: Backend) -> (Server, SmsApiSink, SmtpSink) {
    let sms = SmsApiSink::start("AC_test_account", "sms-token-for-tests").await;
    let smtp = SmtpSink::start().await;
    let env = otp_env(&sms, &smtp);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(Deployment::new(backend), &env).await;
    (server, sms, smtp)
}

/// The 8-digit code in a message text.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 8)
        .unwrap_or_else(|| panic!("no 8-digit code in {text:?}"))
        .to_owned()
}

pub async fn create_customer(api: &Api, agent: &Account, body: Value) -> String {
    let id = api
        .post("/api/v1/customers", Some(&agent.token), body)
        .await
        .expect(201)
        .str("id");
    assert!(
        id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    id
}

/// Every audit entry up to now, read by a compliance officer (reading is itself logged, so
/// the pages stop at the size the first page reported).
pub async fn audit_entries(api: &Api, compliance: &Account) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut size = None;
    loop {
        let page = api
            .get(
                &format!("/api/v1/audit?start={}&limit=1000", out.len()),
                Some(&compliance.token),
            )
            .await
            .expect(200)
            .json();
        let size = *size.get_or_insert(page["tree_size"].as_u64().unwrap() as usize);
        let entries = page["entries"].as_array().unwrap().clone();
        out.extend(entries);
        if out.len() >= size {
            out.truncate(size);
            return out;
        }
    }
}

fn assert_masked(view: &Value) {
    let text = view.to_string();
    for p in plaintexts() {
        assert!(!text.contains(p), "a masked view shows {p:?}: {text}");
    }
    assert_eq!(view["phones"][0], "+48 *** *** 567", "{view}");
}

async fn a_call_goes_from_identification_to_a_level_two_change_with_every_refusal_on_the_way(
    backend: Backend,
) {
    let (server, sms, smtp) = start_with_codes(backend).await;
    let api = server.api();
    let agent = server.new_account("anna-agent", "agent").await;
    let other_agent = server.new_account("olek-agent", "agent").await;
    let supervisor = server.new_account("stefan-supervisor", "supervisor").await;
    let compliance = server.new_account("celina-compliance", "compliance").await;
    let admin = server.admin_session().await;

    let id = register_demo_customer(&api, &agent).await;

    // Search by phone answers masked, for staff who may read customers; admins may not.
    let found = api
        .get("/api/v1/customers?phone=%2B48601234567", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(found["customers"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["customers"][0]["id"], id.as_str());
    assert_masked(&found["customers"][0]);
    api.get(&format!("/api/v1/customers/{id}"), Some(&admin.token))
        .await
        .expect_problem(403, "forbidden");
    api.get("/api/v1/customers?phone=%2B48601234567", Some(&admin.token))
        .await
        .expect_problem(403, "forbidden");
    let seen_by_compliance = api
        .get(&format!("/api/v1/customers/{id}"), Some(&compliance.token))
        .await
        .expect(200)
        .json();
    assert_masked(&seen_by_compliance);

    // The call comes in: the number pops the customer up, masked, at level 0.
    let call = start_call(&api, &agent, PHONE).await;
    let call_id = call["id"].as_str().unwrap().to_owned();
    assert_eq!(call["verification_level"], 0);
    assert_eq!(call["customer_id"], id.as_str());
    assert_masked(&call["customer"]);

    // Level 0: no reveal, no level-2 method, no operation.
    reveal(&api, &agent, &id, &call_id, "phones")
        .await
        .expect_problem(403, "verification-required");
    verify(&api, &agent, &call_id, otp_send("sms"))
        .await
        .expect_problem(409, "wrong-state");
    add_note(&api, &agent, &id, &call_id, NOTE)
        .await
        .expect_problem(403, "verification-required");
    // Compliance and supervisors never reveal; another agent cannot use this call.
    reveal(&api, &compliance, &id, &call_id, "phones")
        .await
        .expect_problem(403, "forbidden");
    reveal(&api, &supervisor, &id, &call_id, "phones")
        .await
        .expect_problem(403, "forbidden");
    verify(&api, &other_agent, &call_id, by_national_id(PESEL))
        .await
        .expect_problem(404, "not-found");

    // Level 1: a wrong PESEL counts; the right one identifies.
    let wrong = verify(&api, &agent, &call_id, by_national_id("02070803628"))
        .await
        .expect_problem(422, "verification-failed");
    assert!(wrong.text.contains("4 attempts left"), "{}", wrong.text);
    let level = verify_level1(&api, &agent, &call_id, PESEL).await.json();
    assert_eq!(level["level"], 1);
    assert_eq!(level["attempts_left"], 4);

    // Reveal one field, for a reason; the value comes back, the log holds only its name.
    let revealed = reveal(&api, &agent, &id, &call_id, "phones")
        .await
        .expect(200)
        .json();
    assert_eq!(revealed["value"], json!([PHONE]));
    reveal_because(&api, &agent, &id, &call_id, "phones", "because I want to")
        .await
        .expect_problem(400, "bad-request");
    reveal(&api, &agent, &id, &call_id, "security_questions")
        .await
        .expect_problem(400, "bad-request");

    // Level 1 allows a note, not a change of contact details.
    add_note(&api, &agent, &id, &call_id, NOTE)
        .await
        .expect(200);
    change_contact(&api, &agent, &id, &call_id, &[NEW_PHONE])
        .await
        .expect_problem(403, "verification-required");

    // Level 2 by a code sent to the registered phone: a wrong code counts, the right one works
    // once.
    let sent = send_otp(&api, &agent, &call_id, "sms").await.json();
    assert_eq!(sent["sent_to"], "+48 *** *** 567");
    let messages = sms.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages[0].to, PHONE);
    let code = code_in(&messages[0].body);
    verify(&api, &agent, &call_id, by_otp("00000000"))
        .await
        .expect_problem(422, "verification-failed");
    let level = verify_level2_with_otp(&api, &agent, &call_id, &code)
        .await
        .json();
    assert_eq!(level["level"], 2);
    verify(&api, &agent, &call_id, by_otp(&code))
        .await
        .expect_problem(409, "wrong-state");

    // Level 2: the change goes through, and search follows the new number at once.
    let changed = change_contact(&api, &agent, &id, &call_id, &[NEW_PHONE])
        .await
        .expect(200)
        .json();
    assert_eq!(changed["customer"]["phones"][0], "+48 *** *** 888");
    let by_new = api
        .get("/api/v1/customers?phone=%2B48602999888", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(by_new["customers"][0]["id"], id.as_str());
    let by_old = api
        .get("/api/v1/customers?phone=%2B48601234567", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(by_old["customers"], json!([]));

    // An e-mail code reaches the registered address over SMTP.
    send_otp(&api, &agent, &call_id, "email").await;
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, vec![EMAIL.to_owned()]);

    // The call ends: reveals stop at once, and trying raises an alert.
    api.post(
        &format!("/api/v1/interactions/{call_id}/end"),
        Some(&agent.token),
        json!({}),
    )
    .await
    .expect(200);
    reveal(&api, &agent, &id, &call_id, "emails")
        .await
        .expect_problem(409, "wrong-state");
    add_note(&api, &agent, &id, &call_id, "late")
        .await
        .expect_problem(409, "wrong-state");
    // A reveal after the call ended raises an alert.
    alert_when(&api, &supervisor.token, |a| {
        a["rule"] == "access_outside_interaction"
    })
    .await;

    // The log tells the story with ids and field names only.
    let entries = audit_entries(&api, &compliance).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "customer.create",
        "customer.search",
        "interaction.start",
        "interaction.verify",
        "customer.reveal",
        "interaction.otp_send",
        "customer.operation",
        "interaction.end",
    ] {
        assert!(actions.contains(&a), "no {a} in {actions:?}");
    }
    let reveal_entry = entries
        .iter()
        .find(|e| e["action"] == "customer.reveal" && e["outcome"] == "success")
        .unwrap();
    assert_eq!(reveal_entry["details"]["field"], "phones");
    assert_eq!(reveal_entry["details"]["reason"], "caller_request");
    assert_eq!(reveal_entry["interaction"], call_id.as_str());
    let change = entries
        .iter()
        .find(|e| {
            e["action"] == "customer.operation"
                && e["details"]["kind"] == "change_contact"
                && e["outcome"] == "success"
        })
        .unwrap();
    assert_eq!(change["details"]["level"], 2);
    assert_eq!(change["details"]["steps"], json!(["national_id", "otp"]));
    assert_eq!(change["details"]["code_ids"].as_array().unwrap().len(), 1);
    assert_eq!(change["actor"], format!("user:{}", agent.id));
    let log_text = serde_json::to_string(&entries).unwrap();
    for p in plaintexts().into_iter().chain([code.as_str()]) {
        assert!(!log_text.contains(p), "the audit log holds {p:?}");
    }

    // Nothing personal anywhere on disk or in any row.
    scan_for_plaintext(&server, &plaintexts()).await;
}

/// Asserts that no file under the deployment and no database row holds any of `values`.
pub async fn scan_for_plaintext(server: &Server, values: &[&str]) {
    for file in files_under(server.root()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for v in values {
            assert!(
                !contains(&bytes, v.as_bytes()),
                "{v:?} is in {}",
                file.display()
            );
        }
    }
    if let Some(pg) = &server.pg {
        let db = pg.connect().await;
        let tables: Vec<String> = db
            .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(tables.contains(&"customers".to_owned()), "{tables:?}");
        for table in tables {
            for r in db
                .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                .await
                .unwrap()
            {
                let text: String = r.get(0);
                for v in values {
                    assert!(!text.contains(v), "{v:?} is in table {table}");
                }
            }
        }
    }
}

async fn verification_locks_after_five_failures_and_raises_an_alert(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("vera-agent", "agent").await;
    let supervisor = server.new_account("sam-supervisor", "supervisor").await;
    let id = register_demo_customer(&api, &agent).await;
    let call = start_call(&api, &agent, PHONE).await;
    let call_id = call["id"].as_str().unwrap();
    for left in (0..5).rev() {
        let a = verify(
            &api,
            &agent,
            call_id,
            by_security_answers(&[("Town of birth?", "Kraków"), ("First pet?", ANSWER_2)]),
        )
        .await
        .expect_problem(422, "verification-failed");
        assert!(
            a.text.contains(&format!("{left} attempts left")),
            "{}",
            a.text
        );
    }
    // Locked: even the right answers are not checked any more.
    verify(
        &api,
        &agent,
        call_id,
        by_security_answers(&[("Town of birth?", ANSWER_1), ("First pet?", ANSWER_2)]),
    )
    .await
    .expect_problem(423, "verification-locked");
    let view = api
        .get(
            &format!("/api/v1/interactions/{call_id}"),
            Some(&agent.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(view["locked"], true);
    assert_eq!(view["attempts_left"], 0);
    // A new call may verify with the right answers, normalised (case, spaces, punctuation).
    let call2 = start_call_for(&api, &agent, PHONE, &id).await;
    let level = verify(
        &api,
        &agent,
        call2["id"].as_str().unwrap(),
        by_security_answers(&[
            ("Town of birth?", "  BOLESŁAWIEC nad bobrem. "),
            ("first pet?", "burek  pierwszy"),
        ]),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(level["level"], 1);
    // Five more failures in another call make ten on this customer within 24 hours: now even
    // the right identifier is refused in any new call.
    let mut calls = Vec::new();
    for _ in 0..2 {
        calls.push(start_call_id(&api, &agent, PHONE).await);
    }
    for _ in 0..5 {
        verify(&api, &agent, &calls[0], by_national_id("02070803628"))
            .await
            .expect_problem(422, "verification-failed");
    }
    let refused = verify(&api, &agent, &calls[1], by_national_id(PESEL))
        .await
        .expect_problem(423, "verification-locked");
    assert!(refused.text.contains("24 hours"), "{}", refused.text);
    // Repeated verification failures on one customer raise an alert.
    alert_when(&api, &supervisor.token, |a| {
        a["rule"] == "verification_failures" && a["subject"] == format!("customer:{id}")
    })
    .await;
}

async fn invalid_customers_are_refused_field_by_field_and_nothing_is_stored(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("ola-agent", "agent").await;
    let compliance = server.new_account("cyryl-compliance", "compliance").await;
    let mut body = customer_body();
    body["phones"] = json!(["+48 601 234 567", "0601234567"]);
    body["emails"] = json!(["not-an-address"]);
    body["national_id"] = json!({"kind": "pesel", "value": "44051401358"});
    body["address"]["postal_code"] = json!("00950");
    body["services"] = json!([""]);
    let refused = api
        .post("/api/v1/customers", Some(&agent.token), body)
        .await
        .expect_problem(422, "invalid-fields")
        .json();
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in [
        "phones[1]",
        "emails[0]",
        "national_id.value",
        "address",
        "services[0]",
    ] {
        assert!(fields.contains(&f), "{f} not reported: {refused}");
    }
    assert!(
        !refused.to_string().contains("44051401358"),
        "the value is never echoed"
    );
    // A PESEL whose birth date disagrees with date_of_birth.
    let mut body = customer_body();
    body["date_of_birth"] = json!("1944-05-15");
    let refused = api
        .post("/api/v1/customers", Some(&agent.token), body)
        .await
        .expect_problem(422, "invalid-fields")
        .json();
    assert_eq!(
        refused["errors"][0]["field"], "national_id.value",
        "{refused}"
    );
    // Unknown fields are refused too.
    let mut body = customer_body();
    body["is_vip"] = json!(true);
    api.post("/api/v1/customers", Some(&agent.token), body)
        .await
        .expect_problem(400, "bad-request");
    let entries = audit_entries(&api, &compliance).await;
    assert!(
        !entries.iter().any(|e| e["action"] == "customer.create"),
        "nothing was created"
    );
}
