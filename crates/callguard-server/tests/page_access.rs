//! A page that changes something must need exactly what its API counterpart needs: the route
//! table is the one statement of who may do what, and a page route whose rule differs from the
//! API's makes that statement false (issue #10, item 7: `POST /admin/users` needed `UsersRead`
//! while `POST /api/v1/users` needs `UsersManage`). The end-to-end access test checks the same
//! pairs by calling them with every role.

use callguard_server::features::{api_routes, page_routes};
use std::collections::BTreeSet;

/// A page POST's API counterpart (method, path), or why it has none.
type Counterpart = Result<(&'static str, &'static str), &'static str>;

/// Every page POST with its API counterpart.
const PAGE_POSTS: &[(&str, Counterpart)] = &[
    ("/login", Ok(("POST", "/api/v1/auth/login"))),
    ("/login/mfa", Ok(("POST", "/api/v1/auth/mfa"))),
    ("/setup", Ok(("POST", "/api/v1/auth/setup"))),
    ("/setup/confirm", Ok(("POST", "/api/v1/auth/setup/confirm"))),
    ("/logout", Ok(("POST", "/api/v1/auth/logout"))),
    ("/reauth", Ok(("POST", "/api/v1/auth/reauth"))),
    ("/portal/login", Ok(("POST", "/api/v1/portal/auth/login"))),
    ("/portal/login/mfa", Ok(("POST", "/api/v1/portal/auth/mfa"))),
    ("/portal/setup", Ok(("POST", "/api/v1/portal/auth/setup"))),
    (
        "/portal/setup/confirm",
        Ok(("POST", "/api/v1/portal/auth/setup/confirm")),
    ),
    (
        "/portal/logout",
        Err("the portal's own sign-out, customers only; the API's logout serves every role"),
    ),
    (
        "/account/sessions/{id}/revoke",
        Ok(("DELETE", "/api/v1/me/sessions/{id}")),
    ),
    (
        "/account/recovery-codes",
        Ok(("POST", "/api/v1/me/recovery-codes")),
    ),
    (
        "/account/passkeys/{id}/delete",
        Ok(("DELETE", "/api/v1/me/passkeys/{id}")),
    ),
    (
        "/account/sip-credentials",
        Ok(("POST", "/api/v1/me/sip-credentials")),
    ),
    (
        "/recordings/{id}/play",
        Ok(("POST", "/api/v1/recordings/{id}/playback")),
    ),
    ("/admin/users", Ok(("POST", "/api/v1/users"))),
    (
        "/admin/users/{id}/unlock",
        Ok(("POST", "/api/v1/users/{id}/unlock")),
    ),
    (
        "/admin/users/{id}/role",
        Ok(("PUT", "/api/v1/users/{id}/role")),
    ),
    (
        "/admin/users/{id}/enable",
        Ok(("POST", "/api/v1/users/{id}/enable")),
    ),
    (
        "/admin/users/{id}/disable",
        Ok(("POST", "/api/v1/users/{id}/disable")),
    ),
    (
        "/admin/users/{id}/reset",
        Ok(("POST", "/api/v1/users/{id}/reset")),
    ),
    (
        "/alerts/{id}/handle",
        Ok(("POST", "/api/v1/alerts/{id}/acknowledge")),
    ),
    ("/dnc/internal", Ok(("POST", "/api/v1/dnc/internal"))),
    ("/dnc/check", Ok(("POST", "/api/v1/dnc/check"))),
    ("/dnc/consents", Ok(("POST", "/api/v1/consents"))),
    (
        "/compliance/requests/{id}/export",
        Ok(("POST", "/api/v1/customers/{id}/export")),
    ),
    (
        "/compliance/requests/{id}/erasure",
        Ok(("POST", "/api/v1/customers/{id}/erasure")),
    ),
    (
        "/compliance/requests/{id}/erasure/approve",
        Ok(("POST", "/api/v1/customers/{id}/erasure/approve")),
    ),
    (
        "/compliance/manual",
        Ok(("POST", "/api/v1/compliance/manual")),
    ),
    (
        "/compliance/breaches",
        Ok(("POST", "/api/v1/compliance/breaches")),
    ),
    (
        "/compliance/breaches/{id}/close",
        Ok(("POST", "/api/v1/compliance/breaches/{id}/close")),
    ),
    (
        "/dnc/consents/{id}/revoke",
        Ok(("POST", "/api/v1/consents/{id}/revoke")),
    ),
    (
        "/desk/search",
        Err("the desk is the agent's; the API's search also serves supervisors and compliance"),
    ),
    (
        "/pay/{token}",
        Err("the payer's hosted page: the link's token is its authority, no one signs in"),
    ),
    ("/desk/customers", Ok(("POST", "/api/v1/customers"))),
    ("/desk/interactions", Ok(("POST", "/api/v1/interactions"))),
    (
        "/desk/interactions/{id}/payments",
        Ok(("POST", "/api/v1/payments")),
    ),
    (
        "/desk/payments/{id}/keypad",
        Ok(("POST", "/api/v1/payments/{id}/keypad/in-call")),
    ),
    (
        "/desk/payments/{id}/keypad/cancel",
        Ok(("POST", "/api/v1/payments/{id}/keypad/in-call/cancel")),
    ),
    (
        "/desk/interactions/{id}/transfer",
        Ok(("POST", "/api/v1/interactions/{id}/transfer")),
    ),
    (
        "/desk/interactions/{id}/transfer/complete",
        Ok(("POST", "/api/v1/interactions/{id}/transfer/complete")),
    ),
    (
        "/desk/interactions/{id}/transfer/cancel",
        Ok(("POST", "/api/v1/interactions/{id}/transfer/cancel")),
    ),
    // Supervisors join and leave calls from the wallboard (the API takes the call in its body
    // and path alike).
    ("/wallboard/monitor", Ok(("POST", "/api/v1/monitor"))),
    (
        "/wallboard/monitor/stop",
        Ok(("DELETE", "/api/v1/monitor/{interaction_id}")),
    ),
    (
        "/wallboard/monitor/mode",
        Ok(("POST", "/api/v1/monitor/{interaction_id}/mode")),
    ),
    (
        "/desk/interactions/{id}/verify",
        Ok(("POST", "/api/v1/interactions/{id}/verify")),
    ),
    (
        "/desk/interactions/{id}/reveal",
        Ok(("POST", "/api/v1/customers/{id}/reveal")),
    ),
    (
        "/desk/interactions/{id}/operations",
        Ok(("POST", "/api/v1/customers/{id}/operations")),
    ),
    (
        "/desk/interactions/{id}/end",
        Ok(("POST", "/api/v1/interactions/{id}/end")),
    ),
    (
        "/desk/interactions/{id}/wrap-up",
        Ok(("POST", "/api/v1/interactions/{id}/wrap-up")),
    ),
    (
        "/desk/interactions/{id}/opt-out",
        Ok(("POST", "/api/v1/dnc/internal")),
    ),
    (
        "/portal/verification-code",
        Ok(("POST", "/api/v1/portal/verification-code")),
    ),
    ("/portal/requests", Ok(("POST", "/api/v1/portal/requests"))),
    ("/desk/state", Ok(("PUT", "/api/v1/agents/me/state"))),
];

/// Whether a route entry's handler answers POST (axum's method router shows which it holds).
fn handles_post(handler: &impl std::fmt::Debug) -> bool {
    let shown = format!("{handler:?}");
    assert!(
        shown.contains("post: "),
        "cannot tell the methods of a route from {shown:.200}"
    );
    !shown.contains("post: None")
}

#[test]
fn every_page_post_needs_the_permission_of_its_api_counterpart() {
    let api = api_routes();
    let mut seen = BTreeSet::new();
    for (path, access, handler) in page_routes() {
        if !handles_post(&handler) {
            continue;
        }
        seen.insert(path);
        let Some((_, counterpart)) = PAGE_POSTS.iter().find(|(p, _)| *p == path) else {
            panic!("the page POST {path} is not paired with its API counterpart in PAGE_POSTS");
        };
        let Ok((method, api_path)) = counterpart else {
            continue;
        };
        let Some(r) = api
            .iter()
            .find(|r| r.method == *method && r.path == *api_path)
        else {
            panic!("{path}: its counterpart {method} {api_path} is not an API route");
        };
        assert_eq!(
            access, r.access,
            "POST {path} needs {access:?} but its API counterpart {method} {api_path} needs {:?}",
            r.access
        );
    }
    let listed: BTreeSet<&str> = PAGE_POSTS.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        listed,
        seen,
        "PAGE_POSTS names pages that take no POST: {:?}",
        listed.difference(&seen).collect::<Vec<_>>()
    );
}
