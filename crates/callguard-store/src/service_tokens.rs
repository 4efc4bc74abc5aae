//! API tokens of service accounts (the telephony edge). Only the token's SHA-256 is stored;
//! every change commits with its audit entry.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::{Role, UnixTime};

/// One service account's token.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceTokenRow {
    /// The account's name, e.g. `telephony`.
    pub account: String,
    pub role: Role,
    /// SHA-256 of the token (`callguard_core::token::hash`).
    pub token_hash: String,
    pub issued_at: UnixTime,
}

impl std::fmt::Debug for ServiceTokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokenRow")
            .field("account", &self.account)
            .field("role", &self.role)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// Service accounts' tokens.
#[async_trait]
pub trait ServiceTokenStore: Send + Sync {
    /// Stores the account's token, replacing any (rotation).
    async fn set_service_token(&self, t: &ServiceTokenRow, audit: AuditRecord) -> StoreResult<()>;
    /// The account's token row, if one is issued.
    async fn service_token(&self, account: &str) -> StoreResult<Option<ServiceTokenRow>>;
    /// The token row whose hash is `token_hash`.
    async fn service_token_by_hash(&self, token_hash: &str)
        -> StoreResult<Option<ServiceTokenRow>>;
    /// Deletes the account's token; false (nothing logged) when none was issued.
    async fn revoke_service_token(&self, account: &str, audit: AuditRecord) -> StoreResult<bool>;
}
