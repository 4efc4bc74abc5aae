//! Service accounts' tokens on PostgreSQL.

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::service_tokens::*;
use crate::{parse_role, AuditRecord, StoreResult};
use async_trait::async_trait;
use tokio_postgres::Row;

const COLUMNS: &str = "account, role, token_hash, issued_at";

fn row(r: &Row) -> StoreResult<ServiceTokenRow> {
    Ok(ServiceTokenRow {
        account: r.get(0),
        role: parse_role(r.get(1))?,
        token_hash: r.get(2),
        issued_at: r.get(3),
    })
}

#[async_trait]
impl ServiceTokenStore for PostgresStore {
    async fn set_service_token(&self, t: &ServiceTokenRow, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO service_tokens (account, role, token_hash, issued_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash, issued_at = excluded.issued_at",
                    &[&t.account, &t.role.as_str(), &t.token_hash, &t.issued_at],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn service_token(&self, account: &str) -> StoreResult<Option<ServiceTokenRow>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {COLUMNS} FROM service_tokens WHERE account = $1"),
            &[&account],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(row)
        .transpose()
    }

    async fn service_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<ServiceTokenRow>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {COLUMNS} FROM service_tokens WHERE token_hash = $1"),
            &[&token_hash],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(row)
        .transpose()
    }

    async fn revoke_service_token(&self, account: &str, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute("DELETE FROM service_tokens WHERE account = $1", &[&account])
                    .await
                    .map_err(map_err)?;
                Ok(Guarded::changed(n > 0, audit))
            })
        })
        .await
    }
}
