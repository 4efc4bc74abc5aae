//! Compliance evidence on PostgreSQL: facts, the card-number scan, retention, manual records,
//! the breach register and report runs.

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::sql::{self, PAN_SOURCES};
use crate::*;
use callguard_core::pan_scan::count_pans;
use tokio_postgres::{GenericClient, Row};

/// Rows fetched per page by the card-number scan.
const SCAN_PAGE: i64 = 5_000;

fn manual_row(r: &Row) -> ManualRecord {
    ManualRecord {
        id: r.get(0),
        control: r.get(1),
        performed_on: r.get(2),
        note: r.get(3),
        recorded_by: r.get(4),
        recorded_at: r.get(5),
    }
}

fn breach_row(r: &Row) -> BreachRecord {
    BreachRecord {
        id: r.get(0),
        summary: r.get(1),
        detected_at: r.get(2),
        notified_at: r.get(3),
        no_notice_reason: r.get(4),
        recorded_by: r.get(5),
        recorded_at: r.get(6),
    }
}

fn run_row(r: &Row) -> ReportRun {
    ReportRun {
        id: r.get(0),
        at: r.get(1),
        framework: r.get(2),
        passed: r.get(3),
        failed: r.get(4),
        manual: r.get(5),
        not_applicable: r.get(6),
        checkpoint_size: r.get::<_, i64>(7) as u64,
        scanned_to: r.get::<_, i64>(8) as u64,
    }
}

async fn count<C: GenericClient>(c: &C, statement: &str, at: Option<UnixTime>) -> StoreResult<i64> {
    match at {
        Some(t) => Ok(c.query_one(statement, &[&t]).await.map_err(map_err)?.get(0)),
        None => Ok(0),
    }
}

async fn delete<C: GenericClient>(
    c: &C,
    statement: &str,
    at: Option<UnixTime>,
) -> StoreResult<i64> {
    match at {
        Some(t) => Ok(c.execute(statement, &[&t]).await.map_err(map_err)? as i64),
        None => Ok(0),
    }
}

impl PostgresStore {
    async fn scan_stored(&self, out: &mut PanScan) -> StoreResult<()> {
        let c = self.client().await?;
        for (place, table, key, text) in PAN_SOURCES {
            let statement = format!(
                "SELECT {key}, {text} FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT $2"
            );
            let (mut after, mut hits) = (String::new(), 0);
            loop {
                let rows = c
                    .query(&statement, &[&after, &SCAN_PAGE])
                    .await
                    .map_err(map_err)?;
                for r in &rows {
                    out.rows_scanned += 1;
                    let t: Option<String> = r.get(1);
                    if t.is_some_and(|t| count_pans(&t) > 0) {
                        hits += 1;
                    }
                }
                match rows.last() {
                    Some(r) if rows.len() as i64 == SCAN_PAGE => after = r.get(0),
                    _ => break,
                }
            }
            if hits > 0 {
                out.stored_hits.push((place.to_owned(), hits));
            }
        }
        Ok(())
    }

    async fn scan_audit(&self, out: &mut PanScan) -> StoreResult<()> {
        let c = self.client().await?;
        let mut from = out.audit_from as i64;
        loop {
            let rows = c
                .query(
                    "SELECT idx, entry FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                    &[&from, &SCAN_PAGE],
                )
                .await
                .map_err(map_err)?;
            for r in &rows {
                let entry: &str = r.get(1);
                if count_pans(entry) > 0 {
                    out.audit_hits += 1;
                }
                let idx: i64 = r.get(0);
                out.audit_scanned_to = idx as u64 + 1;
                from = idx + 1;
            }
            if (rows.len() as i64) < SCAN_PAGE {
                return Ok(());
            }
        }
    }
}

#[async_trait]
impl ComplianceStore for PostgresStore {
    async fn access_facts(&self, k: &AccessCutoffs) -> StoreResult<AccessFacts> {
        let c = self.client().await?;
        let accounts = c
            .query(sql::COUNT_ACCOUNTS.postgres(), &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let r = c
            .query_one(sql::COUNT_ACCESS.postgres(), &[&k.idle_before, &k.now])
            .await
            .map_err(map_err)?;
        let stale = c
            .query_one(
                sql::COUNT_STALE_SESSIONS.postgres(),
                &[&k.session_seen_before],
            )
            .await
            .map_err(map_err)?;
        Ok(AccessFacts {
            accounts,
            active_without_second_factor: r.get(0),
            admins_without_second_factor: r.get(1),
            active_idle: r.get(2),
            weak_password_hashes: r.get(3),
            locked: r.get(4),
            stale_sessions: stale.get(0),
        })
    }

    async fn customer_facts(&self) -> StoreResult<CustomerFacts> {
        let c = self.client().await?;
        let r = c
            .query_one(sql::COUNT_CUSTOMERS.postgres(), &[])
            .await
            .map_err(map_err)?;
        let open_requests = c
            .query(sql::OPEN_REQUESTS.postgres(), &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(CustomerFacts {
            active: r.get(0),
            erased: r.get(1),
            erased_readable: r.get(2),
            active_without_key: r.get(3),
            open_requests,
        })
    }

    async fn pan_scan(&self, audit_from: u64) -> StoreResult<PanScan> {
        let mut out = PanScan {
            audit_from,
            audit_scanned_to: audit_from,
            ..PanScan::default()
        };
        self.scan_stored(&mut out).await?;
        // The scan covers every entry acknowledged so far: index what waits first.
        self.integrate().await?;
        self.scan_audit(&mut out).await?;
        Ok(out)
    }

    async fn retention_overdue(&self, k: &RetentionCutoffs) -> StoreResult<RetentionCounts> {
        let c = self.client().await?;
        Ok(RetentionCounts {
            interactions: count(&**c, sql::OVERDUE_INTERACTIONS.postgres(), k.interactions).await?,
            customers: count(&**c, sql::OVERDUE_CUSTOMERS.postgres(), k.customers).await?,
            alerts: count(&**c, sql::OVERDUE_ALERTS.postgres(), k.alerts).await?,
            sessions: count(&**c, sql::OVERDUE_SESSIONS.postgres(), k.sessions).await?,
            recordings: count(&**c, sql::OVERDUE_RECORDINGS.postgres(), k.recordings).await?,
        })
    }

    async fn retention_customers(
        &self,
        k: &RetentionCutoffs,
        limit: u64,
    ) -> StoreResult<Vec<String>> {
        let Some(cutoff) = k.customers else {
            return Ok(Vec::new());
        };
        let c = self.client().await?;
        Ok(c.query(
            sql::OVERDUE_CUSTOMER_IDS.postgres(),
            &[&cutoff, &(limit as i64)],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    async fn retention_recordings(
        &self,
        k: &RetentionCutoffs,
        limit: u64,
    ) -> StoreResult<Vec<(String, String)>> {
        let Some(cutoff) = k.recordings else {
            return Ok(Vec::new());
        };
        let c = self.client().await?;
        Ok(c.query(
            sql::OVERDUE_RECORDING_FILES.postgres(),
            &[&cutoff, &(limit as i64)],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    async fn retention_purge(
        &self,
        k: &RetentionCutoffs,
        shredded: &[String],
        recordings: &[String],
        audit: AuditRecord,
    ) -> StoreResult<RetentionCounts> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let mut customers = 0;
                for id in shredded {
                    let n = tx
                        .execute(sql::SHRED_CUSTOMER.postgres(), &[id, &k.now])
                        .await
                        .map_err(map_err)?;
                    if n == 1 {
                        for s in [&sql::SHRED_CUSTOMER_INDEX, &sql::SHRED_CUSTOMER_CODES] {
                            tx.execute(s.postgres(), &[id]).await.map_err(map_err)?;
                        }
                        customers += 1;
                    }
                }
                let mut deleted_recordings = 0;
                if let Some(cutoff) = k.recordings {
                    for id in recordings {
                        let n = tx
                            .execute(sql::PURGE_RECORDING.postgres(), &[id, &cutoff])
                            .await
                            .map_err(map_err)?;
                        if n == 1 {
                            tx.execute(sql::PURGE_RECORDING_PLAYBACKS.postgres(), &[id])
                                .await
                                .map_err(map_err)?;
                            deleted_recordings += 1;
                        }
                    }
                }
                let t: &tokio_postgres::Transaction<'_> = &tx;
                let n = RetentionCounts {
                    interactions: delete(t, sql::PURGE_INTERACTIONS.postgres(), k.interactions)
                        .await?,
                    customers,
                    alerts: delete(t, sql::PURGE_ALERTS.postgres(), k.alerts).await?,
                    sessions: delete(t, sql::PURGE_SESSIONS.postgres(), k.sessions).await?,
                    recordings: deleted_recordings,
                };
                tx.execute(
                    sql::INSERT_RETENTION_RUN.postgres(),
                    &[
                        &k.now,
                        &n.interactions,
                        &n.customers,
                        &n.alerts,
                        &n.sessions,
                        &n.recordings,
                    ],
                )
                .await
                .map_err(map_err)?;
                let audit = crate::compliance::with_counts(audit, &n);
                Ok(Guarded::keep(n, audit))
            })
        })
        .await
    }

    async fn last_retention_run(&self) -> StoreResult<Option<(UnixTime, RetentionCounts)>> {
        let c = self.client().await?;
        Ok(c.query_opt(sql::LAST_RETENTION_RUN.postgres(), &[])
            .await
            .map_err(map_err)?
            .map(|r| {
                (
                    r.get(0),
                    RetentionCounts {
                        interactions: r.get(1),
                        customers: r.get(2),
                        alerts: r.get(3),
                        sessions: r.get(4),
                        recordings: r.get(5),
                    },
                )
            }))
    }

    async fn record_manual(&self, m: &ManualRecord, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    sql::INSERT_MANUAL.postgres(),
                    &[
                        &m.id,
                        &m.control,
                        &m.performed_on,
                        &m.note,
                        &m.recorded_by,
                        &m.recorded_at,
                    ],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn latest_manual(&self) -> StoreResult<Vec<ManualRecord>> {
        let c = self.client().await?;
        Ok(c.query(sql::LATEST_MANUAL.postgres(), &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(manual_row)
            .collect())
    }

    async fn record_breach(&self, b: &BreachRecord, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    sql::INSERT_BREACH.postgres(),
                    &[
                        &b.id,
                        &b.summary,
                        &b.detected_at,
                        &b.notified_at,
                        &b.no_notice_reason,
                        &b.recorded_by,
                        &b.recorded_at,
                    ],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn close_breach(
        &self,
        id: &str,
        notified_at: Option<UnixTime>,
        reason: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(sql::CLOSE_BREACH.postgres(), &[&id, &notified_at, &reason])
                    .await
                    .map_err(map_err)?;
                Ok(Guarded::changed(n == 1, audit))
            })
        })
        .await
    }

    async fn breaches(&self, limit: u64) -> StoreResult<Vec<BreachRecord>> {
        let c = self.client().await?;
        Ok(c.query(sql::BREACHES.postgres(), &[&(limit as i64)])
            .await
            .map_err(map_err)?
            .iter()
            .map(breach_row)
            .collect())
    }

    async fn record_run(&self, r: &ReportRun, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute(
                    sql::INSERT_RUN.postgres(),
                    &[
                        &r.id,
                        &r.at,
                        &r.framework,
                        &r.passed,
                        &r.failed,
                        &r.manual,
                        &r.not_applicable,
                        &(r.checkpoint_size as i64),
                        &(r.scanned_to as i64),
                    ],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn runs(&self, limit: u64) -> StoreResult<Vec<ReportRun>> {
        let c = self.client().await?;
        Ok(c.query(sql::RUNS.postgres(), &[&(limit as i64)])
            .await
            .map_err(map_err)?
            .iter()
            .map(run_row)
            .collect())
    }
}
