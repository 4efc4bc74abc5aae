//! The OpenAPI document tells the truth: Schemathesis (PyPI, pinned in `scripts/test-all`) reads
//! `/api/v1/openapi.json` from the real binary and sends generated requests to every operation
//! (its examples, coverage and fuzzing phases, valid and invalid data) as nobody and as each role
//! in turn, checking every answer against the document: no 5xx, only documented statuses,
//! documented content types, headers and body schemas. Any failure fails the test, with
//! Schemathesis' report (which reproduces each failure with `curl`).
//!
//! Bounded and repeatable: a fixed seed, a fixed number of examples per operation, no example
//! database, loopback only.
//!
//! Left out, for every caller:
//! - `POST /api/v1/auth/logout` and `DELETE /api/v1/me/sessions/{id}` end the session the run
//!   uses (Schemathesis reuses the ids `GET /api/v1/me/sessions` answered, so it does find its
//!   own); everything after would be a 401 and the run would test nothing as the role. Both
//!   are covered by `signin.rs`, `operations.rs` and `access.rs`;
//! - `GET /api/v1/alerts/stream`, `GET /api/v1/payments/stream`, `GET /api/v1/agents/me/stream`
//!   and `GET /api/v1/queues/stream` are endless event streams, which Schemathesis would wait on
//!   until its request timeout (covered by `alerts.rs`, `payments_desk.rs`, `presence.rs` and
//!   `access.rs`).
//!
//! After each run the test checks that the role's session still works and that the role got
//! successful answers, so a run that lost its session cannot pass by testing only 401s.

use crate::harness::{Backend, Server};
use std::process::{Command, Stdio};

both_backends!(every_answer_matches_the_openapi_document_under_schemathesis);

/// The Schemathesis release whose command line this test speaks (`scripts/test-all` installs it).
const SCHEMATHESIS: &str = "4.32.5";
/// Generated test cases per operation and phase: enough to reach every status each operation
/// can answer, small enough to keep the run to about 20 seconds per caller.
const MAX_EXAMPLES: &str = "15";
/// A fixed seed: the same requests every run.
const SEED: &str = "20240610";
/// The checks that compare answers with the document.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance";
/// Operations no caller's run sends (see the module comment).
const EXCLUDED: &[&str] = &[
    "/api/v1/auth/logout",
    "/api/v1/me/sessions/{id}",
    "/api/v1/alerts/stream",
    "/api/v1/payments/stream",
    "/api/v1/agents/me/stream",
    "/api/v1/queues/stream",
];

fn schemathesis_version() -> Option<String> {
    let out = Command::new("schemathesis")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn every_answer_matches_the_openapi_document_under_schemathesis(backend: Backend) {
    let version = schemathesis_version().unwrap_or_default();
    assert!(
        version.ends_with(SCHEMATHESIS),
        "this test runs Schemathesis {SCHEMATHESIS} (found {version:?}); install it with \
         `python3 -m pip install schemathesis=={SCHEMATHESIS}` or run scripts/test-all"
    );
    let server = Server::start(backend).await;
    let api = server.api();

    // One caller per role, each with its own session: staff made by the CLI, the customer
    // registered by the agent, invited by the CLI and set up in the portal.
    let mut callers: Vec<(String, Option<String>)> = vec![("nobody".into(), None)];
    let mut accounts = Vec::new();
    for role in ["agent", "supervisor", "compliance", "admin"] {
        let account = server.new_account(&format!("fuzz-{role}"), role).await;
        callers.push((role.to_owned(), Some(account.token.clone())));
        accounts.push(account);
    }
    let agent = &accounts[0];
    // A national Do-Not-Call registry, as every real deployment has: without one the check
    // answers 501 (documented), and Schemathesis counts every 5xx as a failure.
    let registry = server.root().join("registry.txt");
    std::fs::write(&registry, "2025550123\n3035550100\n").expect("registry file");
    let imported = server.cli(&["dnc", "import", registry.to_str().expect("a UTF-8 path")]);
    assert!(imported.status.success(), "{}", imported.describe());
    crate::dnc::wait_for_registry(&server, &accounts[1].token, None).await;
    let customer_id = crate::calls::register_demo_customer(&api, agent).await;
    let invite = server.cli(&["customer", "invite", &customer_id]);
    assert!(invite.status.success(), "{}", invite.describe());
    let customer_token =
        crate::portal::portal_set_up(&api, invite.stdout.trim(), &customer_id).await;
    callers.push(("customer".into(), Some(customer_token)));

    let schema = server.url("/api/v1/openapi.json");
    let cert = server.data_dir.join("tls").join("cert.pem");
    let mut failed = Vec::new();
    for (who, token) in &callers {
        let report = server.root().join(format!("schemathesis-{who}.txt"));
        let har = server.root().join(format!("schemathesis-{who}.har"));
        let mut cmd = Command::new("schemathesis");
        cmd.arg("run")
            .arg(&schema)
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--checks", CHECKS])
            .args(["--max-examples", MAX_EXAMPLES])
            .args(["--seed", SEED])
            .args(["--generation-database", "none"])
            .args(["--workers", "1"])
            .args(["--request-timeout", "30"])
            .arg("--tls-verify")
            .arg(&cert)
            .args(["--report", "har", "--report-har-path"])
            .arg(&har)
            .arg("--no-color");
        for path in EXCLUDED {
            cmd.args(["--exclude-path", path]);
        }
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&report).expect("report file"))
            .stderr(Stdio::inherit())
            .current_dir(server.root())
            .env("NO_COLOR", "1");
        let status = tokio::task::spawn_blocking(move || cmd.status())
            .await
            .expect("the schemathesis thread")
            .expect("run schemathesis");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        // The summary (phases, warnings, counts) and the answers by status, for the test's log.
        let summary = text.find("SUMMARY").map_or("", |at| &text[at..]);
        let statuses = answers_by_status(&har);
        eprintln!("===== schemathesis as {who} on {backend:?}: {statuses:?} =====\n{summary}");
        // The run spoke as the role: its session survived, and the role got answers only a
        // signed-in caller gets.
        if let Some(t) = token {
            api.me(t).await.expect(200);
            assert!(
                statuses
                    .iter()
                    .any(|(s, n)| (200..300).contains(s) && *n > 0),
                "as {who}: no successful answer at all: {statuses:?}"
            );
        }
        if !status.success() {
            failed.push(format!(
                "===== schemathesis as {who} ({status}) =====\n{text}"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "answers that do not match the OpenAPI document:\n{}",
        failed.join("\n")
    );
}

/// How many answers of each status the HAR file records.
fn answers_by_status(har: &std::path::Path) -> std::collections::BTreeMap<u16, usize> {
    let text = std::fs::read_to_string(har).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut counts = std::collections::BTreeMap::new();
    for entry in doc["log"]["entries"].as_array().into_iter().flatten() {
        let status = entry["response"]["status"].as_u64().unwrap_or_default();
        *counts
            .entry(u16::try_from(status).unwrap_or(0))
            .or_insert(0) += 1;
    }
    counts
}
