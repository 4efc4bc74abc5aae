//! The audit log: contiguous entries, the stored Merkle tree and checkpoints.

use super::*;

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
    s.integrate().await.unwrap();
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
