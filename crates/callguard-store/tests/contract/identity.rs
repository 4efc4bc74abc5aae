//! Accounts: setup, sign-in failures and lockout, spent factors, dormancy and roles, and the
//! one-read facts of a sign-in step.

use super::*;
use callguard_core::identity::UserStatus;

pub(crate) fn pending(name: &str) -> NewPendingUser {
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

/// An agent created active (by the CLI), with no recovery codes.
pub(crate) fn active(name: &str) -> NewActiveUser {
    NewActiveUser {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.to_owned(),
        role: Role::Agent,
        password_hash: "$argon2id$x".into(),
        totp_sealed: vec![9],
        recovery_code_hashes: vec![],
        created_at: 1_000,
        created_by: "cli".into(),
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

async fn attempts_count_when_admitted_the_tenth_locks_and_an_expired_lock_starts_afresh(
    f: Fixture,
) {
    let s = &f.store;
    let id = ready(s, "bob").await;
    let before = size(s).await;
    // Ten attempts admitted together, none checked yet: each is counted at once, the tenth
    // reaches the limit and locks, the eleventh is refused without being counted.
    let mut tickets = Vec::new();
    for i in 1..=10 {
        let t = admitted(s, &id, 100).await;
        assert_eq!((t.failures, t.locked_it), (i, i == 10));
        tickets.push(t);
    }
    assert_eq!(
        s.admit_attempt(Some(&id), &rule(100, None)).await.unwrap(),
        Admission::Locked
    );
    assert_eq!(lock_state(s, &id).await, (10, Some(1_900)));
    assert_eq!(
        size(s).await,
        before,
        "admissions log nothing by themselves"
    );
    // Their failures are recorded, not counted again; the locking one is followed by
    // auth.account_locked.
    for t in &tickets[..9] {
        assert!(!failed(s, t, 101).await.locked);
    }
    let last = failed(s, &tickets[9], 101).await;
    assert!(last.locked);
    assert_eq!(last.user.unwrap().failed_sign_ins, 10);
    assert_eq!(size(s).await, before + 11);
    let entry = s.audit_entries(before + 10, 1).await.unwrap();
    assert!(
        entry[0].text.contains("\"action\":\"auth.account_locked\""),
        "{}",
        entry[0].text
    );
    // A lock that ran out starts a new run at 1.
    let t = admitted(s, &id, 2_000).await;
    assert_eq!((t.failures, t.locked_it), (1, false));
    assert!(t.epoch > tickets[0].epoch);
    assert_eq!(lock_state(s, &id).await, (1, None));
    assert!(s.unlock(&id, a("user.unlock")).await.unwrap());
    assert_eq!(lock_state(s, &id).await, (0, None));
    // Disabled accounts are counted; pending and unknown ones are not there to count.
    assert!(s
        .set_status(&id, UserStatus::Disabled, 2_000, a("user.disable"))
        .await
        .unwrap());
    assert_eq!(admitted(s, &id, 2_000).await.failures, 1);
    let p = s
        .create_pending_user(pending("bert"), a("user.create"))
        .await
        .unwrap();
    assert_eq!(
        s.admit_attempt(Some(&p.id), &rule(2_000, None))
            .await
            .unwrap(),
        Admission::Unavailable
    );
    assert_eq!(
        s.admit_attempt(None, &rule(2_000, None)).await.unwrap(),
        Admission::Unavailable
    );
    // A failure against nobody is still recorded.
    let n = size(s).await;
    let none = s
        .fail_attempt(FailedAttempt::default(), a("auth.sign_in").failure())
        .await
        .unwrap();
    assert!(none.user.is_none() && !none.locked);
    assert_eq!(size(s).await, n + 1);
}
both_backends!(attempts_count_when_admitted_the_tenth_locks_and_an_expired_lock_starts_afresh);

async fn a_right_password_stops_counting_and_lifts_only_the_lock_it_set(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "bella").await;
    for _ in 0..9 {
        let t = admitted(s, &id, 100).await;
        failed(s, &t, 100).await;
    }
    // The tenth attempt locks while it is checked; it was the right password.
    let tenth = admitted(s, &id, 100).await;
    assert!(tenth.locked_it);
    let ch = Challenge {
        token_hash: "after-password".into(),
        kind: "sign-in".into(),
        user_id: id.clone(),
        payload: "{}".into(),
        attempts: 0,
        expires_at: 500,
    };
    s.accept_password(&tenth, &ch).await.unwrap();
    assert_eq!(lock_state(s, &id).await, (9, None));
    assert!(s
        .challenge("after-password", "sign-in", 100)
        .await
        .unwrap()
        .is_some());
    // Now a right password being checked while a wrong one takes the tenth place: the lock that
    // one set stays (ten attempts without a success in between), and is logged once.
    let right = admitted(s, &id, 100).await;
    assert_eq!((right.failures, right.locked_it), (10, true));
    s.accept_password(
        &right,
        &Challenge {
            token_hash: "x".into(),
            ..ch.clone()
        },
    )
    .await
    .unwrap();
    let wrong = admitted(s, &id, 100).await;
    assert!(wrong.locked_it);
    assert!(s.unlock(&id, a("user.unlock")).await.unwrap());
    for _ in 0..8 {
        let t = admitted(s, &id, 200).await;
        failed(s, &t, 200).await;
    }
    let right = admitted(s, &id, 200).await;
    let wrong = admitted(s, &id, 200).await;
    assert!(!right.locked_it && wrong.locked_it);
    s.accept_password(
        &right,
        &Challenge {
            token_hash: "y".into(),
            ..ch.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(lock_state(s, &id).await, (9, Some(2_000)));
    assert_eq!(
        s.admit_attempt(Some(&id), &rule(200, None)).await.unwrap(),
        Admission::Locked
    );
    let n = size(s).await;
    assert!(failed(s, &wrong, 200).await.locked);
    assert_eq!(
        size(s).await,
        n + 2,
        "the failure and auth.account_locked, once"
    );
    // A right password admitted before an unlock belongs to the old run: it gives back nothing
    // of the new one.
    let old = admitted(s, &id, 3_000).await;
    assert!(s.unlock(&id, a("user.unlock")).await.unwrap());
    let fresh = admitted(s, &id, 3_000).await;
    assert_eq!(fresh.failures, 1);
    s.accept_password(
        &old,
        &Challenge {
            token_hash: "z".into(),
            ..ch
        },
    )
    .await
    .unwrap();
    assert_eq!(lock_state(s, &id).await, (1, None));
}
both_backends!(a_right_password_stops_counting_and_lifts_only_the_lock_it_set);

async fn completing_a_sign_in_rechecks_the_lock_in_the_same_transaction(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "cleo").await;
    let signin = |t: &AttemptTicket, ch: &str, sid: &str, at: i64| CompletedSignIn {
        ticket: t.clone(),
        challenge_hash: ch.into(),
        factor: SpentFactor::TotpStep(at),
        session: session(sid, &id, at),
        token_hash: format!("t-{sid}"),
    };
    // An attempt admitted, then the account unlocked and locked again by ten other failures:
    // its right second factor does not clear that lock.
    challenge(s, "held", &id, "sign-in").await;
    let held = admitted(s, &id, 100).await;
    assert!(s.unlock(&id, a("user.unlock")).await.unwrap());
    for _ in 0..10 {
        let t = admitted(s, &id, 100).await;
        failed(s, &t, 100).await;
    }
    let n = size(s).await;
    assert!(!s
        .complete_sign_in(signin(&held, "held", "s-held", 100), a("auth.sign_in"))
        .await
        .unwrap());
    assert_eq!(lock_state(s, &id).await, (10, Some(1_900)));
    assert_eq!(size(s).await, n, "nothing logged");
    assert!(s.session_by_token("t-s-held").await.unwrap().is_none());
    assert!(s.challenge("held", "sign-in", 100).await.unwrap().is_some());
    assert_eq!(
        s.credentials(&id).await.unwrap().unwrap().totp_last_step,
        None,
        "nothing spent"
    );
    assert!(
        !s.complete_reauthentication(
            "s-held",
            &held,
            SpentFactor::RecoveryCode("a".into()),
            100,
            a("auth.reauthenticate")
        )
        .await
        .unwrap(),
        "re-authentication meets the lock as well"
    );

    // Within its own run a right second factor wins over the lock its run set while it was
    // checked: nine failures, then the tenth attempt is right.
    assert!(s.unlock(&id, a("user.unlock")).await.unwrap());
    for _ in 0..9 {
        let t = admitted(s, &id, 200).await;
        failed(s, &t, 200).await;
    }
    let tenth = admitted(s, &id, 200).await;
    assert!(tenth.locked_it);
    assert!(s
        .complete_sign_in(signin(&tenth, "held", "s-ok", 200), a("auth.sign_in"))
        .await
        .unwrap());
    assert_eq!(lock_state(s, &id).await, (0, None));
    assert_eq!(
        s.user_by_id(&id).await.unwrap().unwrap().last_sign_in_at,
        Some(200)
    );
    // A sign-in starts a new run: attempts admitted before it count no more.
    let stale = admitted(s, &id, 300).await;
    let t = admitted(s, &id, 300).await;
    challenge(s, "again", &id, "sign-in").await;
    assert!(s
        .complete_sign_in(signin(&t, "again", "s-again", 300), a("auth.sign_in"))
        .await
        .unwrap());
    failed(s, &stale, 300).await;
    assert_eq!(lock_state(s, &id).await, (0, None));
    // A disabled account completes nothing.
    let t = admitted(s, &id, 400).await;
    assert!(s
        .set_status(&id, UserStatus::Disabled, 400, a("user.disable"))
        .await
        .unwrap());
    challenge(s, "disabled", &id, "sign-in").await;
    assert!(!s
        .complete_sign_in(signin(&t, "disabled", "s-dis", 400), a("auth.sign_in"))
        .await
        .unwrap());
}
both_backends!(completing_a_sign_in_rechecks_the_lock_in_the_same_transaction);

async fn a_totp_step_admits_three_wrong_codes_and_a_right_one_gives_its_charge_back(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "dora").await;
    let totp = |now: i64, step: i64| rule(now, Some(step));
    let mut tickets = Vec::new();
    for _ in 0..3 {
        match s.admit_attempt(Some(&id), &totp(100, 20)).await.unwrap() {
            Admission::Admitted(t) => tickets.push(t),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(tickets[2].totp_step, Some(20));
    assert_eq!(
        s.admit_attempt(Some(&id), &totp(100, 20)).await.unwrap(),
        Admission::TotpLocked
    );
    assert_eq!(
        lock_state(s, &id).await,
        (3, None),
        "a refused code is not counted against the account either"
    );
    let creds = s.credentials(&id).await.unwrap().unwrap();
    assert_eq!((creds.totp_fail_step, creds.totp_fail_count), (Some(20), 3));
    // The next step starts a new count.
    let next = match s.admit_attempt(Some(&id), &totp(130, 21)).await.unwrap() {
        Admission::Admitted(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        s.credentials(&id).await.unwrap().unwrap().totp_fail_count,
        1
    );
    // A right code gives its charge back and clears the account's failures.
    challenge(s, "c", &id, "sign-in").await;
    assert!(s
        .complete_sign_in(
            CompletedSignIn {
                ticket: next,
                challenge_hash: "c".into(),
                factor: SpentFactor::TotpStep(21),
                session: session("s", &id, 130),
                token_hash: "t-s".into(),
            },
            a("auth.sign_in")
        )
        .await
        .unwrap());
    let creds = s.credentials(&id).await.unwrap().unwrap();
    assert_eq!((creds.totp_fail_count, creds.totp_last_step), (0, Some(21)));
    assert_eq!(lock_state(s, &id).await, (0, None));
}
both_backends!(a_totp_step_admits_three_wrong_codes_and_a_right_one_gives_its_charge_back);

async fn totp_steps_and_recovery_codes_are_spent_once(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "carol").await;
    challenge(s, "c0", &id, "sign-in").await;
    let t = admitted(s, &id, 100).await;
    let signin = |ch: &str, factor: SpentFactor, sid: &str| CompletedSignIn {
        ticket: t.clone(),
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

    let code = |h: &str| SpentFactor::RecoveryCode(h.into());
    let t = admitted(s, &id, 150).await;
    assert!(s
        .complete_reauthentication("s0", &t, code("a"), 150, a("auth.reauthenticate"))
        .await
        .unwrap());
    assert_eq!(
        s.session_by_token("t-s0").await.unwrap().unwrap().reauth_at,
        150
    );
    assert!(!s
        .complete_reauthentication("s0", &t, code("a"), 160, a("auth.reauthenticate"))
        .await
        .unwrap());
    assert!(!s
        .complete_reauthentication("s0", &t, code("zzz"), 160, a("auth.reauthenticate"))
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
        !s.complete_reauthentication("s0", &t, code("b"), 170, a("auth.reauthenticate"))
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
        ticket: admitted(s, &recent, 5_000).await,
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
    let taken = s
        .take_challenge("cf", "sign-in", 5, None, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            taken.challenge.user_id.as_str(),
            taken.user.username.as_str()
        ),
        (id.as_str(), "gina")
    );
    assert_eq!(
        taken.challenge.attempts, 1,
        "the answer is counted as it is taken"
    );
    assert_eq!(
        taken.credentials.password_hash.as_deref(),
        Some("$argon2id$x")
    );
    assert!(taken.admission.is_none());
    assert!(
        s.take_challenge("cf", "setup", 5, None, 100)
            .await
            .unwrap()
            .is_none(),
        "kinds do not mix"
    );
    assert!(
        s.take_challenge("cf", "sign-in", 5, None, i64::MAX)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    // With a rule, the account's attempt is taken in the same write; when the account refuses
    // it, the challenge's answer is not taken either.
    let with = s
        .take_challenge("cf", "sign-in", 5, Some(&rule(100, Some(7))), 100)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(with.admission, Some(Admission::Admitted(ref t)) if t.failures == 1));
    for _ in 0..2 {
        s.admit_attempt(Some(&id), &rule(100, Some(7)))
            .await
            .unwrap();
    }
    let refused = s
        .take_challenge("cf", "sign-in", 5, Some(&rule(100, Some(7))), 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.admission, Some(Admission::TotpLocked));
    assert_eq!(
        s.challenge("cf", "sign-in", 100)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        2,
        "a refused attempt takes no answer"
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
    // Created with a second officer's confirmation: kept with the creation time.
    let mut confirmed = pending("oskar");
    confirmed.role = Role::Compliance;
    confirmed.confirmed_by = Some("user:c2".into());
    let oskar = s
        .create_pending_user(confirmed, a("user.create"))
        .await
        .unwrap()
        .id;
    let p = s.provenance(&oskar).await.unwrap().unwrap();
    assert_eq!(
        (
            p.created_by.as_deref(),
            p.confirmed_by.as_deref(),
            p.confirmed_at
        ),
        (Some("user:admin-1"), Some("user:c2"), Some(1_000))
    );
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
                role: Role::Compliance,
                ..active("olga3")
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
                role: Role::Compliance,
                confirmed_by: Some("cli".into()),
                ..active("olga4")
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
