//! The internal Do-Not-Call list and the consent ledger on PostgreSQL.

use super::{map_err, PostgresStore};
use crate::dnc_lists::*;
use crate::guarded::Guarded;
use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;
use tokio_postgres::Row;

fn internal_row(r: &Row) -> InternalDncEntry {
    InternalDncEntry {
        id: r.get(0),
        number_index: r.get(1),
        number_sealed: r.get(2),
        source: r.get(3),
        added_by: r.get(4),
        added_at: r.get(5),
    }
}

fn consent_row(r: &Row) -> ConsentRecord {
    ConsentRecord {
        id: r.get(0),
        number_index: r.get(1),
        number_sealed: r.get(2),
        purpose: r.get(3),
        channel: r.get(4),
        source: r.get(5),
        evidence_sealed: r.get(6),
        recorded_by: r.get(7),
        granted_at: r.get(8),
        revoked_at: r.get(9),
        revoked_by: r.get(10),
    }
}

#[async_trait]
impl DncListStore for PostgresStore {
    async fn add_internal_dnc(
        &self,
        e: &InternalDncEntry,
        audit: AuditRecord,
    ) -> StoreResult<(InternalDncEntry, bool)> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        &format!("INSERT INTO dnc_internal ({INTERNAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (number_index) DO NOTHING"),
                        &[&e.id, &e.number_index, &e.number_sealed, &e.source, &e.added_by, &e.added_at],
                    )
                    .await
                    .map_err(map_err)?;
                if n == 1 {
                    return Ok(Guarded::keep((e.clone(), true), audit));
                }
                let row = tx
                    .query_opt(
                        &format!("SELECT {INTERNAL_COLUMNS} FROM dnc_internal WHERE number_index = $1"),
                        &[&e.number_index],
                    )
                    .await
                    .map_err(map_err)?;
                let existing = row.as_ref().map(|r| (internal_row(r), false)).ok_or_else(|| {
                    crate::StoreError::Backend("an internal DNC entry vanished".into())
                })?;
                Ok(Guarded::Undo(existing))
            })
        })
        .await
    }

    async fn internal_dnc_entries(&self, limit: u64) -> StoreResult<Vec<InternalDncEntry>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {INTERNAL_COLUMNS} FROM dnc_internal ORDER BY added_at DESC, id LIMIT $1"),
                &[&(limit as i64)],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(internal_row).collect())
    }

    async fn internal_dnc_matches(&self, indexes: &[String]) -> StoreResult<Vec<String>> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT number_index FROM dnc_internal WHERE number_index = ANY($1)",
                &[&indexes],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn record_consent(&self, k: &ConsentRecord, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    &format!("INSERT INTO consent_ledger ({CONSENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
                    &[&k.id, &k.number_index, &k.number_sealed, &k.purpose, &k.channel, &k.source, &k.evidence_sealed, &k.recorded_by, &k.granted_at, &k.revoked_at, &k.revoked_by],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn consent(&self, id: &str) -> StoreResult<Option<ConsentRecord>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {CONSENT_COLUMNS} FROM consent_ledger WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(consent_row))
    }

    async fn consents(
        &self,
        number_index: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<ConsentRecord>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {CONSENT_COLUMNS} FROM consent_ledger WHERE ($1::text IS NULL OR number_index = $1) ORDER BY granted_at DESC, id LIMIT $2"),
                &[&number_index, &(limit as i64)],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(consent_row).collect())
    }

    async fn revoke_consent(
        &self,
        id: &str,
        by: &str,
        at: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(
                        "UPDATE consent_ledger SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
                        &[&at, &by, &id],
                        &[audit],
                    )
                    .await?;
                Ok(Guarded::changed_recorded(n == 1))
            })
        })
        .await
    }

    async fn consented(
        &self,
        indexes: &[String],
        purpose: &str,
        channel: &str,
    ) -> StoreResult<Vec<String>> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT DISTINCT number_index FROM consent_ledger WHERE number_index = ANY($1) AND purpose = $2 AND channel = $3 AND revoked_at IS NULL",
                &[&indexes, &purpose, &channel],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
