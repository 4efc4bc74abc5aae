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
}
both_backends!(sip_credentials_are_found_by_name_and_rotated_in_place);
