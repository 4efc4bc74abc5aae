//! The words of keypad capture: fields, key events, per-field results and what the edge is
//! answered. Nothing here holds a digit the caller typed except [`KeyEvents`], whose keys are a
//! [`Secret`] (wiped on drop, printed as nothing).

use crate::features::payments::model::PaymentView;
use callguard_core::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One field the caller types, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The card number, 12 to 19 digits.
    Number,
    /// Month and year as MMYY.
    Expiry,
    /// The security code: 3 digits, 4 on American Express.
    Cvc,
    /// The billing postal code's digits (only when `payments.keypad_postal_code` is set).
    PostalCode,
}

impl Field {
    /// How the desk and prompts name it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Field::Number => "card number",
            Field::Expiry => "expiry",
            Field::Cvc => "security code",
            Field::PostalCode => "postal code",
        }
    }
}

/// `POST /api/v1/payments/{id}/keypad/keys`: key events from the edge, in order.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyEvents {
    /// 1 to 64 keys: digits `0`–`9`, `*` (abort the field and type it again), `#` (end the
    /// field). Usually one key per request, as the caller presses it.
    #[schemars(with = "String")]
    pub keys: Secret<String>,
}

/// What came of one key that ended or restarted a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Rejected,
    /// `*`: the field was cleared, to be typed again.
    Restarted,
}

/// The result of one field, as the edge plays it back to the caller. Never a digit.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FieldResult {
    pub field: Field,
    pub result: Verdict,
    /// Why it was rejected, in words for the caller (never what was typed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rejections of this field still allowed before the capture is cancelled.
    pub attempts_left: u32,
}

/// Where a capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureState {
    /// Waiting for the caller's keys for `field`.
    Collecting,
    /// Every field accepted; the card went to the gateway: see `payment` for the outcome.
    Submitted,
    /// Ended without a charge (timeout, too many rejections, cancelled by the edge or agent,
    /// or the payment expired): see `ended_because`.
    Cancelled,
}

/// The answer to the edge after each step of a capture.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CaptureView {
    pub payment_id: String,
    pub state: CaptureState,
    /// The field the caller types now (while collecting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
    /// Digits typed so far in that field.
    pub digits: u32,
    /// The card's brand once its first digits tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// The fields ended or restarted by the keys of this request, in order.
    pub results: Vec<FieldResult>,
    /// Seconds left before the server cancels the capture.
    pub seconds_left: i64,
    /// Why the capture ended without a charge: `timeout`, `too_many_attempts`, `cancelled`,
    /// `payment_closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_because: Option<String>,
    /// The payment as it now is (after the capture ended): status, brand, last four.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
}
