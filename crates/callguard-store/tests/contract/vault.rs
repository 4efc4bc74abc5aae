//! The vault: all-or-nothing writes and the key shares.

use super::*;

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
        disposition: None,
    }
}

both_backends!(an_agents_and_a_customers_interactions_list_newest_first_with_the_wrap_up_code);
async fn an_agents_and_a_customers_interactions_list_newest_first_with_the_wrap_up_code(
    f: Fixture,
) {
    let s = &f.store;
    assert!(s
        .vault_commit(VaultWrite {
            customers: vec![(customer_row("c1"), None)],
            audit: vec![a("customer.create")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    for (id, agent, at) in [
        ("i1", "agent", 1_000),
        ("i2", "other", 2_000),
        ("i3", "agent", 3_000),
    ] {
        let mut row = interaction_row(id, "c1");
        row.agent_id = agent.into();
        row.started_at = at;
        assert!(s
            .vault_commit(VaultWrite {
                interaction: Some((row, None)),
                audit: vec![a("interaction.start")],
                ..VaultWrite::default()
            })
            .await
            .unwrap());
    }
    let mut wrapped = s.interaction("i1").await.unwrap().unwrap();
    wrapped.version = 2;
    wrapped.status = "ended".into();
    wrapped.disposition = Some("resolved".into());
    assert!(s
        .vault_commit(VaultWrite {
            interaction: Some((wrapped, Some(1))),
            audit: vec![a("interaction.wrap_up")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    let mine: Vec<String> = s
        .agent_interactions("agent", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(mine, ["i3", "i1"]);
    let timeline = s.customer_interactions("c1", 2).await.unwrap();
    assert_eq!(
        timeline.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["i3", "i2"],
        "newest first, limited"
    );
    let first = s.customer_interactions("c1", 10).await.unwrap();
    assert_eq!(first[2].disposition.as_deref(), Some("resolved"));
    assert!(s.agent_interactions("nobody", 10).await.unwrap().is_empty());
}

both_backends!(an_interaction_handed_over_becomes_the_new_agents);
async fn an_interaction_handed_over_becomes_the_new_agents(f: Fixture) {
    let s = &f.store;
    let mut row = interaction_row("i1", "c1");
    row.agent_id = "telephony-edge".into();
    assert!(s
        .vault_commit(VaultWrite {
            customers: vec![(customer_row("c1"), None)],
            interaction: Some((row, None)),
            audit: vec![a("interaction.start")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    let mut handed = s.interaction("i1").await.unwrap().unwrap();
    handed.version = 2;
    handed.agent_id = "agent".into();
    assert!(s
        .vault_commit(VaultWrite {
            interaction: Some((handed, Some(1))),
            audit: vec![a("interaction.hand_over")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    let now = s.interaction("i1").await.unwrap().unwrap();
    assert_eq!(
        now.agent_id, "agent",
        "the agent who answered owns the call"
    );
    assert_eq!(
        s.agent_interactions("agent", 10).await.unwrap().len(),
        1,
        "it is in their list"
    );
    assert!(s
        .agent_interactions("telephony-edge", 10)
        .await
        .unwrap()
        .is_empty());
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

both_backends!(a_look_up_with_shares_answers_each_customer_with_its_own_share_until_erased);
async fn a_look_up_with_shares_answers_each_customer_with_its_own_share_until_erased(f: Fixture) {
    let s = &f.store;
    for (id, byte) in [("c1", 1u8), ("c2", 2u8)] {
        s.put_share(id, &[byte; 32]).await.unwrap();
        assert!(s
            .vault_commit(new_customer(id, vec![phone("h-shared")]))
            .await
            .unwrap());
    }
    let shares = |rows: Vec<(CustomerRow, Option<Vec<u8>>)>| {
        rows.into_iter()
            .map(|(r, share)| (r.id, share))
            .collect::<Vec<_>>()
    };
    let found = s
        .customers_with_shares_by_index("phone", "h-shared", 10)
        .await
        .unwrap();
    // The same rows as the look-up without shares, in its order.
    let plain: Vec<String> = s
        .customers_by_index("phone", "h-shared", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        found.iter().map(|(r, _)| r.id.clone()).collect::<Vec<_>>(),
        plain
    );
    assert_eq!(
        shares(found),
        vec![
            ("c1".to_owned(), Some(vec![1u8; 32])),
            ("c2".to_owned(), Some(vec![2u8; 32]))
        ]
    );
    // A destroyed share is answered as none; the row is still there (erasure removes it next).
    assert!(s.destroy_share("c1").await.unwrap());
    assert_eq!(
        shares(
            s.customers_with_shares_by_index("phone", "h-shared", 10)
                .await
                .unwrap()
        ),
        vec![
            ("c1".to_owned(), None),
            ("c2".to_owned(), Some(vec![2u8; 32]))
        ]
    );
    assert_eq!(
        s.customers_with_shares_by_index("phone", "h-shared", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        s.customers_with_shares_by_index("phone' OR '1'='1", "h-shared", 10)
            .await,
        Err(StoreError::Backend(_))
    ));
    assert!(s
        .customers_with_shares_by_index("phone", "h-unknown", 10)
        .await
        .unwrap()
        .is_empty());
}

fn national(hash: &str) -> IndexEntry {
    IndexEntry {
        kind: "national_id".into(),
        hash: hash.into(),
    }
}

fn phone(hash: &str) -> IndexEntry {
    IndexEntry {
        kind: "phone".into(),
        hash: hash.into(),
    }
}

fn new_customer(id: &str, index: Vec<IndexEntry>) -> VaultWrite {
    VaultWrite {
        customers: vec![(customer_row(id), None)],
        index: vec![(id.into(), index)],
        audit: vec![a("customer.create")],
        ..VaultWrite::default()
    }
}

both_backends!(a_national_id_is_held_by_one_customer_at_a_time);
both_backends!(a_look_up_by_an_unknown_index_kind_is_refused_before_any_statement);
async fn a_look_up_by_an_unknown_index_kind_is_refused_before_any_statement(f: Fixture) {
    let s = &f.store;
    assert!(s
        .vault_commit(new_customer("c1", vec![phone("h-home")]))
        .await
        .unwrap());
    for kind in ["", "Phone", "phone' OR '1'='1", "phone;", "kind with space"] {
        assert!(
            matches!(
                s.customers_by_index(kind, "h-home", 10).await,
                Err(StoreError::Backend(_))
            ),
            "{kind:?}"
        );
    }
    assert_eq!(
        s.customers_by_index("phone", "h-home", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_national_id_is_held_by_one_customer_at_a_time(f: Fixture) {
    let s = &f.store;
    assert!(s
        .vault_commit(new_customer("c1", vec![national("h-id"), phone("h-home")]))
        .await
        .unwrap());
    // A second holder of the same national id is refused whole: no row, no entry, no log.
    assert!(matches!(
        s.vault_commit(new_customer("c2", vec![national("h-id"), phone("h-home")]))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(s.customer("c2").await.unwrap().is_none());
    assert_eq!(size(s).await, 1);
    // Other kinds may be shared (a household's phone); the holder may rewrite its own entries.
    assert!(s
        .vault_commit(new_customer(
            "c3",
            vec![national("h-other"), phone("h-home")]
        ))
        .await
        .unwrap());
    assert_eq!(
        s.customers_by_index("phone", "h-home", 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(s
        .vault_commit(VaultWrite {
            index: vec![("c1".into(), vec![national("h-id"), phone("h-new")])],
            audit: vec![a("customer.operation")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    // Once the holder is erased (its entries gone), the national id is free again.
    let mut erased = customer_row("c1");
    erased.version = 2;
    erased.status = "erased".into();
    erased.wrapped_key = None;
    assert!(s
        .vault_commit(VaultWrite {
            customers: vec![(erased, Some(1))],
            index: vec![("c1".into(), Vec::new())],
            audit: vec![a("customer.erase")],
            ..VaultWrite::default()
        })
        .await
        .unwrap());
    assert!(s
        .vault_commit(new_customer("c4", vec![national("h-id")]))
        .await
        .unwrap());
    let holders = s
        .customers_by_index("national_id", "h-id", 10)
        .await
        .unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].id, "c4");
}

/// Runs `sql` on the fixture's database directly, as an older version of Callguard would have.
pub(crate) fn raw(f: &Fixture, sql: &str) {
    match &f.cleanup {
        None => {
            let db = rusqlite::Connection::open(f.dir.join("t.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(sql).unwrap();
        }
        Some((admin, name)) => {
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let out = std::process::Command::new("psql")
                .args([
                    &format!("{base}/{name}"),
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-qc",
                    sql,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

async fn reopen(f: &Fixture) -> Arc<dyn Store> {
    match &f.cleanup {
        None => open(None, &f.dir.join("t.db")).await.unwrap(),
        Some((admin, name)) => {
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            open(
                Some(&format!("{base}/{name}")),
                std::path::Path::new("/nonexistent"),
            )
            .await
            .unwrap()
        }
    }
}

both_backends!(
    an_older_database_holding_one_national_id_twice_still_migrates_and_keeps_the_first_holder
);
async fn an_older_database_holding_one_national_id_twice_still_migrates_and_keeps_the_first_holder(
    f: Fixture,
) {
    // The database as it was before national ids were unique: two holders of one id.
    raw(
        &f,
        "DROP INDEX customer_index_national_id_unique;
         DELETE FROM schema_migrations WHERE version = 8;
         INSERT INTO customers (id, status, version, wrapped_key, kek_id, fields, created_at, updated_at, verify_failures)
             VALUES ('c-later', 'active', 1, NULL, 'k1', '{}', 2000, 2000, 0),
                    ('c-first', 'active', 1, NULL, 'k1', '{}', 1000, 1000, 0);
         INSERT INTO customer_index (kind, hash, customer_id)
             VALUES ('national_id', 'h-twice', 'c-later'), ('national_id', 'h-twice', 'c-first'),
                    ('phone', 'h-phone', 'c-later'), ('phone', 'h-phone', 'c-first');",
    );
    let s = reopen(&f).await;
    // The first holder keeps the national id; the later one is set aside for review, not lost.
    let holders = s
        .customers_by_index("national_id", "h-twice", 10)
        .await
        .unwrap();
    assert_eq!(
        holders.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c-first"]
    );
    let set_aside = s
        .customers_by_index("national_id_duplicate", "h-twice", 10)
        .await
        .unwrap();
    assert_eq!(
        set_aside.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c-later"]
    );
    assert_eq!(
        s.customers_by_index("phone", "h-phone", 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // From now on the id is unique.
    assert!(matches!(
        s.vault_commit(new_customer("c-third", vec![national("h-twice")]))
            .await,
        Err(StoreError::Conflict)
    ));
}

fn key(user: &str, key: &str, at: UnixTime) -> IdempotencyRow {
    IdempotencyRow {
        user_id: user.into(),
        key_hash: key.into(),
        request_hash: "r1".into(),
        customer_id: "c1".into(),
        interaction_id: "i1".into(),
        kind: "add_note".into(),
        level: 1,
        created_at: at,
    }
}

both_backends!(an_idempotency_key_is_recorded_with_its_operation_once_per_account_and_day);
async fn an_idempotency_key_is_recorded_with_its_operation_once_per_account_and_day(f: Fixture) {
    let s = &f.store;
    assert!(s
        .vault_commit(new_customer("c1", vec![phone("h-1")]))
        .await
        .unwrap());
    let op = |k: IdempotencyRow| VaultWrite {
        idempotency: Some(k),
        audit: vec![a("customer.operation")],
        ..VaultWrite::default()
    };
    assert!(s.vault_commit(op(key("u1", "k1", 10_000))).await.unwrap());
    let before = size(s).await;
    // The same key again from the same account: the whole write is undone, nothing logged.
    assert!(!s.vault_commit(op(key("u1", "k1", 10_001))).await.unwrap());
    assert_eq!(size(s).await, before);
    // Another account's key with the same value is its own.
    assert!(s.vault_commit(op(key("u2", "k1", 10_001))).await.unwrap());
    let found = s.idempotent_operation("u1", "k1", 0).await.unwrap();
    assert_eq!(found, Some(key("u1", "k1", 10_000)));
    assert_eq!(s.idempotent_operation("u1", "k2", 0).await.unwrap(), None);
    // A key older than the window is forgotten and may name a new operation.
    assert_eq!(
        s.idempotent_operation("u1", "k1", 10_001).await.unwrap(),
        None
    );
    let later = 10_000 + IDEMPOTENCY_WINDOW + 1;
    assert!(s.vault_commit(op(key("u1", "k1", later))).await.unwrap());
    assert_eq!(
        s.idempotent_operation("u1", "k1", 0)
            .await
            .unwrap()
            .map(|k| k.created_at),
        Some(later)
    );
}
