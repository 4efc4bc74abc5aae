//! The audit log on PostgreSQL. An audited write (through [`PostgresStore::guarded`]) writes
//! its entries down without an index, inside its own transaction: no lock on the log's head,
//! so writes from every node go on side by side. The integrator (`integrator.rs`) then gives
//! them their indexes in batches ([`integrate_batch`]). Also the reads of entries, subtrees and
//! checkpoints.

use super::{map_err, PostgresStore};
use crate::log::{parse_frontier, plan_pending, to_hash};
use crate::sql;
use crate::*;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

/// How many pending entries one integration transaction takes at most.
pub(super) const BATCH: i64 = 20_000;
/// How long a caller that needs its entry's index waits for it.
const SEQUENCING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The statement that writes entries down without indexes, as one pending row (so that they
/// get consecutive indexes, in their order), answering its id. Nothing is locked but the
/// inserted row: the integrator indexes it once committed.
const INSERT_PENDING: &str =
    "INSERT INTO audit_pending (heads, tails) VALUES ($1, $2) RETURNING id";

/// The pending row's two columns for `records`: each entry's canonical text before and after
/// its index.
fn pending_row(records: &[AuditRecord]) -> StoreResult<(Vec<String>, Vec<String>)> {
    let mut heads = Vec::with_capacity(records.len());
    let mut tails = Vec::with_capacity(records.len());
    for r in records {
        let (head, tail) = r.unindexed().map_err(|e| {
            StoreError::Backend(format!("audit entry cannot be canonicalised: {e}"))
        })?;
        heads.push(head);
        tails.push(tail);
    }
    Ok((heads, tails))
}

/// Writes `records` down on their own: one statement, which PostgreSQL commits by itself (no
/// transaction around it, so one round trip); answers the pending row's id.
async fn insert_pending(
    c: &deadpool_postgres::Object,
    records: &[AuditRecord],
) -> StoreResult<i64> {
    let (heads, tails) = pending_row(records)?;
    let st = c.prepare_cached(INSERT_PENDING).await.map_err(map_err)?;
    let row = c.query_one(&st, &[&heads, &tails]).await.map_err(map_err)?;
    Ok(row.get(0))
}

/// Writes `records` down inside `tx` and commits it, the entries and the `COMMIT` sent together
/// (one round trip instead of two). The change is never committed without its entries: the
/// `COMMIT` leaves only once the entries' statement has been sent ahead of it on the same
/// connection, and when that statement fails PostgreSQL answers the `COMMIT` with a rollback.
pub(super) async fn commit_with_entries(
    tx: Transaction<'_>,
    records: &[AuditRecord],
) -> StoreResult<()> {
    let (heads, tails) = pending_row(records)?;
    let st = tx.prepare_cached(INSERT_PENDING).await.map_err(map_err)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&heads, &tails];
    let (inserted, committed) = {
        let mut insert = std::pin::pin!(tx.query_one(&st, &params));
        // The first poll sends the statement, or fails before anything was sent.
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(insert.as_mut(), cx))
        })
        .await;
        match first {
            std::task::Poll::Ready(Err(e)) => return Err(map_err(e)),
            std::task::Poll::Ready(Ok(_)) => (Ok(()), None),
            std::task::Poll::Pending => {
                let commit = tx.client().batch_execute("COMMIT");
                let (inserted, committed) = futures_util::future::join(insert, commit).await;
                (inserted.map(drop), Some(committed))
            }
        }
    };
    match committed {
        // Answered already (it cannot be, before the server replied): commit the usual way.
        None => {
            inserted.map_err(map_err)?;
            tx.commit().await.map_err(map_err)
        }
        Some(committed) => {
            // The transaction is over (committed or rolled back by the server): forgetting it
            // keeps its drop from sending a `ROLLBACK` that would find no transaction. It owns
            // no memory of its own (no savepoint).
            std::mem::forget(tx);
            inserted.map_err(map_err)?;
            committed.map_err(map_err)
        }
    }
}

/// A statement's parameters.
type Params<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync)];

impl super::Tx<'_, '_> {
    /// Runs `statement` (one `INSERT`, `UPDATE`, `DELETE` or `SELECT`, without a `WITH` of its
    /// own, answering one row) with `records` written down by that same statement: their
    /// pending row is inserted by a data-modifying `WITH` ahead of it, which PostgreSQL runs
    /// exactly once, to completion, whatever the statement does with it. The entries are in
    /// the change's transaction as with [`commit_with_entries`], and cost no statement of their
    /// own (no bind, execute and sync, no flush, no wake-up on either side): the change then
    /// commits with [`Guarded::recorded`](crate::guarded::Guarded::recorded), or is undone
    /// (rolled back, entries included). If the statement fails, so does the transaction. The
    /// statement is prepared once per connection.
    pub(super) async fn query_one_recorded(
        &self,
        statement: &str,
        params: &Params<'_>,
        records: &[AuditRecord],
    ) -> StoreResult<Row> {
        let (heads, tails) = pending_row(records)?;
        let (st, all) = self
            .recorded_statement(statement, params, &heads, &tails)
            .await?;
        let row = self.query_one(&st, &all).await.map_err(map_err)?;
        self.recorded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(row)
    }

    /// [`Self::query_one_recorded`] for a statement that answers how many rows it changed (the
    /// rows of the `WITH` do not count).
    pub(super) async fn execute_recorded(
        &self,
        statement: &str,
        params: &Params<'_>,
        records: &[AuditRecord],
    ) -> StoreResult<u64> {
        let (heads, tails) = pending_row(records)?;
        let (st, all) = self
            .recorded_statement(statement, params, &heads, &tails)
            .await?;
        let n = self.execute(&st, &all).await.map_err(map_err)?;
        self.recorded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(n)
    }

    /// `statement` behind the `WITH` that inserts the pending row, prepared, and its
    /// parameters followed by the row's two.
    async fn recorded_statement<'p>(
        &self,
        statement: &str,
        params: &Params<'p>,
        heads: &'p Vec<String>,
        tails: &'p Vec<String>,
    ) -> StoreResult<(
        tokio_postgres::Statement,
        Vec<&'p (dyn tokio_postgres::types::ToSql + Sync)>,
    )> {
        if heads.is_empty() {
            return Err(StoreError::Backend("nothing to append".into()));
        }
        let n = params.len();
        let text = format!(
            "WITH recorded AS (INSERT INTO audit_pending (heads, tails) VALUES (${}, ${})) {statement}",
            n + 1,
            n + 2
        );
        let st = self.prepare_cached(&text).await.map_err(map_err)?;
        let mut all = params.to_vec();
        all.push(heads);
        all.push(tails);
        Ok((st, all))
    }
}

/// One integration step inside `tx`: locks the head, takes up to `limit` committed pending
/// entries in the order of their pending ids, gives them the next indexes, stores them with the
/// subtrees they complete, moves the head and deletes them from the pending table. Returns how
/// many pending rows (transactions) it indexed. The head lock makes two integrators (or an integrator and a reader calling
/// [`AuditStore::integrate`]) take turns: the second sees the first's work once it commits,
/// so nothing is indexed twice and no index is skipped. An entry committed later with a
/// smaller pending id simply gets its index in a later step.
pub(super) async fn integrate_batch(
    tx: &tokio_postgres::Transaction<'_>,
    limit: i64,
) -> StoreResult<usize> {
    let row = tx
        .query_one(
            "SELECT frontier FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(map_err)?;
    let bytes: Vec<u8> = row.get(0);
    let frontier = parse_frontier(&bytes)?;
    let taken = tx
        .query(
            "DELETE FROM audit_pending WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM audit_pending ORDER BY id LIMIT $1))
             RETURNING id, heads, tails",
            &[&limit],
        )
        .await
        .map_err(map_err)?;
    if taken.is_empty() {
        return Ok(0);
    }
    let mut taken: Vec<(i64, Vec<String>, Vec<String>)> = taken
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    taken.sort_unstable_by_key(|r| r.0);
    let taken_rows = taken.len();
    let mut rows: Vec<(i64, String, String)> = Vec::with_capacity(taken.len());
    for (id, heads, tails) in taken {
        if heads.len() != tails.len() {
            return Err(StoreError::Backend(
                "a pending audit entry is damaged".into(),
            ));
        }
        rows.extend(heads.into_iter().zip(tails).map(|(h, t)| (id, h, t)));
    }
    let planned = plan_pending(frontier, &rows);
    let idx: Vec<i64> = planned.entries.iter().map(|e| e.0 as i64).collect();
    let texts: Vec<&str> = planned.entries.iter().map(|e| e.1.as_str()).collect();
    let leaves: Vec<&[u8]> = planned.entries.iter().map(|e| &e.2[..]).collect();
    let pending: Vec<i64> = rows.iter().map(|r| r.0).collect();
    tx.execute(
        "INSERT INTO audit_entries (idx, entry, leaf_hash, pending_id)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bigint[])",
        &[&idx, &texts, &leaves, &pending],
    )
    .await
    .map_err(map_err)?;
    if !planned.nodes.is_empty() {
        let levels: Vec<i32> = planned.nodes.iter().map(|n| n.0.level as i32).collect();
        let indexes: Vec<i64> = planned.nodes.iter().map(|n| n.0.index as i64).collect();
        let hashes: Vec<&[u8]> = planned.nodes.iter().map(|n| &n.1[..]).collect();
        tx.execute(
            "INSERT INTO audit_nodes (level, idx, hash)
             SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])",
            &[&levels, &indexes, &hashes],
        )
        .await
        .map_err(map_err)?;
    }
    tx.execute(
        sql::UPDATE_AUDIT_HEAD.postgres(),
        &[&planned.frontier.to_bytes()],
    )
    .await
    .map_err(map_err)?;
    Ok(taken_rows)
}

impl PostgresStore {
    /// Integrates everything pending now, on a connection of the pool.
    async fn integrate_all(&self) -> StoreResult<()> {
        let mut c = self.client().await?;
        loop {
            let tx = c.transaction().await.map_err(map_err)?;
            let n = integrate_batch(&tx, BATCH).await?;
            tx.commit().await.map_err(map_err)?;
            if (n as i64) < BATCH {
                return Ok(());
            }
        }
    }

    async fn sequenced_index(&self, pending_id: i64, from: i64) -> StoreResult<u64> {
        self.integrate_all().await?;
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT max(idx) FROM audit_entries WHERE idx >= $1 AND pending_id = $2",
                &[&from, &pending_id],
            )
            .await
            .map_err(map_err)?;
        row.and_then(|r| r.get::<_, Option<i64>>(0))
            .map(|i| i as u64)
            .ok_or_else(|| {
                StoreError::Backend("an appended audit entry was not found in the log".into())
            })
    }
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

    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        insert_pending(&c, &records).await?;
        self.appended.notify_one();
        Ok(())
    }

    async fn append_sequenced(&self, records: Vec<AuditRecord>) -> StoreResult<u64> {
        let from = self.audit_head().await?.size as i64;
        if records.is_empty() {
            return Err(StoreError::Backend("nothing to append".into()));
        }
        let c = self.client().await?;
        let last = insert_pending(&c, &records).await?;
        drop(c);
        match tokio::time::timeout(SEQUENCING_WAIT, self.sequenced_index(last, from)).await {
            Ok(index) => index,
            Err(_) => Err(StoreError::Unavailable(
                "the audit log did not index the entry in time; it is stored and will be indexed"
                    .into(),
            )),
        }
    }

    async fn integrate(&self) -> StoreResult<()> {
        self.integrate_all().await
    }

    fn start_integrator(&self, holder: &str) {
        self.spawn_integrator(holder);
    }

    async fn integrator_state(&self) -> StoreResult<Option<IntegratorState>> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT i.holder, now_ms - i.beat_at, p.n, COALESCE(now_ms - p.oldest, 0)
                 FROM audit_integrator i,
                      (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms) t,
                      (SELECT count(*) AS n, min(added_at) AS oldest FROM audit_pending) p
                 WHERE i.id = 1",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(Some(IntegratorState {
            holding: self.integrating.load(std::sync::atomic::Ordering::Acquire),
            holder: row.get(0),
            heartbeat_age_ms: row.get(1),
            backlog: row.get(2),
            backlog_age_ms: row.get::<_, i64>(3).max(0),
        }))
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
