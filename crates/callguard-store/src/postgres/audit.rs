//! The audit log on PostgreSQL: appending inside a write's own transaction (used by every
//! audited write through [`PostgresStore::guarded`]), and the reads of entries, subtrees and
//! checkpoints.

use super::{map_err, PostgresStore};
use crate::log::{parse_frontier, plan, to_hash};
use crate::sql;
use crate::*;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

/// Appends `records` to the audit log inside `tx`. The head row is locked `FOR UPDATE`, so
/// appends from every node are serialised by the database: no gap, no fork.
pub(super) async fn append_tx(tx: &Transaction<'_>, records: &[AuditRecord]) -> StoreResult<u64> {
    let row = tx
        .query_one(
            "SELECT frontier FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(map_err)?;
    let bytes: Vec<u8> = row.get(0);
    let planned = plan(parse_frontier(&bytes)?, records)?;
    let entry = tx
        .prepare_cached(sql::INSERT_AUDIT_ENTRY.postgres())
        .await
        .map_err(map_err)?;
    for (idx, text, leaf) in &planned.entries {
        tx.execute(&entry, &[&(*idx as i64), text, &&leaf[..]])
            .await
            .map_err(map_err)?;
    }
    if !planned.nodes.is_empty() {
        let node = tx
            .prepare_cached(sql::INSERT_AUDIT_NODE.postgres())
            .await
            .map_err(map_err)?;
        for (s, h) in &planned.nodes {
            tx.execute(&node, &[&(s.level as i32), &(s.index as i64), &&h[..]])
                .await
                .map_err(map_err)?;
        }
    }
    tx.execute(
        sql::UPDATE_AUDIT_HEAD.postgres(),
        &[&planned.frontier.to_bytes()],
    )
    .await
    .map_err(map_err)?;
    Ok(planned.frontier.size.saturating_sub(1))
}

fn to_entry(r: &Row) -> StoredEntry {
    StoredEntry {
        index: r.get::<_, i64>(0) as u64,
        text: r.get(1),
        leaf_hash: r.get(2),
    }
}

fn to_checkpoint(r: &Row) -> StoreResult<StoredCheckpoint> {
    let size: i64 = r.get(0);
    let root: Vec<u8> = r.get(1);
    Ok(StoredCheckpoint {
        size: size as u64,
        root: to_hash(&root)?,
        note: r.get(2),
        created_at: r.get(3),
    })
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit_level(
        &self,
        level: u32,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let c = self.client().await?;
        let rows = if level == 0 {
            c.query(
                "SELECT idx, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                &[&(start as i64), &(limit as i64)],
            )
            .await
        } else {
            c.query(
                "SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                &[&(level as i32), &(start as i64), &(limit as i64)],
            )
            .await
        }
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<StoredEntry>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT idx, entry, leaf_hash FROM audit_entries
                 WHERE ($1::text IS NULL OR entry::jsonb->>'actor' = $1)
                   AND ($2::text IS NULL OR entry::jsonb->>'action' = $2)
                   AND ($3::text IS NULL OR entry::jsonb->>'time' >= $3)
                   AND ($4::text IS NULL OR entry::jsonb->>'time' < $4)
                   AND ($5::bigint IS NULL OR idx < $5)
                   AND ($7::text IS NULL OR entry::jsonb->>'target' = $7)
                 ORDER BY idx DESC LIMIT $6",
            &[
                &f.actor,
                &f.action,
                &f.from,
                &f.to,
                &f.before.map(|b| b as i64),
                &(f.limit as i64),
                &f.target,
            ],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(to_entry)
        .collect())
    }

    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let last = append_tx(&tx, &records).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(last)
    }

    async fn audit_head(&self) -> StoreResult<Frontier> {
        let c = self.client().await?;
        let row = c
            .query_one(sql::AUDIT_HEAD.postgres(), &[])
            .await
            .map_err(map_err)?;
        let bytes: Vec<u8> = row.get(0);
        parse_frontier(&bytes)
    }

    async fn audit_entries(&self, start: u64, limit: u64) -> StoreResult<Vec<StoredEntry>> {
        let c = self.client().await?;
        Ok(c.query(
            sql::AUDIT_ENTRIES.postgres(),
            &[&(start as i64), &(limit as i64)],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(to_entry)
        .collect())
    }

    async fn audit_subtrees(&self, subtrees: &[Subtree]) -> StoreResult<Vec<Hash>> {
        // One round trip for the whole proof: the wanted (level, index) pairs are unnested and
        // joined to the leaves and the nodes, and answered in the order asked.
        let c = self.client().await?;
        let levels: Vec<i32> = subtrees.iter().map(|s| s.level as i32).collect();
        let indexes: Vec<i64> = subtrees.iter().map(|s| s.index as i64).collect();
        let st = c
            .prepare_cached(
                "SELECT w.ord, COALESCE(e.leaf_hash, n.hash)
                 FROM unnest($1::int[], $2::bigint[]) WITH ORDINALITY AS w(level, idx, ord)
                 LEFT JOIN audit_entries e ON w.level = 0 AND e.idx = w.idx
                 LEFT JOIN audit_nodes n ON w.level > 0 AND n.level = w.level AND n.idx = w.idx
                 ORDER BY w.ord",
            )
            .await
            .map_err(map_err)?;
        let rows = c.query(&st, &[&levels, &indexes]).await.map_err(map_err)?;
        if rows.len() != subtrees.len() {
            return Err(StoreError::Backend(
                "a subtree of the audit log is missing".into(),
            ));
        }
        rows.iter()
            .map(|r| {
                let bytes: Option<Vec<u8>> = r.get(1);
                bytes
                    .ok_or_else(|| {
                        StoreError::Backend("a subtree of the audit log is missing".into())
                    })
                    .and_then(|b| to_hash(&b))
            })
            .collect()
    }

    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                sql::INSERT_CHECKPOINT.postgres(),
                &[&(cp.size as i64), &&cp.root[..], &cp.note, &cp.created_at],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        let c = self.client().await?;
        c.query_opt(sql::LATEST_CHECKPOINT.postgres(), &[])
            .await
            .map_err(map_err)?
            .as_ref()
            .map(to_checkpoint)
            .transpose()
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        let c = self.client().await?;
        c.query(sql::CHECKPOINTS.postgres(), &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(to_checkpoint)
            .collect()
    }
}
