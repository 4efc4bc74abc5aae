//! Bad input gets a clear RFC 9457 problem and changes nothing; every answer carries the
//! security headers.

use crate::harness::{Answer, Backend, Server};
use reqwest::Method;

both_backends!(
    bad_requests_get_clear_problems,
    security_headers_on_pages_and_api_answers,
    cookie_sessions_need_the_csrf_token_to_change_anything,
);

async fn bad_requests_get_clear_problems(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let login = api.url("/api/v1/auth/login");
    let json_post = |body: &'static str| {
        api.client
            .post(&login)
            .header("content-type", "application/json")
            .body(body)
    };

    // Malformed JSON.
    let a = api
        .send_raw("malformed JSON".into(), json_post("{\"username\": \"a\", "))
        .await;
    a.expect_problem(400, "bad-request");

    // An unknown field is refused and named.
    let a = api
        .send_raw(
            "unknown field".into(),
            json_post(
                r#"{"username":"olivia","password":"Quartz lantern drifts","is_admin":true}"#,
            ),
        )
        .await
        .expect_problem(400, "bad-request");
    assert!(
        a.json()["detail"].as_str().unwrap().contains("is_admin"),
        "{}",
        a.text
    );

    // A missing field is named too.
    let a = api
        .send_raw(
            "missing field".into(),
            json_post(r#"{"username":"olivia"}"#),
        )
        .await;
    let a = a.expect_problem(400, "bad-request");
    assert!(
        a.json()["detail"].as_str().unwrap().contains("password"),
        "{}",
        a.text
    );

    // A wrong type is refused without echoing the value sent.
    let a = api
        .send_raw(
            "wrong type".into(),
            json_post(r#"{"username":"olivia","password":987654321987}"#),
        )
        .await
        .expect_problem(400, "bad-request");
    assert!(
        !a.text.contains("987654321987"),
        "the problem must not echo what was sent: {}",
        a.text
    );

    // More than 64 KiB.
    let big = format!(
        r#"{{"username":"olivia","password":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let a = api
        .send_raw(
            "oversize body".into(),
            api.client
                .post(&login)
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    a.expect_problem(413, "payload-too-large");

    // JSON sent as something else.
    let a = api
        .send_raw(
            "wrong content type".into(),
            api.client
                .post(&login)
                .header("content-type", "text/plain")
                .body(r#"{"username":"olivia","password":"Quartz lantern drifts"}"#),
        )
        .await
        .expect_problem(400, "bad-request");
    assert!(
        a.json()["detail"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{}",
        a.text
    );
    let a = api
        .send_raw(
            "no content type".into(),
            api.client
                .post(&login)
                .body(r#"{"username":"a","password":"b"}"#),
        )
        .await;
    a.expect_problem(400, "bad-request");

    // No token, a made-up token, a token in the wrong scheme.
    api.get("/api/v1/me", None)
        .await
        .expect_problem(401, "unauthenticated");
    api.get(
        "/api/v1/me",
        Some("cgs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await
    .expect_problem(401, "unauthenticated");
    let a = api
        .send_raw(
            "basic auth".into(),
            api.client
                .get(api.url("/api/v1/me"))
                .basic_auth("olivia", Some("pw")),
        )
        .await;
    a.expect_problem(401, "unauthenticated");

    // Unknown paths and methods.
    api.get("/api/v1/no-such-thing", None)
        .await
        .expect_problem(404, "not-found");
    let a = api
        .call(Method::DELETE, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(a.status.as_u16(), 405, "{}", a.text);

    // None of this was a failed sign-in: the address is not throttled and nothing was counted.
    let metrics = api.get("/metrics", None).await.expect(200).text;
    assert!(
        !metrics.contains("callguard_sign_ins_total{"),
        "no sign-in was attempted:\n{metrics}"
    );
    api.login("nobody-at-all", "a wrong password, surely")
        .await
        .expect_problem(401, "invalid-credentials");
}

/// The headers every answer must carry: a strict CSP (no inline script or style, no framing),
/// HSTS, nosniff, a referrer policy.
#[track_caller]
fn assert_security_headers(a: &Answer) {
    let csp = a
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{}: no Content-Security-Policy", a.what));
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{}: {csp}",
        a.what
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{}: {csp}", a.what);
    assert!(
        csp.contains("default-src 'none'") || csp.contains("default-src 'self'"),
        "{}: {csp}",
        a.what
    );
    assert!(!csp.contains('*'), "{}: no wildcard sources: {csp}", a.what);
    let hsts = a
        .header("strict-transport-security")
        .unwrap_or_else(|| panic!("{}: no HSTS", a.what));
    let max_age: u64 = hsts
        .split(';')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}: HSTS without max-age: {hsts}", a.what));
    assert!(
        max_age >= 31_536_000,
        "{}: HSTS max-age of at least a year: {hsts}",
        a.what
    );
    assert_eq!(
        a.header("x-content-type-options"),
        Some("nosniff"),
        "{}",
        a.what
    );
    let referrer = a
        .header("referrer-policy")
        .unwrap_or_else(|| panic!("{}: no Referrer-Policy", a.what));
    assert!(
        [
            "no-referrer",
            "same-origin",
            "strict-origin",
            "strict-origin-when-cross-origin"
        ]
        .contains(&referrer),
        "{}: {referrer}",
        a.what
    );
}

async fn security_headers_on_pages_and_api_answers(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();

    let login_page = api.get("/login", None).await;
    assert_eq!(
        login_page.status.as_u16(),
        200,
        "the sign-in page: {}",
        login_page.text
    );
    assert!(
        login_page
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        login_page.headers
    );
    assert_security_headers(&login_page);

    for answer in [
        api.get("/healthz", None).await.expect(200),
        api.get("/api/v1/me", None).await.expect(401),
        api.get("/api/v1/openapi.json", None).await.expect(200),
        api.get("/api/v1/no-such-thing", None).await.expect(404),
        api.login("nobody-at-all", "a wrong password, surely")
            .await
            .expect(401),
    ] {
        assert_security_headers(&answer);
        assert_eq!(
            answer.header("cache-control"),
            Some("no-store"),
            "{}: API answers are not cached",
            answer.what
        );
    }
    let acct = server.new_account("uma", "agent").await;
    let me = api.me(&acct.token).await.expect(200);
    assert_security_headers(&me);
    assert_eq!(
        me.header("cache-control"),
        Some("no-store"),
        "personal answers are never cached"
    );
}

/// The session cookie authenticates API reads, but a state-changing call made with it must also
/// carry the anti-forgery token (double submit): a cross-site form cannot.
async fn cookie_sessions_need_the_csrf_token_to_change_anything(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let acct = server.new_account("wilma", "agent").await;
    let session = format!("__Host-callguard_session={}", acct.token);
    let with_cookie =
        |req: reqwest::RequestBuilder, cookie: &str| req.header("cookie", cookie.to_owned());

    let a = api
        .send_raw(
            "GET /me by cookie".into(),
            with_cookie(api.client.get(api.url("/api/v1/me")), &session),
        )
        .await;
    assert_eq!(a.expect(200).json()["username"], "wilma");

    let logout = api.url("/api/v1/auth/logout");
    let a = api
        .send_raw(
            "logout by cookie, no CSRF".into(),
            with_cookie(api.client.post(&logout), &session),
        )
        .await;
    a.expect_problem(403, "csrf");
    let csrf = "k".repeat(43);
    let other = "j".repeat(43);
    let both = format!("{session}; __Host-callguard_csrf={csrf}");
    let a = api
        .send_raw(
            "logout by cookie, wrong CSRF".into(),
            with_cookie(api.client.post(&logout), &both).header("x-csrf-token", &other),
        )
        .await;
    a.expect_problem(403, "csrf");
    let a = api
        .send_raw(
            "logout by cookie, header without cookie".into(),
            with_cookie(api.client.post(&logout), &session).header("x-csrf-token", &csrf),
        )
        .await;
    a.expect_problem(403, "csrf");
    api.me(&acct.token).await.expect(200);

    let a = api
        .send_raw(
            "logout by cookie with CSRF".into(),
            with_cookie(api.client.post(&logout), &both).header("x-csrf-token", &csrf),
        )
        .await;
    a.expect(204);
    api.me(&acct.token)
        .await
        .expect_problem(401, "unauthenticated");
}
