//! Sessions and sign-in challenges: their lifetimes, expiry and spent attempts.

use super::*;

async fn sessions_and_challenges_live_and_die(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "dave").await;
    challenge(s, "c0", &id, "sign-in").await;
    let first = session("s1", &id, 100);
    let done = s
        .complete_sign_in(
            CompletedSignIn {
                ticket: admitted(s, &id, 100).await,
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
    // The one read of every authenticated request: the session with its account.
    let (with, user) = s.session_with_user("th1").await.unwrap().unwrap();
    assert_eq!(with, first);
    assert_eq!(user, s.user_by_id(&id).await.unwrap());
    assert!(user.is_some());
    assert!(s.session_with_user("th-unknown").await.unwrap().is_none());
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
    // Answers are taken before they are checked: five at once are all taken, a sixth is not.
    for n in 1..=5 {
        let taken = s
            .take_challenge("c1", "sign-in", 5, None, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.challenge.attempts, n);
    }
    assert!(s
        .take_challenge("c1", "sign-in", 5, None, 100)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.challenge("c1", "sign-in", 100)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        5
    );
    // Recording the fifth wrong answer deletes the spent challenge.
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

/// A session's user agent is a sealed text column: key rotation pages through it as the bytes of
/// its text and replaces a value only while it is still the one it read.
async fn user_agents_page_and_replace_as_sealed_text(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "erin").await;
    challenge(s, "c9", &id, "sign-in").await;
    let mut kept = session("s9", &id, 100);
    kept.user_agent = "sealed:AAEC".into();
    let ticket = admitted(s, &id, 100).await;
    assert!(s
        .complete_sign_in(
            CompletedSignIn {
                ticket,
                challenge_hash: "c9".into(),
                factor: SpentFactor::TotpStep(1),
                session: kept,
                token_hash: "th9".into(),
            },
            a("auth.sign_in"),
        )
        .await
        .unwrap());
    let column = SealedColumn::SessionUserAgent;
    assert!(column.is_text());
    let page = s.sealed_page(column, "", 10).await.unwrap();
    assert_eq!(page, vec![("s9".to_owned(), b"sealed:AAEC".to_vec())]);
    assert!(s.sealed_page(column, "s9", 10).await.unwrap().is_empty());
    assert!(!s
        .replace_sealed(column, "s9", b"sealed:other", b"sealed:BBBB")
        .await
        .unwrap());
    assert!(s
        .replace_sealed(column, "s9", b"sealed:AAEC", b"sealed:BBBB")
        .await
        .unwrap());
    let stored = s.session_by_token("th9").await.unwrap().unwrap();
    assert_eq!(stored.user_agent, "sealed:BBBB");
}

both_backends!(user_agents_page_and_replace_as_sealed_text);
