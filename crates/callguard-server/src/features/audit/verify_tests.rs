//! Tests of `audit verify` (kept beside it in their own file).

use super::*;
use crate::features::audit::service::{AuditLog, WitnessSettings};
use callguard_core::audit::note::NoteSigner;
use callguard_core::audit::AuditRecord;
use callguard_store::{AuditStore, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;

#[test]
fn leaves_hashed_on_several_threads_equal_those_hashed_one_by_one() {
    let mut block = EntryBlock::default();
    for i in 0..5000u64 {
        let (mut text, leaf) = AuditRecord::new("test.event", "system")
            .detail("i", i)
            .leaf(i)
            .unwrap();
        // Texts the one-scan check refuses take the slow path: no leaf from the fast one.
        if i == 17 {
            text.push(' ');
        }
        block.push(if i == 4321 { 4322 } else { i }, &text, &leaf);
    }
    // Memory left over from a larger step is reused, not read.
    let mut leaves = vec![Some([7u8; 32]); 9000];
    fast_leaves_into(&block, &mut leaves);
    assert_eq!(leaves.len(), block.len());
    for (i, leaf) in leaves.iter().enumerate() {
        if i == 17 || i == 4321 {
            assert_eq!(*leaf, None, "entry {i}");
        } else {
            assert_eq!(
                *leaf,
                Some(merkle::leaf_hash(block.text(i).as_bytes())),
                "entry {i}"
            );
        }
    }
}

/// A real SQLite log of `n` entries appended in uneven calls, with checkpoints signed at
/// sizes that fall inside steps and on their ends.
struct Log {
    dir: PathBuf,
    store: Arc<SqliteStore>,
    key: String,
    witness: PathBuf,
}

impl Log {
    async fn new(n: u64, checkpoint_at: &[u64]) -> Self {
        let dir = std::env::temp_dir().join(format!("callguard-verify-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.join("db.sqlite")).await.unwrap());
        let settings = WitnessSettings {
            dir: dir.join("witness"),
            syslog: None,
            url: None,
        };
        let witness = settings.file();
        let log = AuditLog::new(
            store.clone(),
            NoteSigner::generate("localhost/callguard-audit").unwrap(),
            settings,
        )
        .unwrap();
        let mut done = 0;
        while done < n {
            let count = (done % 7 + 1).min(n - done);
            let records = (done..done + count)
                .map(|i| AuditRecord::new("test.event", "system").detail("i", i))
                .collect();
            store.append(records).await.unwrap();
            done += count;
            if checkpoint_at
                .iter()
                .any(|c| (done - count..done).contains(c))
            {
                log.checkpoint().await.unwrap();
            }
        }
        log.checkpoint().await.unwrap();
        Self {
            dir,
            store,
            key: log.verifier_key(),
            witness,
        }
    }

    async fn verify(&self, step_log2: u32) -> Result<VerifyReport, VerifyFailure> {
        verify_store_in_steps(&*self.store, &self.key, &self.witness, step_log2, |_| {}).await
    }

    fn hex(&self, query: &str) -> String {
        let c = rusqlite::Connection::open(self.dir.join("db.sqlite")).unwrap();
        c.query_row(query, [], |r| r.get(0)).unwrap()
    }

    fn sql(&self, sql: &str) {
        let c = rusqlite::Connection::open(self.dir.join("db.sqlite")).unwrap();
        c.execute_batch(sql).unwrap();
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn verifying_in_steps_of_any_size_gives_the_root_of_the_log_and_every_checkpoint_matches() {
    let log = Log::new(300, &[1, 37, 64, 100, 129, 256]).await;
    let head = log.store.audit_head().await.unwrap();
    for step_log2 in [0, 1, 2, 3, 5, 8, 9, 16] {
        let report = log.verify(step_log2).await.unwrap();
        assert_eq!(report.entries, 300, "step 2^{step_log2}");
        assert_eq!(report.root, head.root(), "step 2^{step_log2}");
        assert!(report.checkpoints >= 7, "{report:?}");
    }
}

#[tokio::test]
async fn a_damaged_stored_node_at_any_level_inside_or_above_a_step_is_named() {
    let log = Log::new(300, &[100]).await;
    // (level, index): the lowest level, the top of a 2^3 step, above it, and the top of
    // the tree's largest perfect subtree (256 leaves).
    for (level, index) in [(1u32, 0u64), (1, 149), (3, 20), (4, 9), (6, 3), (8, 0)] {
        let node = format!("level = {level} AND idx = {index}");
        let original = log.hex(&format!("SELECT hex(hash) FROM audit_nodes WHERE {node}"));
        // Too long, and the right length with the wrong value.
        for bad in ["randomblob(33)", "zeroblob(32)"] {
            log.sql(&format!("UPDATE audit_nodes SET hash = {bad} WHERE {node}"));
            for step_log2 in [3, 16] {
                assert_eq!(
                    log.verify(step_log2).await,
                    Err(VerifyFailure::Node {
                        level,
                        index,
                        first_entry: index << level
                    }),
                    "{bad} at {node}, step 2^{step_log2}"
                );
            }
            log.sql(&format!(
                "UPDATE audit_nodes SET hash = X'{original}' WHERE {node}"
            ));
        }
        log.verify(3).await.unwrap();
    }
    // A deleted node is as bad as a damaged one.
    log.sql("DELETE FROM audit_nodes WHERE level = 2 AND idx = 40");
    assert_eq!(
        log.verify(3).await,
        Err(VerifyFailure::Node {
            level: 2,
            index: 40,
            first_entry: 160
        })
    );
}

#[tokio::test]
async fn a_stored_leaf_hash_damaged_or_cut_short_names_its_entry() {
    let log = Log::new(100, &[]).await;
    log.sql("UPDATE audit_entries SET leaf_hash = substr(leaf_hash, 1, 31) WHERE idx = 42");
    assert_eq!(log.verify(3).await, Err(VerifyFailure::Edited(42)));
    assert_eq!(log.verify(16).await, Err(VerifyFailure::Edited(42)));
    log.sql("UPDATE audit_entries SET leaf_hash = zeroblob(32) WHERE idx = 42");
    assert_eq!(log.verify(3).await, Err(VerifyFailure::Edited(42)));
}

#[test]
fn subtrees_hashed_in_chunks_on_several_threads_equal_those_hashed_one_by_one() {
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    // Twice over the same memory: what the first step left behind must not leak into the next.
    for (round, count) in [(0u8, 8192usize), (1, 4096 + 6)] {
        let leaves: Vec<Hash> = (0..count)
            .map(|i| merkle::leaf_hash(format!("{round}/{i}").as_bytes()))
            .collect();
        match levels.first_mut() {
            Some(first) => *first = leaves.clone(),
            None => levels.push(leaves.clone()),
        }
        subtree_levels_into(&mut levels, 13);
        let mut expected = vec![leaves];
        while expected.last().is_some_and(|l| l.len() >= 2) && expected.len() <= 13 {
            let below = expected.last().unwrap();
            let above = below
                .chunks_exact(2)
                .map(|p| merkle::node_hash(&p[0], &p[1]))
                .collect();
            expected.push(above);
        }
        assert_eq!(levels, expected, "round {round}");
    }
}
