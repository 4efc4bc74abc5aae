//! The one door card data leaves by: a payment gateway. Each gateway's wire format lives in its
//! own file behind [`Gateway`]; the payments service never sees HTTP, and the card details it
//! hands over are dropped (and wiped) as soon as the call returns.

mod adyen;
mod form;
mod settings;
mod stripe;

pub use adyen::AdyenGateway;
pub use settings::{
    build, AdyenSettings, GatewaySettings, GatewaySettingsError, StripeSettings, DEFAULT_TIMEOUT,
    STRIPE_BASE_URL,
};
pub use stripe::{StripeGateway, STRIPE_VERSION};

use async_trait::async_trait;
use callguard_core::payments::{CardDetails, CardSummary, Money};

/// One charge: tokenise the card and authorise the amount, once, under `idempotency_key`.
pub struct ChargeRequest<'a> {
    /// Stored with the payment attempt *before* the request is sent, so a retry after a timeout
    /// or a crash reuses it and the gateway charges at most once.
    pub idempotency_key: &'a str,
    pub amount: Money,
    pub card: &'a CardDetails,
    /// Shown on the statement and in the gateway's dashboard; never personal data.
    pub description: &'a str,
    /// Callguard's payment id, sent as the gateway's reference / metadata.
    pub reference: &'a str,
    /// Mail-order / telephone-order: the card was typed on a phone keypad, not by the card holder
    /// on a page (no 3-D Secure challenge is possible).
    pub moto: bool,
    /// Pay-by-link only: where the bank's 3-D Secure page sends the card holder back to. A keypad
    /// (MOTO) charge has none.
    pub return_url: Option<&'a url::Url>,
}

/// A full or partial refund of an authorised charge.
pub struct RefundRequest<'a> {
    pub idempotency_key: &'a str,
    /// The gateway's reference of the charge (`ChargeOutcome::Authorised::reference`).
    pub charge_reference: &'a str,
    pub amount: Money,
}

/// Why a gateway declined a card, mapped from each gateway's own codes to one list a person can
/// act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The bank declined without saying why.
    Generic,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
    IncorrectNumber,
    /// The gateway could not process the card (its error, try again).
    ProcessingError,
    /// Declined as suspected fraud, or a lost or stolen card.
    Fraud,
    /// 3-D Secure was required and not completed.
    AuthenticationFailed,
}

impl DeclineReason {
    /// What the agent and the caller are told.
    #[must_use]
    pub fn explain(self) -> &'static str {
        match self {
            Self::Generic => "The card was declined by the bank. Ask for another card.",
            Self::InsufficientFunds => "The card has insufficient funds. Ask for another card.",
            Self::ExpiredCard => "The card has expired.",
            Self::IncorrectCvc => "The security code was wrong.",
            Self::IncorrectNumber => "The card number was wrong.",
            Self::ProcessingError => "The gateway could not process the card. Try again.",
            Self::Fraud => "The card was declined. Ask for another card.",
            Self::AuthenticationFailed => "The card holder did not complete the bank's check.",
        }
    }
}

/// What came of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Authorised {
        /// The gateway's charge reference (Stripe PaymentIntent id, Adyen pspReference).
        reference: String,
        /// The gateway's token for the card (Stripe PaymentMethod id, Adyen recurring detail
        /// reference or the pspReference when none).
        token: String,
        card: CardSummary,
    },
    Declined {
        reason: DeclineReason,
        reference: Option<String>,
    },
    /// 3-D Secure: the card holder must complete the bank's check at `redirect_url` (pay-by-link
    /// only; a keypad charge is MOTO and never gets here).
    RequiresAction {
        reference: String,
        redirect_url: url::Url,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    pub reference: String,
    pub amount: Money,
}

/// Why a request to the gateway failed. None of these carries card data or a gateway message
/// that might quote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No answer in time or the connection broke: the outcome is unknown, so the caller retries
    /// with the same idempotency key.
    #[error("the payment gateway did not answer in time; the request is retried with the same idempotency key")]
    Unreachable,
    /// The gateway refused our credentials: configuration, not the caller's card.
    #[error("the payment gateway refused Callguard's credentials; check payments.* keys")]
    Unauthorised,
    /// The same idempotency key was used with other parameters.
    #[error("the payment gateway refused a reused idempotency key with different parameters")]
    IdempotencyConflict,
    /// The gateway rate-limited us.
    #[error("the payment gateway is rate-limiting requests; try again shortly")]
    RateLimited,
    /// The gateway answered with an error that is ours (bad request) or its own (5xx).
    #[error("the payment gateway answered with an error ({0})")]
    Rejected(String),
    /// The answer was not in the gateway's documented shape.
    #[error("the payment gateway's answer could not be read")]
    Protocol,
}

/// A payment gateway.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// `stripe` or `adyen`, for logs, metrics and audit details.
    fn name(&self) -> &'static str;

    /// Tokenise the card and authorise the charge; idempotent under the request's key.
    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError>;

    /// The charge's state now, by the gateway's reference: after the card holder came back from
    /// the bank's 3-D Secure page, or after a timeout when no retry is wanted.
    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError>;

    /// Refund all or part of an authorised charge; idempotent under the request's key.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<RefundOutcome, GatewayError>;
}
