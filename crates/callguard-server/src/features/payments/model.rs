//! The words of payments: a payment request's status and the transitions between them, the
//! methods, and the requests and answers of the service. Nothing here holds card data.

use crate::notify::Channel;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a payment request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Made, nothing sent yet (a link not sent, a keypad capture not begun).
    Created,
    /// The link went to the customer's phone or e-mail.
    LinkSent,
    /// Card details are being taken or are at the gateway.
    Capturing,
    Authorised,
    Declined,
    /// Not paid in time.
    Expired,
    /// The agent cancelled it.
    Cancelled,
    /// The gateway failed or the outcome could not be learned.
    Failed,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Created,
        Status::LinkSent,
        Status::Capturing,
        Status::Authorised,
        Status::Declined,
        Status::Expired,
        Status::Cancelled,
        Status::Failed,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::LinkSent => "link_sent",
            Status::Capturing => "capturing",
            Status::Authorised => "authorised",
            Status::Declined => "declined",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the payment can still change (be paid, cancelled or expire).
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Status::Created | Status::LinkSent | Status::Capturing)
    }

    /// The state machine: created → link_sent | capturing → authorised | declined | expired |
    /// cancelled | failed. Every closed status is final. A capturing payment may be cancelled
    /// only while its card is not at the gateway (a keypad capture the caller abandons, that
    /// times out or that the agent stops): the service checks that, not this table.
    #[must_use]
    pub fn may_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Created, LinkSent | Capturing | Expired | Cancelled | Failed)
                | (LinkSent, Capturing | Expired | Cancelled)
                | (
                    Capturing,
                    Authorised | Declined | Failed | Expired | Cancelled
                )
        )
    }
}

/// How the caller pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A single-use link to the hosted page, sent by SMS or e-mail.
    Link,
    /// The caller types the card on the phone keypad (the telephony edge captures it).
    Keypad,
}

impl Method {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Link => "link",
            Method::Keypad => "keypad",
        }
    }
}

/// `POST /api/v1/payments`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    /// The agent's active interaction, verified to the policy's level (default 2).
    pub interaction_id: String,
    /// In minor units of the currency (cents), 1 to 99 999 999 999.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    pub method: Method,
    /// What is paid for, at most 120 characters; shown to the customer and the gateway.
    pub description: Option<String>,
    /// For a link: send it by `sms` or `email` to the customer's registered contact. Without
    /// it the link is only returned to the agent.
    pub send_to: Option<Channel>,
}

/// A payment as staff and its customer see it: never a card number, only brand and last four.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PaymentView {
    pub id: String,
    pub status: Status,
    pub amount_minor: i64,
    pub currency: String,
    /// The amount for people, e.g. `12.50 EUR`.
    pub amount: String,
    pub method: Method,
    pub description: String,
    pub interaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    /// Why the card was declined (`insufficient_funds`, …), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    /// What to tell the caller about the decline or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The gateway's charge reference, once authorised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_reference: Option<String>,
    pub refunded_minor: i64,
    /// RFC 3339.
    pub expires_at: String,
    pub created_at: String,
    /// The hosted page (`https://…/pay/{token}`), only in the answer that created a link
    /// payment: the token is stored hashed and cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
    /// A keypad capture in progress: which field, how many digits so far, the brand once
    /// known, and each field's result. Never a digit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypad: Option<KeypadProgress>,
}

/// What the agent's desk shows of a keypad capture while the caller types: "card number:
/// digit 7 of 16", the brand once known, the fields' results. Counts only, never digits.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct KeypadProgress {
    /// The field being typed: `card number`, `expiry`, `security code`, `postal code`.
    pub field: String,
    /// Digits typed so far in that field.
    pub digit: u32,
    /// How many digits the field takes (for a card number, once its brand is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<u32>,
    /// The card's brand, once its first digits tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Each field's result so far, e.g. `card number accepted`, `expiry rejected: the card has
    /// expired`.
    pub results: Vec<String>,
}

/// `GET /api/v1/payments` and the lists of an interaction.
#[derive(Serialize, JsonSchema)]
pub struct PaymentList {
    pub payments: Vec<PaymentView>,
}

/// `POST /api/v1/payments/{id}/refunds`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// In minor units; omitted: everything not refunded yet.
    pub amount_minor: Option<i64>,
}

/// A refund as a supervisor sees it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    /// `refunded` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_reference: Option<String>,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_payments_never_change_again() {
        for from in Status::ALL.into_iter().filter(|s| !s.is_open()) {
            for to in Status::ALL {
                assert!(!from.may_become(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_payment_is_authorised_only_through_capturing() {
        for from in Status::ALL {
            assert_eq!(
                from.may_become(Status::Authorised),
                from == Status::Capturing,
                "{from:?}"
            );
            assert_eq!(from.may_become(Status::Declined), from == Status::Capturing);
        }
    }

    #[test]
    fn an_open_payment_can_be_cancelled_the_service_guards_a_card_at_the_gateway() {
        assert!(Status::Created.may_become(Status::Cancelled));
        assert!(Status::LinkSent.may_become(Status::Cancelled));
        assert!(Status::Capturing.may_become(Status::Cancelled));
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
    }
}
