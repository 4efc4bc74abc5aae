//! Least privilege (SPEC C2): every route the server documents, called by every role, by nobody
//! and by a forged token, against a matrix written out here by hand — not derived from the
//! server's own table, so that a change on either side shows up as a failure.

use crate::harness::{Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

both_backends!(every_route_answers_every_role_as_the_matrix_says);

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Signed in, with one of these roles.
    Roles(&'static [&'static str]),
}
use Rule::{Public, Roles};

const ROLES: [&str; 5] = ["agent", "supervisor", "compliance", "admin", "customer"];
/// Every signed-in person manages their own session and sign-in factors, customers included.
const EVERY_ROLE: &[&str] = &["agent", "supervisor", "compliance", "admin", "customer"];
const AGENT: &[&str] = &["agent"];
const CUSTOMER_READERS: &[&str] = &["agent", "supervisor", "compliance"];
const CUSTOMER: &[&str] = &["customer"];
const ADMIN: &[&str] = &["admin"];
const COMPLIANCE: &[&str] = &["compliance"];
const WATCHERS: &[&str] = &["supervisor", "compliance"];
const CALLERS: &[&str] = &["agent", "supervisor", "compliance"];
const CONSENT_KEEPERS: &[&str] = &["agent", "compliance"];
const PAYMENT_READERS: &[&str] = &["agent", "supervisor"];
const SUPERVISOR: &[&str] = &["supervisor"];
/// The telephony edge's service account (an API token from the CLI, no person).
const TELEPHONY: &[&str] = &["telephony"];

/// The expected access matrix, by hand. A route the server adds without an entry here, or one it
/// drops, fails the test.
const MATRIX: &[(&str, &str, Rule)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/api/v1/openapi.json", Public),
    ("POST", "/api/v1/auth/setup", Public),
    ("POST", "/api/v1/auth/setup/confirm", Public),
    ("POST", "/api/v1/auth/login", Public),
    ("POST", "/api/v1/auth/mfa", Public),
    ("POST", "/api/v1/auth/logout", Roles(EVERY_ROLE)),
    ("POST", "/api/v1/auth/reauth", Roles(EVERY_ROLE)),
    ("GET", "/api/v1/me", Roles(EVERY_ROLE)),
    ("GET", "/api/v1/me/sessions", Roles(EVERY_ROLE)),
    ("DELETE", "/api/v1/me/sessions/{id}", Roles(EVERY_ROLE)),
    ("POST", "/api/v1/me/recovery-codes", Roles(EVERY_ROLE)),
    ("GET", "/api/v1/me/passkeys", Roles(EVERY_ROLE)),
    (
        "POST",
        "/api/v1/me/passkeys/registration",
        Roles(EVERY_ROLE),
    ),
    ("POST", "/api/v1/me/passkeys", Roles(EVERY_ROLE)),
    ("DELETE", "/api/v1/me/passkeys/{id}", Roles(EVERY_ROLE)),
    ("GET", "/api/v1/me/sip-credentials", Roles(EVERY_ROLE)),
    ("POST", "/api/v1/me/sip-credentials", Roles(EVERY_ROLE)),
    ("GET", "/api/v1/users", Roles(ADMIN)),
    ("POST", "/api/v1/users", Roles(ADMIN)),
    ("POST", "/api/v1/users/{id}/unlock", Roles(ADMIN)),
    ("PUT", "/api/v1/users/{id}/role", Roles(ADMIN)),
    ("POST", "/api/v1/users/{id}/enable", Roles(ADMIN)),
    ("POST", "/api/v1/users/{id}/disable", Roles(ADMIN)),
    ("POST", "/api/v1/users/{id}/confirm", Roles(COMPLIANCE)),
    ("POST", "/api/v1/users/{id}/reset", Roles(ADMIN)),
    ("GET", "/api/v1/audit", Roles(COMPLIANCE)),
    ("GET", "/api/v1/audit/checkpoint", Roles(COMPLIANCE)),
    ("GET", "/api/v1/audit/verifier-key", Roles(COMPLIANCE)),
    ("GET", "/api/v1/audit/proof/inclusion", Roles(COMPLIANCE)),
    ("GET", "/api/v1/audit/proof/consistency", Roles(COMPLIANCE)),
    ("POST", "/api/v1/dnc/check", Roles(CALLERS)),
    ("GET", "/api/v1/dnc/status", Roles(WATCHERS)),
    ("POST", "/api/v1/dnc/internal", Roles(CALLERS)),
    ("GET", "/api/v1/dnc/internal", Roles(WATCHERS)),
    ("POST", "/api/v1/consents", Roles(CONSENT_KEEPERS)),
    ("GET", "/api/v1/consents", Roles(WATCHERS)),
    (
        "POST",
        "/api/v1/consents/{id}/revoke",
        Roles(CONSENT_KEEPERS),
    ),
    ("POST", "/api/v1/customers", Roles(AGENT)),
    ("GET", "/api/v1/customers", Roles(CUSTOMER_READERS)),
    ("GET", "/api/v1/customers/{id}", Roles(CUSTOMER_READERS)),
    ("POST", "/api/v1/customers/{id}/reveal", Roles(AGENT)),
    ("POST", "/api/v1/customers/{id}/operations", Roles(AGENT)),
    ("POST", "/api/v1/customers/{id}/export", Roles(COMPLIANCE)),
    ("POST", "/api/v1/customers/{id}/erasure", Roles(COMPLIANCE)),
    (
        "POST",
        "/api/v1/customers/{id}/erasure/approve",
        Roles(COMPLIANCE),
    ),
    ("GET", "/api/v1/gdpr/requests", Roles(COMPLIANCE)),
    ("GET", "/api/v1/compliance/report", Roles(COMPLIANCE)),
    ("GET", "/api/v1/compliance/runs", Roles(COMPLIANCE)),
    ("GET", "/api/v1/compliance/manual", Roles(COMPLIANCE)),
    ("POST", "/api/v1/compliance/manual", Roles(COMPLIANCE)),
    ("GET", "/api/v1/compliance/breaches", Roles(COMPLIANCE)),
    ("POST", "/api/v1/compliance/breaches", Roles(COMPLIANCE)),
    (
        "POST",
        "/api/v1/compliance/breaches/{id}/close",
        Roles(COMPLIANCE),
    ),
    ("POST", "/api/v1/interactions", Roles(AGENT)),
    ("GET", "/api/v1/interactions/{id}", Roles(AGENT)),
    ("POST", "/api/v1/interactions/{id}/verify", Roles(AGENT)),
    ("POST", "/api/v1/interactions/{id}/end", Roles(AGENT)),
    ("POST", "/api/v1/interactions/{id}/wrap-up", Roles(AGENT)),
    ("GET", "/api/v1/me/interactions", Roles(AGENT)),
    ("POST", "/api/v1/portal/auth/setup", Public),
    ("POST", "/api/v1/portal/auth/setup/confirm", Public),
    ("POST", "/api/v1/portal/auth/login", Public),
    ("POST", "/api/v1/portal/auth/mfa", Public),
    ("GET", "/api/v1/portal/me", Roles(CUSTOMER)),
    ("POST", "/api/v1/portal/verification-code", Roles(CUSTOMER)),
    ("GET", "/api/v1/portal/access-log", Roles(CUSTOMER)),
    ("GET", "/api/v1/portal/export", Roles(CUSTOMER)),
    ("POST", "/api/v1/portal/requests", Roles(CUSTOMER)),
    ("GET", "/api/v1/alerts", Roles(WATCHERS)),
    ("GET", "/api/v1/alerts/stream", Roles(WATCHERS)),
    ("POST", "/api/v1/alerts/{id}/acknowledge", Roles(WATCHERS)),
    ("POST", "/api/v1/alerts/{id}/resolve", Roles(WATCHERS)),
    ("POST", "/api/v1/payments", Roles(AGENT)),
    ("GET", "/api/v1/payments", Roles(PAYMENT_READERS)),
    ("GET", "/api/v1/payments/stream", Roles(PAYMENT_READERS)),
    ("GET", "/api/v1/payments/{id}", Roles(PAYMENT_READERS)),
    ("POST", "/api/v1/payments/{id}/cancel", Roles(AGENT)),
    ("POST", "/api/v1/payments/{id}/refunds", Roles(SUPERVISOR)),
    ("POST", "/api/v1/payments/{id}/keypad", Roles(TELEPHONY)),
    (
        "POST",
        "/api/v1/payments/{id}/keypad/keys",
        Roles(TELEPHONY),
    ),
    (
        "POST",
        "/api/v1/payments/{id}/keypad/cancel",
        Roles(TELEPHONY),
    ),
    ("POST", "/api/v1/payments/{id}/keypad/in-call", Roles(AGENT)),
    (
        "POST",
        "/api/v1/payments/{id}/keypad/in-call/cancel",
        Roles(AGENT),
    ),
    ("GET", "/api/v1/portal/payments", Roles(CUSTOMER)),
    ("GET", "/api/v1/recordings", Roles(WATCHERS)),
    ("POST", "/api/v1/recordings/{id}/playback", Roles(WATCHERS)),
    (
        "GET",
        "/api/v1/recordings/playback/{ticket}",
        Roles(WATCHERS),
    ),
    ("GET", "/api/v1/agents/me/state", Roles(AGENT)),
    ("PUT", "/api/v1/agents/me/state", Roles(AGENT)),
    ("GET", "/api/v1/agents/me/stream", Roles(AGENT)),
    ("GET", "/api/v1/agents", Roles(SUPERVISOR)),
    ("GET", "/api/v1/queues", Roles(SUPERVISOR)),
    ("GET", "/api/v1/queues/stream", Roles(SUPERVISOR)),
    ("POST", "/api/v1/monitor", Roles(SUPERVISOR)),
    ("GET", "/api/v1/monitor", Roles(SUPERVISOR)),
    (
        "DELETE",
        "/api/v1/monitor/{interaction_id}",
        Roles(SUPERVISOR),
    ),
    (
        "POST",
        "/api/v1/monitor/{interaction_id}/mode",
        Roles(SUPERVISOR),
    ),
    ("GET", "/api/v1/agents/me/monitor", Roles(AGENT)),
    ("POST", "/api/v1/interactions/{id}/transfer", Roles(AGENT)),
    (
        "POST",
        "/api/v1/interactions/{id}/transfer/complete",
        Roles(AGENT),
    ),
    (
        "POST",
        "/api/v1/interactions/{id}/transfer/cancel",
        Roles(AGENT),
    ),
];

const LOGOUT: (&str, &str) = ("POST", "/api/v1/auth/logout");

/// Signed page POSTs with their API counterparts (method, path): a page must refuse exactly the
/// roles its counterpart refuses (the server's own table is checked the same way by
/// `callguard-server/tests/page_access.rs`). The sign-outs are left to the matrix above, since
/// calling them ends the session.
const PAGE_POSTS: &[(&str, &str, &str)] = &[
    ("/reauth", "POST", "/api/v1/auth/reauth"),
    (
        "/account/sessions/{id}/revoke",
        "DELETE",
        "/api/v1/me/sessions/{id}",
    ),
    (
        "/account/recovery-codes",
        "POST",
        "/api/v1/me/recovery-codes",
    ),
    (
        "/account/passkeys/{id}/delete",
        "DELETE",
        "/api/v1/me/passkeys/{id}",
    ),
    (
        "/account/sip-credentials",
        "POST",
        "/api/v1/me/sip-credentials",
    ),
    (
        "/recordings/{id}/play",
        "POST",
        "/api/v1/recordings/{id}/playback",
    ),
    ("/admin/users", "POST", "/api/v1/users"),
    (
        "/admin/users/{id}/unlock",
        "POST",
        "/api/v1/users/{id}/unlock",
    ),
    ("/admin/users/{id}/role", "PUT", "/api/v1/users/{id}/role"),
    (
        "/admin/users/{id}/enable",
        "POST",
        "/api/v1/users/{id}/enable",
    ),
    (
        "/admin/users/{id}/disable",
        "POST",
        "/api/v1/users/{id}/disable",
    ),
    (
        "/admin/users/{id}/reset",
        "POST",
        "/api/v1/users/{id}/reset",
    ),
    (
        "/alerts/{id}/handle",
        "POST",
        "/api/v1/alerts/{id}/acknowledge",
    ),
    ("/dnc/internal", "POST", "/api/v1/dnc/internal"),
    ("/dnc/check", "POST", "/api/v1/dnc/check"),
    ("/dnc/consents", "POST", "/api/v1/consents"),
    (
        "/compliance/requests/{id}/export",
        "POST",
        "/api/v1/customers/{id}/export",
    ),
    (
        "/compliance/requests/{id}/erasure",
        "POST",
        "/api/v1/customers/{id}/erasure",
    ),
    (
        "/compliance/requests/{id}/erasure/approve",
        "POST",
        "/api/v1/customers/{id}/erasure/approve",
    ),
    ("/compliance/manual", "POST", "/api/v1/compliance/manual"),
    (
        "/compliance/breaches",
        "POST",
        "/api/v1/compliance/breaches",
    ),
    (
        "/compliance/breaches/{id}/close",
        "POST",
        "/api/v1/compliance/breaches/{id}/close",
    ),
    (
        "/dnc/consents/{id}/revoke",
        "POST",
        "/api/v1/consents/{id}/revoke",
    ),
    ("/desk/customers", "POST", "/api/v1/customers"),
    ("/desk/interactions", "POST", "/api/v1/interactions"),
    (
        "/desk/interactions/{id}/payments",
        "POST",
        "/api/v1/payments",
    ),
    (
        "/desk/payments/{id}/keypad",
        "POST",
        "/api/v1/payments/{id}/keypad/in-call",
    ),
    (
        "/desk/payments/{id}/keypad/cancel",
        "POST",
        "/api/v1/payments/{id}/keypad/in-call/cancel",
    ),
    (
        "/desk/interactions/{id}/verify",
        "POST",
        "/api/v1/interactions/{id}/verify",
    ),
    (
        "/desk/interactions/{id}/reveal",
        "POST",
        "/api/v1/customers/{id}/reveal",
    ),
    (
        "/desk/interactions/{id}/operations",
        "POST",
        "/api/v1/customers/{id}/operations",
    ),
    (
        "/desk/interactions/{id}/end",
        "POST",
        "/api/v1/interactions/{id}/end",
    ),
    (
        "/desk/interactions/{id}/wrap-up",
        "POST",
        "/api/v1/interactions/{id}/wrap-up",
    ),
    (
        "/desk/interactions/{id}/opt-out",
        "POST",
        "/api/v1/dnc/internal",
    ),
    (
        "/portal/verification-code",
        "POST",
        "/api/v1/portal/verification-code",
    ),
    ("/portal/requests", "POST", "/api/v1/portal/requests"),
    ("/desk/state", "PUT", "/api/v1/agents/me/state"),
    ("/wallboard/monitor", "POST", "/api/v1/monitor"),
    (
        "/desk/interactions/{id}/transfer",
        "POST",
        "/api/v1/interactions/{id}/transfer",
    ),
    (
        "/desk/interactions/{id}/transfer/complete",
        "POST",
        "/api/v1/interactions/{id}/transfer/complete",
    ),
    (
        "/desk/interactions/{id}/transfer/cancel",
        "POST",
        "/api/v1/interactions/{id}/transfer/cancel",
    ),
    (
        "/wallboard/monitor/stop",
        "DELETE",
        "/api/v1/monitor/{interaction_id}",
    ),
    (
        "/wallboard/monitor/mode",
        "POST",
        "/api/v1/monitor/{interaction_id}/mode",
    ),
];

/// Whether an answer is the access check's refusal of the caller's role.
fn refused_for_role(a: &crate::harness::Answer) -> bool {
    let content_type = a.header("content-type").unwrap_or_default();
    a.status.as_u16() == 403
        && if content_type.starts_with("application/problem+json") {
            a.json()["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("/problems/forbidden"))
        } else {
            // Pages refuse with a page in the layout that names the problem type.
            content_type.starts_with("text/html") && a.text.contains("/problems/forbidden")
        }
}

/// Each page POST answers every role as its API counterpart does: refused for the same roles.
async fn page_posts_answer_as_their_api_counterparts(
    api: &crate::harness::Api,
    callers: &[Caller<'_>],
) -> usize {
    // A valid double-submit pair, so an allowed role gets past the form's anti-forgery check
    // and only the access rule can refuse.
    let csrf = "c".repeat(43);
    let mut compared = 0;
    for caller in callers {
        let Caller::Role(role, token) = caller else {
            continue;
        };
        for (page, method, api_path) in PAGE_POSTS {
            let id = uuid::Uuid::new_v4().to_string();
            let page_answer = api
                .send_raw(
                    format!("{role} -> POST {page} (page)"),
                    api.client
                        .post(api.url(&page.replace("{id}", &id)))
                        .bearer_auth(token)
                        .header("cookie", format!("__Host-callguard_csrf={csrf}"))
                        .form(&[("csrf", csrf.as_str())]),
                )
                .await;
            let m: Method = method.parse().unwrap();
            let body = matches!(*method, "POST" | "PUT").then(|| json!({}));
            let api_answer = api
                .call(
                    m,
                    &api_path.replace("{id}", &id),
                    Some(token),
                    body.as_ref(),
                )
                .await;
            assert_eq!(
                refused_for_role(&page_answer),
                refused_for_role(&api_answer),
                "{role}: POST {page} answered {} {} but its API counterpart {method} {api_path} answered {} {}",
                page_answer.status,
                page_answer.text.chars().take(200).collect::<String>(),
                api_answer.status,
                api_answer.text
            );
            let rule = MATRIX
                .iter()
                .find(|(m, p, _)| m == method && p == api_path)
                .map(|(_, _, r)| *r)
                .expect("every counterpart is in the matrix");
            let allowed = matches!(rule, Public) || matches!(rule, Roles(r) if r.contains(role));
            assert_eq!(
                !refused_for_role(&page_answer),
                allowed,
                "{role}: POST {page} against the matrix's rule for {method} {api_path}"
            );
            compared += 1;
        }
    }
    compared
}

/// The routes of the OpenAPI document, with whether each declares a security requirement.
fn documented_routes(doc: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            out.push((method.to_ascii_uppercase(), path.clone(), secured));
        }
    }
    out
}

/// Who calls.
enum Caller<'a> {
    Nobody,
    Forged,
    Role(&'a str, &'a str),
}

async fn every_route_answers_every_role_as_the_matrix_says(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();

    // The document lists exactly the routes of the matrix, and says which need a session.
    let doc = api
        .get("/api/v1/openapi.json", None)
        .await
        .expect(200)
        .json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let documented = documented_routes(&doc);
    let documented_set: BTreeSet<(String, String)> = documented
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let expected_set: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented_set,
        expected_set,
        "the server's routes differ from this test's matrix: only in the server {:?}, only in the matrix {:?}",
        documented_set.difference(&expected_set).collect::<Vec<_>>(),
        expected_set.difference(&documented_set).collect::<Vec<_>>()
    );
    for (method, path, secured) in &documented {
        let rule = MATRIX
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .map(|(_, _, r)| *r)
            .unwrap();
        assert_eq!(
            *secured,
            matches!(rule, Roles(_)),
            "{method} {path}: the document's security requirement"
        );
    }

    // One account per role: the admin from the CLI, the others made by the admin.
    let admin = server.admin_session().await;
    let mut callers = vec![Caller::Nobody, Caller::Forged];
    let mut accounts = Vec::new();
    for role in ROLES
        .iter()
        .filter(|r| !matches!(**r, "admin" | "customer"))
    {
        let name = format!("walker-{role}");
        let made = api
            .post(
                "/api/v1/users",
                Some(&admin.token),
                json!({"username": name, "role": role}),
            )
            .await
            .expect(201)
            .json();
        accounts.push(
            api.set_up(made["setup_token"].as_str().unwrap(), &name, role)
                .await,
        );
    }
    // The customer: registered by the agent, invited by the CLI, set up in the portal.
    let agent = accounts.iter().find(|a| a.role == "agent").unwrap();
    let customer_id = crate::calls::register_demo_customer(&api, agent).await;
    let invite = server.cli(&["customer", "invite", &customer_id]);
    assert!(invite.status.success(), "{}", invite.describe());
    let customer_token =
        crate::portal::portal_set_up(&api, invite.stdout.trim(), &customer_id).await;
    for acct in &accounts {
        callers.push(Caller::Role(&acct.role, &acct.token));
    }
    callers.push(Caller::Role("customer", &customer_token));
    callers.push(Caller::Role("admin", &admin.token));
    // The telephony edge's token: refused everywhere but the keypad capture API.
    let issued = server.cli(&["telephony", "token", "issue"]);
    assert!(issued.status.success(), "{}", issued.describe());
    let telephony_token = issued.stdout.trim().to_owned();
    callers.push(Caller::Role("telephony", &telephony_token));

    let compared = page_posts_answer_as_their_api_counterparts(&api, &callers).await;
    assert_eq!(compared, PAGE_POSTS.len() * (ROLES.len() + 1));

    let forged = format!("cgs_{}", "A".repeat(43));
    let mut checked = 0;
    for caller in &callers {
        let (who, token) = match caller {
            Caller::Nobody => ("anonymous".to_owned(), None),
            Caller::Forged => ("forged token".to_owned(), Some(forged.as_str())),
            Caller::Role(role, token) => ((*role).to_owned(), Some(*token)),
        };
        // Logout last: it ends the session the other calls use.
        let ends = |m: &str, p: &str| (m, p) == LOGOUT;
        let order = MATRIX
            .iter()
            .filter(|(m, p, _)| !ends(m, p))
            .chain(MATRIX.iter().filter(|(m, p, _)| ends(m, p)));
        for (method, path, rule) in order {
            let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
            let m: Method = method.parse().unwrap();
            let body = matches!(*method, "POST" | "PUT").then(|| json!({}));
            let answer = api.call(m, &concrete, token, body.as_ref()).await;
            let status = answer.status.as_u16();
            let what = format!("{who} -> {method} {path}: {status} {}", answer.text);
            match (rule, caller) {
                (Public, _) => assert!(
                    status != 401 && status != 403,
                    "public route refused: {what}"
                ),
                (Roles(_), Caller::Nobody | Caller::Forged) => {
                    assert_eq!(status, 401, "{what}");
                    assert_eq!(answer.problem_type(), "/problems/unauthenticated", "{what}");
                }
                (Roles(allowed), Caller::Role(role, _)) if allowed.contains(role) => {
                    assert!(
                        status != 401 && status != 403,
                        "allowed role refused: {what}"
                    );
                    assert!(status < 500, "server error: {what}");
                }
                (Roles(_), Caller::Role(..)) => {
                    assert_eq!(status, 403, "{what}");
                    assert_eq!(answer.problem_type(), "/problems/forbidden", "{what}");
                }
            }
            checked += 1;
        }
        match caller {
            // No session to end: the token stays, and still reaches no account route.
            Caller::Role("telephony", token) => {
                api.me(token).await.expect_problem(403, "forbidden");
            }
            Caller::Role(_, token) => {
                api.me(token).await.expect_problem(401, "unauthenticated");
            }
            _ => {}
        }
    }
    assert_eq!(checked, MATRIX.len() * (ROLES.len() + 3));
}
