//! Call recordings on SQLite.

use super::SqliteStore;
use crate::guarded::Guarded;
use crate::recordings::*;
use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;
use rusqlite::{params, OptionalExtension, Row};

fn row(r: &Row<'_>) -> rusqlite::Result<RecordingRow> {
    Ok(RecordingRow {
        id: r.get(0)?,
        interaction_id: r.get(1)?,
        customer_id: r.get(2)?,
        file_name: r.get(3)?,
        key_share: r.get(4)?,
        started_at: r.get(5)?,
        ended_at: r.get(6)?,
        queue: r.get(7)?,
    })
}

fn playback(r: &Row<'_>) -> rusqlite::Result<PlaybackRow> {
    Ok(PlaybackRow {
        id: r.get(0)?,
        recording_id: r.get(1)?,
        user_id: r.get(2)?,
        reason: r.get(3)?,
        note: r.get(4)?,
        at: r.get(5)?,
    })
}

#[async_trait]
impl RecordingStore for SqliteStore {
    async fn start_recording(&self, r: &RecordingRow, audit: AuditRecord) -> StoreResult<()> {
        let r = r.clone();
        self.guarded(move |tx| {
            tx.execute(
                &format!("INSERT INTO recordings ({RECORDING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![r.id, r.interaction_id, r.customer_id, r.file_name, r.key_share, r.started_at, r.ended_at, r.queue],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn end_recording(&self, id: &str, at: UnixTime, audit: AuditRecord) -> StoreResult<bool> {
        let id = id.to_owned();
        self.guarded(move |tx| {
            let n = tx.execute(
                "UPDATE recordings SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
                params![id, at],
            )?;
            Ok(if n == 0 {
                Guarded::Undo(false)
            } else {
                Guarded::keep(true, audit)
            })
        })
        .await
    }

    async fn recording(&self, id: &str) -> StoreResult<Option<RecordingRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?1"
            ))?
            .query_row([id], row)
            .optional()
        })
        .await
    }

    async fn recordings_of(&self, interaction_id: &str) -> StoreResult<Vec<RecordingRow>> {
        let id = interaction_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings WHERE interaction_id = ?1 ORDER BY started_at, id"
            ))?;
            let rows = st.query_map([id], row)?.collect();
            rows
        })
        .await
    }

    async fn list_recordings(&self, f: &RecordingFilter) -> StoreResult<Vec<RecordingRow>> {
        let f = f.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings
                 WHERE (?1 IS NULL OR interaction_id = ?1) AND (?2 IS NULL OR started_at >= ?2)
                   AND (?3 IS NULL OR started_at < ?3) AND (?4 IS NULL OR queue = ?4)
                 ORDER BY started_at DESC, id LIMIT ?5"
            ))?;
            let rows = st
                .query_map(
                    params![f.interaction_id, f.from, f.until, f.queue, f.limit as i64],
                    row,
                )?
                .collect();
            rows
        })
        .await
    }

    async fn set_recording_queue(&self, id: &str, queue: &str) -> StoreResult<bool> {
        let (id, queue) = (id.to_owned(), queue.to_owned());
        self.write(move |c| {
            Ok(c.execute(
                "UPDATE recordings SET queue = ?2 WHERE id = ?1",
                params![id, queue],
            )? == 1)
        })
        .await
    }

    async fn record_playback(&self, p: &PlaybackRow, audit: AuditRecord) -> StoreResult<()> {
        let p = p.clone();
        self.guarded(move |tx| {
            tx.execute(
                "INSERT INTO recording_playbacks (id, recording_id, user_id, reason, note, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![p.id, p.recording_id, p.user_id, p.reason, p.note, p.at],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn playbacks_of(&self, recording_id: &str) -> StoreResult<Vec<PlaybackRow>> {
        let id = recording_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, recording_id, user_id, reason, note, at FROM recording_playbacks WHERE recording_id = ?1 ORDER BY at, id",
            )?;
            let rows = st.query_map([id], playback)?.collect();
            rows
        })
        .await
    }
}

#[async_trait]
impl SipCredentialStore for SqliteStore {
    async fn set_sip_credentials(
        &self,
        c: &SipCredentialRow,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let c = c.clone();
        self.guarded(move |tx| {
            tx.execute(
                "INSERT INTO sip_credentials (user_id, sip_username, password_sealed, issued_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id) DO UPDATE SET sip_username = excluded.sip_username, password_sealed = excluded.password_sealed, issued_at = excluded.issued_at",
                params![c.user_id, c.sip_username, c.password_sealed, c.issued_at],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn sip_credentials(&self, sip_username: &str) -> StoreResult<Option<SipCredentialRow>> {
        let name = sip_username.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT user_id, sip_username, password_sealed, issued_at FROM sip_credentials WHERE sip_username = ?1")?
                .query_row([name], |r| {
                    Ok(SipCredentialRow {
                        user_id: r.get(0)?,
                        sip_username: r.get(1)?,
                        password_sealed: r.get(2)?,
                        issued_at: r.get(3)?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn sip_credentials_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Option<SipCredentialRow>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT user_id, sip_username, password_sealed, issued_at FROM sip_credentials WHERE user_id = ?1")?
                .query_row([id], |r| {
                    Ok(SipCredentialRow {
                        user_id: r.get(0)?,
                        sip_username: r.get(1)?,
                        password_sealed: r.get(2)?,
                        issued_at: r.get(3)?,
                    })
                })
                .optional()
        })
        .await
    }
}
