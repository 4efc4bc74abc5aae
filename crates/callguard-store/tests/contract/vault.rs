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
