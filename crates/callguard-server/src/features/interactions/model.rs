//! The words of interactions: channels and directions, the verification state kept on an
//! interaction, the operations and the level policy, and the requests and answers of the
//! service.

use crate::features::vault::service::CustomerView;
use crate::notify::Channel;
use callguard_core::vault::model::Address;
use callguard_core::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A verification step that succeeded.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub method: String,
    pub level: i64,
    pub at: String,
    /// The id of the portal code or OTP used (never the code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PendingOtp {
    pub(crate) code_id: String,
    pub(crate) channel: String,
}

/// What an interaction knows about its verification.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CallState {
    pub(crate) level: i64,
    pub(crate) steps: Vec<Step>,
    pub(crate) failures: i64,
    pub(crate) locked: bool,
    pub(crate) otp: Option<PendingOtp>,
    /// Operations carried out in the interaction, in order (their `as_str` names).
    #[serde(default)]
    pub(crate) ops: Vec<String>,
    /// The caller's number, sealed, while a phone call linked to nobody is open: it pre-fills
    /// "register this caller". Dropped when the call ends or is wrapped up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) caller_sealed: Option<String>,
}

pub(crate) fn state_of(s: &str) -> CallState {
    serde_json::from_str(s).unwrap_or_default()
}

/// The verification level recorded in an interaction's state.
#[must_use]
pub fn level_of(state: &str) -> i64 {
    state_of(state).level
}

/// Operations agents carry out for a caller.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    ChangeContact,
    ChangeAddress,
    TransferService,
    DuplicateInvoice,
    AddNote,
}

impl OperationKind {
    pub const ALL: [OperationKind; 5] = [
        OperationKind::ChangeContact,
        OperationKind::ChangeAddress,
        OperationKind::TransferService,
        OperationKind::DuplicateInvoice,
        OperationKind::AddNote,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::ChangeContact => "change_contact",
            OperationKind::ChangeAddress => "change_address",
            OperationKind::TransferService => "transfer_service",
            OperationKind::DuplicateInvoice => "duplicate_invoice",
            OperationKind::AddNote => "add_note",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which operation needs which level. SPEC's safe defaults: level 2 for everything that changes
/// contact details or money matters, level 1 for a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub levels: BTreeMap<OperationKind, i64>,
    /// The wrap-up codes an agent picks from when a call is done (`desk.dispositions`).
    pub dispositions: Vec<String>,
    /// The level a payment request needs (`verification.level.payment`, default 2).
    pub payment: i64,
}

/// The wrap-up codes offered when `desk.dispositions` is not set.
pub const DEFAULT_DISPOSITIONS: [&str; 6] = [
    "resolved",
    "callback_needed",
    "escalated",
    "transferred",
    "wrong_number",
    "no_action",
];

impl Default for Policy {
    fn default() -> Self {
        let mut levels = BTreeMap::new();
        for k in OperationKind::ALL {
            levels.insert(k, if k == OperationKind::AddNote { 1 } else { 2 });
        }
        Self {
            levels,
            dispositions: DEFAULT_DISPOSITIONS
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            payment: 2,
        }
    }
}

impl Policy {
    #[must_use]
    pub fn required(&self, k: OperationKind) -> i64 {
        self.levels.get(&k).copied().unwrap_or(2).clamp(1, 2)
    }

    /// The level a payment request needs.
    #[must_use]
    pub fn payment_level(&self) -> i64 {
        self.payment.clamp(1, 2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InteractionChannel {
    Phone,
    Chat,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// `POST /api/v1/interactions`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInteraction {
    pub channel: InteractionChannel,
    pub direction: Direction,
    /// The caller's number (E.164) for phone, or address for chat and e-mail.
    pub from: String,
    /// Link to this customer explicitly; otherwise a phone call is linked by its number when
    /// exactly one customer has it.
    pub customer_id: Option<String>,
}

/// An interaction as its agent sees it.
#[derive(Serialize, JsonSchema)]
pub struct InteractionView {
    pub id: String,
    pub verification_level: i64,
    pub status: String,
    pub channel: String,
    pub direction: String,
    pub customer_id: Option<String>,
    /// The linked customer, masked (the screen-pop).
    pub customer: Option<CustomerView>,
    /// How many customers have the caller's number when it did not single one out.
    pub candidates: usize,
    pub steps: Vec<Step>,
    pub attempts_left: i64,
    pub locked: bool,
    /// An OTP was sent and awaits the code (its channel).
    pub otp_pending: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// The wrap-up code, once the agent chose one.
    pub disposition: Option<String>,
}

/// One knowledge answer.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub question: String,
    pub answer: Secret<String>,
}

/// `POST /api/v1/interactions/{id}/verify`: one method per request.
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum VerifyRequest {
    /// Level 1: the caller's PESEL, NIP or REGON.
    NationalId { value: Secret<String> },
    /// Level 1: a service or account name the caller holds.
    Service { value: Secret<String> },
    /// Level 1: answers to the customer's knowledge questions (at least two, all right).
    SecurityAnswers { answers: Vec<Answer> },
    /// Level 2 from level 1: the code the caller reads from their portal.
    PortalCode { code: Secret<String> },
    /// Level 2 from level 1, step one: send a code to the registered phone (`sms`) or e-mail.
    OtpSend { channel: Channel },
    /// Level 2 from level 1, step two: the code the caller received.
    Otp { code: Secret<String> },
}

impl VerifyRequest {
    pub(crate) fn method(&self) -> &'static str {
        match self {
            VerifyRequest::NationalId { .. } => "national_id",
            VerifyRequest::Service { .. } => "service",
            VerifyRequest::SecurityAnswers { .. } => "security_answers",
            VerifyRequest::PortalCode { .. } => "portal_code",
            VerifyRequest::OtpSend { .. } => "otp_send",
            VerifyRequest::Otp { .. } => "otp",
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct VerifyResponse {
    pub level: i64,
    pub attempts_left: i64,
    /// For `otp_send`: where the code went, masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<String>,
    /// Set when this attempt linked the interaction to a customer (identification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

/// `POST /api/v1/customers/{id}/operations`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationRequest {
    pub interaction_id: String,
    pub kind: OperationKind,
    /// By kind: `change_contact` {phones?, emails?}; `change_address` {address};
    /// `transfer_service` {service, to_customer_id}; `duplicate_invoice` {invoice};
    /// `add_note` {text}.
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeContact {
    pub(crate) phones: Option<Vec<String>>,
    pub(crate) emails: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeAddress {
    pub(crate) address: Address,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferService {
    pub(crate) service: String,
    pub(crate) to_customer_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DuplicateInvoice {
    pub(crate) invoice: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddNote {
    pub(crate) text: String,
}

#[derive(Serialize, JsonSchema)]
pub struct OperationResponse {
    pub kind: OperationKind,
    /// The level the interaction had when the operation was applied.
    pub level: i64,
    /// The customer afterwards, masked.
    pub customer: CustomerView,
}
