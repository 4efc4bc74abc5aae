//! The call screen: the caller's masked record, the verification steps, one-field reveals for a
//! listed reason, the operations the level allows, and ending the call.
//!
//! A revealed value is rendered once, in the answer to the reveal itself: it is never put in a
//! cookie, the URL or any store, so reloading the page shows the masked record again.

use super::register::{given, list_of};
use super::*;
use crate::error::{Error, FieldProblem};
use crate::features::interactions::idempotency::IdempotencyKey;
use crate::features::interactions::model::{
    Answer, InteractionView, OperationKind, OperationRequest, VerifyRequest, VerifyResponse,
};
use crate::features::interactions::wrap_up::InteractionSummary;
use crate::features::vault::service::CustomerView;
use crate::notify::Channel;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, render, who, Checked, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use callguard_core::vault::model::Field;
use callguard_core::Secret;
use serde::Deserialize;
use serde_json::{json, Value};

/// One field of the screen-pop: masked, revealed in the answer to a reveal only.
pub(crate) struct ProfileRow {
    pub(crate) field: &'static str,
    pub(crate) label: &'static str,
    pub(crate) masked: String,
    pub(crate) revealed: String,
}

/// One verification step used.
pub(crate) struct StepRow {
    pub(crate) method: String,
    pub(crate) level: i64,
    pub(crate) at: String,
}

/// Whether an operation's form is open, and if not, why.
pub(crate) struct Gate {
    pub(crate) open: bool,
    pub(crate) why: String,
}

#[derive(Template)]
#[template(path = "desk/interaction.html")]
pub(crate) struct InteractionPage {
    pub(crate) csrf: String,
    pub(crate) who: Option<Who>,
    pub(crate) error: String,
    pub(crate) notice: String,
    pub(crate) field_problems: Vec<FieldProblem>,
    pub(crate) id: String,
    pub(crate) active: bool,
    pub(crate) channel: String,
    pub(crate) direction: String,
    pub(crate) started_at: String,
    pub(crate) ended_at: String,
    pub(crate) level: i64,
    pub(crate) steps: Vec<StepRow>,
    pub(crate) attempts_left: i64,
    pub(crate) locked: bool,
    pub(crate) otp_pending: String,
    pub(crate) linked: bool,
    pub(crate) customer_id: String,
    pub(crate) candidates: usize,
    pub(crate) profile: Vec<ProfileRow>,
    pub(crate) questions: Vec<String>,
    pub(crate) notes: usize,
    pub(crate) reasons: Vec<ReasonOption>,
    pub(crate) can_reveal: bool,
    pub(crate) contact: Gate,
    pub(crate) address: Gate,
    pub(crate) note: Gate,
    pub(crate) invoice: Gate,
    pub(crate) transfer: Gate,
    /// The caller as the bar names them: the masked name, or what is known without one.
    pub(crate) caller: String,
    pub(crate) disposition: String,
    pub(crate) dispositions: Vec<String>,
    pub(crate) timeline: Vec<InteractionSummary>,
    /// The caller's number on an open call linked to nobody, for "register this caller".
    pub(crate) caller_number: String,
    /// A fresh idempotency key for each operation form on this render: a form sent twice (a
    /// double click, a resend after a lost answer) is one operation.
    pub(crate) op_key: String,
}

impl InteractionPage {
    pub(crate) fn level_name(&self) -> &'static str {
        match self.level {
            0 => "not verified",
            1 => "identified",
            _ => "verified",
        }
    }

    pub(crate) fn level_meaning(&self) -> &'static str {
        match self.level {
            0 => "not verified: nothing can be revealed or changed yet",
            1 => "identified: single fields can be revealed for a reason, notes can be added",
            _ => "verified with a one-time code: every operation is open",
        }
    }
}

/// What a render adds to the interaction: a message, a revealed field.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) error: String,
    pub(crate) notice: String,
    pub(crate) field_problems: Vec<FieldProblem>,
    pub(crate) revealed: Option<(Field, String)>,
    pub(crate) status: Option<StatusCode>,
}

impl Extra {
    pub(crate) fn error(e: &Error) -> Self {
        Extra {
            error: e.to_string(),
            field_problems: match e {
                Error::InvalidFields(list) => list.clone(),
                _ => Vec::new(),
            },
            status: Some(crate::http::problem::status_of(e)),
            ..Extra::default()
        }
    }

    pub(crate) fn notice(text: impl Into<String>) -> Self {
        Extra {
            notice: text.into(),
            ..Extra::default()
        }
    }
}

pub(crate) fn profile_rows(c: &CustomerView) -> Vec<ProfileRow> {
    let row = |field: Field, label: &'static str, masked: String| ProfileRow {
        field: field.as_str(),
        label,
        masked,
        revealed: String::new(),
    };
    let or_none = |v: String| if v.is_empty() { "(none)".into() } else { v };
    vec![
        row(Field::FullName, "Name", c.full_name.clone()),
        row(Field::Phones, "Phones", or_none(c.phones.join(", "))),
        row(Field::Emails, "E-mails", or_none(c.emails.join(", "))),
        row(
            Field::NationalId,
            "National id",
            or_none(
                c.national_id
                    .as_ref()
                    .map(|n| n.masked.clone())
                    .unwrap_or_default(),
            ),
        ),
        row(
            Field::DateOfBirth,
            "Date of birth",
            or_none(c.date_of_birth.clone().unwrap_or_default()),
        ),
        row(
            Field::Address,
            "Address",
            or_none(c.address.clone().unwrap_or_default()),
        ),
        row(Field::Services, "Services", or_none(c.services.join(", "))),
        row(Field::Notes, "Notes", format!("{} note(s)", c.notes)),
    ]
}

/// A revealed value as a person reads it.
pub(crate) fn shown(field: Field, v: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match (field, v) {
        (_, Value::Null) => "(none)".into(),
        (_, Value::String(s)) => s.clone(),
        (Field::NationalId, v) => {
            format!("{} {}", text(&v["kind"]).to_uppercase(), text(&v["value"]))
        }
        (Field::Address, v) => {
            let mut parts = vec![text(&v["line1"])];
            if let Some(l2) = v["line2"].as_str().filter(|l| !l.is_empty()) {
                parts.push(l2.to_owned());
            }
            parts.push(format!("{} {}", text(&v["postal_code"]), text(&v["city"])));
            parts.push(text(&v["country"]));
            parts.join(", ")
        }
        (Field::Notes, Value::Array(list)) if list.is_empty() => "(no notes)".into(),
        (Field::Notes, Value::Array(list)) => list
            .iter()
            .map(|n| format!("{} — {}", text(&n["at"]), text(&n["text"])))
            .collect::<Vec<_>>()
            .join("\n"),
        (_, Value::Array(list)) if list.is_empty() => "(none)".into(),
        (_, Value::Array(list)) => list
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        (_, other) => other.to_string(),
    }
}

pub(crate) fn method_label(m: &str) -> String {
    match m {
        "national_id" => "national id".into(),
        "service" => "service or account name".into(),
        "security_answers" => "security questions".into(),
        "portal_code" => "code from the customer's portal".into(),
        "otp" => "one-time code sent to the customer".into(),
        other => other.into(),
    }
}

/// How many earlier contacts the call screen lists.
const TIMELINE: u64 = 8;

pub(crate) async fn interaction_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    v: &InteractionView,
    extra: Extra,
) -> Response {
    // The timeline is an aid: a failure to read it leaves it empty rather than losing the call.
    let timeline = s
        .interactions
        .timeline(p, &v.id, TIMELINE)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the customer's timeline could not be read");
            Vec::new()
        });
    let caller_number = s
        .interactions
        .caller_number(p, &v.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    interaction_screen(s, headers, p, v, extra, (timeline, caller_number))
}

fn interaction_screen(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    v: &InteractionView,
    extra: Extra,
    (timeline, caller_number): (Vec<InteractionSummary>, String),
) -> Response {
    let c = csrf_of(headers);
    let active = v.status == "active";
    let level = v.verification_level;
    let linked = v.customer.is_some();
    let mut profile = v.customer.as_ref().map(profile_rows).unwrap_or_default();
    if let Some((field, value)) = extra.revealed {
        if let Some(row) = profile.iter_mut().find(|r| r.field == field.as_str()) {
            row.revealed = value;
        }
    }
    let open = |needed: i64| {
        let why = if !active {
            "closed: the interaction has ended".to_owned()
        } else if !linked {
            "needs the caller identified (no customer linked)".to_owned()
        } else if level < needed {
            format!("needs level {needed}")
        } else {
            String::new()
        };
        Gate {
            open: why.is_empty(),
            why,
        }
    };
    let policy = s.interactions.policy();
    let page = InteractionPage {
        csrf: c.token,
        who: who(p),
        error: extra.error,
        notice: extra.notice,
        field_problems: extra.field_problems,
        id: v.id.clone(),
        active,
        channel: v.channel.clone(),
        direction: v.direction.clone(),
        started_at: v.started_at.clone(),
        ended_at: v.ended_at.clone().unwrap_or_default(),
        level,
        steps: v
            .steps
            .iter()
            .map(|st| StepRow {
                method: method_label(&st.method),
                level: st.level,
                at: st.at.clone(),
            })
            .collect(),
        attempts_left: v.attempts_left,
        locked: v.locked,
        otp_pending: v.otp_pending.clone().unwrap_or_default(),
        linked,
        customer_id: v.customer_id.clone().unwrap_or_default(),
        candidates: v.candidates,
        questions: v
            .customer
            .as_ref()
            .map(|c| c.security_questions.clone())
            .unwrap_or_default(),
        notes: v.customer.as_ref().map_or(0, |c| c.notes),
        profile,
        reasons: reason_options(),
        can_reveal: active && linked && level >= 1,
        contact: open(policy.required(OperationKind::ChangeContact)),
        address: open(policy.required(OperationKind::ChangeAddress)),
        note: open(policy.required(OperationKind::AddNote)),
        invoice: open(policy.required(OperationKind::DuplicateInvoice)),
        transfer: open(policy.required(OperationKind::TransferService)),
        caller: caller_name(v),
        disposition: v.disposition.clone().unwrap_or_default(),
        dispositions: s.interactions.dispositions().to_vec(),
        timeline,
        caller_number,
        op_key: format!("desk-{:032x}", rand::random::<u128>()),
    };
    render(
        extra.status.unwrap_or(StatusCode::OK),
        page,
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// The caller as the bar names them, without revealing anything.
pub(crate) fn caller_name(v: &InteractionView) -> String {
    match (&v.customer, v.candidates) {
        (Some(c), _) => c.full_name.clone(),
        (None, 0) => "Unknown caller".into(),
        (None, n) => format!("Caller ({n} customers share the number)"),
    }
}

/// Renders the interaction after an action; when even reading it fails, a plain error page.
pub(crate) async fn show(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    id: &str,
    extra: Extra,
) -> Response {
    match s.interactions.get(p, id).await {
        Ok(v) => interaction_view(s, headers, p, &v, extra).await,
        Err(e) => crate::web::error_page(headers, &e, who(p)),
    }
}

pub(crate) async fn interaction_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
) -> Response {
    show(&s, &headers, &p, &id, Extra::default()).await
}

/// One verification attempt from the panel: `method` says which form was sent.
#[derive(Deserialize)]
pub(crate) struct VerifyForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) method: String,
    #[serde(default)]
    pub(crate) value: Secret<String>,
    #[serde(default)]
    pub(crate) code: Secret<String>,
    #[serde(default)]
    pub(crate) channel: String,
    #[serde(default)]
    pub(crate) question_0: String,
    #[serde(default)]
    pub(crate) answer_0: Secret<String>,
    #[serde(default)]
    pub(crate) question_1: String,
    #[serde(default)]
    pub(crate) answer_1: Secret<String>,
    #[serde(default)]
    pub(crate) question_2: String,
    #[serde(default)]
    pub(crate) answer_2: Secret<String>,
    #[serde(default)]
    pub(crate) question_3: String,
    #[serde(default)]
    pub(crate) answer_3: Secret<String>,
    #[serde(default)]
    pub(crate) question_4: String,
    #[serde(default)]
    pub(crate) answer_4: Secret<String>,
}

impl VerifyForm {
    pub(crate) fn request(self) -> Result<VerifyRequest, Error> {
        Ok(match self.method.as_str() {
            "national_id" => VerifyRequest::NationalId { value: self.value },
            "service" => VerifyRequest::Service { value: self.value },
            "security_answers" => VerifyRequest::SecurityAnswers {
                answers: [
                    (self.question_0, self.answer_0),
                    (self.question_1, self.answer_1),
                    (self.question_2, self.answer_2),
                    (self.question_3, self.answer_3),
                    (self.question_4, self.answer_4),
                ]
                .into_iter()
                // A question left unanswered is not asked.
                .filter(|(q, a)| !q.trim().is_empty() && !a.expose().trim().is_empty())
                .map(|(question, answer)| Answer { question, answer })
                .collect(),
            },
            "portal_code" => VerifyRequest::PortalCode { code: self.code },
            "otp_send" => VerifyRequest::OtpSend {
                channel: match self.channel.as_str() {
                    "sms" => Channel::Sms,
                    "email" => Channel::Email,
                    _ => {
                        return Err(Error::Validation(
                            "choose where to send the code: SMS or e-mail".into(),
                        ))
                    }
                },
            },
            "otp" => VerifyRequest::Otp { code: self.code },
            _ => return Err(Error::BadRequest("unknown verification method".into())),
        })
    }
}

pub(crate) fn verified_notice(method: &str, r: &VerifyResponse) -> String {
    if let Some(to) = &r.sent_to {
        return format!(
            "A one-time code was sent to {to}. Ask the caller to read it out, then enter it below."
        );
    }
    match r.level {
        1 => format!(
            "Level 1 reached: the caller is identified by {}. You may reveal single fields \
             and add notes; changes need level 2.",
            method_label(method)
        ),
        2 => format!(
            "Level 2 reached with the {}: every operation is open now.",
            method_label(method)
        ),
        l => format!("Verification level {l}."),
    }
}

pub(crate) async fn verify(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<VerifyForm>,
) -> Response {
    let method = f.method.clone();
    let extra = match f.request() {
        Err(e) => Extra::error(&e),
        Ok(req) => match s.interactions.verify(&p, &id, req).await {
            Ok(r) => Extra::notice(verified_notice(&method, &r)),
            Err(e) => Extra::error(&e),
        },
    };
    show(&s, &headers, &p, &id, extra).await
}

#[derive(Deserialize)]
pub(crate) struct RevealForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) field: String,
    #[serde(default)]
    pub(crate) reason: String,
}

pub(crate) async fn reveal(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<RevealForm>,
) -> Response {
    let (Some(field), Some(reason)) = (Field::parse(&f.field), parse_reason(&f.reason)) else {
        let e = Error::Validation("choose a field and a reason from the lists".into());
        return show(&s, &headers, &p, &id, Extra::error(&e)).await;
    };
    let interaction = match s.interactions.get(&p, &id).await {
        Ok(v) => v,
        Err(e) => return crate::web::error_page(&headers, &e, who(&p)),
    };
    let Some(customer) = interaction.customer_id.clone() else {
        let e =
            Error::State("the interaction is not linked to a customer: identify the caller first");
        return interaction_view(&s, &headers, &p, &interaction, Extra::error(&e)).await;
    };
    let extra = match s
        .interactions
        .reveal(&p, &customer, field, reason, &id)
        .await
    {
        Ok(value) => Extra {
            notice: format!(
                "Revealed for this view only (recorded with your reason): {}.",
                field.as_str().replace('_', " ")
            ),
            revealed: Some((field, shown(field, &value))),
            ..Extra::default()
        },
        Err(e) => Extra::error(&e),
    };
    show(&s, &headers, &p, &id, extra).await
}

#[derive(Deserialize)]
pub(crate) struct OperationForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) kind: String,
    /// The render's idempotency key (`op_key`), if the form carried one.
    #[serde(default)]
    pub(crate) op_key: String,
    #[serde(default)]
    pub(crate) phones: String,
    #[serde(default)]
    pub(crate) emails: String,
    #[serde(default)]
    pub(crate) line1: String,
    #[serde(default)]
    pub(crate) line2: String,
    #[serde(default)]
    pub(crate) postal_code: String,
    #[serde(default)]
    pub(crate) city: String,
    #[serde(default)]
    pub(crate) country: String,
    #[serde(default)]
    pub(crate) text: String,
    #[serde(default)]
    pub(crate) invoice: String,
    #[serde(default)]
    pub(crate) service: String,
    #[serde(default)]
    pub(crate) to_customer_id: String,
}

impl OperationForm {
    pub(crate) fn data(&self, kind: OperationKind) -> Value {
        match kind {
            OperationKind::ChangeContact => {
                let mut d = serde_json::Map::new();
                if given(&self.phones).is_some() {
                    d.insert("phones".into(), json!(list_of(&self.phones)));
                }
                if given(&self.emails).is_some() {
                    d.insert("emails".into(), json!(list_of(&self.emails)));
                }
                Value::Object(d)
            }
            OperationKind::ChangeAddress => {
                let mut a = json!({
                    "line1": self.line1.trim(),
                    "postal_code": self.postal_code.trim(),
                    "city": self.city.trim(),
                    "country": self.country.trim().to_uppercase(),
                });
                if let Some(l2) = given(&self.line2) {
                    a["line2"] = json!(l2);
                }
                json!({ "address": a })
            }
            OperationKind::TransferService => json!({
                "service": self.service.trim(),
                "to_customer_id": self.to_customer_id.trim(),
            }),
            OperationKind::DuplicateInvoice => json!({ "invoice": self.invoice.trim() }),
            OperationKind::AddNote => json!({ "text": self.text }),
        }
    }
}

pub(crate) fn done_notice(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::ChangeContact => "Contact details changed.",
        OperationKind::ChangeAddress => "Address changed.",
        OperationKind::TransferService => "Service transferred.",
        OperationKind::DuplicateInvoice => "A duplicate invoice was requested.",
        OperationKind::AddNote => "Note added.",
    }
}

pub(crate) async fn operate(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<OperationForm>,
) -> Response {
    let Some(kind) = OperationKind::parse(&f.kind) else {
        let e = Error::Validation("unknown operation".into());
        return show(&s, &headers, &p, &id, Extra::error(&e)).await;
    };
    let interaction = match s.interactions.get(&p, &id).await {
        Ok(v) => v,
        Err(e) => return crate::web::error_page(&headers, &e, who(&p)),
    };
    let Some(customer) = interaction.customer_id.clone() else {
        let e =
            Error::State("the interaction is not linked to a customer: identify the caller first");
        return interaction_view(&s, &headers, &p, &interaction, Extra::error(&e)).await;
    };
    let r = OperationRequest {
        interaction_id: id.clone(),
        kind,
        data: f.data(kind),
    };
    let key = if f.op_key.is_empty() {
        None
    } else {
        // One key per form of the render: the forms of one page are different operations.
        match IdempotencyKey::parse(format!("{}-{}", f.op_key, kind.as_str()).as_bytes()) {
            Ok(k) => Some(k),
            Err(e) => return show(&s, &headers, &p, &id, Extra::error(&e)).await,
        }
    };
    let extra = match s
        .interactions
        .operate_keyed(&p, &customer, r, key.as_ref())
        .await
    {
        Ok((_, false)) => Extra::notice(format!(
            "{} The record below shows the change, masked.",
            done_notice(kind)
        )),
        Ok((_, true)) => Extra::notice(format!(
            "{} (This form was already sent: the change was made once.)",
            done_notice(kind)
        )),
        Err(e) => Extra::error(&e),
    };
    show(&s, &headers, &p, &id, extra).await
}

pub(crate) async fn end(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<crate::web::CsrfOnly>,
) -> Response {
    match s.interactions.end(&p, &id).await {
        Ok(v) => interaction_view(
            &s,
            &headers,
            &p,
            &v,
            Extra::notice(
                "The call has ended: reveals and operations are closed. Choose its outcome to wrap up.",
            ),
        )
        .await,
        Err(e) => show(&s, &headers, &p, &id, Extra::error(&e)).await,
    }
}

crate::web::csrf_forms!(OperationForm, RevealForm, VerifyForm);
