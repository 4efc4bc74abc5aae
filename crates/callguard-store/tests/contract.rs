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

fn a(action: &str) -> AuditRecord {
    AuditRecord::new(action, "system")
}

async fn size(s: &Arc<dyn Store>) -> u64 {
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

async fn setup_activates_once_and_usernames_are_unique(f: Fixture) {
    let s = &f.store;
    let u = s
        .create_pending_user(pending("alice"), a("user.create"))
        .await
        .unwrap();
    assert_eq!(u.status, UserStatus::Pending);
    assert_eq!(size(s).await, 1);
    assert!(matches!(
        s.create_pending_user(pending("alice"), a("user.create"))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(size(s).await, 1, "a refused change appends nothing");
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
    challenge(s, "ch1", &u.id, "setup").await;
    let first = session("s1", &u.id, 1_500);
    assert!(s
        .complete_setup(setup.clone(), "ch1", &first, "th1", a("auth.setup"))
        .await
        .unwrap());
    assert_eq!(size(s).await, 2);
    challenge(s, "ch2", &u.id, "setup").await;
    let again = session("s2", &u.id, 1_500);
    assert!(
        !s.complete_setup(setup, "ch2", &again, "th2", a("auth.setup"))
            .await
            .unwrap(),
        "a setup token works once"
    );
    assert_eq!(size(s).await, 2);
    assert!(
        s.session_by_token("th2").await.unwrap().is_none(),
        "the refused setup opened no session"
    );
    assert_eq!(s.session_by_token("th1").await.unwrap().unwrap(), first);
    let u = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(u.status, UserStatus::Active);
    assert_eq!(s.unused_recovery_codes(&u.id).await.unwrap(), 10);
    let c = s.credentials(&u.id).await.unwrap().unwrap();
    assert_eq!(c.totp_last_step, Some(50));
    assert_eq!(c.totp_sealed, Some(vec![1, 2, 3]));
}
both_backends!(setup_activates_once_and_usernames_are_unique);

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
        },
        a("user.create"),
    )
    .await
    .unwrap()
    .id
}

fn failed(id: &str, now: i64) -> FailedAttempt {
    FailedAttempt {
        user_id: Some(id.to_owned()),
        now,
        lockout_max: 10,
        lock_until: now + 1_800,
        challenge_max: 5,
        ..FailedAttempt::default()
    }
}

async fn the_tenth_failure_locks_and_an_expired_lock_starts_afresh(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "bob").await;
    let before = size(s).await;
    for i in 1..=9 {
        let u = s
            .fail_attempt(failed(&id, 100), a("auth.sign_in").failure())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.failed_sign_ins, i);
        assert!(!u.is_locked(100));
    }
    assert_eq!(size(s).await, before + 9);
    let u = s
        .fail_attempt(failed(&id, 100), a("auth.sign_in").failure())
        .await
        .unwrap()
        .unwrap();
    assert!(u.is_locked(100));
    assert!(!u.is_locked(1_900));
    assert_eq!(
        size(s).await,
        before + 11,
        "the locking failure is followed by auth.account_locked"
    );
    let last = s.audit_entries(before + 10, 1).await.unwrap();
    assert!(
        last[0].text.contains("\"action\":\"auth.account_locked\""),
        "{}",
        last[0].text
    );
    let u = s
        .fail_attempt(failed(&id, 2_000), a("auth.sign_in").failure())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        u.failed_sign_ins, 1,
        "the count restarts after the lock ran out"
    );
    assert!(!u.is_locked(2_000));
    assert!(s.unlock(&id, a("user.unlock")).await.unwrap());
    assert_eq!(s.user_by_id(&id).await.unwrap().unwrap().failed_sign_ins, 0);
    // A failure against nobody is still recorded.
    let n = size(s).await;
    assert!(s
        .fail_attempt(FailedAttempt::default(), a("auth.sign_in").failure())
        .await
        .unwrap()
        .is_none());
    assert_eq!(size(s).await, n + 1);
}
both_backends!(the_tenth_failure_locks_and_an_expired_lock_starts_afresh);

async fn totp_steps_and_recovery_codes_are_spent_once(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "carol").await;
    challenge(s, "c0", &id, "sign-in").await;
    let signin = |ch: &str, factor: SpentFactor, sid: &str| CompletedSignIn {
        user_id: id.clone(),
        challenge_hash: ch.into(),
        factor,
        session: session(sid, &id, 100),
        token_hash: format!("t-{sid}"),
    };
    assert!(s
        .complete_sign_in(
            signin("c0", SpentFactor::TotpStep(10), "s0"),
            a("auth.sign_in")
        )
        .await
        .unwrap());
    let n = size(s).await;
    challenge(s, "c1", &id, "sign-in").await;
    assert!(!s
        .complete_sign_in(
            signin("c1", SpentFactor::TotpStep(10), "s1"),
            a("auth.sign_in")
        )
        .await
        .unwrap());
    assert!(!s
        .complete_sign_in(
            signin("c1", SpentFactor::TotpStep(9), "s1"),
            a("auth.sign_in")
        )
        .await
        .unwrap());
    assert_eq!(
        size(s).await,
        n,
        "refused sign-ins append nothing here (the caller records the failure)"
    );
    assert!(s.session_by_token("t-s1").await.unwrap().is_none());
    assert!(
        s.challenge("c1", "sign-in", 0).await.unwrap().is_some(),
        "a refused factor leaves the challenge"
    );
    assert!(s
        .complete_sign_in(
            signin("c1", SpentFactor::TotpStep(11), "s1"),
            a("auth.sign_in")
        )
        .await
        .unwrap());
    assert!(
        !s.complete_sign_in(
            signin("c1", SpentFactor::TotpStep(12), "s2"),
            a("auth.sign_in")
        )
        .await
        .unwrap(),
        "a challenge is spent once"
    );

    let mut totp_fail = failed(&id, 100);
    totp_fail.totp_step = Some(20);
    s.fail_attempt(totp_fail.clone(), a("auth.sign_in").failure())
        .await
        .unwrap();
    s.fail_attempt(totp_fail.clone(), a("auth.sign_in").failure())
        .await
        .unwrap();
    assert_eq!(
        s.credentials(&id).await.unwrap().unwrap().totp_fail_count,
        2
    );
    totp_fail.totp_step = Some(21);
    s.fail_attempt(totp_fail, a("auth.sign_in").failure())
        .await
        .unwrap();
    assert_eq!(
        s.credentials(&id).await.unwrap().unwrap().totp_fail_count,
        1,
        "a new step starts a new count"
    );

    let code = |h: &str| SpentFactor::RecoveryCode(h.into());
    assert!(s
        .complete_reauthentication("s0", &id, code("a"), 150, a("auth.reauthenticate"))
        .await
        .unwrap());
    assert_eq!(
        s.session_by_token("t-s0").await.unwrap().unwrap().reauth_at,
        150
    );
    assert!(!s
        .complete_reauthentication("s0", &id, code("a"), 160, a("auth.reauthenticate"))
        .await
        .unwrap());
    assert!(!s
        .complete_reauthentication("s0", &id, code("zzz"), 160, a("auth.reauthenticate"))
        .await
        .unwrap());
    assert_eq!(s.unused_recovery_codes(&id).await.unwrap(), 1);
    s.replace_recovery_codes(
        &id,
        &["x".into(), "y".into(), "z".into()],
        a("account.recovery_codes_replace"),
    )
    .await
    .unwrap();
    assert_eq!(s.unused_recovery_codes(&id).await.unwrap(), 3);
    assert!(
        !s.complete_reauthentication("s0", &id, code("b"), 170, a("auth.reauthenticate"))
            .await
            .unwrap(),
        "old codes die with the replacement"
    );
}
both_backends!(totp_steps_and_recovery_codes_are_spent_once);

async fn sessions_and_challenges_live_and_die(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "dave").await;
    challenge(s, "c0", &id, "sign-in").await;
    let first = session("s1", &id, 100);
    let done = s
        .complete_sign_in(
            CompletedSignIn {
                user_id: id.clone(),
                challenge_hash: "c0".into(),
                factor: SpentFactor::TotpStep(1),
                session: first.clone(),
                token_hash: "th1".into(),
            },
            a("auth.sign_in"),
        )
        .await
        .unwrap();
    assert!(done);
    assert_eq!(s.session_by_token("th1").await.unwrap().unwrap(), first);
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
    let n = size(s).await;
    assert!(!s.delete_session("s1", a("auth.sign_out")).await.unwrap());
    assert_eq!(size(s).await, n, "nothing to end, nothing logged");

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
    for _ in 0..4 {
        let attempt = FailedAttempt {
            challenge_hash: Some("c1".into()),
            challenge_max: 5,
            ..FailedAttempt::default()
        };
        s.fail_attempt(attempt, a("auth.sign_in").failure())
            .await
            .unwrap();
    }
    assert_eq!(
        s.challenge("c1", "sign-in", 100)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        4
    );
    let attempt = FailedAttempt {
        challenge_hash: Some("c1".into()),
        challenge_max: 5,
        ..FailedAttempt::default()
    };
    s.fail_attempt(attempt, a("auth.sign_in").failure())
        .await
        .unwrap();
    assert!(
        s.challenge("c1", "sign-in", 100).await.unwrap().is_none(),
        "five wrong answers spend a challenge"
    );
}
both_backends!(sessions_and_challenges_live_and_die);

async fn dormant_accounts_are_disabled_and_roles_change(f: Fixture) {
    let s = &f.store;
    let old = ready(s, "erin").await;
    let recent = ready(s, "frank").await;
    challenge(s, "c", &recent, "sign-in").await;
    let signin = CompletedSignIn {
        user_id: recent.clone(),
        challenge_hash: "c".into(),
        factor: SpentFactor::TotpStep(1),
        session: session("sf", &recent, 5_000),
        token_hash: "tf".into(),
    };
    assert!(s.complete_sign_in(signin, a("auth.sign_in")).await.unwrap());
    let n = size(s).await;
    let disabled = s.disable_dormant(4_000, a("user.disable")).await.unwrap();
    assert_eq!(disabled, vec![old.clone()]);
    assert_eq!(size(s).await, n + 1, "one entry per disabled account");
    let e = s.audit_entries(n, 1).await.unwrap();
    assert!(e[0].text.contains(&format!("\"target\":\"user:{old}\"")));
    assert_eq!(
        s.user_by_id(&old).await.unwrap().unwrap().status,
        UserStatus::Disabled
    );
    assert!(s
        .set_status(&old, UserStatus::Active, 6_000, a("user.enable"))
        .await
        .unwrap());
    assert!(s
        .disable_dormant(5_500, a("user.disable"))
        .await
        .unwrap()
        .contains(&recent));
    assert!(
        s.session_by_token("tf").await.unwrap().is_none(),
        "disabling ends sessions"
    );
    assert!(
        !s.disable_dormant(5_500, a("user.disable"))
            .await
            .unwrap()
            .contains(&old),
        "enabling restarts the clock"
    );
    assert!(s
        .set_role(&old, Role::Supervisor, a("user.role_change"))
        .await
        .unwrap());
    assert_eq!(
        s.user_by_id(&old).await.unwrap().unwrap().role,
        Role::Supervisor
    );
}
both_backends!(dormant_accounts_are_disabled_and_roles_change);

async fn the_log_is_contiguous_and_its_tree_matches_the_entries(f: Fixture) {
    use callguard_core::audit::merkle::{self, Frontier};
    let s = &f.store;
    for i in 0..37 {
        s.append(vec![a("test.event").detail("i", i)])
            .await
            .unwrap();
    }
    s.append((0..5).map(|i| a("test.batch").detail("i", i)).collect())
        .await
        .unwrap();
    let head = s.audit_head().await.unwrap();
    assert_eq!(head.size, 42);
    let entries = s.audit_entries(0, 100).await.unwrap();
    let mut f2 = Frontier::default();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        assert_eq!(e.leaf_hash, merkle::leaf_hash(e.text.as_bytes()).to_vec());
        f2.append(merkle::leaf_hash(e.text.as_bytes()));
    }
    assert_eq!(f2, head);
    // Every subtree a proof at any size needs is stored.
    for size in [1u64, 2, 7, 16, 33, 42] {
        for index in [0, size / 2, size - 1] {
            let plan = merkle::inclusion_plan(index, size).unwrap();
            let flat: Vec<_> = plan.iter().flatten().copied().collect();
            assert_eq!(s.audit_subtrees(&flat).await.unwrap().len(), flat.len());
        }
    }
    let cp = StoredCheckpoint {
        size: 42,
        root: head.root(),
        note: "note".into(),
        created_at: 1,
    };
    assert!(s.add_checkpoint(&cp).await.unwrap());
    assert!(
        !s.add_checkpoint(&cp).await.unwrap(),
        "one checkpoint per size"
    );
    assert_eq!(s.latest_checkpoint().await.unwrap().unwrap(), cp);
    assert_eq!(s.checkpoints().await.unwrap().len(), 1);
}
both_backends!(the_log_is_contiguous_and_its_tree_matches_the_entries);

async fn one_read_brings_everything_a_sign_in_step_needs(f: Fixture) {
    let s = &f.store;
    assert!(s.sign_in_facts("nobody").await.unwrap().is_none());
    let id = ready(s, "gina").await;
    let facts = s.sign_in_facts("gina").await.unwrap().unwrap();
    assert_eq!(facts.user.id, id);
    assert_eq!(
        facts.credentials.password_hash.as_deref(),
        Some("$argon2id$x")
    );
    assert_eq!(facts.credentials.totp_sealed, Some(vec![9]));
    assert_eq!(facts.unused_recovery_codes, 2);
    assert!(facts.passkeys.is_empty());
    challenge(s, "cf", &id, "sign-in").await;
    let (ch, user, creds) = s
        .challenge_facts("cf", "sign-in", 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ch.user_id.as_str(), user.username.as_str()),
        (id.as_str(), "gina")
    );
    assert_eq!(creds.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(
        s.challenge_facts("cf", "setup", 100)
            .await
            .unwrap()
            .is_none(),
        "kinds do not mix"
    );
    assert!(
        s.challenge_facts("cf", "sign-in", i64::MAX)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
}
both_backends!(one_read_brings_everything_a_sign_in_step_needs);

fn opt_out(id: &str, index: &str, at: i64) -> InternalDncEntry {
    InternalDncEntry {
        id: id.into(),
        number_index: index.into(),
        number_sealed: vec![1, 2, 3],
        source: "agent".into(),
        added_by: "user:u1".into(),
        added_at: at,
    }
}

fn consent(id: &str, index: &str, purpose: &str, channel: &str, at: i64) -> ConsentRecord {
    ConsentRecord {
        id: id.into(),
        number_index: index.into(),
        number_sealed: vec![4, 5],
        purpose: purpose.into(),
        channel: channel.into(),
        source: "web_form".into(),
        evidence_sealed: vec![6],
        recorded_by: "user:u1".into(),
        granted_at: at,
        revoked_at: None,
        revoked_by: None,
    }
}

async fn an_opt_out_is_listed_once_and_found_by_its_index_with_its_audit_entry(f: Fixture) {
    let s = &f.store;
    let before = size(s).await;
    let (first, added) = s
        .add_internal_dnc(&opt_out("d1", "idx-a", 10), a("dnc.internal.add"))
        .await
        .unwrap();
    assert!(added);
    assert_eq!(first, opt_out("d1", "idx-a", 10));
    assert_eq!(
        size(s).await,
        before + 1,
        "the change and its entry together"
    );
    // The same number again: the first entry stands, nothing is logged.
    let (again, added) = s
        .add_internal_dnc(&opt_out("d2", "idx-a", 20), a("dnc.internal.add"))
        .await
        .unwrap();
    assert!(!added);
    assert_eq!(again.id, "d1");
    assert_eq!(size(s).await, before + 1);
    s.add_internal_dnc(&opt_out("d3", "idx-b", 30), a("dnc.internal.add"))
        .await
        .unwrap();
    let listed: Vec<String> = s
        .internal_dnc_entries(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(listed, ["d3", "d1"], "newest first");
    assert_eq!(s.internal_dnc_entries(1).await.unwrap().len(), 1);
    // Look-ups in bulk, across more than one chunk of the query.
    let mut probe: Vec<String> = (0..1_200).map(|i| format!("idx-other-{i}")).collect();
    probe.push("idx-b".into());
    probe.insert(600, "idx-a".into());
    let mut found = s.internal_dnc_matches(&probe).await.unwrap();
    found.sort();
    assert_eq!(found, ["idx-a", "idx-b"]);
    assert!(s.internal_dnc_matches(&[]).await.unwrap().is_empty());
}
both_backends!(an_opt_out_is_listed_once_and_found_by_its_index_with_its_audit_entry);

async fn a_revoked_consent_stops_counting_at_once_and_is_revoked_only_once(f: Fixture) {
    let s = &f.store;
    let before = size(s).await;
    s.record_consent(
        &consent("c1", "idx-a", "telemarketing", "call", 10),
        a("consent.grant"),
    )
    .await
    .unwrap();
    s.record_consent(
        &consent("c2", "idx-a", "telemarketing", "sms", 20),
        a("consent.grant"),
    )
    .await
    .unwrap();
    s.record_consent(
        &consent("c3", "idx-b", "surveys", "call", 30),
        a("consent.grant"),
    )
    .await
    .unwrap();
    assert_eq!(size(s).await, before + 3);
    let probe = ["idx-a".to_owned(), "idx-b".to_owned(), "idx-c".to_owned()];
    assert_eq!(
        s.consented(&probe, "telemarketing", "call").await.unwrap(),
        ["idx-a"],
        "purpose and channel must both match"
    );
    assert_eq!(
        s.consented(&probe, "surveys", "call").await.unwrap(),
        ["idx-b"]
    );
    let of_a: Vec<String> = s
        .consents(Some("idx-a"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(of_a, ["c2", "c1"]);
    assert_eq!(s.consents(None, 10).await.unwrap().len(), 3);

    assert!(s
        .revoke_consent("c1", "user:u2", 40, a("consent.revoke"))
        .await
        .unwrap());
    assert!(
        s.consented(&probe, "telemarketing", "call")
            .await
            .unwrap()
            .is_empty(),
        "revocation counts for the very next look-up"
    );
    let c1 = s.consent("c1").await.unwrap().unwrap();
    assert_eq!(
        (c1.revoked_at, c1.revoked_by.as_deref(), c1.is_active()),
        (Some(40), Some("user:u2"), false)
    );
    let logged = size(s).await;
    assert!(
        !s.revoke_consent("c1", "user:u3", 50, a("consent.revoke"))
            .await
            .unwrap(),
        "revoked already"
    );
    assert!(!s
        .revoke_consent("nope", "user:u3", 50, a("consent.revoke"))
        .await
        .unwrap());
    assert_eq!(size(s).await, logged, "a refused revocation logs nothing");
    assert_eq!(
        s.consent("c1")
            .await
            .unwrap()
            .unwrap()
            .revoked_by
            .as_deref(),
        Some("user:u2"),
        "the first revocation stands"
    );
    // A new consent after a revocation counts again.
    s.record_consent(
        &consent("c4", "idx-a", "telemarketing", "call", 60),
        a("consent.grant"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.consented(&probe, "telemarketing", "call").await.unwrap(),
        ["idx-a"]
    );
}
both_backends!(a_revoked_consent_stops_counting_at_once_and_is_revoked_only_once);

// ---- the vault ----------------------------------------------------------------------------

fn customer_row(id: &str) -> CustomerRow {
    CustomerRow {
        id: id.into(),
        status: "active".into(),
        version: 1,
        wrapped_key: Some(vec![1, 2, 3]),
        kek_id: "k1".into(),
        fields: "{}".into(),
        created_at: 1_000,
        updated_at: 1_000,
        verify_failures: 0,
        verify_window_start: None,
        requests: None,
    }
}

fn interaction_row(id: &str, customer: &str) -> InteractionRow {
    InteractionRow {
        id: id.into(),
        version: 1,
        agent_id: "agent".into(),
        customer_id: Some(customer.into()),
        channel: "phone".into(),
        direction: "inbound".into(),
        from_hash: None,
        status: "active".into(),
        started_at: 1_000,
        ended_at: None,
        state: "{}".into(),
    }
}

both_backends!(a_vault_write_applies_whole_or_not_at_all_when_a_version_or_code_moved);
async fn a_vault_write_applies_whole_or_not_at_all_when_a_version_or_code_moved(f: Fixture) {
    let s = &f.store;
    let index = vec![IndexEntry {
        kind: "phone".into(),
        hash: "h-phone".into(),
    }];
    assert!(s
        .vault_commit(VaultWrite {
            customers: vec![(customer_row("c1"), None)],
            index: vec![("c1".into(), index)],
            interaction: Some((interaction_row("i1", "c1"), None)),
            new_code: Some(CodeRow {
                id: "code1".into(),
                customer_id: "c1".into(),
                purpose: "portal".into(),
                code_hash: "hash1".into(),
                interaction_id: None,
                created_at: 1_000,
                expires_at: 5_000,
                used_at: None,
            }),
            audit: vec![a("customer.create")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    assert_eq!(size(s).await, 1);
    assert_eq!(
        s.customers_by_index("phone", "h-phone", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.live_codes("c1", "portal", 2_000).await.unwrap().len(), 1);
    assert!(
        s.live_codes("c1", "portal", 5_000)
            .await
            .unwrap()
            .is_empty(),
        "expired"
    );

    // A write naming a stale interaction version changes nothing, not even the log.
    let mut c = customer_row("c1");
    c.version = 2;
    c.fields = "{\"x\":1}".into();
    assert!(!s
        .vault_commit(VaultWrite {
            customers: vec![(c.clone(), Some(1))],
            interaction_guard: Some(("i1".into(), 7)),
            audit: vec![a("customer.operation")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    assert_eq!(s.customer("c1").await.unwrap().unwrap().fields, "{}");
    assert_eq!(size(s).await, 1);

    // A code is spent once: the second spend fails and its write with it.
    let spend = |customer: CustomerRow, expected: i64| VaultWrite {
        customers: vec![(customer, Some(expected))],
        spend_code: Some(("code1".into(), 2_000)),
        audit: vec![a("interaction.verify")],
        ..VaultWrite::default()
    };
    assert!(s.vault_commit(spend(c.clone(), 1)).await.unwrap());
    let mut c3 = c.clone();
    c3.version = 3;
    assert!(!s.vault_commit(spend(c3, 2)).await.unwrap());
    assert_eq!(s.customer("c1").await.unwrap().unwrap().version, 2);
    assert!(s
        .live_codes("c1", "portal", 2_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(size(s).await, 2);

    // Replacing the index drops the old entries; erased customers are never found.
    let mut erased = c.clone();
    erased.version = 3;
    erased.status = "erased".into();
    erased.wrapped_key = None;
    assert!(s
        .vault_commit(VaultWrite {
            customers: vec![(erased, Some(2))],
            index: vec![("c1".into(), Vec::new())],
            delete_codes_of: Some("c1".into()),
            audit: vec![a("customer.erase")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    assert!(s
        .customers_by_index("phone", "h-phone", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s.wrapped_keys("", 10).await.unwrap().is_empty());
}

both_backends!(key_shares_are_stored_once_and_destroyed_for_good);
async fn key_shares_are_stored_once_and_destroyed_for_good(f: Fixture) {
    let s = &f.store;
    s.put_share("c1", &[7u8; 32]).await.unwrap();
    assert!(matches!(
        s.put_share("c1", &[8u8; 32]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.share("c1").await.unwrap(), Some(vec![7u8; 32]));
    assert!(s.destroy_share("c1").await.unwrap());
    assert!(!s.destroy_share("c1").await.unwrap());
    assert_eq!(s.share("c1").await.unwrap(), None);
    if f.cleanup.is_none() {
        // On SQLite the key store is its own file, and a destroyed share leaves no bytes behind.
        let bytes = std::fs::read(f.dir.join("keystore.db")).unwrap();
        assert!(!bytes.windows(32).any(|w| w == [7u8; 32]), "secure_delete");
    }
}
