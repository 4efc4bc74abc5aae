//! Call recordings: registered with their key share, ended once, each change with its entry.

use super::*;

fn recording(id: &str, interaction: &str, at: i64) -> RecordingRow {
    RecordingRow {
        id: id.into(),
        interaction_id: interaction.into(),
        customer_id: Some("c1".into()),
        file_name: format!("{id}.cgrec"),
        key_share: vec![7; 73],
        started_at: at,
        ended_at: None,
        queue: None,
    }
}

async fn a_recording_keeps_its_key_share_and_ends_once_with_its_audit_entries(f: Fixture) {
    let s = &f.store;
    let before = size(s).await;
    s.start_recording(&recording("r1", "i1", 10), a("recording.start"))
        .await
        .unwrap();
    s.start_recording(&recording("r2", "i1", 20), a("recording.start"))
        .await
        .unwrap();
    assert_eq!(size(s).await, before + 2, "each start with its entry");
    assert_eq!(
        s.recording("r1").await.unwrap(),
        Some(recording("r1", "i1", 10))
    );
    assert!(s.recording("nope").await.unwrap().is_none());
    assert!(s.end_recording("r1", 30, a("recording.end")).await.unwrap());
    assert!(
        !s.end_recording("r1", 40, a("recording.end")).await.unwrap(),
        "a recording ends once"
    );
    assert!(!s
        .end_recording("nope", 40, a("recording.end"))
        .await
        .unwrap());
    assert_eq!(size(s).await, before + 3, "only the real end is logged");
    let of: Vec<(String, Option<i64>)> = s
        .recordings_of("i1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.ended_at))
        .collect();
    assert_eq!(of, [("r1".into(), Some(30)), ("r2".into(), None)]);
    assert!(s.recordings_of("i2").await.unwrap().is_empty());
}
both_backends!(a_recording_keeps_its_key_share_and_ends_once_with_its_audit_entries);

async fn recordings_are_listed_newest_first_by_interaction_date_and_queue(f: Fixture) {
    let s = &f.store;
    for (id, interaction, at) in [("r1", "i1", 10), ("r2", "i1", 20), ("r3", "i2", 30)] {
        s.start_recording(&recording(id, interaction, at), a("recording.start"))
            .await
            .unwrap();
    }
    assert!(s.set_recording_queue("r3", "billing").await.unwrap());
    assert!(!s.set_recording_queue("nope", "billing").await.unwrap());
    let ids = |rows: Vec<RecordingRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = RecordingFilter {
        limit: 10,
        ..RecordingFilter::default()
    };
    assert_eq!(
        ids(s.list_recordings(&all).await.unwrap()),
        ["r3", "r2", "r1"]
    );
    let by = |f: RecordingFilter| async move { ids(s.list_recordings(&f).await.unwrap()) };
    assert_eq!(
        by(RecordingFilter {
            interaction_id: Some("i1".into()),
            ..all.clone()
        })
        .await,
        ["r2", "r1"]
    );
    assert_eq!(
        by(RecordingFilter {
            from: Some(15),
            until: Some(30),
            ..all.clone()
        })
        .await,
        ["r2"]
    );
    assert_eq!(
        by(RecordingFilter {
            queue: Some("billing".into()),
            ..all.clone()
        })
        .await,
        ["r3"]
    );
    assert_eq!(
        by(RecordingFilter {
            limit: 1,
            ..all.clone()
        })
        .await,
        ["r3"]
    );
    let before = size(s).await;
    let p = PlaybackRow {
        id: "p1".into(),
        recording_id: "r1".into(),
        user_id: "u1".into(),
        reason: "complaint".into(),
        note: "caller disputes the fee".into(),
        at: 50,
    };
    s.record_playback(&p, a("recording.playback"))
        .await
        .unwrap();
    assert_eq!(size(s).await, before + 1, "a playback with its entry");
    assert_eq!(s.playbacks_of("r1").await.unwrap(), [p]);
}
both_backends!(recordings_are_listed_newest_first_by_interaction_date_and_queue);

fn credentials(user: &str, name: &str, sealed: u8, at: i64) -> SipCredentialRow {
    SipCredentialRow {
        user_id: user.into(),
        sip_username: name.into(),
        password_sealed: vec![sealed; 40],
        issued_at: at,
    }
}

async fn sip_credentials_are_found_by_name_and_rotated_in_place(f: Fixture) {
    let s = &f.store;
    let before = size(s).await;
    s.set_sip_credentials(
        &credentials("u1", "agent1", 1, 10),
        a("sip.credentials.issue"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.sip_credentials("agent1").await.unwrap(),
        Some(credentials("u1", "agent1", 1, 10))
    );
    s.set_sip_credentials(
        &credentials("u1", "agent1", 2, 20),
        a("sip.credentials.issue"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.sip_credentials("agent1").await.unwrap(),
        Some(credentials("u1", "agent1", 2, 20))
    );
    assert!(s.sip_credentials("agent2").await.unwrap().is_none());
    assert_eq!(size(s).await, before + 2, "each issue with its entry");
    assert_eq!(
        s.sip_credentials_of_user("u1").await.unwrap(),
        Some(credentials("u1", "agent1", 2, 20))
    );
    assert!(s.sip_credentials_of_user("u2").await.unwrap().is_none());
}
both_backends!(sip_credentials_are_found_by_name_and_rotated_in_place);

async fn disabling_an_account_revokes_its_sip_credentials(f: Fixture) {
    let s = &f.store;
    let id = ready(s, "sipper").await;
    s.set_sip_credentials(
        &credentials(&id, "sipper", 1, 10),
        a("sip.credentials.issue"),
    )
    .await
    .unwrap();
    assert!(s
        .set_status(
            &id,
            callguard_core::identity::UserStatus::Disabled,
            20,
            a("user.disable")
        )
        .await
        .unwrap());
    assert!(s.sip_credentials("sipper").await.unwrap().is_none());
    assert!(s.sip_credentials_of_user(&id).await.unwrap().is_none());
    assert!(s
        .set_status(
            &id,
            callguard_core::identity::UserStatus::Active,
            30,
            a("user.enable")
        )
        .await
        .unwrap());
    assert!(
        s.sip_credentials("sipper").await.unwrap().is_none(),
        "enabling again does not bring them back"
    );
}
both_backends!(disabling_an_account_revokes_its_sip_credentials);
