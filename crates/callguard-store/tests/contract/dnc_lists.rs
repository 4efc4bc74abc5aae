//! The internal Do-Not-Call list and the consent ledger.

use super::*;

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
