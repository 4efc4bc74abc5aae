//! Compliance evidence (SPEC C11, issue #14) from outside: every automated control is made to
//! fail on purpose behind the server's back (an account without a second factor, a card number
//! in a log file, an idle account, an interaction past its retention, an edited audit entry, a
//! lost witness) and passes again once the cause is gone; the report is signed and verifies
//! offline, a changed one does not; the PDF renders and holds the control table; only
//! compliance officers reach the report, the manual controls and the breach register; the
//! demo's report passes.

use crate::harness::{suffix, unix_now, Backend, Deployment, Ran, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

both_backends!(
    each_automated_control_fails_on_purpose_and_passes_again,
    the_report_is_signed_verifies_offline_renders_as_pdf_and_only_compliance_reaches_it,
    manual_controls_and_breaches_fail_when_overdue_and_pass_once_handled,
    the_demo_report_passes_every_automated_control,
);

/// Direct access to a deployment's database, behind the server's back.
enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl Db {
    async fn open(d: &Deployment) -> Self {
        match &d.pg {
            None => {
                let c = rusqlite::Connection::open(d.data_dir.join("callguard.db")).unwrap();
                c.busy_timeout(Duration::from_secs(10)).unwrap();
                Db::Sqlite(c)
            }
            Some(pg) => Db::Postgres(pg.connect().await),
        }
    }

    async fn batch(&self, sql: &str) {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).unwrap(),
            Db::Postgres(c) => c.batch_execute(sql).await.unwrap(),
        }
    }

    async fn text(&self, sql: &str) -> String {
        match self {
            Db::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Db::Postgres(c) => c.query_one(sql, &[]).await.unwrap().get(0),
        }
    }
}

/// `callguard ARGS` with the deployment's environment plus `env`.
fn cli(d: &Deployment, env: &[(&str, String)], args: &[&str]) -> Ran {
    let mut cmd = d.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    d.run(cmd)
}

/// `callguard compliance report --format json`: the run and the parsed report.
fn report(d: &Deployment, env: &[(&str, String)]) -> (Ran, Value) {
    let out = d.root().join(format!("report-{}.json", suffix()));
    let ran = cli(
        d,
        env,
        &[
            "compliance",
            "report",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&out)
        .unwrap_or_else(|_| panic!("no report written: {}", ran.describe()));
    (ran, serde_json::from_str(&text).unwrap())
}

fn control<'a>(r: &'a Value, framework: &str, id: &str) -> &'a Value {
    r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["framework"] == framework && c["id"] == id)
        .unwrap_or_else(|| panic!("no control {framework} {id} in {r}"))
}

fn status(r: &Value, framework: &str, id: &str) -> String {
    control(r, framework, id)["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every control that is neither manual nor not applicable passes.
fn all_automated_pass(r: &Value) {
    for c in r["controls"].as_array().unwrap() {
        assert!(
            matches!(
                c["status"].as_str(),
                Some("pass" | "manual" | "not_applicable")
            ),
            "control {} {} fails: {}",
            c["framework"],
            c["id"],
            c["evidence"]
        );
    }
}

fn expect_fail(ran: &Ran, r: &Value, controls: &[(&str, &str)]) {
    assert_eq!(
        ran.status.code(),
        Some(1),
        "a failing control exits 1: {}",
        ran.describe()
    );
    for (fw, id) in controls {
        assert_eq!(
            status(r, fw, id),
            "fail",
            "{fw} {id}: {}",
            control(r, fw, id)
        );
    }
}

fn expect_pass(ran: &Ran, r: &Value, controls: &[(&str, &str)]) {
    for (fw, id) in controls {
        assert_eq!(
            status(r, fw, id),
            "pass",
            "{fw} {id}: {}",
            control(r, fw, id)
        );
    }
    all_automated_pass(r);
    assert!(ran.status.success(), "{}", ran.describe());
}

async fn each_automated_control_fails_on_purpose_and_passes_again(backend: Backend) {
    let deployment = Deployment::new(backend);
    let log = deployment.root().join("app.log");
    std::fs::write(&log, "callguard started\n").unwrap();
    let env = vec![("CALLGUARD_COMPLIANCE_SCAN_PATHS", log.display().to_string())];
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(deployment, &env_refs).await;
    let _admin = server.admin_session().await;
    let nomfa = server
        .new_account(&format!("nomfa-{}", suffix()), "agent")
        .await;
    let idle = server
        .new_account(&format!("idle-{}", suffix()), "supervisor")
        .await;
    let (ran, r) = report(&server, &env);
    expect_pass(
        &ran,
        &r,
        &[("pci", "8.4.2"), ("pci", "3.5.1"), ("iso27001", "8.16")],
    );
    let db = Db::open(&server).await;

    // An account without a second factor, injected with SQL.
    db.batch(&format!(
        "CREATE TABLE saved_factor AS SELECT id, totp_sealed FROM users WHERE username = '{}';
         UPDATE users SET totp_sealed = NULL WHERE username = '{}'",
        nomfa.username, nomfa.username
    ))
    .await;
    let (ran, r) = report(&server, &env);
    expect_fail(
        &ran,
        &r,
        &[
            ("pci", "8.4.2"),
            ("pci", "8.4.3"),
            ("pci", "8.5.1"),
            ("iso27001", "8.5"),
        ],
    );
    assert_eq!(
        control(&r, "pci", "8.4.2")["evidence"]["without_second_factor"],
        1
    );
    assert_eq!(
        status(&r, "pci", "8.4.1"),
        "pass",
        "the account is no admin"
    );
    db.batch(
        "UPDATE users SET totp_sealed = (SELECT s.totp_sealed FROM saved_factor s WHERE s.id = users.id)
           WHERE id IN (SELECT id FROM saved_factor);
         DROP TABLE saved_factor",
    )
    .await;
    let (ran, r) = report(&server, &env);
    expect_pass(&ran, &r, &[("pci", "8.4.2")]);

    // A card number written into a log file.
    std::fs::write(
        &log,
        "callguard started\npayment 4111 1111 1111 1111 taken\n",
    )
    .unwrap();
    let (ran, r) = report(&server, &env);
    expect_fail(&ran, &r, &[("pci", "3.5.1"), ("iso27001", "8.12")]);
    assert_eq!(
        control(&r, "pci", "3.5.1")["evidence"]["file_lines_with_card_numbers"],
        1
    );
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains("4111"),
        "the report never repeats the number it found"
    );
    std::fs::write(&log, "callguard started\n").unwrap();
    let (ran, r) = report(&server, &env);
    expect_pass(&ran, &r, &[("pci", "3.5.1")]);

    // An interaction past its retention period, then the purge.
    let old = unix_now() as i64 - 800 * 86_400;
    db.batch(&format!(
        "INSERT INTO interactions (id, version, agent_id, customer_id, channel, direction, from_hash, status, started_at, ended_at, state)
         VALUES ('old-call', 1, 'agent', NULL, 'phone', 'inbound', NULL, 'ended', {old}, {}, '{{}}')",
        old + 60
    ))
    .await;
    let (ran, r) = report(&server, &env);
    expect_fail(&ran, &r, &[("gdpr", "5(1)(e)"), ("iso27001", "8.10")]);
    assert_eq!(
        control(&r, "gdpr", "5(1)(e)")["evidence"]["overdue_interactions"],
        1
    );
    let purge = cli(&server, &env, &["compliance", "retention"]);
    assert!(purge.status.success(), "{}", purge.describe());
    assert!(
        purge.stdout.contains("removed 1 interactions"),
        "{}",
        purge.stdout
    );
    let (ran, r) = report(&server, &env);
    expect_pass(&ran, &r, &[("gdpr", "5(1)(e)")]);
    let e = &control(&r, "gdpr", "5(1)(e)")["evidence"];
    assert_eq!(e["last_run_removed"]["interactions"], 1, "{e}");

    // An edited audit entry.
    db.batch(
        "CREATE TABLE saved_entry AS SELECT idx, entry FROM audit_entries WHERE idx = 2;
         UPDATE audit_entries SET entry = entry || ' ' WHERE idx = 2",
    )
    .await;
    let (ran, r) = report(&server, &env);
    expect_fail(&ran, &r, &[("pci", "10.3.2"), ("iso27001", "8.15")]);
    db.batch(
        "UPDATE audit_entries SET entry = (SELECT entry FROM saved_entry) WHERE idx = 2;
         DROP TABLE saved_entry",
    )
    .await;
    let (ran, r) = report(&server, &env);
    expect_pass(&ran, &r, &[("pci", "10.3.2")]);

    // A lost witness: the checkpoint the report is taken at is nowhere outside the database.
    let witness = server.data_dir.join("witness").join("checkpoints.jsonl");
    tokio::time::sleep(Duration::from_secs(2)).await; // every entry is in a checkpoint by now
    let kept = std::fs::read_to_string(&witness).unwrap();
    std::fs::remove_file(&witness).unwrap();
    let (ran, r) = report(&server, &env);
    expect_fail(&ran, &r, &[("pci", "10.3.3")]);
    assert_eq!(
        control(&r, "pci", "10.3.3")["evidence"]["checkpoint_in_witness_file"],
        false
    );
    let since = std::fs::read_to_string(&witness).unwrap_or_default();
    std::fs::write(&witness, format!("{kept}{since}")).unwrap();
    let (ran, r) = report(&server, &env);
    expect_pass(&ran, &r, &[("pci", "10.3.3")]);

    // An idle account: caught while the server is down, disabled by the server once it runs.
    drop(db);
    let deployment = server.stop_keeping_data();
    let db = Db::open(&deployment).await;
    db.batch(&format!(
        "UPDATE users SET last_sign_in_at = {old}, activated_at = {old}, created_at = {old} WHERE username = '{}'",
        idle.username
    ))
    .await;
    let (ran, r) = report(&deployment, &env);
    expect_fail(&ran, &r, &[("pci", "8.2.6"), ("iso27001", "5.18")]);
    assert_eq!(
        control(&r, "pci", "8.2.6")["evidence"]["active_accounts_idle_beyond_limit"],
        1
    );
    let server = Server::start_with(deployment, &env_refs).await;
    let started = Instant::now();
    while db
        .text(&format!(
            "SELECT status FROM users WHERE username = '{}'",
            idle.username
        ))
        .await
        != "disabled"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the dormant account stays active"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ran, r) = report(&server, &env);
    expect_pass(&ran, &r, &[("pci", "8.2.6")]);
}

async fn the_report_is_signed_verifies_offline_renders_as_pdf_and_only_compliance_reaches_it(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let officer = server
        .new_account(&format!("officer-{}", suffix()), "compliance")
        .await;
    for role in ["agent", "supervisor", "admin"] {
        let other = server
            .new_account(&format!("{role}-{}", suffix()), role)
            .await;
        api.get("/api/v1/compliance/report", Some(&other.token))
            .await
            .expect_problem(403, "forbidden");
        api.get("/api/v1/compliance/runs", Some(&other.token))
            .await
            .expect_problem(403, "forbidden");
    }
    api.get("/api/v1/compliance/report", None).await.expect(401);
    api.get(
        "/api/v1/compliance/report?framework=sox",
        Some(&officer.token),
    )
    .await
    .expect(400);

    let r = api
        .get(
            "/api/v1/compliance/report?framework=pci",
            Some(&officer.token),
        )
        .await
        .expect(200)
        .json();
    let controls = r["controls"].as_array().unwrap();
    assert!(controls.len() >= 20 && controls.iter().all(|c| c["framework"] == "pci"));
    for c in controls {
        for k in ["framework", "id", "title", "status", "evidence"] {
            assert!(!c[k].is_null(), "{k} missing in {c}");
        }
    }
    assert!(
        r["checkpoint"]["size"].as_u64().unwrap() > 0,
        "{}",
        r["checkpoint"]
    );

    // The signature verifies offline with the log's verifier key; a changed report does not.
    let key = api
        .get("/api/v1/audit/verifier-key", Some(&officer.token))
        .await
        .expect(200);
    let key = key.text.trim().to_owned();
    let file = server.root().join("api-report.json");
    std::fs::write(&file, serde_json::to_vec(&r).unwrap()).unwrap();
    let ok = server.cli(&[
        "compliance",
        "verify",
        file.to_str().unwrap(),
        "--verifier-key",
        &key,
    ]);
    assert!(
        ok.status.success() && ok.stdout.contains("compliance verify: OK"),
        "{}",
        ok.describe()
    );
    let mut changed = r.clone();
    changed["controls"][0]["status"] = json!("pass");
    changed["controls"][0]["title"] = json!("edited");
    let bad = server.root().join("changed-report.json");
    std::fs::write(&bad, serde_json::to_vec(&changed).unwrap()).unwrap();
    let refused = server.cli(&[
        "compliance",
        "verify",
        bad.to_str().unwrap(),
        "--verifier-key",
        &key,
    ]);
    assert!(!refused.status.success(), "{}", refused.describe());
    assert!(
        refused.stderr.contains("changed after it was signed"),
        "{}",
        refused.describe()
    );

    // The PDF renders and holds the control table.
    let pdf = server.root().join("report.pdf");
    let ran = server.cli(&[
        "compliance",
        "report",
        "--format",
        "pdf",
        "--out",
        pdf.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{}", ran.describe());
    let png = server.root().join("page");
    let rendered = Command::new("pdftoppm")
        .args(["-png", "-r", "40", "-f", "1", "-l", "1"])
        .arg(&pdf)
        .arg(&png)
        .output()
        .expect("pdftoppm (poppler-utils) must be installed");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let page = std::fs::read_dir(server.root())
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name().to_string_lossy().starts_with("page")
                && e.file_name().to_string_lossy().ends_with(".png")
        })
        .expect("a rendered page");
    assert!(page.metadata().unwrap().len() > 1000);
    let text = Command::new("pdftotext")
        .arg("-layout")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for wanted in [
        "Callguard compliance report",
        "PCI DSS v4.0.1",
        "GDPR",
        "ISO/IEC 27001:2022",
        "8.4.2",
        "PASS",
        "audit checkpoint",
    ] {
        assert!(text.contains(wanted), "{wanted:?} not in the PDF:\n{text}");
    }

    // Text and HTML forms; the runs make the trend.
    let ran = server.cli(&["compliance", "report", "--framework", "gdpr"]);
    assert!(
        ran.stdout.contains("5(1)(e)") && !ran.stdout.contains("8.4.2"),
        "{}",
        ran.stdout
    );
    let runs = api
        .get("/api/v1/compliance/runs", Some(&officer.token))
        .await
        .expect(200)
        .json();
    assert!(runs["runs"].as_array().unwrap().len() >= 3, "{runs}");
}

async fn manual_controls_and_breaches_fail_when_overdue_and_pass_once_handled(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let officer = server
        .new_account(&format!("officer-{}", suffix()), "compliance")
        .await;
    let agent = server
        .new_account(&format!("agent-{}", suffix()), "agent")
        .await;
    let day = |days_ago: i64| {
        let t = time::OffsetDateTime::now_utc() - time::Duration::days(days_ago);
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    };
    let manual = |control: &str, on: String, note: &str| json!({"control": control, "performed_on": on, "note": note});
    api.post(
        "/api/v1/compliance/manual",
        Some(&agent.token),
        manual("access_review", day(1), "x"),
    )
    .await
    .expect_problem(403, "forbidden");
    for (body, why) in [
        (manual("bogus", day(1), "x"), "unknown control"),
        (
            manual("access_review", "yesterday".into(), "x"),
            "not a date",
        ),
        (manual("access_review", day(-3), "x"), "in the future"),
        (manual("access_review", day(1), ""), "empty note"),
        (
            manual("access_review", day(1), "card 4111111111111111"),
            "a card number",
        ),
    ] {
        api.post("/api/v1/compliance/manual", Some(&officer.token), body)
            .await
            .expect_problem(422, "validation-failed");
        let _ = why;
    }
    let before = api
        .get("/api/v1/compliance/manual", Some(&officer.token))
        .await
        .expect(200)
        .json();
    assert_eq!(
        before["records"],
        json!([]),
        "refused records change nothing"
    );

    // An access review 200 days ago is overdue (183 days): 7.2.4 fails until a new one.
    api.post(
        "/api/v1/compliance/manual",
        Some(&officer.token),
        manual("access_review", day(200), "quarterly review"),
    )
    .await
    .expect(201);
    let r = api
        .get("/api/v1/compliance/report", Some(&officer.token))
        .await
        .expect(200)
        .json();
    assert_eq!(
        status(&r, "pci", "7.2.4"),
        "fail",
        "{}",
        control(&r, "pci", "7.2.4")
    );
    api.post(
        "/api/v1/compliance/manual",
        Some(&officer.token),
        manual("access_review", day(0), "all 7 accounts reviewed"),
    )
    .await
    .expect(201);
    let r = api
        .get("/api/v1/compliance/report", Some(&officer.token))
        .await
        .expect(200)
        .json();
    assert_eq!(status(&r, "pci", "7.2.4"), "manual");
    assert_eq!(
        control(&r, "pci", "7.2.4")["evidence"]["last_performed_on"],
        day(0)
    );

    // A breach detected 100 hours ago and not notified fails art. 33.
    let detected = time::OffsetDateTime::now_utc() - time::Duration::hours(100);
    let detected = detected
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    api.post(
        "/api/v1/compliance/breaches",
        Some(&officer.token),
        json!({"summary": "a laptop was lost", "detected_at": "soon"}),
    )
    .await
    .expect_problem(422, "validation-failed");
    let b = api
        .post(
            "/api/v1/compliance/breaches",
            Some(&officer.token),
            json!({"summary": "a laptop was lost", "detected_at": detected}),
        )
        .await
        .expect(201)
        .json();
    let id = b["id"].as_str().unwrap().to_owned();
    let r = api
        .get(
            "/api/v1/compliance/report?framework=gdpr",
            Some(&officer.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(status(&r, "gdpr", "33"), "fail");
    let close = format!("/api/v1/compliance/breaches/{id}/close");
    api.post(
        &close,
        Some(&officer.token),
        json!({"notified_at": detected, "no_notice_reason": "x"}),
    )
    .await
    .expect_problem(422, "validation-failed");
    api.post(
        &close,
        Some(&officer.token),
        json!({"no_notice_reason": "the disk was encrypted: no risk to people"}),
    )
    .await
    .expect(204);
    api.post(
        &close,
        Some(&officer.token),
        json!({"no_notice_reason": "again"}),
    )
    .await
    .expect(409);
    api.post(
        "/api/v1/compliance/breaches/nope/close",
        Some(&officer.token),
        json!({"no_notice_reason": "x"}),
    )
    .await
    .expect(404);
    let r = api
        .get(
            "/api/v1/compliance/report?framework=gdpr",
            Some(&officer.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        status(&r, "gdpr", "33"),
        "pass",
        "{}",
        control(&r, "gdpr", "33")
    );

    // Each change is in the log, without the note or the summary.
    let log = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&officer.token))
        .await
        .expect(200)
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "compliance.manual_record",
        "compliance.breach_record",
        "compliance.breach_close",
        "compliance.report",
    ] {
        assert!(actions.contains(&a), "{a} not logged");
    }
    let text = log.to_string();
    assert!(
        !text.contains("laptop") && !text.contains("all 7 accounts"),
        "free text stays out of the log"
    );
}

/// `callguard demo` on a fresh directory, left running while its report is taken.
async fn the_demo_report_passes_every_automated_control(backend: Backend) {
    let deployment = Deployment::new(backend);
    let dir: PathBuf = deployment.root().join("demo");
    let banner = deployment.root().join("demo.stdout");
    let mut cmd = deployment.command(&["demo", "--data-dir", dir.to_str().unwrap()]);
    cmd.stdout(std::fs::File::create(&banner).unwrap());
    cmd.stderr(std::fs::File::create(banner.with_extension("stderr")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while !demo_ready(&banner) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the demo exited with {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no demo banner"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut run = deployment.command(&["compliance", "report"]);
    run.env("CALLGUARD_DATA_DIR", &dir);
    let ran = deployment.run(run);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ran.status.success(), "{}", ran.describe());
    assert!(ran.stdout.contains(" 0 fail"), "{}", ran.stdout);
}

fn demo_ready(banner: &Path) -> bool {
    std::fs::read_to_string(banner)
        .unwrap_or_default()
        .lines()
        .any(|l| l.len() > 10 && l.bytes().all(|b| b == b'='))
}
