//! A customer's record as the vault holds it: the fields sealed one by one, the blind index
//! entries they give, the masked view everyone but the customer sees, and the listed reasons a
//! field may be revealed for.

use callguard_core::vault::crypto::{DataKey, IndexKey, IndexKind};
use callguard_core::vault::model::{Address, Field, NationalId, NationalIdKind};
use callguard_core::vault::{mask, validate};
use callguard_core::{rfc3339, Secret};
use callguard_store::{CustomerRow, IndexEntry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A note on a customer, written by an agent during an interaction.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    pub at: String,
    /// `user:<id>` of the agent.
    pub by: String,
    pub interaction: Option<String>,
    pub text: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredAnswer {
    pub(crate) question: String,
    /// Argon2id PHC string of the normalised answer.
    pub(crate) answer_hash: String,
}

/// A customer's record in the clear: only ever in memory, for one request.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub full_name: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub national_id: Option<NationalId>,
    pub date_of_birth: Option<String>,
    pub address: Option<Address>,
    pub services: Vec<String>,
    pub notes: Vec<Note>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Record(<redacted>)")
    }
}

impl Record {
    /// One field as JSON (what a reveal returns and what gets sealed).
    #[must_use]
    pub fn field(&self, field: Field) -> serde_json::Value {
        use serde_json::{json, Value};
        match field {
            Field::FullName => json!(self.full_name),
            Field::Phones => json!(self.phones),
            Field::Emails => json!(self.emails),
            Field::NationalId => self
                .national_id
                .as_ref()
                .map_or(Value::Null, |n| json!({"kind": n.kind, "value": n.value})),
            Field::DateOfBirth => json!(self.date_of_birth),
            Field::Address => self
                .address
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok())
                .unwrap_or(Value::Null),
            Field::Services => json!(self.services),
            Field::Notes => serde_json::to_value(&self.notes).unwrap_or(Value::Null),
        }
    }

    pub(crate) fn set(
        &mut self,
        field: Field,
        v: serde_json::Value,
    ) -> Result<(), serde_json::Error> {
        match field {
            Field::FullName => self.full_name = serde_json::from_value(v)?,
            Field::Phones => self.phones = serde_json::from_value(v)?,
            Field::Emails => self.emails = serde_json::from_value(v)?,
            Field::NationalId => self.national_id = serde_json::from_value(v)?,
            Field::DateOfBirth => self.date_of_birth = serde_json::from_value(v)?,
            Field::Address => self.address = serde_json::from_value(v)?,
            Field::Services => self.services = serde_json::from_value(v)?,
            Field::Notes => self.notes = serde_json::from_value(v)?,
        }
        Ok(())
    }

    /// The blind index entries of this record.
    #[must_use]
    pub fn index(&self, key: &IndexKey) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        let mut add = |kind: IndexKind, value: &str| {
            out.push(IndexEntry {
                kind: kind.as_str().to_owned(),
                hash: key.blind(kind, value),
            });
        };
        for p in &self.phones {
            add(IndexKind::Phone, p);
        }
        for e in &self.emails {
            add(IndexKind::Email, e);
        }
        if let Some(n) = &self.national_id {
            add(
                IndexKind::NationalId,
                &national_index_value(n.kind, &n.value),
            );
        }
        for s in &self.services {
            if let Ok(v) = validate::service(s) {
                add(IndexKind::Service, &v);
            }
        }
        out
    }
}

/// What the national id blind index hashes: kind and normalised value.
pub(crate) fn national_index_value(kind: NationalIdKind, normalised: &str) -> String {
    format!("{}:{normalised}", kind.as_str())
}

/// A customer opened for one request: the row it came from, its data key and its record.
pub struct Opened {
    pub row: CustomerRow,
    pub key: DataKey,
    pub record: Record,
    pub(crate) answers: Vec<StoredAnswer>,
}

impl Opened {
    /// The security questions (never their answers).
    #[must_use]
    pub fn questions(&self) -> Vec<String> {
        self.answers.iter().map(|a| a.question.clone()).collect()
    }
}

/// A knowledge question and its answer, as registered.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityQuestionInput {
    pub question: String,
    /// Stored only as an Argon2id hash of its normalised form (case, spaces and punctuation
    /// do not matter).
    pub answer: Secret<String>,
}

/// `POST /api/v1/customers`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub full_name: String,
    /// E.164 numbers, e.g. `+48600100200`.
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    pub national_id: Option<NationalId>,
    /// `YYYY-MM-DD`; must match a PESEL's embedded date when both are given.
    pub date_of_birth: Option<String>,
    pub address: Option<Address>,
    /// Service or account names (a hosting login, a contract number), searchable exactly.
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub security_questions: Vec<SecurityQuestionInput>,
}

impl std::fmt::Debug for NewCustomer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewCustomer(<redacted>)")
    }
}

/// A masked national identifier.
#[derive(Serialize, JsonSchema)]
pub struct MaskedNationalId {
    pub kind: NationalIdKind,
    pub masked: String,
}

/// A customer as staff see it: every personal field masked.
#[derive(Serialize, JsonSchema)]
pub struct CustomerView {
    pub id: String,
    pub full_name: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub national_id: Option<MaskedNationalId>,
    pub date_of_birth: Option<String>,
    pub address: Option<String>,
    pub services: Vec<String>,
    /// How many notes there are (reveal `notes` to read them).
    pub notes: usize,
    /// The knowledge questions the caller can be asked (never the answers).
    pub security_questions: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A masked view of a record.
#[must_use]
pub fn masked_view(o: &Opened) -> CustomerView {
    let r = &o.record;
    CustomerView {
        id: o.row.id.clone(),
        full_name: mask::name(&r.full_name),
        phones: r.phones.iter().map(|p| mask::phone(p)).collect(),
        emails: r.emails.iter().map(|e| mask::email(e)).collect(),
        national_id: r.national_id.as_ref().map(|n| MaskedNationalId {
            kind: n.kind,
            masked: mask::national_id(n.kind, &n.value),
        }),
        date_of_birth: r
            .date_of_birth
            .as_deref()
            .and_then(|d| validate::date_of_birth(d).ok())
            .map(mask::date_of_birth),
        address: r.address.as_ref().map(mask::address),
        services: r.services.iter().map(|s| mask::service(s)).collect(),
        notes: r.notes.len(),
        security_questions: o.questions(),
        created_at: rfc3339(o.row.created_at),
        updated_at: rfc3339(o.row.updated_at),
    }
}

/// Why a field may be revealed. A fixed list, so that the tamper-evident log never holds free
/// text an agent typed (which could itself be personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevealReason {
    /// The caller asked to hear or confirm the value.
    CallerRequest,
    /// Needed to confirm a detail the caller gave.
    IdentityCheck,
    /// Needed to carry out an operation the caller asked for.
    Operation,
    /// Delivery, billing or service problem that needs the value.
    ServiceIssue,
    /// Investigating suspected fraud on this account.
    FraudInvestigation,
}

impl RevealReason {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RevealReason::CallerRequest => "caller_request",
            RevealReason::IdentityCheck => "identity_check",
            RevealReason::Operation => "operation",
            RevealReason::ServiceIssue => "service_issue",
            RevealReason::FraudInvestigation => "fraud_investigation",
        }
    }
}
