//! What a copied disk or database yields: after a whole sign-in story, no password, TOTP secret,
//! session token, setup token or recovery code in any file under the deployment (database, WAL,
//! logs) or in any column; passwords stored as argon2id at OWASP's parameters.

use crate::harness::{alert_when, Backend, Deployment, Server, ARGON2ID_PREFIX};
use serde_json::json;
use std::path::{Path, PathBuf};

both_backends!(secrets_never_reach_disk_and_passwords_are_argon2id);

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn secrets_never_reach_disk_and_passwords_are_argon2id(backend: Backend) {
    // Debug logging: the most the server ever writes to its log.
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_LOG_LEVEL", "debug")],
    )
    .await;
    let api = server.api();

    // The story: setup, a sign-in by TOTP, one by recovery code, a logout, a failed attempt.
    let acct = server.new_account("vera", "admin").await;
    let totp_token = api.sign_in(&acct).await;
    let challenge = api
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");
    let recovery_token = api
        .mfa(&challenge, "recovery", &acct.recovery_codes[0])
        .await
        .expect(200)
        .str("token");
    api.post("/api/v1/auth/logout", Some(&recovery_token), json!({}))
        .await
        .expect(204);
    let other = api
        .post(
            "/api/v1/users",
            Some(&totp_token),
            json!({"username": "walter", "role": "agent"}),
        )
        .await;
    let other_setup = other.expect(201).str("setup_token");
    api.login(&acct.username, "Quartz lantern drifts 000 over wet slate")
        .await
        .expect(401);
    let regenerated = api
        .post("/api/v1/me/recovery-codes", Some(&totp_token), json!({}))
        .await
        .expect(200)
        .json();
    let mut recovery_codes = acct.recovery_codes.clone();
    recovery_codes.extend(
        regenerated["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned()),
    );

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("the password".into(), acct.password.clone().into_bytes()),
        (
            "the TOTP secret (base32)".into(),
            acct.totp.base32.clone().into_bytes(),
        ),
        (
            "the TOTP secret (raw bytes)".into(),
            acct.totp.bytes.clone(),
        ),
        (
            "the TOTP secret (hex)".into(),
            data_encoding::HEXLOWER
                .encode(&acct.totp.bytes)
                .into_bytes(),
        ),
        (
            "the otpauth URI".into(),
            acct.otpauth_uri.clone().into_bytes(),
        ),
        (
            "the setup session token".into(),
            acct.token.clone().into_bytes(),
        ),
        (
            "the TOTP session token".into(),
            totp_token.clone().into_bytes(),
        ),
        (
            "the recovery session token".into(),
            recovery_token.clone().into_bytes(),
        ),
        (
            "the CLI setup token".into(),
            acct.setup_token.clone().into_bytes(),
        ),
        (
            "the API setup token".into(),
            other_setup.clone().into_bytes(),
        ),
        (
            "the setup challenge".into(),
            acct.setup_challenge.clone().into_bytes(),
        ),
        ("a sign-in challenge".into(), challenge.clone().into_bytes()),
    ];
    for (i, code) in recovery_codes.iter().enumerate() {
        secrets.push((format!("recovery code {i}"), code.clone().into_bytes()));
        secrets.push((
            format!("recovery code {i} without dashes"),
            code.replace('-', "").into_bytes(),
        ));
    }
    let kek = std::fs::read_to_string(server.data_dir.join("keys").join("kek"))
        .expect("the key-encryption key file");
    let kek = kek.trim().to_owned();
    assert!(kek.len() >= 40, "a key-encryption key of 32 bytes");

    // Every file under the deployment, while the server runs (WAL and all) …
    let files = files_under(server.root());
    if backend == Backend::Sqlite {
        for f in ["callguard.db", "callguard.db-wal"] {
            assert!(
                files.iter().any(|p| p.ends_with(f)),
                "expected {f} among {files:?}"
            );
        }
    }
    assert!(
        files.iter().any(|p| p.ends_with("server.stderr.log")),
        "{files:?}"
    );
    for file in &files {
        let bytes =
            std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for (what, secret) in &secrets {
            assert!(!contains(&bytes, secret), "{what} is in {}", file.display());
        }
        let is_kek_file = file.ends_with("keys/kek");
        if !is_kek_file {
            assert!(
                !contains(&bytes, kek.as_bytes()),
                "the key-encryption key is in {}",
                file.display()
            );
        }
    }
    // The key-encryption key is readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir.join("keys").join("kek"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "kek file mode {mode:o}");
    }

    // … and in the database itself.
    match backend {
        Backend::Sqlite => {
            let db = rusqlite::Connection::open_with_flags(
                server.data_dir.join("callguard.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .unwrap();
            let hash: String = db
                .query_row(
                    "SELECT password_hash FROM users WHERE username = 'vera'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(hash.starts_with(ARGON2ID_PREFIX), "stored hash {hash}");
            let pending: Option<String> = db
                .query_row(
                    "SELECT password_hash FROM users WHERE username = 'walter'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(pending, None, "a pending account has no password yet");
            let tables: Vec<String> = db
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(tables.contains(&"users".to_owned()), "{tables:?}");
            for table in tables {
                let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                let columns = stmt.column_count();
                let mut rows = stmt.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    for c in 0..columns {
                        let value: Vec<u8> = match row.get_ref(c).unwrap() {
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => t.to_vec(),
                            _ => continue,
                        };
                        for (what, secret) in &secrets {
                            assert!(
                                !contains(&value, secret),
                                "{what} is in table {table}, column {c}"
                            );
                        }
                        assert!(
                            !contains(&value, kek.as_bytes()),
                            "the key-encryption key is in table {table}"
                        );
                    }
                }
            }
        }
        Backend::Postgres => {
            let db = server.pg.as_ref().unwrap().connect().await;
            let row = db
                .query_one(
                    "SELECT password_hash FROM users WHERE username = 'vera'",
                    &[],
                )
                .await
                .unwrap();
            let hash: String = row.get(0);
            assert!(hash.starts_with(ARGON2ID_PREFIX), "stored hash {hash}");
            let row = db
                .query_one(
                    "SELECT password_hash FROM users WHERE username = 'walter'",
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(
                row.get::<_, Option<String>>(0),
                None,
                "a pending account has no password yet"
            );
            let tables: Vec<String> = db
                .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(tables.contains(&"users".to_owned()), "{tables:?}");
            let hex_totp = data_encoding::HEXLOWER.encode(&acct.totp.bytes);
            for table in tables {
                // Each row as text: bytea columns appear as \x… hex, so raw secrets are matched
                // in hex too.
                let rows = db
                    .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                    .await
                    .unwrap();
                for r in rows {
                    let text: String = r.get(0);
                    for (what, secret) in &secrets {
                        assert!(
                            !contains(text.as_bytes(), secret),
                            "{what} is in table {table}: {text}"
                        );
                    }
                    assert!(
                        !text.contains(&hex_totp),
                        "the raw TOTP secret is in table {table}"
                    );
                    assert!(
                        !text.contains(&kek),
                        "the key-encryption key is in table {table}"
                    );
                }
            }
        }
    }
}

both_backends!(user_agents_and_alert_comments_are_sealed_at_rest_and_shown_to_their_owners);

/// Every text value in the database, with where it is (PostgreSQL rows as text; bytea as hex).
pub(crate) async fn database_text(server: &Server, backend: Backend) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    match backend {
        Backend::Sqlite => {
            let db = rusqlite::Connection::open_with_flags(
                server.data_dir.join("callguard.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .unwrap();
            let tables: Vec<String> = db
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for table in tables {
                let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                let columns = stmt.column_count();
                let mut rows = stmt.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    for c in 0..columns {
                        if let rusqlite::types::ValueRef::Text(t)
                        | rusqlite::types::ValueRef::Blob(t) = row.get_ref(c).unwrap()
                        {
                            out.push((format!("{table}, column {c}"), t.to_vec()));
                        }
                    }
                }
            }
        }
        Backend::Postgres => {
            let db = server.pg.as_ref().unwrap().connect().await;
            let tables: Vec<String> = db
                .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            for table in tables {
                for r in db
                    .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                    .await
                    .unwrap()
                {
                    out.push((table.clone(), r.get::<_, String>(0).into_bytes()));
                }
            }
        }
    }
    out
}

/// Session user agents and the comments people leave on alerts are free text: sealed by the
/// key-encryption key in the database (no trace of them in any file or row), yet their owners
/// still see them in the sessions list and on the alert.
async fn user_agents_and_alert_comments_are_sealed_at_rest_and_shown_to_their_owners(
    backend: Backend,
) {
    const USER_AGENT: &str = "QuokkaBrowser/9.1 (distinctive e2e user agent)";
    const COMMENT: &str = "phoned the quokka team lead: expected account";
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_LOG_LEVEL", "debug")],
    )
    .await;
    let api = server.api();
    // A new admin account raises an alert; a compliance officer handles it.
    let officer = server.new_account("olga-compliance", "compliance").await;
    let _admin = server.admin_session().await;

    // The officer signs in from a browser with a recognisable user agent.
    let challenge = api
        .send_raw(
            "login".into(),
            api.client
                .post(api.url("/api/v1/auth/login"))
                .header("user-agent", USER_AGENT)
                .json(&json!({"username": officer.username, "password": officer.password})),
        )
        .await
        .expect(200)
        .str("challenge");
    let token = api
        .send_raw(
            "mfa".into(),
            api.client
                .post(api.url("/api/v1/auth/mfa"))
                .header("user-agent", USER_AGENT)
                .json(&json!({"challenge": challenge, "method": "recovery", "code": officer.recovery_codes[0]})),
        )
        .await
        .expect(200)
        .str("token");
    let sessions = api
        .get("/api/v1/me/sessions", Some(&token))
        .await
        .expect(200)
        .json();
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .cloned()
        .unwrap();
    assert_eq!(current["user_agent"], USER_AGENT, "{sessions}");

    // The alert appears; the officer acknowledges it with a comment and sees it back.
    let (alert, _) = alert_when(&api, &token, |a| a["rule"] == "privileged_account_created").await;
    let id = alert["id"].as_str().unwrap().to_owned();
    let acknowledged = api
        .post(
            &format!("/api/v1/alerts/{id}/acknowledge"),
            Some(&token),
            json!({"comment": COMMENT}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(acknowledged["acknowledge_comment"], COMMENT);
    let listed = api
        .get("/api/v1/alerts?status=acknowledged", Some(&token))
        .await
        .expect(200)
        .json();
    assert!(
        listed["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str() && a["acknowledge_comment"] == COMMENT),
        "{listed}"
    );

    // Neither is anywhere on disk (database, WAL, logs) or in any row.
    let needles = [("the user agent", USER_AGENT), ("the comment", COMMENT)];
    for file in files_under(server.root()) {
        let bytes =
            std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for (what, needle) in needles {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{what} is in {}",
                file.display()
            );
        }
    }
    for (place, value) in database_text(&server, backend).await {
        for (what, needle) in needles {
            assert!(!contains(&value, needle.as_bytes()), "{what} is in {place}");
        }
    }
}
