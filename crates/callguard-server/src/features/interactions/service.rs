//! Interactions and two-step caller verification (SPEC C4), and the operations agents carry out
//! on a caller's behalf. Level 1: the caller identifies (national id, a service name, or
//! knowledge answers). Level 2, only from level 1: a one-time code from the customer's own
//! portal, or one sent to their registered phone or e-mail. A policy table says which operation
//! needs which level. Failures are limited per interaction and per customer, and every attempt is
//! audited (the alert rules watch `interaction.verify` failures).

use crate::error::Error;
use crate::features::vault::service::{
    self as vault, masked_view, CustomerView, Opened, Problems, Vault,
};
use crate::notify::{Channel, Notifier};
use crate::principal::{customer_actor, customer_of, customer_ref, Actor, Principal};
use callguard_core::vault::crypto::IndexKind;
use callguard_core::vault::model::Address;
use callguard_core::vault::validate;
use callguard_core::{now, rfc3339, Secret, UnixTime};
use callguard_store::{CodeRow, InteractionRow, VaultWrite};
use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Failed verification attempts one interaction allows before verification locks in it.
pub const MAX_FAILURES_PER_INTERACTION: i64 = 5;
/// Failed attempts on one customer, across interactions, within [`CUSTOMER_WINDOW`].
pub const MAX_FAILURES_PER_CUSTOMER: i64 = 10;
pub const CUSTOMER_WINDOW: i64 = 24 * 3600;
/// How long a portal code or an OTP is valid.
pub const CODE_SECONDS: i64 = 10 * 60;
/// Characters of portal codes: no 0/O, 1/I/L, so they read out unambiguously.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LEN: usize = 8;

/// A new portal code: 8 characters of a 31-letter alphabet (about 40 bits), shown as
/// `ABCD-EFGH`.
#[must_use]
pub fn portal_code() -> Secret<String> {
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    Secret::new(format!("{}-{}", &raw[..4], &raw[4..]))
}

/// A new OTP: 8 digits (easy to read out from an SMS).
fn otp_code() -> Secret<String> {
    let mut rng = rand::rngs::OsRng;
    Secret::new(
        (0..CODE_LEN)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect(),
    )
}

/// The form of a code that gets hashed: upper case, without separators.
#[must_use]
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

// ---- state ---------------------------------------------------------------------------------

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
struct PendingOtp {
    code_id: String,
    channel: String,
}

/// What an interaction knows about its verification.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CallState {
    level: i64,
    steps: Vec<Step>,
    failures: i64,
    locked: bool,
    otp: Option<PendingOtp>,
}

fn state_of(s: &str) -> CallState {
    serde_json::from_str(s).unwrap_or_default()
}

/// The verification level recorded in an interaction's state.
#[must_use]
pub fn level_of(state: &str) -> i64 {
    state_of(state).level
}

// ---- policy ----------------------------------------------------------------------------------

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
}

impl Default for Policy {
    fn default() -> Self {
        let mut levels = BTreeMap::new();
        for k in OperationKind::ALL {
            levels.insert(k, if k == OperationKind::AddNote { 1 } else { 2 });
        }
        Self { levels }
    }
}

impl Policy {
    #[must_use]
    pub fn required(&self, k: OperationKind) -> i64 {
        self.levels.get(&k).copied().unwrap_or(2).clamp(1, 2)
    }
}

// ---- wire types ------------------------------------------------------------------------------

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
    fn method(&self) -> &'static str {
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
struct ChangeContact {
    phones: Option<Vec<String>>,
    emails: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeAddress {
    address: Address,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferService {
    service: String,
    to_customer_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DuplicateInvoice {
    invoice: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNote {
    text: String,
}

#[derive(Serialize, JsonSchema)]
pub struct OperationResponse {
    pub kind: OperationKind,
    /// The level the interaction had when the operation was applied.
    pub level: i64,
    /// The customer afterwards, masked.
    pub customer: CustomerView,
}

// ---- the service -----------------------------------------------------------------------------

/// Interactions, verification and operations.
pub struct Interactions {
    vault: Arc<Vault>,
    notifier: Arc<Notifier>,
    policy: Policy,
}

impl Interactions {
    pub fn new(vault: Arc<Vault>, notifier: Arc<Notifier>, policy: Policy) -> Self {
        Self {
            vault,
            notifier,
            policy,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The interaction `id` of agent `p`; another agent's interaction is not found.
    async fn own(&self, p: &Principal, id: &str) -> Result<InteractionRow, Error> {
        self.vault
            .store()
            .interaction(id)
            .await?
            .filter(|i| i.agent_id == p.user.id)
            .ok_or(Error::NotFound)
    }

    async fn view(&self, i: &InteractionRow, candidates: usize) -> Result<InteractionView, Error> {
        let st = state_of(&i.state);
        let customer = match &i.customer_id {
            Some(c) => match self.vault.open(c).await {
                Ok(o) => Some(masked_view(&o)),
                Err(Error::NotFound) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(InteractionView {
            id: i.id.clone(),
            verification_level: st.level,
            status: i.status.clone(),
            channel: i.channel.clone(),
            direction: i.direction.clone(),
            customer_id: i.customer_id.clone(),
            customer,
            candidates,
            steps: st.steps.clone(),
            attempts_left: (MAX_FAILURES_PER_INTERACTION - st.failures).max(0),
            locked: st.locked,
            otp_pending: st.otp.as_ref().map(|o| o.channel.clone()),
            started_at: rfc3339(i.started_at),
            ended_at: i.ended_at.map(rfc3339),
        })
    }

    /// Starts an interaction and pops up the caller's record when the number singles one out.
    pub async fn start(&self, p: &Principal, r: NewInteraction) -> Result<InteractionView, Error> {
        let mut problems = Problems::default();
        let from = r.from.trim();
        let mut from_hash = None;
        if r.channel == InteractionChannel::Phone {
            match validate::phone(from) {
                Ok(e164) => from_hash = Some(e164),
                // Withheld or odd caller ids are normal: the call goes on unlinked.
                Err(_) if from.is_empty() || from.eq_ignore_ascii_case("anonymous") => {}
                Err(e) => problems.add("from", e),
            }
        } else if from.chars().count() > 254 || from.chars().any(char::is_control) {
            problems.add("from", "at most 254 characters, no control characters");
        }
        problems.into_result()?;
        let mut candidates = 0;
        let customer_id = match r.customer_id {
            Some(c) => {
                self.vault.open(&c).await?;
                Some(c)
            }
            None => match &from_hash {
                Some(e164) => {
                    let found = self.vault.find_by(IndexKind::Phone, e164).await?;
                    candidates = found.len();
                    (found.len() == 1).then(|| found[0].row.id.clone())
                }
                None => None,
            },
        };
        let id = uuid::Uuid::new_v4().to_string();
        let t = now();
        let row = InteractionRow {
            id: id.clone(),
            version: 1,
            agent_id: p.user.id.clone(),
            customer_id: customer_id.clone(),
            channel: serde_plain(&r.channel),
            direction: serde_plain(&r.direction),
            from_hash: from_hash.map(|e| self.vault.index_key().blind(IndexKind::Phone, &e)),
            status: "active".into(),
            started_at: t,
            ended_at: None,
            state: serde_json::to_string(&CallState::default()).map_err(|_| Error::Internal)?,
        };
        let mut audit = p
            .actor()
            .record("interaction.start")
            .detail("channel", row.channel.clone())
            .detail("direction", row.direction.clone())
            .detail("linked", customer_id.is_some());
        audit.interaction = Some(id.clone());
        if let Some(c) = &customer_id {
            audit = audit.target(customer_ref(c));
        }
        self.vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((row.clone(), None)),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        self.view(&row, candidates).await
    }

    pub async fn get(&self, p: &Principal, id: &str) -> Result<InteractionView, Error> {
        let i = self.own(p, id).await?;
        self.view(&i, 0).await
    }

    /// Ends an interaction: reveals and operations stop at once.
    pub async fn end(&self, p: &Principal, id: &str) -> Result<InteractionView, Error> {
        let i = self.own(p, id).await?;
        if i.status != "active" {
            return Err(Error::State("the interaction has already ended"));
        }
        let mut next = i.clone();
        next.status = "ended".into();
        next.ended_at = Some(now());
        next.version += 1;
        let mut audit = p.actor().record("interaction.end");
        audit.interaction = Some(i.id.clone());
        if let Some(c) = &i.customer_id {
            audit = audit.target(customer_ref(c));
        }
        if !self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((next.clone(), Some(i.version))),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?
        {
            return Err(Error::State("the interaction changed meanwhile; try again"));
        }
        self.view(&next, 0).await
    }

    /// One verification attempt.
    pub async fn verify(
        &self,
        p: &Principal,
        id: &str,
        req: VerifyRequest,
    ) -> Result<VerifyResponse, Error> {
        let i = self.own(p, id).await?;
        if i.status != "active" {
            return Err(Error::State("the interaction has ended"));
        }
        let mut st = state_of(&i.state);
        let method = req.method();
        if st.locked {
            return Err(Error::VerificationLocked(
                "too many failed attempts in this interaction; end it and escalate",
            ));
        }
        let two = matches!(
            req,
            VerifyRequest::PortalCode { .. }
                | VerifyRequest::OtpSend { .. }
                | VerifyRequest::Otp { .. }
        );
        if two && st.level < 1 {
            return Err(Error::State(
                "level 2 methods work only from level 1: identify the caller first",
            ));
        }
        if !two && st.level >= 1 {
            return Err(Error::State(
                "the caller is already identified (level 1 or more)",
            ));
        }
        // The customer this attempt is about: the linked one, or for identification by
        // national id or service name, the one customer the value singles out.
        let mut customer: Option<Opened> = match &i.customer_id {
            Some(c) => Some(self.vault.open(c).await?),
            None => None,
        };
        if let Some(o) = &customer {
            if customer_locked(&o.row, now()) {
                let mut audit = p
                    .actor()
                    .record("interaction.verify")
                    .target(customer_ref(&o.row.id))
                    .failure()
                    .detail("method", method)
                    .detail("refused", "customer_locked");
                audit.interaction = Some(i.id.clone());
                self.vault.store().append(vec![audit]).await?;
                return Err(Error::VerificationLocked(
                    "too many failed attempts on this customer in the last 24 hours",
                ));
            }
        }
        let mut linked_now = None;
        let mut code_used: Option<String> = None;
        let outcome: bool = match req {
            VerifyRequest::NationalId { value } => match &customer {
                Some(o) => Vault::national_id_matches(o, value.expose()),
                None => {
                    let found = self.vault.find_by_national_id(value.expose()).await?;
                    if found.len() == 1 {
                        linked_now = found.into_iter().next();
                        true
                    } else {
                        false
                    }
                }
            },
            VerifyRequest::Service { value } => match &customer {
                Some(o) => Vault::service_matches(o, value.expose()),
                None => match validate::service(value.expose()) {
                    Ok(v) => {
                        let found = self.vault.find_by(IndexKind::Service, &v).await?;
                        if found.len() == 1 {
                            linked_now = found.into_iter().next();
                            true
                        } else {
                            false
                        }
                    }
                    Err(_) => false,
                },
            },
            VerifyRequest::SecurityAnswers { answers } => match &customer {
                Some(o) => {
                    let given: Vec<(String, Secret<String>)> =
                        answers.into_iter().map(|a| (a.question, a.answer)).collect();
                    self.vault.answers_match(o, &given).await?
                }
                None => {
                    return Err(Error::State(
                        "knowledge questions need the interaction linked to a customer: identify by national id or service first, or link the customer",
                    ))
                }
            },
            VerifyRequest::PortalCode { code } => match &customer {
                Some(o) => {
                    code_used = self.match_code(&o.row.id, "portal", None, code.expose()).await?;
                    code_used.is_some()
                }
                None => false,
            },
            VerifyRequest::Otp { code } => match (&customer, &st.otp) {
                (Some(o), Some(_)) => {
                    code_used = self
                        .match_code(&o.row.id, "otp", Some(&i.id), code.expose())
                        .await?;
                    code_used.is_some()
                }
                _ => {
                    return Err(Error::State(
                        "no code was sent in this interaction: use `otp_send` first",
                    ))
                }
            },
            VerifyRequest::OtpSend { channel } => {
                let Some(o) = customer.as_ref() else {
                    return Err(Error::State("the interaction is not linked to a customer"));
                };
                return self.send_otp(p, &i, st, o, channel).await;
            }
        };
        if let Some(o) = linked_now {
            // Identification singled out a customer whose verification is locked: refused like
            // a linked one, and the attempt does not count as a success.
            if customer_locked(&o.row, now()) {
                let mut audit = p
                    .actor()
                    .record("interaction.verify")
                    .target(customer_ref(&o.row.id))
                    .failure()
                    .detail("method", method)
                    .detail("refused", "customer_locked");
                audit.interaction = Some(i.id.clone());
                self.vault.store().append(vec![audit]).await?;
                return Err(Error::VerificationLocked(
                    "too many failed attempts on this customer in the last 24 hours",
                ));
            }
            customer = Some(o);
        }
        let t = now();
        let mut next = i.clone();
        next.version += 1;
        let mut customer_write = None;
        let mut audit = p
            .actor()
            .record("interaction.verify")
            .detail("method", method);
        audit.interaction = Some(i.id.clone());
        if let Some(o) = &customer {
            audit = audit.target(customer_ref(&o.row.id));
        }
        if outcome {
            let level = if two { 2 } else { 1 };
            st.level = level;
            st.steps.push(Step {
                method: method.into(),
                level,
                at: rfc3339(t),
                code_id: code_used.clone(),
            });
            if method == "otp" {
                st.otp = None;
            }
            if let Some(o) = &customer {
                next.customer_id = Some(o.row.id.clone());
            }
            audit = audit.detail("level", level);
            if let Some(c) = &code_used {
                audit = audit.detail("code_id", c.clone());
            }
        } else {
            st.failures += 1;
            if st.failures >= MAX_FAILURES_PER_INTERACTION {
                st.locked = true;
            }
            audit = audit
                .failure()
                .detail("failures", st.failures)
                .detail("locked", st.locked);
            if let Some(o) = &customer {
                let mut row = o.row.clone();
                match row.verify_window_start {
                    Some(start) if t - start < CUSTOMER_WINDOW => row.verify_failures += 1,
                    _ => {
                        row.verify_window_start = Some(t);
                        row.verify_failures = 1;
                    }
                }
                row.version += 1;
                customer_write = Some((row, Some(o.row.version)));
            }
        }
        next.state = serde_json::to_string(&st).map_err(|_| Error::Internal)?;
        let mut records = vec![audit];
        if !outcome && st.locked {
            let mut lock = p.actor().record("interaction.verification_locked");
            lock.interaction = Some(i.id.clone());
            if let Some(o) = &customer {
                lock = lock.target(customer_ref(&o.row.id));
            }
            records.push(lock);
        }
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                customers: customer_write.into_iter().collect(),
                interaction: Some((next, Some(i.version))),
                spend_code: code_used.map(|c| (c, t)),
                audit: records,
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            return Err(Error::State(
                "the code was used meanwhile or the interaction changed; try again",
            ));
        }
        if !outcome {
            return Err(Error::VerificationFailed(
                (MAX_FAILURES_PER_INTERACTION - st.failures).max(0),
            ));
        }
        Ok(VerifyResponse {
            level: st.level,
            attempts_left: (MAX_FAILURES_PER_INTERACTION - st.failures).max(0),
            sent_to: None,
            customer_id: next_customer(&customer, &i),
        })
    }

    /// The id of an unused, unexpired code of `purpose` that matches `code`.
    async fn match_code(
        &self,
        customer_id: &str,
        purpose: &str,
        interaction: Option<&str>,
        code: &str,
    ) -> Result<Option<String>, Error> {
        let hash = self
            .vault
            .index_key()
            .code_hash(purpose, &normalise_code(code));
        let live = self
            .vault
            .store()
            .live_codes(customer_id, purpose, now())
            .await?;
        Ok(live
            .into_iter()
            .filter(|c| interaction.is_none() || c.interaction_id.as_deref() == interaction)
            .find(|c| subtle::ConstantTimeEq::ct_eq(c.code_hash.as_bytes(), hash.as_bytes()).into())
            .map(|c| c.id))
    }

    async fn send_otp(
        &self,
        p: &Principal,
        i: &InteractionRow,
        mut st: CallState,
        o: &Opened,
        channel: Channel,
    ) -> Result<VerifyResponse, Error> {
        let (to, masked) = match channel {
            Channel::Sms => o
                .record
                .phones
                .first()
                .map(|x| (x.clone(), callguard_core::vault::mask::phone(x))),
            Channel::Email => o
                .record
                .emails
                .first()
                .map(|x| (x.clone(), callguard_core::vault::mask::email(x))),
        }
        .ok_or(Error::State(
            "the customer has no registered contact for that channel",
        ))?;
        let code = otp_code();
        let t = now();
        let code_id = uuid::Uuid::new_v4().to_string();
        let delivery = self
            .notifier
            .send_code(channel, &Secret::new(to), &code, (CODE_SECONDS / 60) as u32)
            .await
            .map_err(|e| match e {
                crate::notify::NotifyError::NotConfigured(_) => Error::NotConfigured(
                    "no SMS provider or SMTP server is configured for one-time codes",
                ),
                other => {
                    tracing::warn!(error = %other, "a one-time code could not be delivered");
                    Error::Unavailable(
                        "the code could not be delivered; try the other channel or the portal code",
                    )
                }
            })?;
        let channel_name = match channel {
            Channel::Sms => "sms",
            Channel::Email => "email",
        };
        st.otp = Some(PendingOtp {
            code_id: code_id.clone(),
            channel: channel_name.into(),
        });
        let mut next = i.clone();
        next.version += 1;
        next.state = serde_json::to_string(&st).map_err(|_| Error::Internal)?;
        let mut audit = p
            .actor()
            .record("interaction.otp_send")
            .target(customer_ref(&o.row.id))
            .detail("channel", channel_name)
            .detail("code_id", code_id.clone())
            .detail("provider_id", delivery.provider_id);
        audit.interaction = Some(i.id.clone());
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((next, Some(i.version))),
                new_code: Some(CodeRow {
                    id: code_id,
                    customer_id: o.row.id.clone(),
                    purpose: "otp".into(),
                    code_hash: self
                        .vault
                        .index_key()
                        .code_hash("otp", &normalise_code(code.expose())),
                    interaction_id: Some(i.id.clone()),
                    created_at: t,
                    expires_at: t + CODE_SECONDS,
                    used_at: None,
                }),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            return Err(Error::State("the interaction changed meanwhile; try again"));
        }
        Ok(VerifyResponse {
            level: st.level,
            attempts_left: (MAX_FAILURES_PER_INTERACTION - st.failures).max(0),
            sent_to: Some(masked),
            customer_id: None,
        })
    }

    /// Issues a portal verification code for a signed-in customer (single use, 10 minutes).
    /// A portal code asked for by the signed-in customer themself.
    pub async fn issue_portal_code_for(
        &self,
        p: &Principal,
    ) -> Result<(Secret<String>, UnixTime), Error> {
        let id = customer_of(p)?;
        self.issue_portal_code(&customer_actor(p, &id), &id).await
    }

    pub async fn issue_portal_code(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<(Secret<String>, UnixTime), Error> {
        self.vault.open(customer_id).await?;
        let code = portal_code();
        let t = now();
        let id = uuid::Uuid::new_v4().to_string();
        let audit = actor
            .record("portal.verification_code")
            .target(customer_ref(customer_id))
            .detail("code_id", id.clone());
        self.vault
            .store()
            .vault_commit(VaultWrite {
                new_code: Some(CodeRow {
                    id,
                    customer_id: customer_id.to_owned(),
                    purpose: "portal".into(),
                    code_hash: self
                        .vault
                        .index_key()
                        .code_hash("portal", &normalise_code(code.expose())),
                    interaction_id: None,
                    created_at: t,
                    expires_at: t + CODE_SECONDS,
                    used_at: None,
                }),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        Ok((code, t + CODE_SECONDS))
    }

    /// Carries out an operation for the caller: the interaction must be the agent's own, active,
    /// with this customer, at the level the policy asks; the change and its audit entry commit
    /// together, and only if the interaction did not change meanwhile.
    pub async fn operate(
        &self,
        p: &Principal,
        customer_id: &str,
        r: OperationRequest,
    ) -> Result<OperationResponse, Error> {
        let i = self.own(p, &r.interaction_id).await?;
        if i.status != "active" {
            return Err(Error::State("the interaction has ended"));
        }
        if i.customer_id.as_deref() != Some(customer_id) {
            return Err(Error::State("the interaction is not with this customer"));
        }
        let st = state_of(&i.state);
        let needed = self.policy.required(r.kind);
        let mut base = p
            .actor()
            .record("customer.operation")
            .target(customer_ref(customer_id))
            .detail("kind", r.kind.as_str())
            .detail("level", st.level)
            .detail("required_level", needed);
        base.interaction = Some(i.id.clone());
        if st.level < needed {
            self.vault
                .store()
                .append(vec![base.failure().detail("refused", "verification_level")])
                .await?;
            return Err(Error::VerificationRequired(needed));
        }
        let o = self.vault.open(customer_id).await?;
        let mut record = o.record.clone();
        let mut problems = Problems::default();
        let mut changed: Vec<&str> = Vec::new();
        let mut extra_customers = Vec::new();
        let mut extra_index = Vec::new();
        let bad_shape = |what: &str| {
            Error::BadRequest(format!(
                "`data` for {what} does not have the expected fields; see /api/v1/openapi.json"
            ))
        };
        match r.kind {
            OperationKind::ChangeContact => {
                let d: ChangeContact = serde_json::from_value(r.data.clone())
                    .map_err(|_| bad_shape("change_contact"))?;
                if d.phones.is_none() && d.emails.is_none() {
                    problems.add("data", "give `phones`, `emails` or both");
                }
                if let Some(list) = &d.phones {
                    record.phones = vault::check_phones(list, "data.phones", &mut problems);
                    changed.push("phones");
                }
                if let Some(list) = &d.emails {
                    record.emails = vault::check_emails(list, "data.emails", &mut problems);
                    changed.push("emails");
                }
            }
            OperationKind::ChangeAddress => {
                let d: ChangeAddress = serde_json::from_value(r.data.clone())
                    .map_err(|_| bad_shape("change_address"))?;
                vault::check_address(&d.address, "data.address", &mut problems);
                record.address = Some(d.address);
                changed.push("address");
            }
            OperationKind::TransferService => {
                let d: TransferService = serde_json::from_value(r.data.clone())
                    .map_err(|_| bad_shape("transfer_service"))?;
                let wanted = validate::service(&d.service).ok();
                let pos = record
                    .services
                    .iter()
                    .position(|s| validate::service(s).ok() == wanted && wanted.is_some());
                match pos {
                    None => problems.add("data.service", "the customer holds no such service"),
                    Some(pos) if d.to_customer_id == customer_id => {
                        let _ = pos;
                        problems.add(
                            "data.to_customer_id",
                            "a service cannot move to the customer who holds it",
                        );
                    }
                    Some(pos) => match self.vault.open(&d.to_customer_id).await {
                        Ok(target) => {
                            let service = record.services.remove(pos);
                            let mut trecord = target.record.clone();
                            trecord.services.push(service);
                            let trow = self.vault.resealed(&target, &trecord)?;
                            extra_index.push((
                                target.row.id.clone(),
                                trecord.index(self.vault.index_key()),
                            ));
                            extra_customers.push((trow, Some(target.row.version)));
                            changed.push("services");
                            base = base.detail("to", customer_ref(&target.row.id));
                        }
                        Err(Error::NotFound) => {
                            problems.add("data.to_customer_id", "no such customer")
                        }
                        Err(e) => return Err(e),
                    },
                }
            }
            OperationKind::DuplicateInvoice => {
                let d: DuplicateInvoice = serde_json::from_value(r.data.clone())
                    .map_err(|_| bad_shape("duplicate_invoice"))?;
                let ok = !d.invoice.is_empty()
                    && d.invoice.len() <= 40
                    && d.invoice
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
                if ok {
                    base = base.detail("invoice", d.invoice);
                } else {
                    problems.add(
                        "data.invoice",
                        "an invoice number: 1 to 40 letters, digits and / - _ .",
                    );
                }
            }
            OperationKind::AddNote => {
                let d: AddNote =
                    serde_json::from_value(r.data.clone()).map_err(|_| bad_shape("add_note"))?;
                let len = d.text.trim().chars().count();
                if len == 0 || len > 2000 {
                    problems.add("data.text", "must have 1 to 2000 characters");
                }
                record.notes.push(vault::Note {
                    at: rfc3339(now()),
                    by: p.actor().id,
                    interaction: Some(i.id.clone()),
                    text: d.text.trim().to_owned(),
                });
                changed.push("notes");
            }
        }
        problems.into_result()?;
        let steps: Vec<String> = st.steps.iter().map(|s| s.method.clone()).collect();
        let codes: Vec<String> = st.steps.iter().filter_map(|s| s.code_id.clone()).collect();
        let audit = base
            .detail("steps", steps)
            .detail("code_ids", codes)
            .detail("fields", changed.clone());
        let mut customers = Vec::new();
        let mut index = Vec::new();
        if !changed.is_empty() {
            let row = self.vault.resealed(&o, &record)?;
            index.push((o.row.id.clone(), record.index(self.vault.index_key())));
            customers.push((row, Some(o.row.version)));
        }
        customers.extend(extra_customers);
        index.extend(extra_index);
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                customers,
                index,
                interaction_guard: Some((i.id.clone(), i.version)),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            return Err(Error::State(
                "the customer or the interaction changed meanwhile; reload and try again",
            ));
        }
        let after = self.vault.open(customer_id).await?;
        Ok(OperationResponse {
            kind: r.kind,
            level: st.level,
            customer: masked_view(&after),
        })
    }
}

fn next_customer(customer: &Option<Opened>, i: &InteractionRow) -> Option<String> {
    match (customer, &i.customer_id) {
        (Some(o), None) => Some(o.row.id.clone()),
        _ => None,
    }
}

fn customer_locked(row: &callguard_store::CustomerRow, t: UnixTime) -> bool {
    row.verify_failures >= MAX_FAILURES_PER_CUSTOMER
        && row
            .verify_window_start
            .is_some_and(|s| t - s < CUSTOMER_WINDOW)
}

/// The serde name of a unit enum value.
fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
