//! Accounts: setup, sign-in failures and lockout, spent factors, dormancy and roles, and the
//! one-read facts of a sign-in step.

use super::*;
use callguard_core::identity::UserStatus;

fn pending(name: &str) -> NewPendingUser {
    NewPendingUser {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.to_owned(),
        role: Role::Agent,
        setup_token_hash: format!("hash-{name}"),
        setup_expires_at: 2_000,
        created_at: 1_000,
        created_by: "user:admin-1".into(),
        confirmed_by: None,
    }
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

async fn a_compliance_account_is_confirmed_once_and_loses_it_with_a_new_role_or_credentials(
    f: Fixture,
) {
    let s = &f.store;
    let mut new = pending("olga");
    new.role = Role::Compliance;
    let id = s
        .create_pending_user(new, a("user.create"))
        .await
        .unwrap()
        .id;
    let p = s.provenance(&id).await.unwrap().unwrap();
    assert_eq!(
        p.created_by.as_deref(),
        Some("user:admin-1"),
        "the creator is kept"
    );
    assert_eq!(p.confirmed_at, None);
    let before = size(s).await;
    assert!(
        !s.confirm_officer(&id, "user:c1", 1_100, a("user.confirm"))
            .await
            .unwrap(),
        "an account not yet set up cannot be confirmed"
    );
    assert_eq!(
        size(s).await,
        before,
        "a refused confirmation appends nothing"
    );
    let officer = s
        .create_active_user(
            NewActiveUser {
                id: uuid::Uuid::new_v4().to_string(),
                username: "olga3".into(),
                role: Role::Compliance,
                password_hash: "$argon2id$x".into(),
                totp_sealed: vec![9],
                recovery_code_hashes: vec![],
                created_at: 1_000,
                created_by: "cli".into(),
                confirmed_by: None,
            },
            a("user.create"),
        )
        .await
        .unwrap()
        .id;
    assert!(s
        .confirm_officer(&officer, "user:c1", 1_100, a("user.confirm"))
        .await
        .unwrap());
    let p = s.provenance(&officer).await.unwrap().unwrap();
    assert_eq!(
        (p.confirmed_by.as_deref(), p.confirmed_at),
        (Some("user:c1"), Some(1_100))
    );
    assert!(
        !s.confirm_officer(&officer, "user:c2", 1_200, a("user.confirm"))
            .await
            .unwrap(),
        "confirmed once"
    );
    assert!(s
        .reset_setup(&officer, "hash-reset", 9_000, a("user.reset"))
        .await
        .unwrap());
    assert_eq!(
        s.provenance(&officer).await.unwrap().unwrap().confirmed_by,
        None,
        "whoever sets the account up again is not confirmed"
    );
    let ready = s
        .create_active_user(
            NewActiveUser {
                id: uuid::Uuid::new_v4().to_string(),
                username: "olga4".into(),
                role: Role::Compliance,
                password_hash: "$argon2id$x".into(),
                totp_sealed: vec![9],
                recovery_code_hashes: vec![],
                created_at: 1_000,
                created_by: "cli".into(),
                confirmed_by: Some("cli".into()),
            },
            a("user.create"),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        s.provenance(&ready).await.unwrap().unwrap().confirmed_at,
        Some(1_000),
        "the operator vouches at creation"
    );
    assert!(s
        .set_role(&ready, Role::Agent, a("user.role_change"))
        .await
        .unwrap());
    let p = s.provenance(&ready).await.unwrap().unwrap();
    assert_eq!(p.confirmed_by, None, "a new role needs a new confirmation");
    assert!(p.role_granted_at.is_some());
    assert!(s
        .provenances()
        .await
        .unwrap()
        .iter()
        .any(|p| p.user_id == ready));
}
both_backends!(a_compliance_account_is_confirmed_once_and_loses_it_with_a_new_role_or_credentials);
