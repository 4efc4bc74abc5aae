//! The compliance officer's page of data-subject requests: each request with its age and the
//! 30-day deadline, the export delivered from the page, and erasure with four eyes on the page
//! (the requesting officer cannot approve; another one can). Other roles are refused.

use crate::calls::register_demo_customer;
use crate::harness::{Account, Answer, Api, Backend, Server};
use crate::portal::{invite, portal_set_up_full};
use crate::vault::PESEL;
use serde_json::json;

both_backends!(
    compliance_handles_requests_with_their_deadline_and_four_eyes_on_the_page,
    the_dnc_page_checks_a_number_and_records_a_consent_for_the_roles_allowed,
);

/// A page form POST in `who`'s session, with a valid double-submit anti-forgery pair.
async fn post_form(api: &Api, who: &Account, path: &str) -> Answer {
    post_fields(api, who, path, &[]).await
}

async fn post_fields(api: &Api, who: &Account, path: &str, fields: &[(&str, &str)]) -> Answer {
    let csrf = "q".repeat(43);
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    api.send_raw(
        format!("{} -> POST {path} (page)", who.username),
        api.client
            .post(api.url(path))
            .bearer_auth(&who.token)
            .header("cookie", format!("__Host-callguard_csrf={csrf}"))
            .form(&form),
    )
    .await
}

async fn the_dnc_page_checks_a_number_and_records_a_consent_for_the_roles_allowed(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("kasia-agent", "agent").await;
    let supervisor = server.new_account("leon-supervisor", "supervisor").await;
    let compliance = server.new_account("mira-compliance", "compliance").await;
    let check = [("number", "+1 202 555 0123"), ("purpose", "telemarketing")];

    let none = post_fields(&api, &agent, "/dnc/check", &check).await;
    assert!(
        none.text
            .contains("no national Do-Not-Call registry is loaded"),
        "{}",
        none.text
    );
    crate::dnc::import_registry(&server, &supervisor.token, "2025550123\n").await;
    let refused = post_fields(&api, &agent, "/dnc/check", &check).await;
    assert_eq!(refused.status.as_u16(), 200, "{}", refused.text);
    assert!(refused.text.contains("do not call"), "{}", refused.text);
    assert!(refused
        .text
        .contains("on the national Do-Not-Call registry"));
    assert!(refused.text.contains("no active consent for this purpose"));
    assert!(
        !refused.text.contains("data-testid=\"numbers\""),
        "an agent sees the verdict, not the registry's status"
    );
    let bad = post_fields(&api, &agent, "/dnc/check", &[("number", "12")]).await;
    assert!(
        bad.text.contains("not a valid phone number"),
        "{}",
        bad.text
    );

    // Consent: compliance records it (evidence sealed); a supervisor may not.
    let consent = [
        ("number", "+1 303 555 0100"),
        ("purpose", "telemarketing"),
        ("channel", "call"),
        ("source", "paper"),
        ("evidence", "signed form no. 77 in the red binder"),
    ];
    let denied = post_fields(&api, &supervisor, "/dnc/consents", &consent).await;
    assert_eq!(denied.status.as_u16(), 403, "{}", denied.text);
    let missing = post_fields(&api, &compliance, "/dnc/consents", &consent[..4]).await;
    assert!(missing.text.contains("evidence"), "{}", missing.text);
    let recorded = post_fields(&api, &compliance, "/dnc/consents", &consent).await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    assert!(
        recorded.text.contains("Consent recorded"),
        "{}",
        recorded.text
    );
    assert!(
        !recorded.text.contains("red binder"),
        "evidence is not shown"
    );
    assert_eq!(
        recorded.text.matches("data-testid=\"consent-row\"").count(),
        1
    );
    let listed = api
        .get("/api/v1/consents", Some(&compliance.token))
        .await
        .expect(200)
        .json();
    assert_eq!(listed["consents"].as_array().unwrap().len(), 1, "{listed}");
}

async fn compliance_handles_requests_with_their_deadline_and_four_eyes_on_the_page(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("hela-agent", "agent").await;
    let first = server.new_account("iga-compliance", "compliance").await;
    let second = server.new_account("jan-compliance", "compliance").await;
    let id = register_demo_customer(&api, &agent).await;
    let (customer, _, _) = portal_set_up_full(&api, &invite(&server, &id), &id).await;
    for kind in ["export", "erasure"] {
        api.post(
            "/api/v1/portal/requests",
            Some(&customer.token),
            json!({ "kind": kind }),
        )
        .await
        .expect(200);
    }

    let page = api
        .get("/compliance/requests", Some(&first.token))
        .await
        .expect(200)
        .text;
    assert_eq!(
        page.matches("data-testid=\"request-row\"").count(),
        2,
        "{page}"
    );
    assert!(
        page.contains("30 day(s) left") || page.contains("29 day(s) left"),
        "the 30-day deadline: {page}"
    );
    assert!(page.contains("0 day(s)"), "asked today");
    assert!(!page.contains(PESEL), "no personal data on the page");
    for other in [&agent] {
        let refused = api.get("/compliance/requests", Some(&other.token)).await;
        assert_eq!(refused.status.as_u16(), 403);
        assert!(refused.text.contains("/problems/forbidden"));
        let posted = post_form(&api, other, &format!("/compliance/requests/{id}/erasure")).await;
        assert_eq!(posted.status.as_u16(), 403);
    }

    let export = post_form(&api, &first, &format!("/compliance/requests/{id}/export")).await;
    assert_eq!(export.status.as_u16(), 200, "{}", export.text);
    assert!(export.text.contains("delivered to the customer"));
    assert!(!export.text.contains(PESEL));

    let asked = post_form(&api, &first, &format!("/compliance/requests/{id}/erasure")).await;
    assert_eq!(asked.status.as_u16(), 200, "{}", asked.text);
    assert!(asked
        .text
        .contains("requested by <strong>iga-compliance</strong>"));
    assert!(asked.text.contains("a different officer must approve"));
    assert!(!asked.text.contains("data-testid=\"approve-erasure\""));
    let own = post_form(
        &api,
        &first,
        &format!("/compliance/requests/{id}/erasure/approve"),
    )
    .await;
    assert_eq!(own.status.as_u16(), 403, "{}", own.text);
    assert!(
        own.text.contains("second compliance officer"),
        "{}",
        own.text
    );
    api.get(&format!("/api/v1/customers/{id}"), Some(&agent.token))
        .await
        .expect(200);

    let theirs = api
        .get("/compliance/requests", Some(&second.token))
        .await
        .expect(200)
        .text;
    assert!(theirs.contains("awaiting your approval"));
    let erased = post_form(
        &api,
        &second,
        &format!("/compliance/requests/{id}/erasure/approve"),
    )
    .await;
    assert_eq!(erased.status.as_u16(), 200, "{}", erased.text);
    assert!(erased.text.contains("is erased"));
    assert!(erased.text.contains("data-testid=\"no-requests\""));
    api.get(&format!("/api/v1/customers/{id}"), Some(&agent.token))
        .await
        .expect_problem(404, "not-found");
}
