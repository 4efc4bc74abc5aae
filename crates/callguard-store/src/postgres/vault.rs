//! The vault's tables on PostgreSQL: vault keys, customers and their search index,
//! interactions, verification codes (all written by [`VaultStore::vault_commit`] at once), and
//! the key shares.

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::vault::*;
use crate::StoreResult;
use async_trait::async_trait;
use callguard_core::UnixTime;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

const CUSTOMER_COLUMNS: &str = "id, status, version, wrapped_key, kek_id, fields, created_at, updated_at, verify_failures, verify_window_start, requests";
const INTERACTION_COLUMNS: &str = "id, version, agent_id, customer_id, channel, direction, from_hash, status, started_at, ended_at, state, disposition";
const CODE_COLUMNS: &str =
    "id, customer_id, purpose, code_hash, interaction_id, created_at, expires_at, used_at";

fn customer_row(r: &Row) -> CustomerRow {
    CustomerRow {
        id: r.get(0),
        status: r.get(1),
        version: r.get(2),
        wrapped_key: r.get(3),
        kek_id: r.get(4),
        fields: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
        verify_failures: r.get(8),
        verify_window_start: r.get(9),
        requests: r.get(10),
    }
}

fn interaction_row(r: &Row) -> InteractionRow {
    InteractionRow {
        id: r.get(0),
        version: r.get(1),
        agent_id: r.get(2),
        customer_id: r.get(3),
        channel: r.get(4),
        direction: r.get(5),
        from_hash: r.get(6),
        status: r.get(7),
        started_at: r.get(8),
        ended_at: r.get(9),
        state: r.get(10),
        disposition: r.get(11),
    }
}

fn code_row(r: &Row) -> CodeRow {
    CodeRow {
        id: r.get(0),
        customer_id: r.get(1),
        purpose: r.get(2),
        code_hash: r.get(3),
        interaction_id: r.get(4),
        created_at: r.get(5),
        expires_at: r.get(6),
        used_at: r.get(7),
    }
}

/// Writes the customers of `w` and replaces their index entries; false when a customer's
/// version moved.
async fn apply_customers(tx: &Transaction<'_>, w: &VaultWrite) -> StoreResult<bool> {
    for (c, expected) in &w.customers {
        let n = match expected {
            None => tx.execute(
                &format!("INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
                &[&c.id, &c.status, &c.version, &c.wrapped_key, &c.kek_id, &c.fields, &c.created_at, &c.updated_at, &c.verify_failures, &c.verify_window_start, &c.requests],
            ).await,
            Some(v) => tx.execute(
                "UPDATE customers SET status = $2, version = $3, wrapped_key = $4, kek_id = $5, fields = $6, updated_at = $7, verify_failures = $8, verify_window_start = $9, requests = $10 WHERE id = $1 AND version = $11",
                &[&c.id, &c.status, &c.version, &c.wrapped_key, &c.kek_id, &c.fields, &c.updated_at, &c.verify_failures, &c.verify_window_start, &c.requests, v],
            ).await,
        }
        .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
    }
    // Only the same entry twice is skipped: a national id another customer holds is a conflict
    // (`customer_index_national_id_unique`).
    for (customer_id, entries) in &w.index {
        tx.execute(
            "DELETE FROM customer_index WHERE customer_id = $1",
            &[customer_id],
        )
        .await
        .map_err(map_err)?;
        if !entries.is_empty() {
            let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
            let hashes: Vec<&str> = entries.iter().map(|e| e.hash.as_str()).collect();
            tx.execute(
                "INSERT INTO customer_index (kind, hash, customer_id)
                 SELECT k, h, $3 FROM unnest($1::text[], $2::text[]) AS t(k, h)
                 ON CONFLICT (kind, hash, customer_id) DO NOTHING",
                &[&kinds, &hashes, customer_id],
            )
            .await
            .map_err(map_err)?;
        }
    }
    Ok(true)
}

/// Applies a write (all but its audit records) inside `tx`; false when an expectation failed.
async fn apply(tx: &Transaction<'_>, w: &VaultWrite) -> StoreResult<bool> {
    if !apply_customers(tx, w).await? {
        return Ok(false);
    }
    if let Some((i, expected)) = &w.interaction {
        let n = match expected {
            None => tx.execute(
                &format!("INSERT INTO interactions ({INTERACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
                &[&i.id, &i.version, &i.agent_id, &i.customer_id, &i.channel, &i.direction, &i.from_hash, &i.status, &i.started_at, &i.ended_at, &i.state, &i.disposition],
            ).await,
            Some(v) => tx.execute(
                // agent_id: the edge hands a call it answered over to the agent.
                "UPDATE interactions SET version = $2, customer_id = $3, status = $4, ended_at = $5, state = $6, disposition = $8, agent_id = $9 WHERE id = $1 AND version = $7",
                &[&i.id, &i.version, &i.customer_id, &i.status, &i.ended_at, &i.state, v, &i.disposition, &i.agent_id],
            ).await,
        }
        .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
    }
    if let Some((id, version)) = &w.interaction_guard {
        // FOR SHARE: the interaction cannot change under this write until it commits.
        let found = tx
            .query_opt(
                "SELECT version FROM interactions WHERE id = $1 FOR SHARE",
                &[id],
            )
            .await
            .map_err(map_err)?
            .map(|r| r.get::<_, i64>(0));
        if found != Some(*version) {
            return Ok(false);
        }
    }
    if let Some((id, at)) = &w.spend_code {
        let n = tx
            .execute(
                "UPDATE verification_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
                &[id, at],
            )
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
    }
    if let Some(c) = &w.new_code {
        tx.execute(
            &format!("INSERT INTO verification_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[&c.id, &c.customer_id, &c.purpose, &c.code_hash, &c.interaction_id, &c.created_at, &c.expires_at, &c.used_at],
        )
        .await
        .map_err(map_err)?;
    }
    if let Some(customer_id) = &w.delete_codes_of {
        tx.execute(
            "DELETE FROM verification_codes WHERE customer_id = $1",
            &[customer_id],
        )
        .await
        .map_err(map_err)?;
    }
    if let Some(k) = &w.idempotency {
        tx.execute(
            // Keys past the window are forgotten by whichever keyed write comes next.
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            &[&(k.created_at - IDEMPOTENCY_WINDOW)],
        )
        .await
        .map_err(map_err)?;
        let n = tx
            .execute(
                "INSERT INTO idempotency_keys (user_id, key_hash, request_hash, customer_id, interaction_id, kind, level, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id, key_hash) DO NOTHING",
                &[&k.user_id, &k.key_hash, &k.request_hash, &k.customer_id, &k.interaction_id, &k.kind, &k.level, &k.created_at],
            )
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[async_trait]
impl VaultStore for PostgresStore {
    async fn idempotent_operation(
        &self,
        user_id: &str,
        key_hash: &str,
        since: UnixTime,
    ) -> StoreResult<Option<IdempotencyRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT user_id, key_hash, request_hash, customer_id, interaction_id, kind, level, created_at
                 FROM idempotency_keys WHERE user_id = $1 AND key_hash = $2 AND created_at >= $3",
                &[&user_id, &key_hash, &since],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| IdempotencyRow {
            user_id: r.get(0),
            key_hash: r.get(1),
            request_hash: r.get(2),
            customer_id: r.get(3),
            interaction_id: r.get(4),
            kind: r.get(5),
            level: r.get(6),
            created_at: r.get(7),
        }))
    }

    async fn vault_key(&self, name: &str) -> StoreResult<Option<(Vec<u8>, String)>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT sealed, kek_id FROM vault_keys WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(map_err)?
        .map(|r| (r.get(0), r.get(1))))
    }

    async fn put_vault_key(&self, name: &str, sealed: &[u8], kek_id: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO vault_keys (name, sealed, kek_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&name, &sealed, &kek_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn rewrap_vault_key(
        &self,
        name: &str,
        old_kek_id: &str,
        sealed: &[u8],
        kek_id: &str,
    ) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE vault_keys SET sealed = $3, kek_id = $4 WHERE name = $1 AND kek_id = $2",
                &[&name, &old_kek_id, &sealed, &kek_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn customer(&self, id: &str) -> StoreResult<Option<CustomerRow>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(map_err)?
        .map(|r| customer_row(&r)))
    }

    async fn customers_by_index(
        &self,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<CustomerRow>> {
        Ok(self
            .indexed_customers(&BY_INDEX, kind, hash, limit)
            .await?
            .iter()
            .map(customer_row)
            .collect())
    }

    async fn interaction(&self, id: &str) -> StoreResult<Option<InteractionRow>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id = $1"
            ))
            .await
            .map_err(map_err)?;
        Ok(c.query_opt(&st, &[&id])
            .await
            .map_err(map_err)?
            .map(|r| interaction_row(&r)))
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
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {CODE_COLUMNS} FROM verification_codes
                     WHERE customer_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
                     ORDER BY created_at DESC LIMIT 20"
                ),
                &[&customer_id, &purpose, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(code_row).collect())
    }

    async fn vault_commit(&self, write: VaultWrite) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                if !apply(&tx, &write).await? {
                    return Ok(Guarded::Undo(false));
                }
                Ok(Guarded::Keep(true, write.audit))
            })
        })
        .await
    }

    async fn wrapped_keys(
        &self,
        after_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<(String, Vec<u8>, String)>> {
        let c = self.client().await?;
        let limit = limit as i64;
        let rows = c
            .query(
                "SELECT id, wrapped_key, kek_id FROM customers
                 WHERE id > $1 AND wrapped_key IS NOT NULL ORDER BY id LIMIT $2",
                &[&after_id, &limit],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    async fn rewrap_customer_key(
        &self,
        id: &str,
        old_kek_id: &str,
        wrapped: &[u8],
        kek_id: &str,
    ) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE customers SET wrapped_key = $3, kek_id = $4
                 WHERE id = $1 AND kek_id = $2 AND wrapped_key IS NOT NULL",
                &[&id, &old_kek_id, &wrapped, &kek_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn sealed_page(
        &self,
        column: SealedColumn,
        after_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let (table, id, col) = column.sql();
        let value = if column.is_text() {
            format!("convert_to({col}, 'UTF8')")
        } else {
            col.to_owned()
        };
        let c = self.client().await?;
        let limit = limit as i64;
        let rows = c
            .query(
                &format!(
                    "SELECT {id}, {value} FROM {table} WHERE {id} > $1 AND {col} IS NOT NULL ORDER BY {id} LIMIT $2"
                ),
                &[&after_id, &limit],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
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
            ("convert_from($2, 'UTF8')", "convert_from($3, 'UTF8')")
        } else {
            ("$2", "$3")
        };
        let c = self.client().await?;
        let n = c
            .execute(
                &format!("UPDATE {table} SET {col} = {new_value} WHERE {idc} = $1 AND {col} = {old_value}"),
                &[&id, &old, &new],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn customers_with_requests(&self, limit: u64) -> StoreResult<Vec<CustomerRow>> {
        let c = self.client().await?;
        let limit = limit as i64;
        let rows = c
            .query(
                &format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers
                     WHERE requests IS NOT NULL AND status = 'active' ORDER BY updated_at LIMIT $1"
                ),
                &[&limit],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(customer_row).collect())
    }

    async fn keys_sealed_by(&self, kek_id: &str) -> StoreResult<u64> {
        let c = self.client().await?;
        let n: i64 = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM customers WHERE kek_id = $1 AND wrapped_key IS NOT NULL)
                      + (SELECT COUNT(*) FROM vault_keys WHERE kek_id = $1)",
                &[&kek_id],
            )
            .await
            .map_err(map_err)?
            .get(0);
        Ok(n.max(0) as u64)
    }
}

#[async_trait]
impl KeyShareStore for PostgresStore {
    async fn put_share(&self, customer_id: &str, share: &[u8]) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO customer_key_shares (customer_id, share) VALUES ($1, $2)",
            &[&customer_id, &share],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn share(&self, customer_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT share FROM customer_key_shares WHERE customer_id = $1")
            .await
            .map_err(map_err)?;
        Ok(c.query_opt(&st, &[&customer_id])
            .await
            .map_err(map_err)?
            .map(|r| r.get(0)))
    }

    async fn customers_with_shares_by_index(
        &self,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<(CustomerRow, Option<Vec<u8>>)>> {
        let share_at = CUSTOMER_COLUMNS.split(", ").count();
        Ok(self
            .indexed_customers(&BY_INDEX_WITH_SHARES, kind, hash, limit)
            .await?
            .iter()
            .map(|r| (customer_row(r), r.get(share_at)))
            .collect())
    }

    async fn destroy_share(&self, customer_id: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM customer_key_shares WHERE customer_id = $1",
                &[&customer_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }
}

/// `CUSTOMER_COLUMNS` of the table aliased `c`.
fn joined_customer_columns() -> String {
    CUSTOMER_COLUMNS
        .split(", ")
        .map(|k| format!("c.{k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Active customers with a blind index entry (`$1` kind, `$2` hash), at most `$3`.
static BY_INDEX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {} FROM customer_index i JOIN customers c ON c.id = i.customer_id
         WHERE i.kind = $1 AND i.hash = $2 AND c.status = 'active' ORDER BY c.id LIMIT $3",
        joined_customer_columns()
    )
});

/// The same, each with its key share after the customer's columns (NULL once erased).
static BY_INDEX_WITH_SHARES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {}, s.share FROM customer_index i JOIN customers c ON c.id = i.customer_id
         LEFT JOIN customer_key_shares s ON s.customer_id = c.id
         WHERE i.kind = $1 AND i.hash = $2 AND c.status = 'active' ORDER BY c.id LIMIT $3",
        joined_customer_columns()
    )
});

impl PostgresStore {
    /// Runs one of the index look-ups above ([`BY_INDEX`], [`BY_INDEX_WITH_SHARES`]).
    async fn indexed_customers(
        &self,
        statement: &str,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<Row>> {
        index_kind(kind)?;
        let c = self.client().await?;
        let st = c.prepare_cached(statement).await.map_err(map_err)?;
        c.query(&st, &[&kind, &hash, &(limit as i64)])
            .await
            .map_err(map_err)
    }

    /// Interactions whose `column` (a constant of this file) equals `value`, newest first.
    async fn interactions_where(
        &self,
        column: &'static str,
        value: &str,
        limit: u64,
    ) -> StoreResult<Vec<InteractionRow>> {
        let c = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c
            .query(
                &format!(
                    "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE {column} = $1
                     ORDER BY started_at DESC, id DESC LIMIT $2"
                ),
                &[&value, &limit],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(interaction_row).collect())
    }
}
