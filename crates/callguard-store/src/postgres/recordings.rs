//! Call recordings on PostgreSQL.

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::recordings::*;
use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;
use tokio_postgres::Row;

fn row(r: &Row) -> RecordingRow {
    RecordingRow {
        id: r.get(0),
        interaction_id: r.get(1),
        customer_id: r.get(2),
        file_name: r.get(3),
        key_share: r.get(4),
        started_at: r.get(5),
        ended_at: r.get(6),
        queue: r.get(7),
    }
}

fn playback(r: &Row) -> PlaybackRow {
    PlaybackRow {
        id: r.get(0),
        recording_id: r.get(1),
        user_id: r.get(2),
        reason: r.get(3),
        note: r.get(4),
        at: r.get(5),
    }
}

#[async_trait]
impl RecordingStore for PostgresStore {
    async fn start_recording(&self, r: &RecordingRow, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute_recorded(
                    &format!("INSERT INTO recordings ({RECORDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
                    &[&r.id, &r.interaction_id, &r.customer_id, &r.file_name, &r.key_share, &r.started_at, &r.ended_at, &r.queue],
                    &[audit],
                )
                .await?;
                Ok(Guarded::recorded(()))
            })
        })
        .await
    }

    async fn end_recording(&self, id: &str, at: UnixTime, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(
                        "UPDATE recordings SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL",
                        &[&id, &at],
                        &[audit],
                    )
                    .await?;
                Ok(Guarded::changed_recorded(n != 0))
            })
        })
        .await
    }

    async fn recording(&self, id: &str) -> StoreResult<Option<RecordingRow>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(row))
    }

    async fn recordings_of(&self, interaction_id: &str) -> StoreResult<Vec<RecordingRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE interaction_id = $1 ORDER BY started_at, id"),
                &[&interaction_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(row).collect())
    }

    async fn list_recordings(&self, f: &RecordingFilter) -> StoreResult<Vec<RecordingRow>> {
        let c = self.client().await?;
        let limit = f.limit as i64;
        let rows = c
            .query(
                &format!(
                    "SELECT {RECORDING_COLUMNS} FROM recordings
                     WHERE ($1::text IS NULL OR interaction_id = $1) AND ($2::bigint IS NULL OR started_at >= $2)
                       AND ($3::bigint IS NULL OR started_at < $3) AND ($4::text IS NULL OR queue = $4)
                     ORDER BY started_at DESC, id LIMIT $5"
                ),
                &[&f.interaction_id, &f.from, &f.until, &f.queue, &limit],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(row).collect())
    }

    async fn set_recording_queue(&self, id: &str, queue: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE recordings SET queue = $2 WHERE id = $1",
                &[&id, &queue],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn record_playback(&self, p: &PlaybackRow, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO recording_playbacks (id, recording_id, user_id, reason, note, at) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&p.id, &p.recording_id, &p.user_id, &p.reason, &p.note, &p.at],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn playbacks_of(&self, recording_id: &str) -> StoreResult<Vec<PlaybackRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, recording_id, user_id, reason, note, at FROM recording_playbacks WHERE recording_id = $1 ORDER BY at, id",
                &[&recording_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(playback).collect())
    }
}

#[async_trait]
impl SipCredentialStore for PostgresStore {
    async fn set_sip_credentials(
        &self,
        c: &SipCredentialRow,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO sip_credentials (user_id, sip_username, password_sealed, issued_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET sip_username = excluded.sip_username, password_sealed = excluded.password_sealed, issued_at = excluded.issued_at",
                    &[&c.user_id, &c.sip_username, &c.password_sealed, &c.issued_at],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn sip_credentials(&self, sip_username: &str) -> StoreResult<Option<SipCredentialRow>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT user_id, sip_username, password_sealed, issued_at FROM sip_credentials WHERE sip_username = $1",
            &[&sip_username],
        )
        .await
        .map_err(map_err)?
        .map(|r| SipCredentialRow {
            user_id: r.get(0),
            sip_username: r.get(1),
            password_sealed: r.get(2),
            issued_at: r.get(3),
        }))
    }

    async fn sip_credentials_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Option<SipCredentialRow>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT user_id, sip_username, password_sealed, issued_at FROM sip_credentials WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .map_err(map_err)?
        .map(|r| SipCredentialRow {
            user_id: r.get(0),
            sip_username: r.get(1),
            password_sealed: r.get(2),
            issued_at: r.get(3),
        }))
    }
}
