//! Compliance evidence (SPEC C11, issue #14): runs the controls against the live system, signs
//! the report with the audit key at a named checkpoint, keeps the history of runs, records
//! manual controls and breaches, and enforces retention once a day.

use super::live::Live;
use super::model::{
    CheckpointRef, ComplianceSettings, Control, Framework, Outcome, Report, Signature, Status,
};
use super::{checks, gdpr, iso27001, pci};
use crate::error::Error;
use crate::features::audit::service::AuditLog;
use crate::features::recordings::service as recordings_service;
use crate::principal::Actor;
use callguard_store::{BreachRecord, ManualRecord, ReportRun, RetentionCounts, Store};
use sha2::Digest;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first line of a report's signed note.
pub const NOTE_TITLE: &str = "callguard compliance report";

/// Manual controls a compliance officer records: (id, what it is, interval in days).
pub const MANUAL_CONTROLS: &[(&str, &str, i64)] = &[
    (
        "access_review",
        "review of accounts and their roles (PCI DSS 7.2.4, ISO A.5.18)",
        183,
    ),
    (
        "restore_test",
        "restore of a backup tested (GDPR 32, ISO A.8.13)",
        90,
    ),
    (
        "time_sync",
        "clock synchronisation of every host checked (PCI DSS 10.6.1)",
        90,
    ),
];

/// How long one control took (for the benchmark's share of time per control).
pub type Timings = Vec<(String, Duration)>;

/// The daily job's first run after start.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(600);

/// Most retention tombstones per purge transaction.
const RETENTION_BATCH: u64 = 1_000;

/// The compliance service.
pub struct Compliance {
    store: Arc<dyn Store>,
    audit: Arc<AuditLog>,
    settings: ComplianceSettings,
}

impl Compliance {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, audit: Arc<AuditLog>, settings: ComplianceSettings) -> Self {
        Self {
            store,
            audit,
            settings,
        }
    }

    /// Runs the controls of `framework` (all when `None`), signs the report and records the
    /// run (audited as `compliance.report` by `actor`).
    pub async fn report(
        &self,
        actor: &Actor,
        framework: Option<Framework>,
    ) -> Result<(Report, Timings), Error> {
        let stored = self.audit.checkpoint_now().await?;
        let scan_from = self
            .store
            .runs(1)
            .await?
            .first()
            .map_or(0, |r| r.scanned_to);
        let live = Live::new(
            self.store.clone(),
            self.settings.clone(),
            stored.clone(),
            self.audit.verifier_key(),
            scan_from,
        );
        let mut controls = Vec::new();
        let mut timings = Vec::new();
        for fw in Framework::ALL {
            if framework.is_some_and(|f| f != fw) {
                continue;
            }
            for (id, title) in controls_of(fw) {
                let started = Instant::now();
                let out = check(fw, id, &live).await;
                timings.push((format!("{} {id}", fw.as_str()), started.elapsed()));
                controls.push(Control {
                    framework: fw,
                    id: (*id).to_owned(),
                    title: (*title).to_owned(),
                    status: out.status,
                    evidence: out.evidence,
                });
            }
        }
        let mut report = Report {
            generated_at: callguard_core::rfc3339(live.now),
            checkpoint: stored.as_ref().map(|c| CheckpointRef {
                size: c.size,
                root: data_encoding::BASE64.encode(&c.root),
                note: c.note.clone(),
            }),
            controls,
            signature: None,
        };
        report.signature = Some(self.sign(&report)?);
        let scanned_to = match live.pan_scanned() {
            Some(s) if s.audit_hits == 0 => s.audit_scanned_to,
            _ => scan_from,
        };
        self.record_run(actor, framework, &report, scanned_to)
            .await?;
        Ok((report, timings))
    }

    fn sign(&self, report: &Report) -> Result<Signature, Error> {
        let digest = digest(report)?;
        let size = report.checkpoint.as_ref().map_or(0, |c| c.size);
        let text = format!(
            "{NOTE_TITLE}\ngenerated {}\ncheckpoint {size}\nsha256 {digest}\n",
            report.generated_at
        );
        Ok(Signature {
            scheme: "Ed25519 signed note over SHA-256(RFC 8785 JSON of the report without \"signature\")".into(),
            digest,
            verifier_key: self.audit.verifier_key(),
            note: self.audit.sign_note(&text),
        })
    }

    async fn record_run(
        &self,
        actor: &Actor,
        framework: Option<Framework>,
        report: &Report,
        scanned_to: u64,
    ) -> Result<(), Error> {
        let name = framework.map_or("all", Framework::as_str);
        let run = ReportRun {
            id: uuid::Uuid::new_v4().to_string(),
            at: callguard_core::now(),
            framework: name.into(),
            passed: report.count(Status::Pass),
            failed: report.count(Status::Fail),
            manual: report.count(Status::Manual),
            not_applicable: report.count(Status::NotApplicable),
            checkpoint_size: report.checkpoint.as_ref().map_or(0, |c| c.size),
            scanned_to,
        };
        let failing: Vec<String> = report
            .controls
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| format!("{} {}", c.framework.as_str(), c.id))
            .collect();
        let audit = actor
            .record("compliance.report")
            .detail("framework", name)
            .detail("passed", run.passed)
            .detail("failed", run.failed)
            .detail("failing", failing)
            .detail("checkpoint", run.checkpoint_size)
            .detail(
                "digest",
                report.signature.as_ref().map(|s| s.digest.clone()),
            );
        self.store.record_run(&run, audit).await?;
        Ok(())
    }

    /// The runs, newest first (the trend).
    pub async fn runs(&self, limit: u64) -> Result<Vec<ReportRun>, Error> {
        Ok(self.store.runs(limit).await?)
    }

    /// Records a manual control performed on `performed_on` (`YYYY-MM-DD`, not in the future).
    pub async fn record_manual(
        &self,
        actor: &Actor,
        control: &str,
        performed_on: &str,
        note: &str,
    ) -> Result<ManualRecord, Error> {
        if !MANUAL_CONTROLS.iter().any(|(id, _, _)| *id == control) {
            let known: Vec<&str> = MANUAL_CONTROLS.iter().map(|(id, _, _)| *id).collect();
            return Err(Error::Validation(format!(
                "`control` must be one of {}",
                known.join(", ")
            )));
        }
        let day = super::live::parse_day(performed_on).ok_or_else(|| {
            Error::Validation("`performed_on` must be a date like 2026-12-01".into())
        })?;
        if day > callguard_core::now() {
            return Err(Error::Validation(
                "`performed_on` is in the future: record a control once it was performed".into(),
            ));
        }
        let note = checked_text(note, "note", 2000)?;
        let record = ManualRecord {
            id: uuid::Uuid::new_v4().to_string(),
            control: control.to_owned(),
            performed_on: performed_on.to_owned(),
            note,
            recorded_by: actor.id.clone(),
            recorded_at: callguard_core::now(),
        };
        let audit = actor
            .record("compliance.manual_record")
            .target(format!("manual:{}", record.id))
            .detail("control", control)
            .detail("performed_on", performed_on);
        self.store.record_manual(&record, audit).await?;
        Ok(record)
    }

    /// The latest record of each manual control.
    pub async fn manual(&self) -> Result<Vec<ManualRecord>, Error> {
        Ok(self.store.latest_manual().await?)
    }

    /// Records a breach detected at `detected_at` (RFC 3339, not in the future).
    pub async fn record_breach(
        &self,
        actor: &Actor,
        summary: &str,
        detected_at: &str,
    ) -> Result<BreachRecord, Error> {
        let summary = checked_text(summary, "summary", 2000)?;
        let detected = parse_time(detected_at, "detected_at")?;
        let now = callguard_core::now();
        if detected > now + 60 {
            return Err(Error::Validation("`detected_at` is in the future".into()));
        }
        let breach = BreachRecord {
            id: uuid::Uuid::new_v4().to_string(),
            summary,
            detected_at: detected,
            notified_at: None,
            no_notice_reason: None,
            recorded_by: actor.id.clone(),
            recorded_at: now,
        };
        let audit = actor
            .record("compliance.breach_record")
            .target(format!("breach:{}", breach.id))
            .detail("detected_at", callguard_core::rfc3339(detected));
        self.store.record_breach(&breach, audit).await?;
        Ok(breach)
    }

    /// Records that the authority was notified at `notified_at`, or why no notice is due.
    pub async fn close_breach(
        &self,
        actor: &Actor,
        id: &str,
        notified_at: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let (notified, reason) = match (notified_at, reason) {
            (Some(t), None) => (Some(parse_time(t, "notified_at")?), None),
            (None, Some(r)) => (None, Some(checked_text(r, "no_notice_reason", 2000)?)),
            _ => {
                return Err(Error::Validation(
                    "give exactly one of `notified_at` (when the authority was told) or `no_notice_reason`".into(),
                ))
            }
        };
        if notified.is_some_and(|t| t > callguard_core::now() + 60) {
            return Err(Error::Validation("`notified_at` is in the future".into()));
        }
        let audit = actor
            .record("compliance.breach_close")
            .target(format!("breach:{id}"))
            .detail("notified", notified.is_some());
        if self
            .store
            .close_breach(id, notified, reason.as_deref(), audit)
            .await?
        {
            return Ok(());
        }
        let exists = self
            .store
            .breaches(10_000)
            .await?
            .iter()
            .any(|b| b.id == id);
        Err(if exists {
            Error::State("this breach already has its notice or the reason for none")
        } else {
            Error::NotFound
        })
    }

    pub async fn breaches(&self) -> Result<Vec<BreachRecord>, Error> {
        Ok(self.store.breaches(500).await?)
    }

    /// Deletes or crypto-shreds what is past its period; one audited purge per batch.
    pub async fn run_retention(&self) -> Result<RetentionCounts, Error> {
        let live = Live::new(
            self.store.clone(),
            self.settings.clone(),
            None,
            String::new(),
            0,
        );
        let cutoffs = checks::cutoffs(&live);
        let mut total = RetentionCounts::default();
        loop {
            let ids = self
                .store
                .retention_customers(&cutoffs, RETENTION_BATCH)
                .await?;
            // Point of no return for each: without its share the data key cannot be rebuilt.
            for id in &ids {
                self.store.destroy_share(id).await?;
            }
            let recordings = self
                .store
                .retention_recordings(&cutoffs, RETENTION_BATCH)
                .await?;
            let (recording_ids, files): (Vec<String>, Vec<String>) =
                recordings.iter().cloned().unzip();
            let audit = Actor::system().record("retention.purge");
            let n = self
                .store
                .retention_purge(&cutoffs, &ids, &recording_ids, audit)
                .await?;
            // The rows (and key shares) are gone: the files are unreadable; now remove them.
            let dir = self.settings.recordings_dir.clone();
            let removed =
                tokio::task::spawn_blocking(move || recordings_service::delete_files(&dir, &files))
                    .await
                    .unwrap_or(0);
            if removed < recording_ids.len() as u64 {
                tracing::warn!(
                    removed,
                    expired = recording_ids.len(),
                    "some expired recordings had no file left to delete"
                );
            }
            total.interactions += n.interactions;
            total.customers += n.customers;
            total.alerts += n.alerts;
            total.sessions += n.sessions;
            total.recordings += n.recordings;
            if (ids.len() as u64) < RETENTION_BATCH && (recordings.len() as u64) < RETENTION_BATCH {
                return Ok(total);
            }
        }
    }

    /// Once a day, the first time ten minutes after start (so that a start adds nothing to the
    /// log at once): retention, then a report run for the trend, until the process ends.
    pub async fn run_daily(self: Arc<Self>) {
        let day = Duration::from_secs(24 * 3600);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FIRST_RUN_AFTER, day);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.run_retention().await {
                Ok(n) => tracing::info!(
                    interactions = n.interactions,
                    customers = n.customers,
                    alerts = n.alerts,
                    sessions = n.sessions,
                    "retention purge done"
                ),
                Err(e) => tracing::warn!(error = %e, "retention purge failed"),
            }
            match self.report(&Actor::system(), None).await {
                Ok((r, _)) if r.fails() => {
                    tracing::warn!(
                        failed = r.count(Status::Fail),
                        "compliance report: controls fail"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "compliance report failed"),
            }
        }
    }
}

/// The controls of one framework.
#[must_use]
pub fn controls_of(fw: Framework) -> &'static [(&'static str, &'static str)] {
    match fw {
        Framework::Pci => pci::CONTROLS,
        Framework::Gdpr => gdpr::CONTROLS,
        Framework::Iso27001 => iso27001::CONTROLS,
    }
}

async fn check(fw: Framework, id: &str, live: &Live) -> Outcome {
    match fw {
        Framework::Pci => pci::check(id, live).await,
        Framework::Gdpr => gdpr::check(id, live).await,
        Framework::Iso27001 => iso27001::check(id, live).await,
    }
}

/// Base64 SHA-256 of the RFC 8785 JSON of `report` without its signature.
pub fn digest(report: &Report) -> Result<String, Error> {
    let mut value = serde_json::to_value(report).map_err(|_| Error::Internal)?;
    if let Some(o) = value.as_object_mut() {
        o.remove("signature");
    }
    let text = callguard_core::audit::jcs::canonical(&value).map_err(|_| Error::Internal)?;
    Ok(data_encoding::BASE64.encode(&sha2::Sha256::digest(text.as_bytes())))
}

/// What `callguard compliance verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub checkpoint: u64,
    pub controls: usize,
    pub failing: usize,
    pub verifier_key: String,
}

/// Checks a report's JSON: its digest, and the signed note against `verifier_key` (default:
/// the key in the report, which the auditor must then compare with the log's known key).
pub fn verify_report(json: &str, verifier_key: Option<&str>) -> Result<Verified, String> {
    let report: Report =
        serde_json::from_str(json).map_err(|e| format!("not a compliance report: {e}"))?;
    let sig = report
        .signature
        .clone()
        .ok_or("the report carries no signature")?;
    let key = verifier_key.unwrap_or(&sig.verifier_key);
    let text = callguard_core::audit::note::verify_note(&sig.note, key)
        .map_err(|e| format!("the signature does not verify with {key}: {e}"))?;
    let computed = digest(&report).map_err(|_| "the report cannot be canonicalised")?;
    if computed != sig.digest || !text.contains(&format!("\nsha256 {computed}\n")) {
        return Err("the report was changed after it was signed: its digest differs".into());
    }
    let size = report.checkpoint.as_ref().map_or(0, |c| c.size);
    if !text.contains(&format!("\ncheckpoint {size}\n")) {
        return Err("the signed note names another checkpoint".into());
    }
    Ok(Verified {
        checkpoint: size,
        controls: report.controls.len(),
        failing: report
            .controls
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count(),
        verifier_key: key.to_owned(),
    })
}

fn checked_text(text: &str, field: &str, max: usize) -> Result<String, Error> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(Error::Validation(format!(
            "`{field}` must have 1 to {max} characters"
        )));
    }
    if callguard_core::pan_scan::count_pans(t) > 0 {
        return Err(Error::Validation(format!(
            "`{field}` looks like it holds a card number: describe without it"
        )));
    }
    Ok(t.to_owned())
}

fn parse_time(text: &str, field: &str) -> Result<i64, Error> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            Error::Validation(format!(
                "`{field}` must be an RFC 3339 time like 2026-12-01T09:30:00Z"
            ))
        })
}
