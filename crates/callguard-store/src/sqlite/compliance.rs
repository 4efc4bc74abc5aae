//! Compliance evidence on SQLite: facts, the card-number scan, retention, manual records, the
//! breach register and report runs.

use super::SqliteStore;
use crate::guarded::Guarded;
use crate::sql::{self, PAN_SOURCES};
use crate::*;
use callguard_core::pan_scan::count_pans;
use rusqlite::{params, Connection, OptionalExtension, Row};

fn manual_row(r: &Row<'_>) -> rusqlite::Result<ManualRecord> {
    Ok(ManualRecord {
        id: r.get(0)?,
        control: r.get(1)?,
        performed_on: r.get(2)?,
        note: r.get(3)?,
        recorded_by: r.get(4)?,
        recorded_at: r.get(5)?,
    })
}

fn breach_row(r: &Row<'_>) -> rusqlite::Result<BreachRecord> {
    Ok(BreachRecord {
        id: r.get(0)?,
        summary: r.get(1)?,
        detected_at: r.get(2)?,
        notified_at: r.get(3)?,
        no_notice_reason: r.get(4)?,
        recorded_by: r.get(5)?,
        recorded_at: r.get(6)?,
    })
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<ReportRun> {
    Ok(ReportRun {
        id: r.get(0)?,
        at: r.get(1)?,
        framework: r.get(2)?,
        passed: r.get(3)?,
        failed: r.get(4)?,
        manual: r.get(5)?,
        not_applicable: r.get(6)?,
        checkpoint_size: r.get::<_, i64>(7)? as u64,
        scanned_to: r.get::<_, i64>(8)? as u64,
    })
}

fn count(c: &Connection, statement: &str, at: Option<UnixTime>) -> rusqlite::Result<i64> {
    match at {
        Some(t) => c.query_row(statement, [t], |r| r.get(0)),
        None => Ok(0),
    }
}

fn overdue(c: &Connection, k: &RetentionCutoffs) -> rusqlite::Result<RetentionCounts> {
    Ok(RetentionCounts {
        interactions: count(c, sql::OVERDUE_INTERACTIONS.sqlite(), k.interactions)?,
        customers: count(c, sql::OVERDUE_CUSTOMERS.sqlite(), k.customers)?,
        alerts: count(c, sql::OVERDUE_ALERTS.sqlite(), k.alerts)?,
        sessions: count(c, sql::OVERDUE_SESSIONS.sqlite(), k.sessions)?,
        recordings: count(c, sql::OVERDUE_RECORDINGS.sqlite(), k.recordings)?,
    })
}

fn purge(
    c: &Connection,
    k: &RetentionCutoffs,
    shredded: &[String],
    recordings: &[String],
) -> rusqlite::Result<RetentionCounts> {
    let delete = |statement: &str, at: Option<UnixTime>| -> rusqlite::Result<i64> {
        match at {
            Some(t) => c.execute(statement, [t]).map(|n| n as i64),
            None => Ok(0),
        }
    };
    let mut customers = 0;
    for id in shredded {
        let n = c.execute(sql::SHRED_CUSTOMER.sqlite(), params![id, k.now])?;
        if n == 1 {
            c.execute(sql::SHRED_CUSTOMER_INDEX.sqlite(), [id])?;
            c.execute(sql::SHRED_CUSTOMER_CODES.sqlite(), [id])?;
            customers += 1;
        }
    }
    let mut deleted_recordings = 0;
    if let Some(cutoff) = k.recordings {
        for id in recordings {
            if c.execute(sql::PURGE_RECORDING.sqlite(), params![id, cutoff])? == 1 {
                c.execute(sql::PURGE_RECORDING_PLAYBACKS.sqlite(), [id])?;
                deleted_recordings += 1;
            }
        }
    }
    let n = RetentionCounts {
        interactions: delete(sql::PURGE_INTERACTIONS.sqlite(), k.interactions)?,
        customers,
        alerts: delete(sql::PURGE_ALERTS.sqlite(), k.alerts)?,
        sessions: delete(sql::PURGE_SESSIONS.sqlite(), k.sessions)?,
        recordings: deleted_recordings,
    };
    c.execute(
        sql::INSERT_RETENTION_RUN.sqlite(),
        params![
            k.now,
            n.interactions,
            n.customers,
            n.alerts,
            n.sessions,
            n.recordings
        ],
    )?;
    Ok(n)
}

fn scan(c: &Connection, audit_from: u64) -> rusqlite::Result<PanScan> {
    let mut out = PanScan {
        audit_from,
        audit_scanned_to: audit_from,
        ..PanScan::default()
    };
    for (place, table, _key, text) in PAN_SOURCES {
        let mut st = c.prepare(&format!("SELECT {text} FROM {table}"))?;
        let mut rows = st.query([])?;
        let mut hits = 0;
        while let Some(r) = rows.next()? {
            out.rows_scanned += 1;
            let t: Option<String> = r.get(0)?;
            if t.is_some_and(|t| count_pans(&t) > 0) {
                hits += 1;
            }
        }
        if hits > 0 {
            out.stored_hits.push((place.to_owned(), hits));
        }
    }
    let mut st = c.prepare("SELECT idx, entry FROM audit_entries WHERE idx >= ?1 ORDER BY idx")?;
    let mut rows = st.query([audit_from as i64])?;
    while let Some(r) = rows.next()? {
        let idx: i64 = r.get(0)?;
        let entry: String = r.get(1)?;
        if count_pans(&entry) > 0 {
            out.audit_hits += 1;
        }
        out.audit_scanned_to = idx as u64 + 1;
    }
    Ok(out)
}

#[async_trait]
impl ComplianceStore for SqliteStore {
    async fn access_facts(&self, k: &AccessCutoffs) -> StoreResult<AccessFacts> {
        let k = *k;
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::COUNT_ACCOUNTS.sqlite())?;
            let accounts = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (a, b, idle, weak, locked) = c.query_row(
                sql::COUNT_ACCESS.sqlite(),
                params![k.idle_before, k.now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let stale = c.query_row(
                sql::COUNT_STALE_SESSIONS.sqlite(),
                [k.session_seen_before],
                |r| r.get(0),
            )?;
            Ok(AccessFacts {
                accounts,
                active_without_second_factor: a,
                admins_without_second_factor: b,
                active_idle: idle,
                weak_password_hashes: weak,
                stale_sessions: stale,
                locked,
            })
        })
        .await
    }

    async fn customer_facts(&self) -> StoreResult<CustomerFacts> {
        self.read(|c| {
            let (active, erased, erased_readable, active_without_key) =
                c.query_row(sql::COUNT_CUSTOMERS.sqlite(), [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let mut st = c.prepare_cached(sql::OPEN_REQUESTS.sqlite())?;
            let open_requests = st
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(CustomerFacts {
                active,
                erased,
                erased_readable,
                active_without_key,
                open_requests,
            })
        })
        .await
    }

    async fn pan_scan(&self, audit_from: u64) -> StoreResult<PanScan> {
        self.read(move |c| scan(c, audit_from)).await
    }

    async fn retention_overdue(&self, k: &RetentionCutoffs) -> StoreResult<RetentionCounts> {
        let k = *k;
        self.read(move |c| overdue(c, &k)).await
    }

    async fn retention_customers(
        &self,
        k: &RetentionCutoffs,
        limit: u64,
    ) -> StoreResult<Vec<String>> {
        let Some(cutoff) = k.customers else {
            return Ok(Vec::new());
        };
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::OVERDUE_CUSTOMER_IDS.sqlite())?;
            let ids = st
                .query_map(params![cutoff, limit as i64], |r| r.get(0))?
                .collect();
            ids
        })
        .await
    }

    async fn retention_recordings(
        &self,
        k: &RetentionCutoffs,
        limit: u64,
    ) -> StoreResult<Vec<(String, String)>> {
        let Some(cutoff) = k.recordings else {
            return Ok(Vec::new());
        };
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::OVERDUE_RECORDING_FILES.sqlite())?;
            let rows = st
                .query_map(params![cutoff, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect();
            rows
        })
        .await
    }

    async fn retention_purge(
        &self,
        k: &RetentionCutoffs,
        shredded: &[String],
        recordings: &[String],
        audit: AuditRecord,
    ) -> StoreResult<RetentionCounts> {
        let (k, shredded, recordings) = (*k, shredded.to_vec(), recordings.to_vec());
        self.guarded(move |c| {
            let n = purge(c, &k, &shredded, &recordings)?;
            Ok(Guarded::keep(n, crate::compliance::with_counts(audit, &n)))
        })
        .await
    }

    async fn last_retention_run(&self) -> StoreResult<Option<(UnixTime, RetentionCounts)>> {
        self.read(|c| {
            c.query_row(sql::LAST_RETENTION_RUN.sqlite(), [], |r| {
                Ok((
                    r.get(0)?,
                    RetentionCounts {
                        interactions: r.get(1)?,
                        customers: r.get(2)?,
                        alerts: r.get(3)?,
                        sessions: r.get(4)?,
                        recordings: r.get(5)?,
                    },
                ))
            })
            .optional()
        })
        .await
    }

    async fn record_manual(&self, m: &ManualRecord, audit: AuditRecord) -> StoreResult<()> {
        let m = m.clone();
        self.guarded(move |c| {
            c.execute(
                sql::INSERT_MANUAL.sqlite(),
                params![
                    m.id,
                    m.control,
                    m.performed_on,
                    m.note,
                    m.recorded_by,
                    m.recorded_at
                ],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn latest_manual(&self) -> StoreResult<Vec<ManualRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::LATEST_MANUAL.sqlite())?;
            let rows = st.query_map([], manual_row)?.collect();
            rows
        })
        .await
    }

    async fn record_breach(&self, b: &BreachRecord, audit: AuditRecord) -> StoreResult<()> {
        let b = b.clone();
        self.guarded(move |c| {
            c.execute(
                sql::INSERT_BREACH.sqlite(),
                params![
                    b.id,
                    b.summary,
                    b.detected_at,
                    b.notified_at,
                    b.no_notice_reason,
                    b.recorded_by,
                    b.recorded_at
                ],
            )?;
            Ok(Guarded::keep((), audit))
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
        let (id, reason) = (id.to_owned(), reason.map(str::to_owned));
        self.guarded(move |c| {
            let n = c.execute(sql::CLOSE_BREACH.sqlite(), params![id, notified_at, reason])?;
            Ok(Guarded::changed(n == 1, audit))
        })
        .await
    }

    async fn breaches(&self, limit: u64) -> StoreResult<Vec<BreachRecord>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::BREACHES.sqlite())?;
            let rows = st.query_map([limit as i64], breach_row)?.collect();
            rows
        })
        .await
    }

    async fn record_run(&self, run: &ReportRun, audit: AuditRecord) -> StoreResult<()> {
        let r = run.clone();
        self.guarded(move |c| {
            c.execute(
                sql::INSERT_RUN.sqlite(),
                params![
                    r.id,
                    r.at,
                    r.framework,
                    r.passed,
                    r.failed,
                    r.manual,
                    r.not_applicable,
                    r.checkpoint_size as i64,
                    r.scanned_to as i64
                ],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn runs(&self, limit: u64) -> StoreResult<Vec<ReportRun>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::RUNS.sqlite())?;
            let rows = st.query_map([limit as i64], run_row)?.collect();
            rows
        })
        .await
    }
}
