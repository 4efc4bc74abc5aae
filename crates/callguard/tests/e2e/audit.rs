//! The tamper-evident audit log (SPEC C5, issue #3) seen from outside: what the compliance role
//! reads, `callguard audit verify` on an untouched log and after edits, deletions, reorders and
//! truncations made behind the server's back, proofs and checkpoints checked by an independent
//! verifier (JavaScript, tests/browser/rfc9162.mjs, sharing no code with the server), a kill -9
//! under load, and two nodes appending to one PostgreSQL log.

use crate::harness::{loopback, suffix, Backend, Deployment, Ran, Server};
use callguard_core::audit::merkle::Frontier;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both_backends!(
    sign_ins_and_admin_actions_are_in_the_log,
    verify_passes_on_an_untouched_log_and_names_the_first_bad_index_after_tampering,
    proofs_and_checkpoints_check_out_with_an_independent_verifier,
    a_crash_loses_no_acknowledged_action_and_leaves_no_change_without_its_entry,
);

/// The members every entry carries (PCI DSS 10.2.2), and no others.
const ENTRY_FIELDS: [&str; 9] = [
    "index",
    "time",
    "actor",
    "action",
    "target",
    "interaction",
    "outcome",
    "source",
    "details",
];

// ---- helpers -------------------------------------------------------------------------------

/// Entries `start..end` through `GET /api/v1/audit`, page by page (each read appends an
/// `audit.read` entry of its own, beyond `end`).
pub async fn read_log(server: &Server, token: &str, start: u64, end: u64) -> Vec<Value> {
    let api = server.api();
    let mut out: Vec<Value> = Vec::new();
    while start + (out.len() as u64) < end {
        let from = start + out.len() as u64;
        let limit = (end - from).min(1000);
        let page = api
            .get(
                &format!("/api/v1/audit?start={from}&limit={limit}"),
                Some(token),
            )
            .await
            .expect(200)
            .json();
        assert!(
            page["tree_size"].as_u64().unwrap() >= end,
            "tree_size below {end}: {page}"
        );
        let entries = page["entries"].as_array().unwrap();
        assert!(!entries.is_empty(), "no entries from {from}: {page}");
        out.extend(
            entries
                .iter()
                .filter(|e| e["index"].as_u64().unwrap() < end)
                .cloned(),
        );
    }
    out
}

/// The tree size of a signed checkpoint note (its second line).
pub fn note_size(note: &str) -> u64 {
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("not a checkpoint note: {note:?}"))
}

/// `kill -SIGNAL pid` and wait for the process to end.
async fn signal_and_wait(server: &mut Server, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal} failed");
    server
        .wait_for_exit(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "callguard did not end within 30 s of {signal}\n{}",
                server.logs()
            )
        })
}

/// The tree sizes in a witness file, checking that each line's `size` is its note's.
fn witness_sizes(witness_dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(witness_dir.join("checkpoints.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                note_size(v["note"].as_str().unwrap()),
                v["size"].as_u64().unwrap(),
                "witness line {l}"
            );
            v["size"].as_u64().unwrap()
        })
        .collect()
}

/// True when `line` names `index` as "entry N" or "index N".
fn names_index(line: &str, index: u64) -> bool {
    ["entry ", "index "].iter().any(|prefix| {
        let pattern = format!("{prefix}{index}");
        line.match_indices(&pattern)
            .any(|(at, _)| !line[at + pattern.len()..].starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Asserts that `audit verify` failed and that its FAILED line names `index`.
#[track_caller]
fn assert_fails_naming(ran: &Ran, index: u64, what: &str) {
    assert!(
        !ran.status.success(),
        "{what}: `audit verify` must fail: {}",
        ran.describe()
    );
    let all = format!("{}\n{}", ran.stdout, ran.stderr);
    let line = all
        .lines()
        .find(|l| l.contains("FAILED"))
        .unwrap_or_else(|| panic!("{what}: no FAILED line: {}", ran.describe()));
    eprintln!("{what}: {line}");
    assert!(
        names_index(line, index),
        "{what}: the failure must name index {index}: {line}"
    );
}

#[track_caller]
fn assert_verifies(ran: &Ran, what: &str) {
    assert!(
        ran.status.success() && ran.stdout.contains("OK"),
        "{what}: `audit verify` must pass: {}",
        ran.describe()
    );
}

/// Copies a directory tree, permissions included.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A copy of a test database (`CREATE DATABASE … TEMPLATE …`), dropped at the end.
struct PgCopy {
    admin_url: String,
    name: String,
    url: String,
}

impl PgCopy {
    fn of(original_url: &str) -> Self {
        let mut url = url::Url::parse(original_url).unwrap();
        let original = url.path().trim_start_matches('/').to_owned();
        url.set_path("/postgres");
        let admin_url = url.to_string();
        let name = format!("{original}_copy_{}", suffix());
        psql(
            &admin_url,
            &format!("CREATE DATABASE {name} TEMPLATE {original}"),
        )
        .unwrap_or_else(|e| panic!("copying the database {original}: {e}"));
        url.set_path(&format!("/{name}"));
        Self {
            admin_url,
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgCopy {
    fn drop(&mut self) {
        if let Err(e) = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("warning: could not drop {}: {e}", self.name);
        }
    }
}

/// Direct access to a deployment's database, behind the server's back.
enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ),
}

impl Db {
    async fn open(data_dir: &Path, pg_url: Option<&str>) -> Self {
        match pg_url {
            None => Db::Sqlite(rusqlite::Connection::open(data_dir.join("callguard.db")).unwrap()),
            Some(url) => {
                // Entries acknowledged but not yet indexed (a node killed before its integrator
                // ran, or one still running) get their indexes first, as the next node's
                // integrator or `callguard audit verify` would give them.
                callguard_store::open(Some(url), Path::new("/nonexistent"))
                    .await
                    .unwrap()
                    .integrate()
                    .await
                    .unwrap();
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                Db::Postgres(client, tokio::spawn(conn))
            }
        }
    }

    /// Closes the connection for good (a PostgreSQL database cannot be copied while in use).
    async fn close(self) {
        if let Db::Postgres(client, conn) = self {
            drop(client);
            let _ = conn.await;
        }
    }

    async fn batch(&self, sql: &str) {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).unwrap(),
            Db::Postgres(c, _) => c.batch_execute(sql).await.unwrap(),
        }
    }

    /// A byte-string literal in this database's SQL.
    fn bytes(&self, b: &[u8]) -> String {
        let hex = data_encoding::HEXLOWER.encode(b);
        match self {
            Db::Sqlite(_) => format!("x'{hex}'"),
            Db::Postgres(..) => format!("'\\x{hex}'::bytea"),
        }
    }

    /// Every audit row: (idx, entry text, leaf hash), in index order.
    async fn entries(&self) -> Vec<(i64, String, Vec<u8>)> {
        const SQL: &str = "SELECT idx, entry, leaf_hash FROM audit_entries ORDER BY idx";
        match self {
            Db::Sqlite(c) => c
                .prepare(SQL)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Db::Postgres(c, _) => c
                .query(SQL, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        }
    }

    /// The parsed entries with their row index, checking the row index is the entry's own.
    async fn parsed_entries(&self) -> Vec<Value> {
        self.entries()
            .await
            .into_iter()
            .map(|(idx, text, _)| {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["index"].as_i64(), Some(idx), "row {idx} holds {text}");
                v
            })
            .collect()
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Db::Sqlite(c) => c
                .prepare(sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Db::Postgres(c, _) => c
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        }
    }

    async fn frontier(&self) -> Frontier {
        const SQL: &str = "SELECT frontier FROM audit_head WHERE id = 1";
        let bytes: Vec<u8> = match self {
            Db::Sqlite(c) => c.query_row(SQL, [], |r| r.get(0)).unwrap(),
            Db::Postgres(c, _) => c.query_one(SQL, &[]).await.unwrap().get(0),
        };
        Frontier::from_bytes(&bytes).expect("a well-formed frontier")
    }

    async fn checkpoint_sizes(&self) -> Vec<i64> {
        const SQL: &str = "SELECT size FROM audit_checkpoints ORDER BY size";
        match self {
            Db::Sqlite(c) => c
                .prepare(SQL)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Db::Postgres(c, _) => c
                .query(SQL, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        }
    }
}

/// A copy of a stopped deployment's data, to tamper with: the data directory (keys, witness
/// file, SQLite database) and, on PostgreSQL, the database.
struct DataCopy {
    data_dir: PathBuf,
    pg: Option<PgCopy>,
}

impl DataCopy {
    fn of(deployment: &Deployment, name: &str) -> Self {
        let data_dir = deployment.root().join(format!("copy-{name}"));
        copy_dir(&deployment.data_dir, &data_dir);
        Self {
            data_dir,
            pg: deployment.pg.as_ref().map(|pg| PgCopy::of(&pg.url)),
        }
    }

    async fn db(&self) -> Db {
        Db::open(&self.data_dir, self.pg.as_ref().map(|p| p.url.as_str())).await
    }

    /// `callguard ARGS` on this copy.
    fn cli(&self, deployment: &Deployment, args: &[&str]) -> Ran {
        let mut cmd = deployment.command(args);
        cmd.env("CALLGUARD_DATA_DIR", &self.data_dir);
        if let Some(pg) = &self.pg {
            cmd.env("CALLGUARD_DATABASE_URL", &pg.url);
        }
        deployment.run(cmd)
    }
}

/// The deployment's own database.
async fn db_of(deployment: &Deployment) -> Db {
    Db::open(
        &deployment.data_dir,
        deployment.pg.as_ref().map(|p| p.url.as_str()),
    )
    .await
}

/// Runs the independent verifier (tests/browser/verify-cli.mjs, JavaScript) on `input`;
/// answers its exit code and its verdicts.
pub fn js_verify(input: &Value) -> (i32, Value) {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/browser/verify-cli.mjs")
        .canonicalize()
        .expect("tests/browser/verify-cli.mjs");
    let mut child = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the independent verifier needs Node.js 20 or later as `node` on PATH (or NODE=…)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().unwrap_or(-1);
    let verdict: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "verify-cli.mjs exited {code} without a JSON verdict ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, verdict)
}

fn oks(verdict: &Value, key: &str) -> Vec<bool> {
    verdict[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ok"].as_bool().unwrap())
        .collect()
}

fn flip_bit(b64: &str) -> String {
    let mut bytes = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
    bytes[7] ^= 0x10;
    data_encoding::BASE64.encode(&bytes)
}

/// An admin creates `n` agents through the API; answers their ids.
async fn create_users(server: &Server, admin_token: &str, prefix: &str, n: usize) -> Vec<String> {
    let api = server.api();
    let mut ids = Vec::new();
    for i in 0..n {
        let made = api
            .post(
                "/api/v1/users",
                Some(admin_token),
                json!({"username": format!("{prefix}{i}"), "role": "agent"}),
            )
            .await
            .expect(201)
            .json();
        ids.push(made["id"].as_str().unwrap().to_owned());
    }
    ids
}

// ---- 1. what the log holds -----------------------------------------------------------------

/// After setup, a sign-in, a failed sign-in, a logout and a user created by an admin, the
/// compliance role finds each in the log with the right action, actor, target, outcome and
/// source; no entry holds a password, TOTP secret, token or recovery code; no other role may
/// read the log.
async fn sign_ins_and_admin_actions_are_in_the_log(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let admin = server.admin_session().await;
    let comp = server
        .new_account(&format!("comp-{}", suffix()), "compliance")
        .await;
    let agent = server.new_account("agnes", "agent").await;
    let supervisor = server.new_account("sven", "supervisor").await;
    let admin_ref = format!("user:{}", admin.id);

    let session = api.sign_in(&admin).await;
    let wrong_password = "Quartz lantern drifts 424242 over dry slate";
    server
        .api_from(loopback(7))
        .login(&admin.username, wrong_password)
        .await
        .expect_problem(401, "invalid-credentials");
    // Someone types their password into the username field: it must never be written down.
    let typed_into_username = "mypassword-typed-in-the-wrong-box";
    api.login(typed_into_username, &admin.password)
        .await
        .expect_problem(401, "invalid-credentials");
    api.post("/api/v1/auth/logout", Some(&session), json!({}))
        .await
        .expect(204);
    let made = api
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"username": "nadia", "role": "supervisor"}),
        )
        .await
        .expect(201)
        .json();
    let nadia = made["id"].as_str().unwrap().to_owned();
    let nadia_setup = made["setup_token"].as_str().unwrap().to_owned();

    // Only the compliance role reads the log and its proofs; others are refused, and nobody
    // without a session gets in.
    let audit_paths = [
        "/api/v1/audit",
        "/api/v1/audit?start=0&limit=10",
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/verifier-key",
        "/api/v1/audit/proof/inclusion?index=0&tree_size=1",
        "/api/v1/audit/proof/consistency?first=1&second=2",
    ];
    for path in audit_paths {
        for token in [&admin.token, &agent.token, &supervisor.token] {
            api.get(path, Some(token))
                .await
                .expect_problem(403, "forbidden");
        }
        api.get(path, None)
            .await
            .expect_problem(401, "unauthenticated");
    }

    let answer = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&comp.token))
        .await
        .expect(200);
    let page = answer.json();
    let entries = page["entries"].as_array().unwrap().clone();
    let tree_size = page["tree_size"].as_u64().unwrap();
    assert_eq!(
        entries.len() as u64,
        tree_size,
        "all entries from 0: {page}"
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["index"].as_u64(), Some(i as u64), "{e}");
        let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ENTRY_FIELDS.into_iter().collect::<BTreeSet<_>>(),
            "{e}"
        );
        assert!(
            e["outcome"] == "success" || e["outcome"] == "failure",
            "{e}"
        );
        assert!(
            e["time"]
                .as_str()
                .is_some_and(|t| t.len() >= 20 && t.contains('T')),
            "RFC 3339 time: {e}"
        );
        assert!(e["details"].is_object(), "{e}");
    }
    let find = |action: &str, actor: &str, target: &str, outcome: &str| -> Value {
        entries
            .iter()
            .find(|e| {
                e["action"] == action
                    && e["actor"] == actor
                    && e["target"] == target
                    && e["outcome"] == outcome
            })
            .unwrap_or_else(|| {
                panic!("no {action} by {actor} on {target} ({outcome}) among {entries:#?}")
            })
            .clone()
    };
    let created = find("user.create", "cli", &admin_ref, "success");
    assert_eq!(created["details"]["role"], "admin", "{created}");
    let setup = find("auth.setup", &admin_ref, &admin_ref, "success");
    assert_eq!(setup["source"], "127.0.0.1", "{setup}");
    let signed_in = find("auth.sign_in", &admin_ref, &admin_ref, "success");
    assert_eq!(signed_in["details"]["method"], "totp", "{signed_in}");
    assert_eq!(signed_in["source"], "127.0.0.1", "{signed_in}");
    let failed = find("auth.sign_in", "anonymous", &admin_ref, "failure");
    assert_eq!(
        failed["details"]["reason"], "invalid_credentials",
        "{failed}"
    );
    assert_eq!(
        failed["source"], "127.0.0.7",
        "the failure is logged with its source address: {failed}"
    );
    // The attempt on an unknown name is logged without a target.
    assert!(
        entries.iter().any(|e| e["action"] == "auth.sign_in"
            && e["outcome"] == "failure"
            && e["target"].is_null()),
        "{entries:#?}"
    );
    let signed_out = find("auth.sign_out", &admin_ref, &admin_ref, "success");
    assert!(
        signed_out["index"].as_u64() > signed_in["index"].as_u64(),
        "the sign-out follows the sign-in"
    );
    let created = find(
        "user.create",
        &admin_ref,
        &format!("user:{nadia}"),
        "success",
    );
    assert_eq!(created["details"]["role"], "supervisor", "{created}");
    assert_eq!(created["source"], "127.0.0.1", "{created}");
    // The read itself is the last entry.
    let read = entries.last().unwrap();
    assert_eq!(read["action"], "audit.read", "{read}");
    assert_eq!(read["actor"], format!("user:{}", comp.id), "{read}");

    // No secret in any entry: the raw text of every row in the database, and the API answer.
    let mut secrets: Vec<(String, String)> = vec![
        ("the admin's password".into(), admin.password.clone()),
        ("the compliance password".into(), comp.password.clone()),
        ("the wrong password".into(), wrong_password.into()),
        (
            "a password typed as a username".into(),
            typed_into_username.into(),
        ),
        ("the admin's TOTP secret".into(), admin.totp.base32.clone()),
        (
            "the admin's TOTP secret (hex)".into(),
            data_encoding::HEXLOWER.encode(&admin.totp.bytes),
        ),
        (
            "the compliance TOTP secret".into(),
            comp.totp.base32.clone(),
        ),
        ("the admin's setup session".into(), admin.token.clone()),
        ("the admin's sign-in session".into(), session.clone()),
        ("the compliance session".into(), comp.token.clone()),
        ("the admin's setup token".into(), admin.setup_token.clone()),
        (
            "the compliance setup token".into(),
            comp.setup_token.clone(),
        ),
        ("the API setup token".into(), nadia_setup.clone()),
        ("the setup challenge".into(), admin.setup_challenge.clone()),
    ];
    for (who, codes) in [
        ("admin", &admin.recovery_codes),
        ("compliance", &comp.recovery_codes),
    ] {
        for (i, c) in codes.iter().enumerate() {
            secrets.push((format!("{who} recovery code {i}"), c.clone()));
            secrets.push((
                format!("{who} recovery code {i} without dashes"),
                c.replace('-', ""),
            ));
        }
    }
    let db = db_of(&server).await;
    let rows = db.entries().await;
    assert_eq!(rows.len() as u64, tree_size, "the API showed every row");
    for (idx, text, _) in &rows {
        for (what, secret) in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} is in audit entry {idx}: {text}"
            );
        }
    }
    for (what, secret) in &secrets {
        assert!(
            !answer.text.contains(secret.as_str()),
            "{what} is in GET /api/v1/audit"
        );
    }
}

// ---- 2. verify, and tampering behind the server's back ---------------------------------------

/// ~30 entries, a SIGTERM (final checkpoint), then `audit verify` passes; on fresh copies of the
/// data, an edit, a deletion, a reorder, a truncation and a truncation that also rewrites the
/// head and the checkpoints are each caught, naming the first bad index. An export verifies
/// offline, and fails naming the index when one of its lines is edited.
async fn verify_passes_on_an_untouched_log_and_names_the_first_bad_index_after_tampering(
    backend: Backend,
) {
    let mut server = Server::start(backend).await;
    let admin = server.admin_session().await;
    create_users(&server, &admin.token, "clerk", 30).await;
    let status = signal_and_wait(&mut server, "TERM").await;
    assert!(status.success(), "{status}\n{}", server.logs());
    let deployment = server.stop_keeping_data();

    let (n, frontier, checkpoints) = {
        let db = db_of(&deployment).await;
        let rows = db.entries().await;
        let n = rows.len() as u64;
        for (i, (idx, _, _)) in rows.iter().enumerate() {
            assert_eq!(*idx, i as i64, "contiguous indices");
        }
        let (frontier, checkpoints) = (db.frontier().await, db.checkpoint_sizes().await);
        db.close().await;
        (n, frontier, checkpoints)
    };
    assert!(n >= 32, "about thirty entries: {n}");
    assert_eq!(frontier.size, n);
    // The final checkpoint at shutdown covers every entry, in the database and the witness.
    assert_eq!(
        checkpoints.last().copied(),
        Some(n as i64),
        "{checkpoints:?}"
    );
    let witnessed = witness_sizes(&deployment.data_dir.join("witness"));
    assert_eq!(witnessed.iter().max().copied(), Some(n), "{witnessed:?}");

    let ran = deployment.cli(&["audit", "verify"]);
    assert_verifies(&ran, "the untouched log");
    assert!(
        ran.stdout.contains(&format!("{n} entries")),
        "{}",
        ran.stdout
    );

    // (a) An edited entry.
    {
        let copy = DataCopy::of(&deployment, "edit");
        let db = copy.db().await;
        let text = &db.entries().await[7].1;
        let (from, to) = if text.contains("\"outcome\":\"success\"") {
            ("\"outcome\":\"success\"", "\"outcome\":\"failure\"")
        } else {
            ("\"outcome\":\"failure\"", "\"outcome\":\"success\"")
        };
        assert!(text.contains(from), "{text}");
        db.batch(&format!(
            "UPDATE audit_entries SET entry = replace(entry, '{from}', '{to}') WHERE idx = 7"
        ))
        .await;
        assert_ne!(&db.entries().await[7].1, text, "the edit took");
        db.close().await;
        assert_fails_naming(
            &copy.cli(&deployment, &["audit", "verify"]),
            7,
            "edit of entry 7",
        );
    }
    // (b) A deleted entry.
    {
        let copy = DataCopy::of(&deployment, "delete");
        copy.db()
            .await
            .batch("DELETE FROM audit_entries WHERE idx = 9")
            .await;
        assert_fails_naming(
            &copy.cli(&deployment, &["audit", "verify"]),
            9,
            "deletion of entry 9",
        );
    }
    // (c) Two entries swapped, hashes and all.
    {
        let copy = DataCopy::of(&deployment, "reorder");
        copy.db()
            .await
            .batch(
                "UPDATE audit_entries SET idx = -1 WHERE idx = 11;
                 UPDATE audit_entries SET idx = 11 WHERE idx = 12;
                 UPDATE audit_entries SET idx = 12 WHERE idx = -1;",
            )
            .await;
        assert_fails_naming(
            &copy.cli(&deployment, &["audit", "verify"]),
            11,
            "swap of entries 11 and 12",
        );
    }
    // (d) The last five entries cut off.
    let keep = n - 5;
    {
        let copy = DataCopy::of(&deployment, "truncate");
        copy.db()
            .await
            .batch(&format!("DELETE FROM audit_entries WHERE idx >= {keep}"))
            .await;
        assert_fails_naming(
            &copy.cli(&deployment, &["audit", "verify"]),
            keep,
            &format!("truncation to {keep} entries"),
        );
    }
    // (e) A careful truncation: the entries, their tree nodes, the head rewritten to the
    // frontier of the shorter tree and the database checkpoints above it are all gone. The
    // database is now self-consistent; the witness file outside it still knows better.
    {
        let copy = DataCopy::of(&deployment, "rewrite");
        let db = copy.db().await;
        let rows = db.entries().await;
        let mut shorter = Frontier::default();
        for (_, _, leaf) in &rows[..keep as usize] {
            shorter.append(leaf.as_slice().try_into().unwrap());
        }
        db.batch(&format!(
            "DELETE FROM audit_entries WHERE idx >= {keep};
             DELETE FROM audit_nodes WHERE ((idx + 1) << level) > {keep};
             DELETE FROM audit_checkpoints WHERE size > {keep};
             UPDATE audit_head SET frontier = {} WHERE id = 1;",
            db.bytes(&shorter.to_bytes())
        ))
        .await;
        assert_eq!(db.frontier().await, shorter);
        assert!(db
            .checkpoint_sizes()
            .await
            .iter()
            .all(|s| *s <= keep as i64));
        db.close().await;
        assert_fails_naming(
            &copy.cli(&deployment, &["audit", "verify"]),
            keep,
            "truncation with the head and checkpoints rewritten",
        );
    }
    // (f) A damaged tree node: the entries are intact but a node that inclusion proofs are
    // served from is not. Verify names the node and the first entry it covers.
    {
        let copy = DataCopy::of(&deployment, "node");
        let db = copy.db().await;
        db.batch(&format!(
            "UPDATE audit_nodes SET hash = {} WHERE level = 2 AND idx = 3",
            db.bytes(&[0u8; 32])
        ))
        .await;
        db.close().await;
        let ran = copy.cli(&deployment, &["audit", "verify"]);
        assert!(
            !ran.status.success(),
            "a damaged node must fail: {}",
            ran.describe()
        );
        assert!(
            ran.stderr.contains("level 2, index 3") && ran.stderr.contains("from index 12"),
            "{}",
            ran.describe()
        );
    }

    // An export verifies offline, with the key it names or one given explicitly.
    let export = deployment.root().join("audit-export.jsonl");
    let exported = deployment.cli(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", exported.describe());
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("\"type\":\"entry\""))
            .count() as u64,
        n,
        "every entry is exported"
    );
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    let key = header["verifier_key"].as_str().unwrap().to_owned();
    let export_arg = export.to_str().unwrap();
    assert_verifies(
        &deployment.cli(&["audit", "verify", "--export", export_arg]),
        "the export",
    );
    assert_verifies(
        &deployment.cli(&[
            "audit",
            "verify",
            "--export",
            export_arg,
            "--verifier-key",
            &key,
        ]),
        "the export with its key given",
    );
    // Another key does not vouch for these checkpoints.
    let stranger = callguard_core::audit::note::NoteSigner::generate("localhost/callguard-audit")
        .unwrap()
        .verifier_key();
    let ran = deployment.cli(&[
        "audit",
        "verify",
        "--export",
        export_arg,
        "--verifier-key",
        &stranger,
    ]);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(ran.stderr.contains("FAILED"), "{}", ran.describe());

    // One line of the export edited: entry 7 says the opposite outcome.
    let edit_export = |name: &str, rehash: bool| -> PathBuf {
        let edited: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                if v["type"] != "entry" || v["entry"]["index"] != 7 {
                    return (*l).to_owned();
                }
                let flipped = if v["entry"]["outcome"] == "success" {
                    "failure"
                } else {
                    "success"
                };
                v["entry"]["outcome"] = json!(flipped);
                if rehash {
                    let text = callguard_core::audit::jcs::canonical(&v["entry"]).unwrap();
                    let leaf = callguard_core::audit::merkle::leaf_hash(text.as_bytes());
                    v["leaf_hash"] = json!(data_encoding::BASE64.encode(&leaf));
                }
                v.to_string()
            })
            .collect();
        assert_ne!(edited, lines, "the edit took");
        let path = deployment.root().join(name);
        std::fs::write(&path, edited.join("\n") + "\n").unwrap();
        path
    };
    let edited = edit_export("audit-export-edited.jsonl", false);
    assert_fails_naming(
        &deployment.cli(&["audit", "verify", "--export", edited.to_str().unwrap()]),
        7,
        "an export with entry 7 edited",
    );
    // Rewriting the line's leaf hash too does not help: the signed roots no longer match.
    let rehashed = edit_export("audit-export-rehashed.jsonl", true);
    let ran = deployment.cli(&["audit", "verify", "--export", rehashed.to_str().unwrap()]);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(ran.stderr.contains("FAILED"), "{}", ran.describe());

    // None of this touched the original, which still verifies.
    assert_verifies(
        &deployment.cli(&["audit", "verify"]),
        "the original after all",
    );
}

// ---- 3. proofs and checkpoints, independently -----------------------------------------------

/// Every entry's inclusion proof at two signed checkpoints, the consistency proof between them
/// and from every earlier tree size, all checked by the JavaScript verifier (RFC 8785, RFC 9162
/// §2.1.3.2 and §2.1.4.2, C2SP signed notes with Ed25519), which shares no code with the
/// server; a forged entry, a flipped proof hash and an edited note are rejected by it.
async fn proofs_and_checkpoints_check_out_with_an_independent_verifier(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let admin = server.admin_session().await;
    let comp = server
        .new_account(&format!("comp-{}", suffix()), "compliance")
        .await;
    let t = Some(comp.token.as_str());
    create_users(&server, &admin.token, "early", 5).await;
    let first = api.get("/api/v1/audit/checkpoint", t).await.expect(200);
    assert!(
        first
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        first.headers
    );
    let first_note = first.text;
    create_users(&server, &admin.token, "later", 9).await;
    api.login(&admin.username, "not the password, certainly")
        .await
        .expect(401);
    let second_note = api
        .get("/api/v1/audit/checkpoint", t)
        .await
        .expect(200)
        .text;
    let (m, n) = (note_size(&first_note), note_size(&second_note));
    assert!(0 < m && m < n, "{m} < {n}");
    let key = api
        .get("/api/v1/audit/verifier-key", t)
        .await
        .expect(200)
        .text;
    let entries = read_log(&server, &comp.token, 0, n).await;
    assert_eq!(entries.len() as u64, n);

    let inclusion = |index: u64, size: u64| {
        let api = &api;
        async move {
            api.get(
                &format!("/api/v1/audit/proof/inclusion?index={index}&tree_size={size}"),
                t,
            )
            .await
            .expect(200)
            .json()
        }
    };
    let consistency = |first: u64, second: u64| {
        let api = &api;
        async move {
            api.get(
                &format!("/api/v1/audit/proof/consistency?first={first}&second={second}"),
                t,
            )
            .await
            .expect(200)
            .json()
        }
    };
    let mut inclusions = Vec::new();
    for i in 0..n {
        inclusions.push(inclusion(i, n).await);
    }
    for i in 0..m {
        inclusions.push(inclusion(i, m).await);
    }
    let mut consistencies = vec![consistency(m, n).await];
    for k in 1..n {
        consistencies.push(consistency(k, n).await);
    }
    let input = json!({
        "verifier_key": key,
        "checkpoints": [first_note, second_note],
        "entries": entries,
        "inclusion": inclusions,
        "consistency": consistencies,
    });
    let (code, verdict) = js_verify(&input);
    assert_eq!(
        code, 0,
        "the independent verifier rejects the log: {verdict:#}"
    );
    assert_eq!(verdict["ok"], true);
    assert_eq!(oks(&verdict, "checkpoints"), vec![true, true], "{verdict}");
    assert_eq!(
        oks(&verdict, "roots"),
        vec![true, true],
        "both signed roots are the Merkle tree hash of the entries: {verdict}"
    );
    assert_eq!(oks(&verdict, "inclusion").len() as u64, n + m);
    assert_eq!(oks(&verdict, "consistency").len() as u64, n);

    // Forgeries, each rejected on its own: entry 3 with one field changed, a flipped bit in the
    // inclusion proof of entry 5, a flipped bit in the consistency proof, an edited note.
    let mut forged_entries = entries.clone();
    let outcome = if forged_entries[3]["outcome"] == "success" {
        "failure"
    } else {
        "success"
    };
    forged_entries[3]["outcome"] = json!(outcome);
    let mut flipped_inclusion = inclusion(5, n).await;
    flipped_inclusion["hashes"][0] =
        json!(flip_bit(flipped_inclusion["hashes"][0].as_str().unwrap()));
    let mut flipped_consistency = consistency(m, n).await;
    let last = flipped_consistency["hashes"].as_array().unwrap().len() - 1;
    flipped_consistency["hashes"][last] = json!(flip_bit(
        flipped_consistency["hashes"][last].as_str().unwrap()
    ));
    let edited_note = second_note.replacen(&format!("\n{n}\n"), &format!("\n{}\n", n + 1), 1);
    let input = json!({
        "verifier_key": key,
        "checkpoints": [first_note, second_note, edited_note],
        "entries": forged_entries,
        "inclusion": [inclusion(3, n).await, flipped_inclusion, inclusion(6, n).await],
        "consistency": [flipped_consistency, consistency(m, n).await],
    });
    let (code, verdict) = js_verify(&input);
    assert_eq!(code, 1, "{verdict:#}");
    assert_eq!(verdict["ok"], false);
    assert_eq!(
        oks(&verdict, "checkpoints"),
        vec![true, true, false],
        "{verdict}"
    );
    assert_eq!(
        oks(&verdict, "roots"),
        vec![false, false],
        "a forged entry no longer matches the signed roots: {verdict}"
    );
    assert_eq!(
        oks(&verdict, "inclusion"),
        vec![false, false, true],
        "forged entry 3 and the flipped proof of 5 fail, entry 6 still checks out: {verdict}"
    );
    assert_eq!(oks(&verdict, "consistency"), vec![false, true], "{verdict}");
}

// ---- 4. kill -9 under load -------------------------------------------------------------------

/// Eight clients create accounts as fast as they can; the server is killed with SIGKILL. Every
/// creation acknowledged with 201 is in the database with its `user.create` entry, and every
/// account in the database has one; the log verifies (the witness may lag the database, never
/// lead it); a restarted server serves and appends again.
async fn a_crash_loses_no_acknowledged_action_and_leaves_no_change_without_its_entry(
    backend: Backend,
) {
    let mut server = Server::start(backend).await;
    let admin = server.admin_session().await;
    let comp = server
        .new_account(&format!("comp-{}", suffix()), "compliance")
        .await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let client = server.api().client;
        let url = server.url("/api/v1/users");
        let token = admin.token.clone();
        let (acked, stop) = (acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"username": format!("load{task}-{n}"), "role": "agent"}))
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                if resp.status().as_u16() != 201 {
                    continue;
                }
                // Acknowledged only once the whole answer has arrived.
                let Ok(body) = resp.json::<Value>().await else {
                    break;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    // Let the load run for a while (and at least some creations be acknowledged), then kill.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) || acked.lock().unwrap().len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "fewer than 20 creations acknowledged in 2 minutes\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = signal_and_wait(&mut server, "KILL").await;
    assert!(!status.success(), "killed: {status}");
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    eprintln!(
        "kill -9 after {:?} with {} creations acknowledged",
        started.elapsed(),
        acked.len()
    );
    let deployment = server.stop_keeping_data();

    let size = {
        let db = db_of(&deployment).await;
        let entries = db.parsed_entries().await;
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e["index"].as_u64(), Some(i as u64), "contiguous indices");
        }
        assert_eq!(db.frontier().await.size, entries.len() as u64);
        let mut created: HashMap<String, usize> = HashMap::new();
        for e in &entries {
            if e["action"] == "user.create" && e["outcome"] == "success" {
                *created
                    .entry(e["target"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        let users: HashSet<String> = db
            .strings("SELECT id FROM users")
            .await
            .into_iter()
            .collect();
        for id in &acked {
            assert!(users.contains(id), "acknowledged account {id} was lost");
            assert_eq!(
                created.get(&format!("user:{id}")),
                Some(&1),
                "acknowledged account {id} has no user.create entry"
            );
        }
        for id in &users {
            assert_eq!(
                created.get(&format!("user:{id}")),
                Some(&1),
                "account {id} exists without its user.create entry"
            );
        }
        assert_eq!(
            created.len(),
            users.len(),
            "every user.create entry has its account"
        );
        entries.len() as u64
    };
    // The witness may lag behind the database after a crash, never lead it.
    let witnessed = witness_sizes(&deployment.data_dir.join("witness"));
    assert!(
        witnessed.iter().all(|s| *s <= size),
        "witness {witnessed:?} ahead of the log ({size})"
    );
    let ran = deployment.cli(&["audit", "verify"]);
    assert_verifies(&ran, "the log after kill -9");
    assert!(
        ran.stdout.contains(&format!("{size} entries")),
        "{}",
        ran.stdout
    );

    // A new server on the same data serves, and appends after the crash's last entry.
    let server = Server::start_with(deployment, &[]).await;
    let api = server.api();
    let made = api
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"username": "after-crash", "role": "agent"}),
        )
        .await
        .expect(201)
        .json();
    let target = format!("user:{}", made["id"].as_str().unwrap());
    let page = api
        .get(
            &format!("/api/v1/audit?start={size}&limit=100"),
            Some(&comp.token),
        )
        .await
        .expect(200)
        .json();
    let fresh = page["entries"].as_array().unwrap();
    assert_eq!(fresh[0]["index"].as_u64(), Some(size), "{page}");
    assert!(
        fresh
            .iter()
            .any(|e| e["action"] == "user.create" && e["target"] == target),
        "{page}"
    );
    let note = api
        .get("/api/v1/audit/checkpoint", Some(&comp.token))
        .await
        .expect(200)
        .text;
    assert!(note_size(&note) > size, "{note}");
    assert_verifies(&server.cli(&["audit", "verify"]), "the log after restart");
}

// ---- 5. two nodes, one log -----------------------------------------------------------------

mod two_nodes_append_to_one_postgres_log_without_gap_or_fork {
    #[tokio::test]
    async fn postgres() {
        super::two_nodes_append_to_one_postgres_log_without_gap_or_fork().await;
    }
}

/// Two `callguard serve` processes on one PostgreSQL database, sharing the signing key and the
/// key-encryption key, each with its own data directory and witness: accounts created through
/// both at once give one log numbered 0..n without gap or duplicate, both nodes' checkpoints are
/// consistent with each other, and `audit verify` passes from either node.
async fn two_nodes_append_to_one_postgres_log_without_gap_or_fork() {
    let shared = tempfile::Builder::new()
        .prefix("callguard-e2e-shared-")
        .tempdir()
        .unwrap();
    // The signing key is created by the first node to start; the key-encryption key is made
    // here and named in a configuration file both nodes read. (Not CALLGUARD_KEK_FILE: that
    // variable is also read as "the secret `kek` from this file", so setting it sets both `kek`
    // and `kek_file`, which start-up refuses.)
    let key_file = shared.path().join("audit-signing.key");
    let kek_file = shared.path().join("kek");
    let mut kek = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut kek).unwrap();
    std::fs::write(&kek_file, data_encoding::BASE64.encode(&kek) + "\n").unwrap();
    let config = shared.path().join("callguard.toml");
    std::fs::write(
        &config,
        format!("kek_file = {:?}\n", kek_file.to_str().unwrap()),
    )
    .unwrap();
    let shared_env = [
        (
            "CALLGUARD_AUDIT_SIGNING_KEY_FILE",
            key_file.to_str().unwrap(),
        ),
        ("CALLGUARD_CONFIG", config.to_str().unwrap()),
    ];
    let deployment_a = Deployment::new(Backend::Postgres);
    let url = deployment_a.pg.as_ref().unwrap().url.clone();
    let a = Server::start_with(deployment_a, &shared_env).await;
    let mut env_b = shared_env.to_vec();
    env_b.push(("CALLGUARD_DATABASE_URL", &url));
    // Node B: a data directory of its own, node A's database.
    let b = Server::start_with(Deployment::new(Backend::Sqlite), &env_b).await;
    // The CLI and `audit verify` of either node, with that node's environment.
    let cli = |node: &Server, env: &[(&str, &str)], args: &[&str]| -> Ran {
        let mut cmd = node.command(args);
        cmd.envs(env.iter().copied());
        node.run(cmd)
    };

    let admin_token = {
        let ran = cli(&a, &shared_env, &["user", "add", "root", "--role", "admin"]);
        assert!(ran.status.success(), "{}", ran.describe());
        ran.stdout.trim().to_owned()
    };
    let admin = a.api().set_up(&admin_token, "root", "admin").await;
    let comp_token = {
        let ran = cli(
            &b,
            &env_b,
            &["user", "add", "auditor", "--role", "compliance"],
        );
        assert!(ran.status.success(), "{}", ran.describe());
        ran.stdout.trim().to_owned()
    };
    // Set up through node B; the session works on both nodes.
    let comp = b.api().set_up(&comp_token, "auditor", "compliance").await;
    a.api().me(&comp.token).await.expect(200);

    // Both nodes append at once: four clients each.
    let mut tasks = Vec::new();
    for (node, server) in [("a", &a), ("b", &b)] {
        for client in 0..4 {
            let http = server.api().client;
            let url = server.url("/api/v1/users");
            let token = admin.token.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..15 {
                    let resp = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(
                            &json!({"username": format!("n{node}c{client}u{i}"), "role": "agent"}),
                        )
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status().as_u16(), 201, "node {node}");
                    let body: Value = resp.json().await.unwrap();
                    ids.push(body["id"].as_str().unwrap().to_owned());
                }
                ids
            }));
        }
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    assert_eq!(ids.len(), 120);

    // One log: rows 0..n, each holding the entry of its own index, one user.create per account.
    let db = Db::open(a.data_dir.as_path(), Some(&url)).await;
    let entries = db.parsed_entries().await;
    let n = entries.len() as u64;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["index"].as_u64(), Some(i as u64), "no gap at {i}");
    }
    assert_eq!(db.frontier().await.size, n, "the head agrees with the rows");
    let targets: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "user.create")
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = targets.iter().copied().collect();
    assert_eq!(unique.len(), targets.len(), "no entry written twice");
    for id in &ids {
        assert!(
            unique.contains(format!("user:{id}").as_str()),
            "{id} has no entry"
        );
    }
    db.close().await;

    // Checkpoints signed by each node belong to one history: node A's is a prefix of node B's.
    let t = Some(comp.token.as_str());
    let note_a = a
        .api()
        .get("/api/v1/audit/checkpoint", t)
        .await
        .expect(200)
        .text;
    b.api()
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"username": "one-more", "role": "agent"}),
        )
        .await
        .expect(201);
    let note_b = b
        .api()
        .get("/api/v1/audit/checkpoint", t)
        .await
        .expect(200)
        .text;
    let (m, size) = (note_size(&note_a), note_size(&note_b));
    assert!(m < size, "{m} < {size}");
    let key_a = a
        .api()
        .get("/api/v1/audit/verifier-key", t)
        .await
        .expect(200)
        .text;
    let key_b = b
        .api()
        .get("/api/v1/audit/verifier-key", t)
        .await
        .expect(200)
        .text;
    assert_eq!(key_a, key_b, "both nodes sign with the one key");
    let proof = b
        .api()
        .get(
            &format!("/api/v1/audit/proof/consistency?first={m}&second={size}"),
            t,
        )
        .await
        .expect(200)
        .json();
    let entries = read_log(&a, &comp.token, 0, size).await;
    let (code, verdict) = js_verify(&json!({
        "verifier_key": key_a,
        "checkpoints": [note_a, note_b],
        "entries": entries,
        "consistency": [proof],
    }));
    assert_eq!(code, 0, "{verdict:#}");

    // `audit verify` passes from either node, each with its own witness file.
    assert_verifies(&cli(&a, &shared_env, &["audit", "verify"]), "from node A");
    assert_verifies(&cli(&b, &env_b, &["audit", "verify"]), "from node B");
    let witnessed: Vec<u64> = [&a, &b]
        .iter()
        .flat_map(|node| witness_sizes(&node.data_dir.join("witness")))
        .collect();
    assert!(
        witnessed.iter().any(|s| *s >= m),
        "the nodes' witness files hold their checkpoints: {witnessed:?}"
    );
}
