//! Compliance evidence (issue #14): the facts the controls read from the database, the Luhn scan
//! of stored text, retention (what is past its period, and purging it), manual control records,
//! the breach register and the history of report runs. Every change commits with its audit entry.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;

/// Counts about accounts and sessions that the access controls check, read at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFacts {
    /// (role, status, count) over every account.
    pub accounts: Vec<(String, String, i64)>,
    /// Active staff accounts with neither a TOTP secret nor a passkey.
    pub active_without_second_factor: i64,
    /// Of those, admins.
    pub admins_without_second_factor: i64,
    /// Active staff accounts whose last use is before the idle cutoff.
    pub active_idle: i64,
    /// Active accounts whose password hash is not Argon2id.
    pub weak_password_hashes: i64,
    /// Sessions whose last use is before the session idle cutoff (should have ended).
    pub stale_sessions: i64,
    /// Accounts locked right now.
    pub locked: i64,
}

/// What [`ComplianceStore::access_facts`] counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessCutoffs {
    pub now: UnixTime,
    /// Accounts unused since before this are idle (PCI DSS 8.2.6).
    pub idle_before: UnixTime,
    /// Sessions unused since before this should have ended (PCI DSS 8.2.8).
    pub session_seen_before: UnixTime,
}

/// Counts about customer records that the privacy controls check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFacts {
    pub active: i64,
    pub erased: i64,
    /// Erased customers that still have a data key or sealed fields (must be 0).
    pub erased_readable: i64,
    /// Active customers without a wrapped data key (fields could not be sealed: must be 0).
    pub active_without_key: i64,
    /// Each pending request's JSON (`customers.requests`), for their ages.
    pub open_requests: Vec<String>,
}

/// Card numbers found by [`ComplianceStore::pan_scan`]: per place, the rows holding one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PanScan {
    /// (table.column, rows with a Luhn-valid card number), only places with hits.
    pub stored_hits: Vec<(String, i64)>,
    /// Rows of stored text scanned (outside the audit log).
    pub rows_scanned: i64,
    /// Audit entries from `from` up to `scanned_to` (exclusive) holding a card number.
    pub audit_hits: i64,
    pub audit_from: u64,
    pub audit_scanned_to: u64,
}

/// Retention cutoffs per category; `None`: kept without limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCutoffs {
    pub now: UnixTime,
    /// Interactions that ended before this go.
    pub interactions: Option<UnixTime>,
    /// Active customers unchanged since before this, with no interaction since, are shredded.
    pub customers: Option<UnixTime>,
    /// Resolved alerts raised before this go.
    pub alerts: Option<UnixTime>,
    /// Sessions unused since before this go.
    pub sessions: Option<UnixTime>,
    /// Call recordings started before this go (row, key share and file).
    pub recordings: Option<UnixTime>,
}

/// Rows per category (past their period, or purged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCounts {
    pub interactions: i64,
    pub customers: i64,
    pub alerts: i64,
    pub sessions: i64,
    pub recordings: i64,
}

impl RetentionCounts {
    #[must_use]
    pub fn total(&self) -> i64 {
        self.interactions + self.customers + self.alerts + self.sessions + self.recordings
    }
}

/// A manual control performed by a person (an access review, a restore test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRecord {
    pub id: String,
    /// The control's id, e.g. `access_review`.
    pub control: String,
    /// `YYYY-MM-DD`.
    pub performed_on: String,
    pub note: String,
    /// `user:<id>`.
    pub recorded_by: String,
    pub recorded_at: UnixTime,
}

/// A personal data breach (GDPR art. 33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachRecord {
    pub id: String,
    pub summary: String,
    /// When the controller became aware of it.
    pub detected_at: UnixTime,
    /// When the supervisory authority was notified.
    pub notified_at: Option<UnixTime>,
    /// Why no notice is due (no risk to people), when that is the decision.
    pub no_notice_reason: Option<String>,
    pub recorded_by: String,
    pub recorded_at: UnixTime,
}

/// One run of the compliance report: its counts, for the trend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRun {
    pub id: String,
    pub at: UnixTime,
    /// `all`, `pci`, `gdpr` or `iso27001`.
    pub framework: String,
    pub passed: i64,
    pub failed: i64,
    pub manual: i64,
    pub not_applicable: i64,
    /// The audit checkpoint the report names.
    pub checkpoint_size: u64,
    /// The audit log was scanned for card numbers up to this index (exclusive).
    pub scanned_to: u64,
}

/// Completes a retention audit record with the counts.
pub(crate) fn with_counts(mut audit: AuditRecord, n: &RetentionCounts) -> AuditRecord {
    for (k, v) in [
        ("interactions", n.interactions),
        ("customers", n.customers),
        ("alerts", n.alerts),
        ("sessions", n.sessions),
        ("recordings", n.recordings),
    ] {
        audit.details.insert(k.into(), v.into());
    }
    audit
}

#[async_trait]
pub trait ComplianceStore: Send + Sync {
    async fn access_facts(&self, cutoffs: &AccessCutoffs) -> StoreResult<AccessFacts>;
    async fn customer_facts(&self) -> StoreResult<CustomerFacts>;
    /// Scans stored text (account names, customer fields as stored, interaction state, alert
    /// texts, manual notes, breach summaries) and the audit entries from `audit_from` on for
    /// Luhn-valid card numbers. Counts only.
    async fn pan_scan(&self, audit_from: u64) -> StoreResult<PanScan>;
    /// Rows past their period under `cutoffs`.
    async fn retention_overdue(&self, cutoffs: &RetentionCutoffs) -> StoreResult<RetentionCounts>;
    /// Ids of customers past their period (at most `limit`), whose key shares the caller
    /// destroys before [`ComplianceStore::retention_purge`] tombstones them.
    async fn retention_customers(
        &self,
        cutoffs: &RetentionCutoffs,
        limit: u64,
    ) -> StoreResult<Vec<String>>;
    /// Recordings past their period (at most `limit`): id and file name, whose files the
    /// caller deletes after [`ComplianceStore::retention_purge`] has deleted their rows.
    async fn retention_recordings(
        &self,
        cutoffs: &RetentionCutoffs,
        limit: u64,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Deletes what is past its period (interactions, resolved alerts, sessions), tombstones
    /// `shredded` customers (data key and fields gone, indexes and codes deleted) and deletes
    /// the `recordings` rows (key shares: the files become unreadable) with their playbacks,
    /// with `audit` (its details completed with the counts) and a retention run row in the
    /// same transaction.
    async fn retention_purge(
        &self,
        cutoffs: &RetentionCutoffs,
        shredded: &[String],
        recordings: &[String],
        audit: AuditRecord,
    ) -> StoreResult<RetentionCounts>;
    /// The latest retention run: when, and what it removed.
    async fn last_retention_run(&self) -> StoreResult<Option<(UnixTime, RetentionCounts)>>;
    async fn record_manual(&self, record: &ManualRecord, audit: AuditRecord) -> StoreResult<()>;
    /// The latest record of each control.
    async fn latest_manual(&self) -> StoreResult<Vec<ManualRecord>>;
    async fn record_breach(&self, breach: &BreachRecord, audit: AuditRecord) -> StoreResult<()>;
    /// Records the notice (or the reason for none) of a breach that has neither; false (nothing
    /// changed or logged) otherwise.
    async fn close_breach(
        &self,
        id: &str,
        notified_at: Option<UnixTime>,
        no_notice_reason: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Newest first, at most `limit`.
    async fn breaches(&self, limit: u64) -> StoreResult<Vec<BreachRecord>>;
    async fn record_run(&self, run: &ReportRun, audit: AuditRecord) -> StoreResult<()>;
    /// Newest first, at most `limit`.
    async fn runs(&self, limit: u64) -> StoreResult<Vec<ReportRun>>;
}
