//! Service accounts' tokens on SQLite.

use super::SqliteStore;
use crate::guarded::Guarded;
use crate::service_tokens::*;
use crate::{parse_role, AuditRecord, StoreResult};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

const COLUMNS: &str = "account, role, token_hash, issued_at";

type Raw = (String, String, String, i64);

fn row(raw: Option<Raw>) -> StoreResult<Option<ServiceTokenRow>> {
    raw.map(|(account, role, token_hash, issued_at)| {
        Ok(ServiceTokenRow {
            account,
            role: parse_role(&role)?,
            token_hash,
            issued_at,
        })
    })
    .transpose()
}

#[async_trait]
impl ServiceTokenStore for SqliteStore {
    async fn set_service_token(&self, t: &ServiceTokenRow, audit: AuditRecord) -> StoreResult<()> {
        let t = t.clone();
        self.guarded(move |tx| {
            tx.execute(
                "INSERT INTO service_tokens (account, role, token_hash, issued_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (account) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash, issued_at = excluded.issued_at",
                params![t.account, t.role.as_str(), t.token_hash, t.issued_at],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn service_token(&self, account: &str) -> StoreResult<Option<ServiceTokenRow>> {
        let account = account.to_owned();
        let raw: Option<Raw> = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM service_tokens WHERE account = ?1"
                ))?
                .query_row([account], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .await?;
        row(raw)
    }

    async fn service_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<ServiceTokenRow>> {
        let hash = token_hash.to_owned();
        let raw: Option<Raw> = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM service_tokens WHERE token_hash = ?1"
                ))?
                .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
            })
            .await?;
        row(raw)
    }

    async fn revoke_service_token(&self, account: &str, audit: AuditRecord) -> StoreResult<bool> {
        let account = account.to_owned();
        self.guarded(move |tx| {
            let n = tx.execute("DELETE FROM service_tokens WHERE account = ?1", [account])?;
            Ok(Guarded::changed(n > 0, audit))
        })
        .await
    }
}
