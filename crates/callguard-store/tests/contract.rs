//! The store contract: the same behaviour checks run against a real SQLite file and a real
//! PostgreSQL database (a fresh database per test on 127.0.0.1:5432, or CALLGUARD_TEST_POSTGRES_URL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callguard_core::identity::{Session, UserStatus};
use callguard_core::Role;
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
    let store = open(
        Some(&format!("{base}/{db}")),
        std::path::Path::new("/nonexistent"),
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("cg-store-{}", uuid::Uuid::new_v4()));
    Fixture {
        store,
        cleanup: Some((admin, db)),
        dir,
    }
}

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::sqlite().await).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::postgres().await).await;
            }
        }
    };
}

fn pending(name: &str) -> NewPendingUser {
    NewPendingUser {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.to_owned(),
        role: Role::Agent,
        setup_token_hash: format!("hash-{name}"),
        setup_expires_at: 2_000,
        created_at: 1_000,
    }
}

async fn setup_activates_once_and_usernames_are_unique(f: Fixture) {
    let s = &f.store;
    let u = s.create_pending_user(pending("alice")).await.unwrap();
    assert_eq!(u.status, UserStatus::Pending);
    assert!(matches!(
        s.create_pending_user(pending("alice")).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.user_by_setup_token("hash-alice", 1_500)
            .await
            .unwrap()
            .unwrap()
            .id,
        u.id
    );
    assert!(
        s.user_by_setup_token("hash-alice", 2_000)
            .await
            .unwrap()
            .is_none(),
        "expired token"
    );
    let setup = CompletedSetup {
        user_id: u.id.clone(),
        setup_token_hash: "hash-alice".into(),
        password_hash: "$argon2id$x".into(),
        totp_sealed: vec![1, 2, 3],
        totp_step: 50,
        recovery_code_hashes: (0..10).map(|i| format!("rc{i}")).collect(),
        now: 1_500,
    };
    assert!(s.complete_setup(setup.clone()).await.unwrap());
    assert!(
        !s.complete_setup(setup).await.unwrap(),
        "a setup token works once"
    );
    let u = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(u.status, UserStatus::Active);
    assert_eq!(s.unused_recovery_codes(&u.id).await.unwrap(), 10);
    let c = s.credentials(&u.id).await.unwrap().unwrap();
    assert_eq!(c.totp_last_step, Some(50));
    assert_eq!(c.totp_sealed, Some(vec![1, 2, 3]));
}
both_backends!(setup_activates_once_and_usernames_are_unique);

async fn ready(s: &Arc<dyn Store>, name: &str) -> String {
    s.create_active_user(NewActiveUser {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.into(),
        role: Role::Admin,
        password_hash: "$argon2id$x".into(),
        totp_sealed: vec![9],
        recovery_code_hashes: vec!["a".into(), "b".into()],
        created_at: 1_000,
    })
    .await
    .unwrap()
    .id
}

async fn the_tenth_failure_locks_and_an_expired_lock_starts_afresh(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "bob").await;
    for i in 1..=9 {
        let u = s
            .record_failed_sign_in(&id, 100, 10, 1_900)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.failed_sign_ins, i);
        assert!(!u.is_locked(100));
    }
    let u = s
        .record_failed_sign_in(&id, 100, 10, 1_900)
        .await
        .unwrap()
        .unwrap();
    assert!(u.is_locked(100));
    assert!(!u.is_locked(1_900));
    let u = s
        .record_failed_sign_in(&id, 2_000, 10, 3_800)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        u.failed_sign_ins, 1,
        "the count restarts after the lock ran out"
    );
    assert!(!u.is_locked(2_000));
    assert!(s.unlock(&id).await.unwrap());
    assert_eq!(s.user_by_id(&id).await.unwrap().unwrap().failed_sign_ins, 0);
}
both_backends!(the_tenth_failure_locks_and_an_expired_lock_starts_afresh);

async fn totp_steps_and_recovery_codes_are_spent_once(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "carol").await;
    assert!(s.accept_totp_step(&id, 10).await.unwrap());
    assert!(!s.accept_totp_step(&id, 10).await.unwrap());
    assert!(!s.accept_totp_step(&id, 9).await.unwrap());
    assert!(s.accept_totp_step(&id, 11).await.unwrap());
    assert_eq!(s.record_totp_failure(&id, 20).await.unwrap(), 1);
    assert_eq!(s.record_totp_failure(&id, 20).await.unwrap(), 2);
    assert_eq!(
        s.record_totp_failure(&id, 21).await.unwrap(),
        1,
        "a new step starts a new count"
    );
    assert!(s.use_recovery_code(&id, "a", 5).await.unwrap());
    assert!(!s.use_recovery_code(&id, "a", 6).await.unwrap());
    assert!(!s.use_recovery_code(&id, "zzz", 6).await.unwrap());
    assert_eq!(s.unused_recovery_codes(&id).await.unwrap(), 1);
    s.replace_recovery_codes(&id, &["x".into(), "y".into(), "z".into()])
        .await
        .unwrap();
    assert_eq!(s.unused_recovery_codes(&id).await.unwrap(), 3);
    assert!(
        !s.use_recovery_code(&id, "b", 7).await.unwrap(),
        "old codes die with the replacement"
    );
}
both_backends!(totp_steps_and_recovery_codes_are_spent_once);

async fn sessions_and_challenges_live_and_die(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "dave").await;
    let session = Session {
        id: "s1".into(),
        user_id: id.clone(),
        created_at: 100,
        last_seen_at: 100,
        reauth_at: 100,
        source: "127.0.0.1".into(),
        user_agent: "test".into(),
    };
    s.create_session(&session, "th1").await.unwrap();
    assert_eq!(s.session_by_token("th1").await.unwrap().unwrap(), session);
    s.touch_session("s1", 150).await.unwrap();
    s.touch_session("s1", 120).await.unwrap();
    assert_eq!(
        s.session_by_token("th1")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        150
    );
    assert_eq!(s.sessions_of(&id).await.unwrap().len(), 1);
    assert_eq!(s.delete_expired_sessions(140, 0).await.unwrap(), 0);
    assert_eq!(s.delete_expired_sessions(151, 0).await.unwrap(), 1);
    assert!(s.session_by_token("th1").await.unwrap().is_none());

    let ch = Challenge {
        token_hash: "c1".into(),
        kind: "sign-in".into(),
        user_id: id.clone(),
        payload: "{}".into(),
        attempts: 0,
        expires_at: 200,
    };
    s.create_challenge(&ch).await.unwrap();
    assert!(
        s.challenge("c1", "setup", 100).await.unwrap().is_none(),
        "kinds do not mix"
    );
    assert!(
        s.challenge("c1", "sign-in", 200).await.unwrap().is_none(),
        "expired"
    );
    assert_eq!(s.count_challenge_failure("c1").await.unwrap(), 1);
    assert!(s.delete_challenge("c1").await.unwrap());
    assert!(
        !s.delete_challenge("c1").await.unwrap(),
        "only one answer can win"
    );
}
both_backends!(sessions_and_challenges_live_and_die);

async fn dormant_accounts_are_disabled_and_roles_change(f: Fixture) {
    let s = &f.store;
    let old = ready(s, "erin").await;
    let recent = ready(s, "frank").await;
    s.record_successful_sign_in(&recent, 5_000).await.unwrap();
    let disabled = s.disable_dormant(4_000).await.unwrap();
    assert_eq!(disabled, vec![old.clone()]);
    assert_eq!(
        s.user_by_id(&old).await.unwrap().unwrap().status,
        UserStatus::Disabled
    );
    assert!(s.set_status(&old, UserStatus::Active, 6_000).await.unwrap());
    assert!(s.disable_dormant(5_500).await.unwrap().contains(&recent));
    assert!(
        !s.disable_dormant(5_500).await.unwrap().contains(&old),
        "enabling restarts the clock"
    );
    assert!(s.set_role(&old, Role::Supervisor).await.unwrap());
    assert_eq!(
        s.user_by_id(&old).await.unwrap().unwrap().role,
        Role::Supervisor
    );
}
both_backends!(dormant_accounts_are_disabled_and_roles_change);
