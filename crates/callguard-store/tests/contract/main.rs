//! The store contract: the same behaviour checks run against a real SQLite file and a real
//! PostgreSQL database (a fresh database per test on 127.0.0.1:5432, or CALLGUARD_TEST_POSTGRES_URL).
//!
//! This file is the harness: opening each backend and [`both_backends!`], which runs a check on
//! both. The checks live one file per aggregate, beside this one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callguard_core::identity::Session;
use callguard_core::Role;
use callguard_core::UnixTime;
use callguard_store::*;
use std::sync::Arc;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

struct Fixture {
    store: Arc<dyn Store>,
    cleanup: Option<(String, String)>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin, db)) = self.cleanup.take() {
            let _ = std::process::Command::new("psql")
                .args([
                    admin.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

async fn sqlite() -> Fixture {
    let dir = std::env::temp_dir().join(format!("cg-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = open(None, &dir.join("t.db")).await.unwrap();
    Fixture {
        store,
        cleanup: None,
        dir,
    }
}

async fn postgres() -> Fixture {
    postgres_at().await.0
}

/// A fresh PostgreSQL database, and its URL (for a second node on it).
async fn postgres_at() -> (Fixture, String) {
    let admin =
        std::env::var("CALLGUARD_TEST_POSTGRES_URL").unwrap_or_else(|_| ADMIN_URL.to_owned());
    let db = format!("callguard_store_{}", uuid::Uuid::new_v4().simple());
    let out = std::process::Command::new("psql")
        .args([admin.as_str(), "-qc", &format!("CREATE DATABASE {db}")])
        .output()
        .expect("psql must be installed for the PostgreSQL store tests");
    assert!(
        out.status.success(),
        "PostgreSQL must be reachable at {admin} for these tests: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    let url = format!("{base}/{db}");
    let store = open(Some(&url), std::path::Path::new("/nonexistent"))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("cg-store-{}", uuid::Uuid::new_v4()));
    (
        Fixture {
            store,
            cleanup: Some((admin, db)),
            dir,
        },
        url,
    )
}

/// Runs the check `$name(Fixture)` (defined just before) once on SQLite and once on PostgreSQL,
/// as the tests `$name::sqlite` and `$name::postgres`.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::sqlite().await).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(crate::postgres().await).await;
            }
        }
    };
}

mod alerts;
mod audit;
mod compliance;
mod dnc_lists;
mod identity;
mod integrator;
mod limits;
mod payments;
mod recordings;
mod sessions;
mod vault;

// ---- fixtures shared by the aggregates ------------------------------------------------------

fn a(action: &str) -> AuditRecord {
    AuditRecord::new(action, "system")
}

/// The log's size once everything committed has its index (PostgreSQL's integrator is not
/// running in these tests: the check indexes the entries itself).
async fn size(s: &Arc<dyn Store>) -> u64 {
    s.integrate().await.unwrap();
    s.audit_head().await.unwrap().size
}

fn session(id: &str, user_id: &str, at: i64) -> Session {
    Session {
        id: id.into(),
        user_id: user_id.into(),
        created_at: at,
        last_seen_at: at,
        reauth_at: at,
        source: "127.0.0.1".into(),
        user_agent: "test".into(),
    }
}

async fn challenge(s: &Arc<dyn Store>, hash: &str, user_id: &str, kind: &str) {
    s.create_challenge(&Challenge {
        token_hash: hash.into(),
        kind: kind.into(),
        user_id: user_id.into(),
        payload: "{}".into(),
        attempts: 0,
        expires_at: i64::MAX,
    })
    .await
    .unwrap();
}

async fn ready(s: &Arc<dyn Store>, name: &str) -> String {
    s.create_active_user(
        NewActiveUser {
            id: uuid::Uuid::new_v4().to_string(),
            username: name.into(),
            role: Role::Admin,
            password_hash: "$argon2id$x".into(),
            totp_sealed: vec![9],
            recovery_code_hashes: vec!["a".into(), "b".into()],
            created_at: 1_000,
            created_by: "cli".into(),
            confirmed_by: None,
        },
        a("user.create"),
    )
    .await
    .unwrap()
    .id
}

/// The rule sign-ins use: ten failures lock for 1 800 s; with `totp`, three wrong codes a step.
fn rule(now: i64, totp: Option<i64>) -> AttemptRule {
    AttemptRule {
        now,
        lockout_max: 10,
        lock_until: now + 1_800,
        totp: totp.map(|step| (step, 3)),
    }
}

/// One attempt admitted against `user_id` at `now`; panics when it is refused.
async fn admitted(s: &Arc<dyn Store>, user_id: &str, now: i64) -> AttemptTicket {
    match s
        .admit_attempt(Some(user_id), &rule(now, None))
        .await
        .unwrap()
    {
        Admission::Admitted(t) => t,
        other => panic!("attempt refused: {other:?}"),
    }
}

/// Records an admitted attempt as failed.
async fn failed(s: &Arc<dyn Store>, t: &AttemptTicket, now: i64) -> RecordedFailure {
    s.fail_attempt(
        FailedAttempt {
            ticket: Some(t.clone()),
            now,
            challenge_max: 5,
            ..FailedAttempt::default()
        },
        a("auth.sign_in").failure(),
    )
    .await
    .unwrap()
}

/// The account's failure count and lock end.
async fn lock_state(s: &Arc<dyn Store>, user_id: &str) -> (i64, Option<i64>) {
    let u = s.user_by_id(user_id).await.unwrap().unwrap();
    (u.failed_sign_ins, u.locked_until)
}
