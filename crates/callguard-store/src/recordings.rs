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
    /// The queue the call waited in, once the edge knows it.
    pub queue: Option<String>,
}

impl std::fmt::Debug for RecordingRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingRow")
            .field("id", &self.id)
            .field("interaction_id", &self.interaction_id)
            .field("started_at", &self.started_at)
            .field("ended_at", &self.ended_at)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

pub(crate) const RECORDING_COLUMNS: &str =
    "id, interaction_id, customer_id, file_name, key_share, started_at, ended_at, queue";

/// Which recordings a list shows; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    pub interaction_id: Option<String>,
    /// Started at or after.
    pub from: Option<UnixTime>,
    /// Started before.
    pub until: Option<UnixTime>,
    pub queue: Option<String>,
    pub limit: u64,
}

/// One playback of a recording: who, when, and the reason they gave.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaybackRow {
    pub id: String,
    pub recording_id: String,
    pub user_id: String,
    /// One of the configured reasons.
    pub reason: String,
    /// The free text the listener added (may name people: kept here, not in the log).
    pub note: String,
    pub at: UnixTime,
}

impl std::fmt::Debug for PlaybackRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackRow")
            .field("id", &self.id)
            .field("recording_id", &self.recording_id)
            .field("user_id", &self.user_id)
            .field("reason", &self.reason)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

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
    /// Recordings matching `filter`, newest first, at most `filter.limit`.
    async fn list_recordings(&self, filter: &RecordingFilter) -> StoreResult<Vec<RecordingRow>>;
    /// Names the queue of a recording's call; false when the recording is unknown.
    async fn set_recording_queue(&self, id: &str, queue: &str) -> StoreResult<bool>;
    /// Records a playback with its audit entry.
    async fn record_playback(&self, p: &PlaybackRow, audit: AuditRecord) -> StoreResult<()>;
    /// The playbacks of one recording, oldest first.
    async fn playbacks_of(&self, recording_id: &str) -> StoreResult<Vec<PlaybackRow>>;
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
    /// The credentials of one account, if it has any.
    async fn sip_credentials_of_user(&self, user_id: &str)
        -> StoreResult<Option<SipCredentialRow>>;
}
