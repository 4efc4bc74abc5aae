//! The audit log on SQLite: appending inside a write's own savepoint (used by every audited
//! write through [`SqliteStore::guarded`]), and the reads of entries, subtrees and checkpoints.

use super::{backend, user_error, SqliteStore};
use crate::log::{parse_frontier, plan, to_hash};
use crate::sql;
use crate::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Appends `records` to the audit log inside `tx`; returns the index of the last one.
pub(super) fn append_tx(tx: &Connection, records: &[AuditRecord]) -> rusqlite::Result<u64> {
    // Cached statements: this runs for every audited write, on the one writer thread.
    let bytes: Vec<u8> = tx
        .prepare_cached(sql::AUDIT_HEAD.sqlite())?
        .query_row([], |r| r.get(0))?;
    let frontier = parse_frontier(&bytes).map_err(user_error)?;
    let planned = plan(frontier, records).map_err(user_error)?;
    {
        let mut entry = tx.prepare_cached(sql::INSERT_AUDIT_ENTRY.sqlite())?;
        for (idx, text, leaf) in &planned.entries {
            entry.execute(params![*idx as i64, text, &leaf[..]])?;
        }
        let mut node = tx.prepare_cached(sql::INSERT_AUDIT_NODE.sqlite())?;
        for (s, h) in &planned.nodes {
            node.execute(params![s.level, s.index as i64, &h[..]])?;
        }
    }
    tx.prepare_cached(sql::UPDATE_AUDIT_HEAD.sqlite())?
        .execute([planned.frontier.to_bytes()])?;
    Ok(planned.frontier.size.saturating_sub(1))
}

/// Bulk reads of the whole log (`audit verify`, on the command line and for the compliance
/// report in the server) read the database file through a memory map rather than a `read` call
/// per page: every page of the log is read once, and copying it out of the kernel was part of
/// the check's time (not measured on its own: it went in with the reuse of the blocks' memory,
/// bench/README.md). Only for the duration of such a read, on its pooled connection: the map is
/// dropped again afterwards, so the server's point reads and writes keep SQLite's default of
/// reading through its own page cache (mapping every reader cost more than it saved, same
/// file). The known cost of SQLite's memory-mapped I/O: a disk error while a mapped page is
/// read ends the process with SIGBUS instead of failing the read. Nothing is lost by that (the
/// read changes nothing and the writer does not map), and a node whose disk fails reads of its
/// own log should stop.
struct MappedReads<'c>(&'c Connection);

/// Largest map asked for. SQLite clamps it to its compile-time ceiling, 0x7fff0000 bytes
/// (2 GiB) in this build, and reads any rest of a larger file with `read` as before.
const MAPPED_READ_BYTES: i64 = 64 << 30;

impl<'c> MappedReads<'c> {
    fn new(c: &'c Connection) -> rusqlite::Result<Self> {
        c.pragma_update(None, "mmap_size", MAPPED_READ_BYTES)?;
        Ok(Self(c))
    }
}

impl Drop for MappedReads<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.pragma_update(None, "mmap_size", 0) {
            tracing::warn!(error = %e, "cannot unmap the database after a bulk read");
        }
    }
}

fn entry_row(r: &Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        index: r.get::<_, i64>(0)? as u64,
        text: r.get(1)?,
        leaf_hash: r.get(2)?,
    })
}

type CheckpointTuple = (i64, Vec<u8>, String, i64);

fn checkpoint_row(r: &Row<'_>) -> rusqlite::Result<CheckpointTuple> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_checkpoint((size, root, note, created_at): CheckpointTuple) -> StoreResult<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: size as u64,
        root: to_hash(&root)?,
        note,
        created_at,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit_level(
        &self,
        level: u32,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.read(move |c| {
            let mut st = if level == 0 {
                c.prepare_cached("SELECT idx, leaf_hash FROM audit_entries WHERE idx >= ?2 AND ?1 = 0 ORDER BY idx LIMIT ?3")?
            } else {
                c.prepare_cached("SELECT idx, hash FROM audit_nodes WHERE level = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3")?
            };
            let rows = st
                .query_map(params![level, start as i64, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect();
            rows
        })
        .await
    }

    async fn audit_entry_block(
        &self,
        start: u64,
        limit: u64,
        mut block: EntryBlock,
    ) -> StoreResult<EntryBlock> {
        self.read(move |c| {
            let _mapped = MappedReads::new(c)?;
            let mut st = c.prepare_cached(sql::AUDIT_ENTRIES.sqlite())?;
            let mut rows = st.query(params![start as i64, limit as i64])?;
            block.clear();
            block.indexes.reserve(limit as usize);
            block.texts.reserve(limit as usize * 256);
            block.ends.reserve(limit as usize);
            block.leaves.reserve(limit as usize);
            // Borrowed column values: no String or Vec per row.
            while let Some(r) = rows.next()? {
                block.push(
                    r.get_ref(0)?.as_i64()? as u64,
                    r.get_ref(1)?.as_str()?,
                    r.get_ref(2)?.as_blob()?,
                );
            }
            Ok(block)
        })
        .await
    }

    async fn audit_nodes_over(
        &self,
        first: u64,
        count: u64,
        levels: u32,
    ) -> StoreResult<Vec<Vec<(u64, Option<Hash>)>>> {
        // Every level in one job on one connection, so that they are read while the caller
        // hashes (one blocking thread, not one per level).
        self.read(move |c| {
            let _mapped = MappedReads::new(c)?;
            let mut st = c.prepare_cached(
                "SELECT idx, hash FROM audit_nodes WHERE level = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )?;
            let mut out = Vec::with_capacity(levels as usize);
            for level in 1..=levels {
                let limit = count >> level;
                let mut rows = st.query(params![level, (first >> level) as i64, limit as i64])?;
                let mut nodes = Vec::with_capacity(limit as usize);
                while let Some(r) = rows.next()? {
                    nodes.push((
                        r.get::<_, i64>(0)? as u64,
                        Hash::try_from(r.get_ref(1)?.as_blob()?).ok(),
                    ));
                }
                out.push(nodes);
            }
            Ok(out)
        })
        .await
    }

    async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<StoredEntry>> {
        let f = f.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT idx, entry, leaf_hash FROM audit_entries
                 WHERE (?1 IS NULL OR json_extract(entry, '$.actor') = ?1)
                   AND (?2 IS NULL OR json_extract(entry, '$.action') = ?2)
                   AND (?3 IS NULL OR json_extract(entry, '$.time') >= ?3)
                   AND (?4 IS NULL OR json_extract(entry, '$.time') < ?4)
                   AND (?5 IS NULL OR idx < ?5)
                   AND (?7 IS NULL OR json_extract(entry, '$.target') = ?7)
                 ORDER BY idx DESC LIMIT ?6",
            )?;
            let rows = st
                .query_map(
                    params![
                        f.actor,
                        f.action,
                        f.from,
                        f.to,
                        f.before.map(|b| b as i64),
                        f.limit as i64,
                        f.target
                    ],
                    entry_row,
                )?
                .collect();
            rows
        })
        .await
    }

    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        self.append_sequenced(records).await.map(|_| ())
    }

    async fn append_sequenced(&self, records: Vec<AuditRecord>) -> StoreResult<u64> {
        // One writer: an entry has its index as soon as it is written.
        self.write(move |c| {
            let tx = super::begin(c)?;
            let last = append_tx(&tx, &records)?;
            tx.commit()?;
            Ok(last)
        })
        .await
    }

    async fn audit_head(&self) -> StoreResult<Frontier> {
        let bytes: Vec<u8> = self
            .read(|c| c.query_row(sql::AUDIT_HEAD.sqlite(), [], |r| r.get(0)))
            .await?;
        parse_frontier(&bytes)
    }

    async fn audit_entries(&self, start: u64, limit: u64) -> StoreResult<Vec<StoredEntry>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::AUDIT_ENTRIES.sqlite())?;
            let rows = st
                .query_map(params![start as i64, limit as i64], entry_row)?
                .collect();
            rows
        })
        .await
    }

    async fn audit_subtrees(&self, subtrees: &[Subtree]) -> StoreResult<Vec<Hash>> {
        let wanted = subtrees.to_vec();
        let raw: Vec<Option<Vec<u8>>> = self
            .read(move |c| {
                let mut leaf =
                    c.prepare_cached("SELECT leaf_hash FROM audit_entries WHERE idx = ?1")?;
                let mut node =
                    c.prepare_cached("SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2")?;
                wanted
                    .iter()
                    .map(|s| {
                        if s.level == 0 {
                            leaf.query_row([s.index as i64], |r| r.get(0)).optional()
                        } else {
                            node.query_row(params![s.level, s.index as i64], |r| r.get(0))
                                .optional()
                        }
                    })
                    .collect()
            })
            .await?;
        raw.into_iter()
            .map(|b| {
                b.ok_or_else(|| backend("a subtree of the audit log is missing"))
                    .and_then(|b| to_hash(&b))
            })
            .collect()
    }

    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> StoreResult<bool> {
        let cp = cp.clone();
        self.write(move |c| {
            c.execute(
                sql::INSERT_CHECKPOINT.sqlite(),
                params![cp.size as i64, &cp.root[..], cp.note, cp.created_at],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        self.read(|c| {
            c.query_row(sql::LATEST_CHECKPOINT.sqlite(), [], checkpoint_row)
                .optional()
        })
        .await?
        .map(to_checkpoint)
        .transpose()
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        let rows = self
            .read(|c| {
                let mut st = c.prepare(sql::CHECKPOINTS.sqlite())?;
                let rows = st
                    .query_map([], checkpoint_row)?
                    .collect::<rusqlite::Result<Vec<_>>>();
                rows
            })
            .await?;
        rows.into_iter().map(to_checkpoint).collect()
    }
}
