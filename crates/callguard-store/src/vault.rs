//! Storage of the customer data vault (SPEC C3, C4): customers (sealed fields and a wrapped data
//! key), their blind indexes, interactions and one-time verification codes. Rows are opaque
//! here: the server seals and opens the values, the store only keeps them.
//!
//! Changes go through one method, [`VaultStore::vault_commit`]: a [`VaultWrite`] names what to
//! write and which versions it expects, and the store applies all of it with its audit entries
//! in one transaction, or nothing when any expectation no longer holds (a concurrent change).

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;

/// A customer as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerRow {
    pub id: String,
    /// `active` or `erased`.
    pub status: String,
    /// Bumped by every write; writes name the version they read.
    pub version: i64,
    /// The data key sealed by the key-encryption key; gone after erasure.
    pub wrapped_key: Option<Vec<u8>>,
    /// Which key-encryption key sealed it.
    pub kek_id: String,
    /// JSON object: field name → base64 of the sealed value.
    pub fields: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// Failed verification attempts in the current window, across interactions.
    pub verify_failures: i64,
    pub verify_window_start: Option<UnixTime>,
    /// JSON of a pending GDPR request (erasure awaiting its second approver), if any.
    pub requests: Option<String>,
}

impl std::fmt::Debug for CustomerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerRow")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// One blind index entry of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// `phone`, `email`, `national_id` or `service`.
    pub kind: String,
    /// The keyed hash (never the value).
    pub hash: String,
}

/// An interaction (a call, chat or e-mail) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRow {
    pub id: String,
    pub version: i64,
    pub agent_id: String,
    pub customer_id: Option<String>,
    pub channel: String,
    pub direction: String,
    /// The blind index of the caller's number, when it is a phone number.
    pub from_hash: Option<String>,
    /// `active` or `ended`.
    pub status: String,
    pub started_at: UnixTime,
    pub ended_at: Option<UnixTime>,
    /// JSON owned by the server: level, steps used, failures, lock, pending OTP.
    pub state: String,
    /// The wrap-up code the agent chose, once chosen.
    pub disposition: Option<String>,
}

/// A one-time verification code (portal code or OTP), stored as a keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub id: String,
    pub customer_id: String,
    /// `portal` or `otp`.
    pub purpose: String,
    pub code_hash: String,
    /// The interaction an OTP was sent for (portal codes belong to no interaction).
    pub interaction_id: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

impl std::fmt::Debug for CodeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRow")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// How long an idempotency key is remembered (seconds): a retry within a day is the same request.
pub const IDEMPOTENCY_WINDOW: UnixTime = 24 * 3600;

/// A client's `Idempotency-Key` on a customer operation, kept with the operation it named so a
/// retry of the same request answers from here instead of acting twice. Keys and requests are
/// stored as keyed hashes (the request may hold personal data); the answer is rebuilt from the
/// customer as they are now, so nothing personal is kept here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    /// The account that sent the request: keys are per account.
    pub user_id: String,
    pub key_hash: String,
    /// Keyed hash of the request (customer, interaction, kind, data): the same key with another
    /// request is refused.
    pub request_hash: String,
    pub customer_id: String,
    pub interaction_id: String,
    pub kind: String,
    /// The interaction's level when the operation was applied.
    pub level: i64,
    pub created_at: UnixTime,
}

/// Everything one vault change writes, applied together with `audit` or not at all.
#[derive(Debug, Default)]
pub struct VaultWrite {
    /// Insert (expected `None`) or update customers whose stored version is the expected one;
    /// the stored version becomes `row.version`.
    pub customers: Vec<(CustomerRow, Option<i64>)>,
    /// Replace all blind index entries of these customers.
    pub index: Vec<(String, Vec<IndexEntry>)>,
    /// Insert (expected `None`) or update an interaction, like `customer`.
    pub interaction: Option<(InteractionRow, Option<i64>)>,
    /// Require that this interaction still has this version, without writing it.
    pub interaction_guard: Option<(String, i64)>,
    /// Spend this unused code (by id); fails the write if it was used meanwhile.
    pub spend_code: Option<(String, UnixTime)>,
    pub new_code: Option<CodeRow>,
    /// Delete every code of this customer (erasure).
    pub delete_codes_of: Option<String>,
    /// Record this idempotency key (fails the write if the account already holds it).
    pub idempotency: Option<IdempotencyRow>,
    pub audit: Vec<AuditRecord>,
}

/// A column holding small values sealed by the key-encryption key (besides the customers' data
/// keys and the vault keys, which carry the id of the key that sealed them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `users.totp_sealed`, sealed with `callguard:totp:<user id>`.
    Totp,
    /// `dnc_internal.number_sealed`.
    DncInternalNumber,
    /// `consent_ledger.number_sealed`.
    ConsentNumber,
    /// `consent_ledger.evidence_sealed`.
    ConsentEvidence,
    /// `sessions.user_agent`, sealed text (`sealed:` + base64).
    SessionUserAgent,
    /// `alerts.acknowledge_comment`, sealed text.
    AlertAcknowledgeComment,
    /// `alerts.resolve_comment`, sealed text.
    AlertResolveComment,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 7] = [
        SealedColumn::Totp,
        SealedColumn::DncInternalNumber,
        SealedColumn::ConsentNumber,
        SealedColumn::ConsentEvidence,
        SealedColumn::SessionUserAgent,
        SealedColumn::AlertAcknowledgeComment,
        SealedColumn::AlertResolveComment,
    ];

    /// Whether the column is text holding `sealed:` + base64 (its bytes are then the UTF-8 of
    /// that text in [`VaultStore::sealed_page`] and [`VaultStore::replace_sealed`]) rather than
    /// a binary column.
    #[must_use]
    pub fn is_text(self) -> bool {
        matches!(
            self,
            SealedColumn::SessionUserAgent
                | SealedColumn::AlertAcknowledgeComment
                | SealedColumn::AlertResolveComment
        )
    }

    /// (table, id column, sealed column): fixed names, never from input.
    #[must_use]
    pub fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SealedColumn::Totp => ("users", "id", "totp_sealed"),
            SealedColumn::DncInternalNumber => ("dnc_internal", "id", "number_sealed"),
            SealedColumn::ConsentNumber => ("consent_ledger", "id", "number_sealed"),
            SealedColumn::ConsentEvidence => ("consent_ledger", "id", "evidence_sealed"),
            SealedColumn::SessionUserAgent => ("sessions", "id", "user_agent"),
            SealedColumn::AlertAcknowledgeComment => ("alerts", "id", "acknowledge_comment"),
            SealedColumn::AlertResolveComment => ("alerts", "id", "resolve_comment"),
        }
    }
}

/// `kind` when it can be an index name of the vault (`phone`, `national_id`…: lower-case
/// letters and `_`), which a backend may then write into a statement; an error otherwise.
pub fn index_kind(kind: &str) -> StoreResult<&str> {
    if kind.is_empty()
        || kind.len() > 32
        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(crate::StoreError::Backend(format!(
            "`{}` is not an index kind",
            kind.escape_debug()
        )));
    }
    Ok(kind)
}

/// The vault's storage.
#[async_trait]
pub trait VaultStore: Send + Sync {
    /// A key sealed by the key-encryption key (the blind index key), and which KEK sealed it.
    async fn vault_key(&self, name: &str) -> StoreResult<Option<(Vec<u8>, String)>>;
    /// Stores a sealed key unless one of that name exists; true when this one was stored.
    async fn put_vault_key(&self, name: &str, sealed: &[u8], kek_id: &str) -> StoreResult<bool>;
    /// Replaces a sealed key if it is still sealed by `old_kek_id` (rotation).
    async fn rewrap_vault_key(
        &self,
        name: &str,
        old_kek_id: &str,
        sealed: &[u8],
        kek_id: &str,
    ) -> StoreResult<bool>;
    async fn customer(&self, id: &str) -> StoreResult<Option<CustomerRow>>;
    /// Customers with this blind index entry, at most `limit`. `kind` is one of the vault's
    /// index names (lower-case letters and `_`); anything else is refused (see [`index_kind`]).
    async fn customers_by_index(
        &self,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<CustomerRow>>;
    async fn interaction(&self, id: &str) -> StoreResult<Option<InteractionRow>>;
    /// An agent's interactions, newest first, at most `limit`.
    async fn agent_interactions(
        &self,
        agent_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<InteractionRow>>;
    /// A customer's interactions (any agent), newest first, at most `limit`.
    async fn customer_interactions(
        &self,
        customer_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<InteractionRow>>;
    /// Unused, unexpired codes of a customer for `purpose`.
    async fn live_codes(
        &self,
        customer_id: &str,
        purpose: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<CodeRow>>;
    /// Applies a [`VaultWrite`]; false when an expected version or an unused code no longer
    /// holds (nothing was written then).
    async fn vault_commit(&self, write: VaultWrite) -> StoreResult<bool>;
    /// The operation `user_id` recorded under `key_hash` at or after `since` (older keys are
    /// forgotten: a later write with the same key replaces them).
    async fn idempotent_operation(
        &self,
        user_id: &str,
        key_hash: &str,
        since: UnixTime,
    ) -> StoreResult<Option<IdempotencyRow>>;
    /// Wrapped data keys after `after_id` in id order, for rotation: (id, wrapped, kek id).
    async fn wrapped_keys(
        &self,
        after_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<(String, Vec<u8>, String)>>;
    /// Replaces a customer's wrapped key if it is still sealed by `old_kek_id`.
    async fn rewrap_customer_key(
        &self,
        id: &str,
        old_kek_id: &str,
        wrapped: &[u8],
        kek_id: &str,
    ) -> StoreResult<bool>;
    /// Sealed values of `column` after `after_id`, in id order: (id, sealed).
    async fn sealed_page(
        &self,
        column: SealedColumn,
        after_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Replaces one sealed value if it is still `old` (rotation); true when replaced.
    async fn replace_sealed(
        &self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool>;
    /// Active customers with a pending GDPR request, oldest first.
    async fn customers_with_requests(&self, limit: u64) -> StoreResult<Vec<CustomerRow>>;
    /// How many wrapped keys (customers and vault keys) are sealed by `kek_id`.
    async fn keys_sealed_by(&self, kek_id: &str) -> StoreResult<u64>;
}

/// The key store: the half of each customer's data key that is kept out of the database, so
/// that deleting it (erasure) leaves nothing to recover in any copy of the database.
///
/// On SQLite it is its own file beside the database (`keystore.db`, rollback journal and
/// `secure_delete`, so a deleted share is overwritten on disk, not left in a free page or a
/// WAL). On PostgreSQL it is the table `customer_key_shares`, which operators must keep out of
/// database backups (`pg_dump --exclude-table-data=customer_key_shares`) or replace with a KMS;
/// a restore re-applies erasures from the audit log's tombstones.
#[async_trait]
pub trait KeyShareStore: Send + Sync {
    /// Stores a customer's share durably (before the customer row that needs it).
    async fn put_share(&self, customer_id: &str, share: &[u8]) -> StoreResult<()>;
    async fn share(&self, customer_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// The customers of [`VaultStore::customers_by_index`], each with its share ([`None`]
    /// once erased). On PostgreSQL, where the shares are a table of the same database, one
    /// statement reads both (a screen-pop's round trip fewer); on SQLite the shares are another
    /// file, read after the rows.
    async fn customers_with_shares_by_index(
        &self,
        kind: &str,
        hash: &str,
        limit: u64,
    ) -> StoreResult<Vec<(CustomerRow, Option<Vec<u8>>)>>;
    /// Destroys a customer's share; true when it existed.
    async fn destroy_share(&self, customer_id: &str) -> StoreResult<bool>;
}
