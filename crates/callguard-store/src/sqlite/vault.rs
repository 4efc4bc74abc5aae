//! The vault's tables on SQLite: vault keys, customers and their search index, interactions,
//! verification codes (all written by [`VaultStore::vault_commit`] at once), and the key shares
//! in their own file.

use super::{begin, SqliteStore};
use crate::guarded::Guarded;
use crate::vault::*;
use crate::StoreResult;
use async_trait::async_trait;
use callguard_core::UnixTime;
use rusqlite::{params, Connection, OptionalExtension, Row};

const CUSTOMER_COLUMNS: &str = "id, status, version, wrapped_key, kek_id, fields, created_at, updated_at, verify_failures, verify_window_start, requests";
const INTERACTION_COLUMNS: &str = "id, version, agent_id, customer_id, channel, direction, from_hash, status, started_at, ended_at, state, disposition";
const CODE_COLUMNS: &str =
    "id, customer_id, purpose, code_hash, interaction_id, created_at, expires_at, used_at";

fn customer_row(r: &Row<'_>) -> rusqlite::Result<CustomerRow> {
    Ok(CustomerRow {
        id: r.get(0)?,
        status: r.get(1)?,
        version: r.get(2)?,
        wrapped_key: r.get(3)?,
        kek_id: r.get(4)?,
        fields: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        verify_failures: r.get(8)?,
        verify_window_start: r.get(9)?,
        requests: r.get(10)?,
    })
}

fn interaction_row(r: &Row<'_>) -> rusqlite::Result<InteractionRow> {
    Ok(InteractionRow {
        id: r.get(0)?,
        version: r.get(1)?,
        agent_id: r.get(2)?,
        customer_id: r.get(3)?,
        channel: r.get(4)?,
        direction: r.get(5)?,
        from_hash: r.get(6)?,
        status: r.get(7)?,
        started_at: r.get(8)?,
        ended_at: r.get(9)?,
        state: r.get(10)?,
        disposition: r.get(11)?,
    })
}

fn code_row(r: &Row<'_>) -> rusqlite::Result<CodeRow> {
    Ok(CodeRow {
        id: r.get(0)?,
        customer_id: r.get(1)?,
        purpose: r.get(2)?,
        code_hash: r.get(3)?,
        interaction_id: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        used_at: r.get(7)?,
    })
}

/// Applies a write (all but its audit records) inside `tx`; false when an expectation failed.
fn apply(tx: &Connection, w: &VaultWrite) -> rusqlite::Result<bool> {
    for (c, expected) in &w.customers {
        let n = match expected {
            None => tx.execute(
                &format!("INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![c.id, c.status, c.version, c.wrapped_key, c.kek_id, c.fields, c.created_at, c.updated_at, c.verify_failures, c.verify_window_start, c.requests],
            )?,
            Some(v) => tx.execute(
                "UPDATE customers SET status = ?2, version = ?3, wrapped_key = ?4, kek_id = ?5, fields = ?6, updated_at = ?7, verify_failures = ?8, verify_window_start = ?9, requests = ?10 WHERE id = ?1 AND version = ?11",
                params![c.id, c.status, c.version, c.wrapped_key, c.kek_id, c.fields, c.updated_at, c.verify_failures, c.verify_window_start, c.requests, v],
            )?,
        };
        if n != 1 {
            return Ok(false);
        }
    }
    for (customer_id, entries) in &w.index {
        tx.execute(
            "DELETE FROM customer_index WHERE customer_id = ?1",
            [customer_id],
        )?;
        let mut st = tx.prepare_cached(
            // Only the same entry twice is skipped: a national id another customer holds is a
            // conflict (`customer_index_national_id_unique`).
            "INSERT INTO customer_index (kind, hash, customer_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, hash, customer_id) DO NOTHING",
        )?;
        for e in entries {
            st.execute(params![e.kind, e.hash, customer_id])?;
        }
    }
    if let Some((i, expected)) = &w.interaction {
        let n = match expected {
            None => tx.execute(
                &format!("INSERT INTO interactions ({INTERACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![i.id, i.version, i.agent_id, i.customer_id, i.channel, i.direction, i.from_hash, i.status, i.started_at, i.ended_at, i.state, i.disposition],
            )?,
            Some(v) => tx.execute(
                // agent_id: the edge hands a call it answered over to the agent.
                "UPDATE interactions SET version = ?2, customer_id = ?3, status = ?4, ended_at = ?5, state = ?6, disposition = ?8, agent_id = ?9 WHERE id = ?1 AND version = ?7",
                params![i.id, i.version, i.customer_id, i.status, i.ended_at, i.state, v, i.disposition, i.agent_id],
            )?,
        };
        if n != 1 {
            return Ok(false);
        }
    }
    if let Some((id, version)) = &w.interaction_guard {
        let found: Option<i64> = tx
            .query_row(
                "SELECT version FROM interactions WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        if found != Some(*version) {
            return Ok(false);
        }
    }
    if let Some((id, at)) = &w.spend_code {
        if tx.execute(
            "UPDATE verification_codes SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![id, at],
        )? != 1
        {
            return Ok(false);
        }
    }
    if let Some(c) = &w.new_code {
        tx.execute(
            &format!("INSERT INTO verification_codes ({CODE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![c.id, c.customer_id, c.purpose, c.code_hash, c.interaction_id, c.created_at, c.expires_at, c.used_at],
        )?;
    }
    if let Some(customer_id) = &w.delete_codes_of {
        tx.execute(
            "DELETE FROM verification_codes WHERE customer_id = ?1",
            [customer_id],
        )?;
    }
    if let Some(k) = &w.idempotency {
        tx.execute(
            // Keys past the window are forgotten by whichever keyed write comes next.
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
            params![k.created_at - IDEMPOTENCY_WINDOW],
        )?;
        if tx.execute(
            "INSERT INTO idempotency_keys (user_id, key_hash, request_hash, customer_id, interaction_id, kind, level, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (user_id, key_hash) DO NOTHING",
            params![k.user_id, k.key_hash, k.request_hash, k.customer_id, k.interaction_id, k.kind, k.level, k.created_at],
        )? != 1
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `CUSTOMER_COLUMNS` of the table aliased `c`.
static JOINED_CUSTOMER_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    CUSTOMER_COLUMNS
        .split(", ")
        .map(|k| format!("c.{k}"))
        .collect::<Vec<_>>()
        .join(", ")
});

#[async_trait]
impl VaultStore for SqliteStore {
    async fn idempotent_operation(
        &self,
        user_id: &str,
        key_hash: &str,
        since: UnixTime,
    ) -> StoreResult<Option<IdempotencyRow>> {
        let (user_id, key_hash) = (user_id.to_owned(), key_hash.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT user_id, key_hash, request_hash, customer_id, interaction_id, kind, level, created_at
                 FROM idempotency_keys WHERE user_id = ?1 AND key_hash = ?2 AND created_at >= ?3",
                params![user_id, key_hash, since],
                |r| {
                    Ok(IdempotencyRow {
                        user_id: r.get(0)?,
                        key_hash: r.get(1)?,
                        request_hash: r.get(2)?,
                        customer_id: r.get(3)?,
                        interaction_id: r.get(4)?,
                        kind: r.get(5)?,
                        level: r.get(6)?,
                        created_at: r.get(7)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn vault_key(&self, name: &str) -> StoreResult<Option<(Vec<u8>, String)>> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT sealed, kek_id FROM vault_keys WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await
    }

    async fn put_vault_key(&self, name: &str, sealed: &[u8], kek_id: &str) -> StoreResult<bool> {
        let (name, sealed, kek_id) = (name.to_owned(), sealed.to_vec(), kek_id.to_owned());
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO vault_keys (name, sealed, kek_id) VALUES (?1, ?2, ?3)",
                params![name, sealed, kek_id],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn rewrap_vault_key(
        &self,
        name: &str,
        old_kek_id: &str,
        sealed: &[u8],
        kek_id: &str,
    ) -> StoreResult<bool> {
        let (name, old, sealed, kek_id) = (
            name.to_owned(),
            old_kek_id.to_owned(),
            sealed.to_vec(),
            kek_id.to_owned(),
        );
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                "UPDATE vault_keys SET sealed = ?3, kek_id = ?4 WHERE name = ?1 AND kek_id = ?2",
                params![name, old, sealed, kek_id],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn customer(&self, id: &str) -> StoreResult<Option<CustomerRow>> {
        let id = id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1"
            ))?
            .query_row([id], customer_row)
            .optional()
        })
        .await
    }

    async fn customers_by_index(
        &self,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<CustomerRow>> {
        // The kind is written into the statement, not bound: `customer_index` has a partial
        // index (`WHERE kind = 'national_id'`), and SQLite decides whether a statement may use
        // it from the value of a bound `kind`, so a bound kind re-prepares the statement on every
        // run (`sqlite3Reprepare` was the screen-pop's top SQLite cost). The kinds are the vault's
        // own names (`IndexKind::as_str`); anything else is refused, never written into SQL.
        let (kind, hash) = (index_kind(kind)?.to_owned(), hash.to_owned());
        self.point_read(move |c| {
            let cols = &*JOINED_CUSTOMER_COLUMNS;
            let mut st = c.prepare_cached(&format!(
                "SELECT {cols} FROM customer_index i JOIN customers c ON c.id = i.customer_id
                 WHERE i.kind = '{kind}' AND i.hash = ?1 AND c.status = 'active' ORDER BY c.id LIMIT ?2"
            ))?;
            let rows = st.query_map(params![hash, limit as i64], customer_row)?;
            rows.collect()
        })
        .await
    }

    async fn interaction(&self, id: &str) -> StoreResult<Option<InteractionRow>> {
        let id = id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id = ?1"
            ))?
            .query_row([id], interaction_row)
            .optional()
        })
        .await
    }

    async fn agent_interactions(
        &self,
        agent_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<InteractionRow>> {
        self.interactions_where("agent_id", agent_id, limit).await
    }

    async fn customer_interactions(
        &self,
        customer_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<InteractionRow>> {
        self.interactions_where("customer_id", customer_id, limit)
            .await
    }

    async fn live_codes(
        &self,
        customer_id: &str,
        purpose: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<CodeRow>> {
        let (customer_id, purpose) = (customer_id.to_owned(), purpose.to_owned());
        self.point_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {CODE_COLUMNS} FROM verification_codes
                 WHERE customer_id = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
                 ORDER BY created_at DESC LIMIT 20"
            ))?;
            let rows = st.query_map(params![customer_id, purpose, now], code_row)?;
            rows.collect()
        })
        .await
    }

    async fn vault_commit(&self, write: VaultWrite) -> StoreResult<bool> {
        self.guarded(move |tx| {
            if !apply(tx, &write)? {
                return Ok(Guarded::Undo(false));
            }
            Ok(Guarded::Keep(true, write.audit))
        })
        .await
    }

    async fn wrapped_keys(
        &self,
        after_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<(String, Vec<u8>, String)>> {
        let after = after_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, wrapped_key, kek_id FROM customers
                 WHERE id > ?1 AND wrapped_key IS NOT NULL ORDER BY id LIMIT ?2",
            )?;
            let rows = st.query_map(params![after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect()
        })
        .await
    }

    async fn rewrap_customer_key(
        &self,
        id: &str,
        old_kek_id: &str,
        wrapped: &[u8],
        kek_id: &str,
    ) -> StoreResult<bool> {
        let (id, old, wrapped, kek_id) = (
            id.to_owned(),
            old_kek_id.to_owned(),
            wrapped.to_vec(),
            kek_id.to_owned(),
        );
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                "UPDATE customers SET wrapped_key = ?3, kek_id = ?4
                 WHERE id = ?1 AND kek_id = ?2 AND wrapped_key IS NOT NULL",
                params![id, old, wrapped, kek_id],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn sealed_page(
        &self,
        column: SealedColumn,
        after_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let (table, id, col) = column.sql();
        let value = if column.is_text() {
            format!("CAST({col} AS BLOB)")
        } else {
            col.to_owned()
        };
        let after = after_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {id}, {value} FROM {table} WHERE {id} > ?1 AND {col} IS NOT NULL ORDER BY {id} LIMIT ?2"
            ))?;
            let rows = st.query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    async fn replace_sealed(
        &self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        let (table, idc, col) = column.sql();
        let (old_value, new_value) = if column.is_text() {
            ("CAST(?2 AS TEXT)", "CAST(?3 AS TEXT)")
        } else {
            ("?2", "?3")
        };
        let (id, old, new) = (id.to_owned(), old.to_vec(), new.to_vec());
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                &format!("UPDATE {table} SET {col} = {new_value} WHERE {idc} = ?1 AND {col} = {old_value}"),
                params![id, old, new],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn customers_with_requests(&self, limit: u64) -> StoreResult<Vec<CustomerRow>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers
                 WHERE requests IS NOT NULL AND status = 'active' ORDER BY updated_at LIMIT ?1"
            ))?;
            let rows = st.query_map([limit as i64], customer_row)?;
            rows.collect()
        })
        .await
    }

    async fn keys_sealed_by(&self, kek_id: &str) -> StoreResult<u64> {
        let kek_id = kek_id.to_owned();
        self.read(move |c| {
            let n: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM customers WHERE kek_id = ?1 AND wrapped_key IS NOT NULL)
                      + (SELECT COUNT(*) FROM vault_keys WHERE kek_id = ?1)",
                [kek_id],
                |r| r.get(0),
            )?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}

/// File name of the key store beside the database.
pub(super) const SHARE_FILE: &str = "keystore.db";

/// Opens (creating) the key store file: owner-only, rollback journal, secure delete.
pub(super) fn open_share_file(path: &std::path::Path) -> crate::StoreResult<Connection> {
    let open = || -> rusqlite::Result<Connection> {
        let c = Connection::open(path)?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        // No WAL: a deleted share must not survive in a log file. secure_delete overwrites the
        // freed bytes; FULL sync makes a stored or destroyed share durable before we go on.
        c.pragma_update(None, "journal_mode", "DELETE")?;
        c.pragma_update(None, "secure_delete", "ON")?;
        c.pragma_update(None, "synchronous", "FULL")?;
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS key_shares (customer_id TEXT PRIMARY KEY, share BLOB NOT NULL)",
        )?;
        Ok(c)
    };
    let c = open().map_err(super::map_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(c)
}

impl SqliteStore {
    /// Writes to the key store wait for an fsync: off the async workers.
    async fn with_shares_blocking<R, F>(&self, f: F) -> crate::StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .shares
                .lock()
                .map_err(|_| crate::StoreError::Backend("the key store lock is poisoned".into()))?;
            f(&conn).map_err(super::map_err)
        })
        .await
        .map_err(super::backend)?
    }

    async fn with_shares<R, F>(&self, f: F) -> crate::StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        // One small indexed statement on its own file: run here (see `point_read`).
        let conn = self
            .inner
            .shares
            .lock()
            .map_err(|_| crate::StoreError::Backend("the key store lock is poisoned".into()))?;
        f(&conn).map_err(super::map_err)
    }
}

#[async_trait]
impl KeyShareStore for SqliteStore {
    async fn put_share(&self, customer_id: &str, share: &[u8]) -> StoreResult<()> {
        let (id, share) = (customer_id.to_owned(), share.to_vec());
        self.with_shares_blocking(move |c| {
            c.execute(
                "INSERT INTO key_shares (customer_id, share) VALUES (?1, ?2)",
                params![id, share],
            )
            .map(|_| ())
        })
        .await
    }

    async fn share(&self, customer_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let id = customer_id.to_owned();
        self.with_shares(move |c| {
            c.prepare_cached("SELECT share FROM key_shares WHERE customer_id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn customers_with_shares_by_index(
        &self,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<(CustomerRow, Option<Vec<u8>>)>> {
        let rows = self.customers_by_index(kind, hash, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let share = self.share(&row.id).await?;
            out.push((row, share));
        }
        Ok(out)
    }

    async fn destroy_share(&self, customer_id: &str) -> StoreResult<bool> {
        let id = customer_id.to_owned();
        self.with_shares_blocking(move |c| {
            c.execute("DELETE FROM key_shares WHERE customer_id = ?1", [id])
                .map(|n| n == 1)
        })
        .await
    }
}

impl SqliteStore {
    /// Interactions whose `column` (a constant of this file) equals `value`, newest first.
    async fn interactions_where(
        &self,
        column: &'static str,
        value: &str,
        limit: u64,
    ) -> StoreResult<Vec<InteractionRow>> {
        let (value, limit) = (value.to_owned(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.point_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE {column} = ?1
                 ORDER BY started_at DESC, id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![value, limit], interaction_row)?;
            rows.collect()
        })
        .await
    }
}
