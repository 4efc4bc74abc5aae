//! Running it: probes and metrics, a clean stop on SIGTERM, configuration errors that name the key.

use crate::harness::{loopback, Backend, Deployment, Server};
use std::time::Duration;

both_backends!(
    metrics_count_sign_ins_and_lockouts_and_probes_answer,
    sigterm_stops_the_server_cleanly,
    bad_configuration_stops_with_a_message_naming_the_key,
);

/// The value of one metric line (`name{labels} value`), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

async fn metrics_count_sign_ins_and_lockouts_and_probes_answer(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();

    let health = api.get("/healthz", None).await.expect(200).json();
    assert_eq!(health["status"], "ok");
    let ready = api.get("/readyz", None).await.expect(200).json();
    assert_eq!(ready["status"], "ready");
    // On PostgreSQL readiness also tells who gives audit entries their indexes; SQLite has no
    // integrator.
    assert_eq!(
        ready["integrator"]
            .as_str()
            .is_some_and(|s| s.contains("integrat")),
        matches!(backend, Backend::Postgres),
        "{ready}"
    );

    let before = api.get("/metrics", None).await.expect(200);
    assert!(
        before
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{:?}",
        before.headers
    );
    assert_eq!(
        metric(&before.text, "callguard_account_lockouts_total"),
        Some(0.0),
        "{}",
        before.text
    );

    // A successful setup counts as a successful sign-in.
    let acct = server.new_account("xavier", "agent").await;
    let text = api.get("/metrics", None).await.expect(200).text;
    assert_eq!(
        metric(&text, r#"callguard_sign_ins_total{outcome="success"}"#),
        Some(1.0),
        "{text}"
    );

    // Ten wrong passwords from ten addresses lock the account once.
    for attempt in 1..=10u8 {
        let status = server
            .api_from(loopback(100 + attempt))
            .login(&acct.username, "certainly not it, no")
            .await
            .status;
        assert_eq!(status, 401, "attempt {attempt}: the lock is not told");
    }
    let text = api.get("/metrics", None).await.expect(200).text;
    assert_eq!(
        metric(&text, "callguard_account_lockouts_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"callguard_sign_ins_total{outcome="invalid_credentials"}"#
        ),
        Some(10.0),
        "{text}"
    );
    // Attempts on the locked account are counted apart (and answered as a wrong password).
    server
        .api_from(loopback(120))
        .login(&acct.username, &acct.password)
        .await
        .expect_problem(401, "invalid-credentials");

    // Request metrics name route templates, never the identifiers in a path.
    let id = uuid::Uuid::new_v4().to_string();
    api.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/me/sessions/{id}"),
        Some(&acct.token),
        None,
    )
    .await
    .expect(404);
    let text = api.get("/metrics", None).await.expect(200).text;
    assert_eq!(
        metric(&text, r#"callguard_sign_ins_total{outcome="locked"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains(r#"callguard_http_requests_total{method="DELETE",route="/api/v1/me/sessions/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"callguard_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        !text.contains(&id),
        "a path identifier leaked into the metrics"
    );
    assert!(
        !text.contains(&acct.username),
        "a username leaked into the metrics"
    );
}

async fn sigterm_stops_the_server_cleanly(backend: Backend) {
    let mut server = Server::start(backend).await;
    let api = server.api();
    // A keep-alive connection stays open in the client's pool while the server stops.
    let acct = server.new_account("yara", "agent").await;
    api.me(&acct.token).await.expect(200);

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let Some(status) = server.wait_for_exit(Duration::from_secs(15)).await else {
        panic!(
            "callguard did not stop within 15 s of SIGTERM\n{}",
            server.logs()
        );
    };
    assert!(
        status.success(),
        "callguard exited with {status} after SIGTERM\n{}",
        server.logs()
    );
    let log = server.stderr_log();
    assert!(
        log.contains("stop requested") && log.contains("stopped"),
        "the log tells the stop:\n{log}"
    );

    // Nothing listens any more.
    let gone = server.api().client.get(server.url("/healthz")).send().await;
    assert!(
        gone.is_err(),
        "the server still answers after stopping: {gone:?}"
    );

    // The data survives the stop: a new server on the same deployment knows the account.
    let server = Server::start_with(server.stop_keeping_data(), &[]).await;
    let api = server.api();
    let token = api.sign_in(&acct).await;
    assert_eq!(api.me(&token).await.expect(200).json()["username"], "yara");
}

async fn bad_configuration_stops_with_a_message_naming_the_key(backend: Backend) {
    let deployment = Deployment::new(backend);

    let mut serve = deployment.command(&["serve"]);
    serve.env("CALLGUARD_LISTEN", "nonsense");
    let ran = deployment.run(serve);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stderr.contains("listen") && ran.stderr.contains("CALLGUARD_LISTEN"),
        "{}",
        ran.describe()
    );
    assert!(
        !deployment.data_dir.join("run").join("address").exists(),
        "it must not have started"
    );

    let mut serve = deployment.command(&["serve"]);
    serve.env(
        "CALLGUARD_DATABASE_URL",
        "mysql://root:hunter2@db.example/x",
    );
    let ran = deployment.run(serve);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stderr.contains("database_url") && ran.stderr.contains("CALLGUARD_DATABASE_URL"),
        "{}",
        ran.describe()
    );
    assert!(
        !ran.stderr.contains("hunter2"),
        "a secret setting is never echoed: {}",
        ran.describe()
    );

    let mut serve = deployment.command(&["serve"]);
    serve.env("CALLGUARD_LOG_LEVEL", "loud");
    let ran = deployment.run(serve);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stderr.contains("log.level") && ran.stderr.contains("CALLGUARD_LOG_LEVEL"),
        "{}",
        ran.describe()
    );

    let ran = deployment.cli(&["user", "add", "x", "--role", "root"]);
    assert!(!ran.status.success(), "{}", ran.describe());
    for role in ["agent", "supervisor", "compliance", "admin"] {
        assert!(
            ran.stderr.contains(role),
            "the error names the role {role}: {}",
            ran.describe()
        );
    }
    assert!(
        ran.stdout.trim().is_empty(),
        "no setup token for a bad role: {}",
        ran.describe()
    );

    let ran = deployment.cli(&["user", "add", "Not A Name", "--role", "agent"]);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stdout.trim().is_empty(),
        "no setup token for a bad username: {}",
        ran.describe()
    );
}

/// `/metrics` answers this machine's own address (exactly 127.0.0.1 and ::1 by default, not all
/// of 127/8, so a client bound to 127.0.0.2 stands for any other peer), anyone with the metrics
/// token (read from a file here), and nobody else. With `metrics.allow` the operator names the
/// addresses that need no token.
#[tokio::test]
async fn metrics_answer_only_this_machine_or_the_metrics_token() {
    const TOKEN: &str = "metrics-token-for-the-e2e-test";
    let deployment = Deployment::new(Backend::Sqlite);
    let token_file = deployment.root().join("metrics-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let server = Server::start_with(
        deployment,
        &[("CALLGUARD_METRICS_TOKEN_FILE", token_file.to_str().unwrap())],
    )
    .await;
    let get = |api: crate::harness::Api, token: Option<&'static str>| async move {
        api.get("/metrics", token).await
    };
    let local = get(server.api(), None).await.expect(200);
    assert!(local.text.contains("callguard_"), "{}", local.text);
    for (token, what) in [
        (None, "no token"),
        (Some("metrics-token-for-the-e2e-tesT"), "a wrong token"),
        (Some(""), "an empty token"),
    ] {
        let refused = get(server.api_from(loopback(2)), token).await;
        assert_eq!(
            refused.status, 401,
            "{what} from another address: {refused:?}"
        );
        assert!(
            !refused.text.contains("callguard_"),
            "{what}: {}",
            refused.text
        );
    }
    let with_token = get(server.api_from(loopback(2)), Some(TOKEN))
        .await
        .expect(200);
    assert!(with_token.text.contains("callguard_http_requests_total"));
    drop(server);

    // The operator's own allow-list replaces the default.
    let server = Server::start_with(
        Deployment::new(Backend::Sqlite),
        &[("CALLGUARD_METRICS_ALLOW", "127.0.0.3, 10.0.0.0/8")],
    )
    .await;
    get(server.api_from(loopback(3)), None).await.expect(200);
    get(server.api(), None)
        .await
        .expect_problem(401, "unauthenticated");
    get(server.api_from(loopback(4)), None)
        .await
        .expect_problem(401, "unauthenticated");
}
