//! Storage of payment requests and their refunds (SPEC C7). A row never holds a card number or
//! a security code: only brand, last four, expiry month/year, the gateway's token and reference,
//! and the idempotency key of the current attempt (written before the gateway is called, so a
//! retry after a timeout or a crash reuses it). A pay-by-link token is kept as its hash.
//!
//! Changes go through [`PaymentStore::payment_commit`]: the payment at the version it was read,
//! an optional refund, and the audit entries, in one transaction or not at all.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;

/// A payment request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub id: String,
    /// Bumped by every write; writes name the version they read.
    pub version: i64,
    pub interaction_id: String,
    pub customer_id: Option<String>,
    pub agent_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// `link` or `keypad`.
    pub method: String,
    pub description: String,
    /// `created`, `link_sent`, `capturing`, `authorised`, `declined`, `expired`, `cancelled`,
    /// `failed`.
    pub status: String,
    /// `sms` or `email` for a link.
    pub send_to: Option<String>,
    /// SHA-256 (hex) of the pay-by-link token.
    pub link_hash: Option<String>,
    pub expires_at: UnixTime,
    /// The idempotency key of the current gateway attempt.
    pub attempt_key: Option<String>,
    pub attempts: i64,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    /// Which gateway took the charge (`stripe`, `adyen`).
    pub gateway: Option<String>,
    pub gateway_token: Option<String>,
    pub gateway_reference: Option<String>,
    pub decline_reason: Option<String>,
    /// Sum of refunds asked for or made (a failed refund gives its amount back).
    pub refunded_minor: i64,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// A refund of an authorised payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub idempotency_key: String,
    /// `pending`, `refunded` or `failed`.
    pub status: String,
    pub gateway_reference: Option<String>,
    pub created_by: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// One audited change: insert a payment (expected version `None`) or update it from the version
/// it was read at, optionally insert or update a refund, with the audit entries.
#[derive(Debug, Clone, Default)]
pub struct PaymentWrite {
    pub payment: Option<(PaymentRow, Option<i64>)>,
    /// A refund and whether it is new (insert) or an update.
    pub refund: Option<(RefundRow, bool)>,
    pub audit: Vec<AuditRecord>,
}

/// Payment requests and refunds.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Applies `write` with its audit entries in one transaction; false (nothing written or
    /// logged) when the payment is no longer at the expected version.
    async fn payment_commit(&self, write: PaymentWrite) -> StoreResult<bool>;
    async fn payment(&self, id: &str) -> StoreResult<Option<PaymentRow>>;
    async fn payment_by_link(&self, link_hash: &str) -> StoreResult<Option<PaymentRow>>;
    /// Newest first, at most `limit`.
    async fn payments_of_interaction(
        &self,
        interaction_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<PaymentRow>>;
    /// Newest first, at most `limit`.
    async fn payments_of_customer(
        &self,
        customer_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<PaymentRow>>;
    /// Newest first, at most `limit`.
    async fn recent_payments(&self, limit: u64) -> StoreResult<Vec<PaymentRow>>;
    /// Payments still open (`created`, `link_sent`, `capturing`) whose expiry is before `now`.
    async fn overdue_payments(&self, now: UnixTime, limit: u64) -> StoreResult<Vec<PaymentRow>>;
    /// Refunds of one payment, oldest first.
    async fn refunds_of(&self, payment_id: &str) -> StoreResult<Vec<RefundRow>>;
}

/// Columns of `payments` in the order both backends read and write them.
pub(crate) const PAYMENT_COLUMNS: &str = "id, version, interaction_id, customer_id, agent_id, amount_minor, currency, method, description, status, send_to, link_hash, expires_at, attempt_key, attempts, brand, last4, exp_month, exp_year, gateway, gateway_token, gateway_reference, decline_reason, refunded_minor, created_at, updated_at";

/// Columns of `payment_refunds` in the order both backends read and write them.
pub(crate) const REFUND_COLUMNS: &str = "id, payment_id, amount_minor, idempotency_key, status, gateway_reference, created_by, created_at, updated_at";

/// The statuses a payment can still leave (by paying, cancelling or expiring).
pub(crate) const OPEN_STATUSES: &str = "('created', 'link_sent', 'capturing')";
