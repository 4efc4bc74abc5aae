//! Call recordings and agents' SIP credentials (SPEC C9). Recordings: where each encrypted file is and the wrapped share of its data
//! key. Without the share the file cannot be read, so deleting a row crypto-shreds it. Every
//! change commits with its audit entry.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;

/// One recording of one call.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub id: String,
    pub interaction_id: String,
    /// The customer the call was linked to, when known (for erasure).
    pub customer_id: Option<String>,
    /// The file's name in `DATA_DIR/recordings/`.
    pub file_name: String,
    /// The data key's share, wrapped by the key-encryption key.
    pub key_share: Vec<u8>,
    pub started_at: UnixTime,
    pub ended_at: Option<UnixTime>,
}

impl std::fmt::Debug for RecordingRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingRow")
            .field("id", &self.id)
            .field("interaction_id", &self.interaction_id)
            .field("started_at", &self.started_at)
            .field("ended_at", &self.ended_at)
            .finish_non_exhaustive()
    }
}

pub(crate) const RECORDING_COLUMNS: &str =
    "id, interaction_id, customer_id, file_name, key_share, started_at, ended_at";

/// The recordings.
#[async_trait]
pub trait RecordingStore: Send + Sync {
    /// Registers a recording that has started.
    async fn start_recording(&self, r: &RecordingRow, audit: AuditRecord) -> StoreResult<()>;
    /// Marks a recording ended; false (nothing changed or logged) when unknown or ended already.
    async fn end_recording(&self, id: &str, at: UnixTime, audit: AuditRecord) -> StoreResult<bool>;
    async fn recording(&self, id: &str) -> StoreResult<Option<RecordingRow>>;
    /// The recordings of one interaction, oldest first.
    async fn recordings_of(&self, interaction_id: &str) -> StoreResult<Vec<RecordingRow>>;
}

/// An agent's SIP credentials (their softphone's digest password, sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct SipCredentialRow {
    pub user_id: String,
    pub sip_username: String,
    /// The password sealed by the key-encryption key, bound to the user id.
    pub password_sealed: Vec<u8>,
    pub issued_at: UnixTime,
}

impl std::fmt::Debug for SipCredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredentialRow")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Agents' SIP credentials.
#[async_trait]
pub trait SipCredentialStore: Send + Sync {
    /// Issues (or replaces: rotation) the credentials of `c.user_id`.
    async fn set_sip_credentials(
        &self,
        c: &SipCredentialRow,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    async fn sip_credentials(&self, sip_username: &str) -> StoreResult<Option<SipCredentialRow>>;
}
