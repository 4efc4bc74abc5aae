//! The internal Do-Not-Call list and the consent ledger on SQLite.

use super::SqliteStore;
use crate::dnc_lists::*;
use crate::guarded::Guarded;
use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

fn internal_row(r: &Row<'_>) -> rusqlite::Result<InternalDncEntry> {
    Ok(InternalDncEntry {
        id: r.get(0)?,
        number_index: r.get(1)?,
        number_sealed: r.get(2)?,
        source: r.get(3)?,
        added_by: r.get(4)?,
        added_at: r.get(5)?,
    })
}

fn consent_row(r: &Row<'_>) -> rusqlite::Result<ConsentRecord> {
    Ok(ConsentRecord {
        id: r.get(0)?,
        number_index: r.get(1)?,
        number_sealed: r.get(2)?,
        purpose: r.get(3)?,
        channel: r.get(4)?,
        source: r.get(5)?,
        evidence_sealed: r.get(6)?,
        recorded_by: r.get(7)?,
        granted_at: r.get(8)?,
        revoked_at: r.get(9)?,
        revoked_by: r.get(10)?,
    })
}

fn internal_by_index(c: &Connection, index: &str) -> rusqlite::Result<Option<InternalDncEntry>> {
    c.prepare_cached(&format!(
        "SELECT {INTERNAL_COLUMNS} FROM dnc_internal WHERE number_index = ?1"
    ))?
    .query_row([index], internal_row)
    .optional()
}

/// The members of `indexes` that `sql` (with `{}` for the placeholders, then `extra` parameters)
/// returns, queried in chunks.
fn matching(
    c: &Connection,
    sql: &str,
    indexes: &[String],
    extra: &[&str],
) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in indexes.chunks(LOOKUP_CHUNK) {
        let marks = (1..=chunk.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let extra_marks: Vec<String> = (0..extra.len())
            .map(|i| format!("?{}", chunk.len() + 1 + i))
            .collect();
        let mut text = sql.replace("{}", &marks);
        for (i, m) in extra_marks.iter().enumerate() {
            text = text.replace(&format!("{{{i}}}"), m);
        }
        let values = chunk
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied());
        let mut st = c.prepare(&text)?;
        let found = st.query_map(params_from_iter(values), |r| r.get::<_, String>(0))?;
        for f in found {
            out.push(f?);
        }
    }
    Ok(out)
}

#[async_trait]
impl DncListStore for SqliteStore {
    async fn add_internal_dnc(
        &self,
        entry: &InternalDncEntry,
        audit: AuditRecord,
    ) -> StoreResult<(InternalDncEntry, bool)> {
        let e = entry.clone();
        self.guarded(move |tx| {
            let n = tx.execute(
                &format!("INSERT INTO dnc_internal ({INTERNAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (number_index) DO NOTHING"),
                params![e.id, e.number_index, e.number_sealed, e.source, e.added_by, e.added_at],
            )?;
            if n == 0 {
                let existing = internal_by_index(tx, &e.number_index)?;
                return Ok(Guarded::Undo(existing.map(|x| (x, false))));
            }
            Ok(Guarded::keep(Some((e, true)), audit))
        })
        .await?
        .ok_or_else(|| crate::StoreError::Backend("an internal DNC entry vanished".into()))
    }

    async fn internal_dnc_entries(&self, limit: u64) -> StoreResult<Vec<InternalDncEntry>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {INTERNAL_COLUMNS} FROM dnc_internal ORDER BY added_at DESC, id LIMIT ?1"
            ))?;
            let rows = st.query_map([limit as i64], internal_row)?.collect();
            rows
        })
        .await
    }

    async fn internal_dnc_matches(&self, indexes: &[String]) -> StoreResult<Vec<String>> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let indexes = indexes.to_vec();
        self.read(move |c| {
            matching(
                c,
                "SELECT number_index FROM dnc_internal WHERE number_index IN ({})",
                &indexes,
                &[],
            )
        })
        .await
    }

    async fn record_consent(&self, consent: &ConsentRecord, audit: AuditRecord) -> StoreResult<()> {
        let k = consent.clone();
        self.guarded(move |tx| {
            tx.execute(
                &format!("INSERT INTO consent_ledger ({CONSENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![k.id, k.number_index, k.number_sealed, k.purpose, k.channel, k.source, k.evidence_sealed, k.recorded_by, k.granted_at, k.revoked_at, k.revoked_by],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn consent(&self, id: &str) -> StoreResult<Option<ConsentRecord>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consent_ledger WHERE id = ?1"
            ))?
            .query_row([id], consent_row)
            .optional()
        })
        .await
    }

    async fn consents(
        &self,
        number_index: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<ConsentRecord>> {
        let index = number_index.map(str::to_owned);
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consent_ledger WHERE (?1 IS NULL OR number_index = ?1) ORDER BY granted_at DESC, id LIMIT ?2"
            ))?;
            let rows = st
                .query_map(params![index, limit as i64], consent_row)?
                .collect();
            rows
        })
        .await
    }

    async fn revoke_consent(
        &self,
        id: &str,
        by: &str,
        at: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (id, by) = (id.to_owned(), by.to_owned());
        self.guarded(move |tx| {
            let n = tx.execute(
                "UPDATE consent_ledger SET revoked_at = ?1, revoked_by = ?2 WHERE id = ?3 AND revoked_at IS NULL",
                params![at, by, id],
            )?;
            Ok(Guarded::changed(n == 1, audit))
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
        let (indexes, purpose, channel) =
            (indexes.to_vec(), purpose.to_owned(), channel.to_owned());
        self.read(move |c| {
            matching(
                c,
                "SELECT DISTINCT number_index FROM consent_ledger WHERE number_index IN ({}) AND purpose = {0} AND channel = {1} AND revoked_at IS NULL",
                &indexes,
                &[&purpose, &channel],
            )
        })
        .await
    }
}
