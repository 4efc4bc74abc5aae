//! Alerts on SQLite: stored once per (rule, entry), listed, fed in order, and moved forward
//! (acknowledged, resolved) together with their audit entry.

use super::SqliteStore;
use crate::guarded::Guarded;
use crate::sql::{self, ALERT_COLUMNS};
use crate::*;
use rusqlite::{params, OptionalExtension, Row};

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        rule: r.get(2)?,
        entry_index: r.get::<_, i64>(3)? as u64,
        severity: r.get(4)?,
        status: r.get(5)?,
        raised_at: r.get(6)?,
        subject: r.get(7)?,
        summary: r.get(8)?,
        acknowledged_by: r.get(9)?,
        acknowledged_at: r.get(10)?,
        acknowledge_comment: r.get(11)?,
        resolved_by: r.get(12)?,
        resolved_at: r.get(13)?,
        resolve_comment: r.get(14)?,
    })
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn insert_alert(&self, a: &NewAlert) -> StoreResult<bool> {
        let a = a.clone();
        self.write(move |c| {
            c.execute(
                sql::INSERT_ALERT.sqlite(),
                params![
                    a.id,
                    a.rule,
                    a.entry_index as i64,
                    a.severity,
                    a.raised_at,
                    a.subject,
                    a.summary
                ],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn alerts(&self, status: Option<&str>, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let status = status.map(str::to_owned);
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE (?1 IS NULL OR status = ?1) ORDER BY seq DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![status, limit as i64], alert_row)?.collect();
            rows
        })
        .await
    }

    async fn alerts_after(&self, seq: i64, limit: u64) -> StoreResult<Vec<AlertRow>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::ALERTS_AFTER.sqlite())?;
            let rows = st
                .query_map(params![seq, limit as i64], alert_row)?
                .collect();
            rows
        })
        .await
    }

    async fn alerts_about(&self, subject: &str, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let subject = subject.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::ALERTS_ABOUT.sqlite())?;
            let rows = st
                .query_map(params![subject, limit as i64], alert_row)?
                .collect();
            rows
        })
        .await
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRow>> {
        let id = id.to_owned();
        self.read(move |c| c.query_row(sql::ALERT.sqlite(), [id], alert_row).optional())
            .await
    }

    async fn transition_alert(
        &self,
        id: &str,
        to: &str,
        by: &str,
        at: UnixTime,
        comment: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let Some(statement) = sql::transition_alert(to) else {
            return Ok(false);
        };
        let statement = sql::to_sqlite(&statement);
        let (id, by, comment, to) = (
            id.to_owned(),
            by.to_owned(),
            comment.to_owned(),
            to.to_owned(),
        );
        self.guarded(move |tx| {
            let n = tx.execute(&statement, params![to, by, at, comment, id])?;
            Ok(Guarded::changed(n == 1, audit))
        })
        .await
    }
}
