//! Compliance evidence: facts counted as the controls need them, the card-number scan,
//! retention (overdue counts agree with what a purge removes, and the purge is audited), manual
//! records, the breach register and report runs.

use super::vault::raw;
use super::*;

fn customer(id: &str, updated_at: i64) -> CustomerRow {
    CustomerRow {
        id: id.into(),
        status: "active".into(),
        version: 1,
        wrapped_key: Some(vec![1, 2, 3]),
        kek_id: "k1".into(),
        fields: "{\"full_name\":\"c2VhbGVk\"}".into(),
        created_at: updated_at,
        updated_at,
        verify_failures: 0,
        verify_window_start: None,
        requests: None,
    }
}

fn interaction(id: &str, customer: &str, at: i64, state: &str) -> InteractionRow {
    InteractionRow {
        id: id.into(),
        version: 1,
        agent_id: "agent".into(),
        customer_id: Some(customer.into()),
        channel: "phone".into(),
        direction: "inbound".into(),
        from_hash: None,
        status: "ended".into(),
        started_at: at,
        ended_at: Some(at + 60),
        state: state.into(),
        disposition: None,
    }
}

async fn add_customer(s: &Arc<dyn Store>, row: CustomerRow) {
    let id = row.id.clone();
    assert!(s
        .vault_commit(VaultWrite {
            customers: vec![(row, None)],
            index: vec![(id, vec![])],
            audit: vec![a("customer.create")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
}

async fn add_interaction(s: &Arc<dyn Store>, row: InteractionRow) {
    assert!(s
        .vault_commit(VaultWrite {
            interaction: Some((row, None)),
            audit: vec![a("interaction.start")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
}

async fn access_facts_count_missing_second_factors_idle_accounts_and_weak_hashes(f: Fixture) {
    let s = &f.store;
    let cut = AccessCutoffs {
        now: 10_000,
        idle_before: 500,
        session_seen_before: 9_000,
    };
    let clean = s.access_facts(&cut).await.unwrap();
    assert_eq!(clean.active_without_second_factor, 0);
    let id = ready(s, "ada").await;
    let facts = s.access_facts(&cut).await.unwrap();
    assert_eq!(facts.active_without_second_factor, 0, "{facts:?}");
    assert_eq!(facts.active_idle, 0, "created at 1000, after the cutoff");
    assert_eq!(facts.accounts, vec![("admin".into(), "active".into(), 1)]);
    let later = AccessCutoffs {
        idle_before: 2_000,
        ..cut
    };
    assert_eq!(s.access_facts(&later).await.unwrap().active_idle, 1);
    // A second factor removed behind the application's back.
    let b = ready(s, "bob").await;
    raw(
        &f,
        &format!("UPDATE users SET totp_sealed = NULL, password_hash = 'plain' WHERE id = '{b}'"),
    );
    let facts = s.access_facts(&cut).await.unwrap();
    assert_eq!(facts.active_without_second_factor, 1);
    assert_eq!(facts.admins_without_second_factor, 1);
    assert_eq!(facts.weak_password_hashes, 1);
    raw(
        &f,
        &format!("INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, reauth_at, source, user_agent) VALUES ('s1', 'h1', '{id}', 100, 100, 100, 'x', 'y')"),
    );
    assert_eq!(s.access_facts(&cut).await.unwrap().stale_sessions, 1);
}
both_backends!(access_facts_count_missing_second_factors_idle_accounts_and_weak_hashes);

async fn the_card_scan_counts_rows_holding_a_card_number_and_resumes_in_the_log(f: Fixture) {
    let s = &f.store;
    add_customer(s, customer("c1", 100)).await;
    add_interaction(
        s,
        interaction("i1", "c1", 100, "{\"note\":\"4111 1111 1111 1111\"}"),
    )
    .await;
    add_interaction(s, interaction("i2", "c1", 100, "{\"note\":\"no card\"}")).await;
    let scan = s.pan_scan(0).await.unwrap();
    assert_eq!(scan.stored_hits, vec![("interactions.state".to_owned(), 1)]);
    assert_eq!(scan.audit_hits, 0);
    let end = size(s).await;
    assert_eq!(scan.audit_scanned_to, end);
    s.append(vec![a("test.note").detail("x", "5555555555554444")])
        .await
        .unwrap();
    let again = s.pan_scan(end).await.unwrap();
    assert_eq!((again.audit_from, again.audit_hits), (end, 1));
    assert_eq!(again.audit_scanned_to, end + 1);
}
both_backends!(the_card_scan_counts_rows_holding_a_card_number_and_resumes_in_the_log);

async fn retention_purges_exactly_what_is_overdue_and_audits_the_counts(f: Fixture) {
    let s = &f.store;
    add_customer(s, customer("old", 100)).await;
    add_customer(s, customer("busy", 100)).await;
    add_customer(s, customer("new", 5_000)).await;
    add_interaction(s, interaction("i-old", "old", 100, "{}")).await;
    add_interaction(s, interaction("i-busy", "busy", 4_000, "{}")).await;
    assert_eq!(s.last_retention_run().await.unwrap(), None);
    let cut = RetentionCutoffs {
        now: 6_000,
        interactions: Some(1_000),
        customers: Some(1_000),
        alerts: Some(1_000),
        sessions: None,
        recordings: Some(1_000),
    };
    for (id, at) in [("rec-old", 500), ("rec-new", 1_500)] {
        s.start_recording(
            &RecordingRow {
                id: id.into(),
                interaction_id: "i-busy".into(),
                customer_id: None,
                file_name: format!("{id}.cgrec"),
                key_share: vec![1; 73],
                started_at: at,
                ended_at: Some(at + 60),
                queue: None,
            },
            a("recording.start"),
        )
        .await
        .unwrap();
    }
    s.record_playback(
        &PlaybackRow {
            id: "p1".into(),
            recording_id: "rec-old".into(),
            user_id: "u1".into(),
            reason: "quality_review".into(),
            note: String::new(),
            at: 900,
        },
        a("recording.playback"),
    )
    .await
    .unwrap();
    let due = s.retention_overdue(&cut).await.unwrap();
    assert_eq!(
        (due.interactions, due.customers, due.alerts, due.recordings),
        (1, 1, 0, 1)
    );
    let files = s.retention_recordings(&cut, 10).await.unwrap();
    assert_eq!(
        files,
        [("rec-old".to_string(), "rec-old.cgrec".to_string())]
    );
    let recordings: Vec<String> = files.into_iter().map(|(id, _)| id).collect();
    let ids = s.retention_customers(&cut, 10).await.unwrap();
    assert_eq!(ids, ["old"], "a customer with a recent interaction stays");
    let before = size(s).await;
    let done = s
        .retention_purge(&cut, &ids, &recordings, a("retention.purge"))
        .await
        .unwrap();
    assert_eq!(done, due);
    assert_eq!(
        s.last_retention_run().await.unwrap(),
        Some((6_000, done)),
        "the run is kept for the report"
    );
    assert_eq!(size(s).await, before + 1, "one audit entry");
    let last = s.audit_entries(before, 1).await.unwrap().remove(0);
    assert!(last.text.contains("\"interactions\":1"), "{}", last.text);
    assert!(last.text.contains("\"recordings\":1"), "{}", last.text);
    assert!(
        s.recording("rec-old").await.unwrap().is_none(),
        "key share gone"
    );
    assert!(s.playbacks_of("rec-old").await.unwrap().is_empty());
    assert!(s.recording("rec-new").await.unwrap().is_some());
    let old = s.customer("old").await.unwrap().unwrap();
    assert_eq!(
        (old.status.as_str(), old.wrapped_key, old.fields.as_str()),
        ("erased", None, "{}")
    );
    assert_eq!(s.retention_overdue(&cut).await.unwrap().total(), 0);
    let facts = s.customer_facts().await.unwrap();
    assert_eq!(
        (facts.active, facts.erased, facts.erased_readable),
        (2, 1, 0)
    );
}
both_backends!(retention_purges_exactly_what_is_overdue_and_audits_the_counts);

async fn manual_records_breaches_and_runs_are_kept_with_their_audit_entries(f: Fixture) {
    let s = &f.store;
    let n = size(s).await;
    for (id, on) in [
        ("m1", "2026-01-10"),
        ("m2", "2026-06-01"),
        ("m3", "2026-03-01"),
    ] {
        s.record_manual(
            &ManualRecord {
                id: id.into(),
                control: "access_review".into(),
                performed_on: on.into(),
                note: "reviewed".into(),
                recorded_by: "user:u1".into(),
                recorded_at: 10,
            },
            a("compliance.manual_record"),
        )
        .await
        .unwrap();
    }
    let latest = s.latest_manual().await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].id, "m2", "the latest performance counts");
    let breach = BreachRecord {
        id: "b1".into(),
        summary: "laptop lost".into(),
        detected_at: 100,
        notified_at: None,
        no_notice_reason: None,
        recorded_by: "user:u1".into(),
        recorded_at: 100,
    };
    s.record_breach(&breach, a("compliance.breach_record"))
        .await
        .unwrap();
    assert!(s
        .close_breach("b1", Some(200), None, a("compliance.breach_notified"))
        .await
        .unwrap());
    assert!(
        !s.close_breach("b1", Some(300), None, a("compliance.breach_notified"))
            .await
            .unwrap(),
        "closed once"
    );
    assert_eq!(s.breaches(10).await.unwrap()[0].notified_at, Some(200));
    for (id, at) in [("r1", 10), ("r2", 20)] {
        s.record_run(
            &ReportRun {
                id: id.into(),
                at,
                framework: "all".into(),
                passed: 30,
                failed: 1,
                manual: 2,
                not_applicable: 3,
                checkpoint_size: 7,
                scanned_to: 7,
            },
            a("compliance.report"),
        )
        .await
        .unwrap();
    }
    let runs = s.runs(10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r1"]
    );
    assert_eq!(
        size(s).await,
        n + 7,
        "every change with its entry, the refused one without"
    );
}
both_backends!(manual_records_breaches_and_runs_are_kept_with_their_audit_entries);
