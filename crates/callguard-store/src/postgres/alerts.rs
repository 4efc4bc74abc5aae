//! Alerts on PostgreSQL: stored once per (rule, entry), listed, fed in order, and moved forward
//! (acknowledged, resolved) together with their audit entry.

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::sql::{self, ALERT_COLUMNS};
use crate::*;
use tokio_postgres::Row;

fn to_alert(r: &Row) -> AlertRow {
    AlertRow {
        seq: r.get(0),
        id: r.get(1),
        rule: r.get(2),
        entry_index: r.get::<_, i64>(3) as u64,
        severity: r.get(4),
        status: r.get(5),
        raised_at: r.get(6),
        subject: r.get(7),
        summary: r.get(8),
        acknowledged_by: r.get(9),
        acknowledged_at: r.get(10),
        acknowledge_comment: r.get(11),
        resolved_by: r.get(12),
        resolved_at: r.get(13),
        resolve_comment: r.get(14),
    }
}

#[async_trait]
impl AlertStore for PostgresStore {
    async fn insert_alert(&self, a: &NewAlert) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                sql::INSERT_ALERT.postgres(),
                &[
                    &a.id,
                    &a.rule,
                    &(a.entry_index as i64),
                    &a.severity,
                    &a.raised_at,
                    &a.subject,
                    &a.summary,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn alerts(&self, status: Option<&str>, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let c = self.client().await?;
        Ok(c
            .query(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1::text IS NULL OR status = $1) ORDER BY seq DESC LIMIT $2"),
                &[&status, &(limit as i64)],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(to_alert)
            .collect())
    }

    async fn alerts_after(&self, seq: i64, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let c = self.client().await?;
        Ok(
            c.query(sql::ALERTS_AFTER.postgres(), &[&seq, &(limit as i64)])
                .await
                .map_err(map_err)?
                .iter()
                .map(to_alert)
                .collect(),
        )
    }

    async fn alerts_about(&self, subject: &str, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let c = self.client().await?;
        Ok(
            c.query(sql::ALERTS_ABOUT.postgres(), &[&subject, &(limit as i64)])
                .await
                .map_err(map_err)?
                .iter()
                .map(to_alert)
                .collect(),
        )
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRow>> {
        let c = self.client().await?;
        Ok(c.query_opt(sql::ALERT.postgres(), &[&id])
            .await
            .map_err(map_err)?
            .as_ref()
            .map(to_alert))
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
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(&statement, &[&to, &by, &at, &comment, &id], &[audit])
                    .await?;
                Ok(Guarded::changed_recorded(n == 1))
            })
        })
        .await
    }
}
