//! The company's own Do-Not-Call list and the consent ledger (SPEC C8). Phone numbers are
//! personal data: a row holds the number only as a keyed blind index (for look-ups) and sealed
//! by the key-encryption key (for masked display); consent evidence is sealed too. Every change
//! commits with its audit entry, and takes effect for the very next check.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;

/// A number on the internal Do-Not-Call list (an opt-out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalDncEntry {
    pub id: String,
    /// Blind index of the E.164 number.
    pub number_index: String,
    /// The E.164 number sealed by the key-encryption key, bound to this entry's id.
    pub number_sealed: Vec<u8>,
    /// Where the opt-out came from: `agent`, `portal`, `complaint`, `letter`, `email`.
    pub source: String,
    /// Who recorded it: `user:<id>`, `customer:<id>` or `cli`.
    pub added_by: String,
    pub added_at: UnixTime,
}

/// A consent to be contacted (TCPA express written consent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub id: String,
    pub number_index: String,
    pub number_sealed: Vec<u8>,
    /// What the consent is for, e.g. `telemarketing`.
    pub purpose: String,
    /// `call` or `sms`.
    pub channel: String,
    /// How it was given: `web_form`, `portal`, `agent`, `paper`.
    pub source: String,
    /// The evidence (text or a URL), sealed: it may identify the person.
    pub evidence_sealed: Vec<u8>,
    pub recorded_by: String,
    pub granted_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    pub revoked_by: Option<String>,
}

impl ConsentRecord {
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// The internal list and the consent ledger.
#[async_trait]
pub trait DncListStore: Send + Sync {
    /// Puts a number on the internal list. When it is on it already nothing changes, nothing is
    /// logged, and the existing entry is returned with `false`.
    async fn add_internal_dnc(
        &self,
        entry: &InternalDncEntry,
        audit: AuditRecord,
    ) -> StoreResult<(InternalDncEntry, bool)>;
    /// The newest entries first, at most `limit`.
    async fn internal_dnc_entries(&self, limit: u64) -> StoreResult<Vec<InternalDncEntry>>;
    /// Which of `indexes` are on the internal list.
    async fn internal_dnc_matches(&self, indexes: &[String]) -> StoreResult<Vec<String>>;
    /// Records a consent.
    async fn record_consent(&self, consent: &ConsentRecord, audit: AuditRecord) -> StoreResult<()>;
    async fn consent(&self, id: &str) -> StoreResult<Option<ConsentRecord>>;
    /// Consents, newest first, at most `limit`; only those of one number when `number_index`
    /// is given.
    async fn consents(
        &self,
        number_index: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<ConsentRecord>>;
    /// Revokes an active consent; false (nothing changed or logged) when it is unknown or
    /// revoked already.
    async fn revoke_consent(
        &self,
        id: &str,
        by: &str,
        at: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Which of `indexes` have an active consent for `purpose` on `channel`.
    async fn consented(
        &self,
        indexes: &[String],
        purpose: &str,
        channel: &str,
    ) -> StoreResult<Vec<String>>;
}

/// Columns of `dnc_internal` in the order both backends read them.
pub(crate) const INTERNAL_COLUMNS: &str =
    "id, number_index, number_sealed, source, added_by, added_at";

/// Columns of `consent_ledger` in the order both backends read them.
pub(crate) const CONSENT_COLUMNS: &str = "id, number_index, number_sealed, purpose, channel, source, evidence_sealed, recorded_by, granted_at, revoked_at, revoked_by";

/// Most blind indexes one look-up query carries.
pub(crate) const LOOKUP_CHUNK: usize = 500;
