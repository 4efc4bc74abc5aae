//! The agent desktop (SPEC C10, C3, C4): start an interaction and see the caller's record pop up
//! masked, verify the caller step by step, reveal one field at a time for a listed reason, and
//! carry out what the verification level allows. Pages only: every decision is taken by
//! [`crate::features::interactions::service::Interactions`] and [`crate::features::vault::service::Vault`], exactly as for the JSON API.
//!
//! A revealed value is rendered once, in the answer to the reveal itself: it is never put in a
//! cookie, the URL or any store, so reloading the page shows the masked record again.

use crate::error::{Error, FieldProblem};
use crate::features::interactions::model::{
    Answer, Direction, InteractionChannel, InteractionView, NewInteraction, OperationKind,
    OperationRequest, VerifyRequest, VerifyResponse,
};
use crate::features::vault::service::{
    CustomerView, NewCustomer, RevealReason, SecurityQuestionInput,
};
use crate::http::access::Access;
use crate::notify::Channel;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, render, who, Checked, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use callguard_core::vault::model::{Address, Field, NationalId, NationalIdKind};
use callguard_core::{Permission, Secret};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The desk's routes, agents only (every permission here is an agent's alone).
pub fn routes() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/desk", Signed(InteractionsHandle), get(desk_page)),
        ("/desk/search", Signed(InteractionsHandle), post(search)),
        ("/desk/customers", Signed(CustomersCreate), post(register)),
        (
            "/desk/interactions",
            Signed(InteractionsHandle),
            post(start),
        ),
        (
            "/desk/interactions/{id}",
            Signed(InteractionsHandle),
            get(interaction_page),
        ),
        (
            "/desk/interactions/{id}/verify",
            Signed(InteractionsHandle),
            post(verify),
        ),
        (
            "/desk/interactions/{id}/reveal",
            Signed(CustomersReveal),
            post(reveal),
        ),
        (
            "/desk/interactions/{id}/operations",
            Signed(CustomersOperate),
            post(operate),
        ),
        (
            "/desk/interactions/{id}/end",
            Signed(InteractionsHandle),
            post(end),
        ),
    ]
}

/// The reveal reasons as the select offers them.
const REASONS: [(RevealReason, &str); 5] = [
    (
        RevealReason::CallerRequest,
        "the caller asked to hear or confirm it",
    ),
    (
        RevealReason::IdentityCheck,
        "to confirm a detail the caller gave",
    ),
    (RevealReason::Operation, "needed for an operation asked for"),
    (
        RevealReason::ServiceIssue,
        "delivery, billing or service problem",
    ),
    (
        RevealReason::FraudInvestigation,
        "investigating suspected fraud",
    ),
];

fn parse_reason(s: &str) -> Option<RevealReason> {
    REASONS.iter().map(|(r, _)| *r).find(|r| r.as_str() == s)
}

/// One reason in a select.
pub struct ReasonOption {
    value: &'static str,
    label: &'static str,
}

fn reason_options() -> Vec<ReasonOption> {
    REASONS
        .iter()
        .map(|(r, label)| ReasonOption {
            value: r.as_str(),
            label,
        })
        .collect()
}

/// Field problems keyed by the form input they belong to.
fn problems_by_input(list: &[FieldProblem]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for p in list {
        let input = input_of(&p.field);
        let entry = out.entry(input).or_default();
        if !entry.is_empty() {
            entry.push_str("; ");
        }
        entry.push_str(&p.detail);
    }
    out
}

/// The registration form's inputs that show a problem next to them.
const REGISTER_INPUTS: [&str; 12] = [
    "full_name",
    "date_of_birth",
    "national_id_kind",
    "national_id",
    "phone",
    "email",
    "address",
    "service",
    "question_0",
    "answer_0",
    "question_1",
    "answer_1",
];

/// The registration form input an API field path belongs to: `phones[0]` → `phone`,
/// `national_id.value` → `national_id`, `security_questions[1].answer` → `answer_1`.
fn input_of(field: &str) -> String {
    let base = field.split(['[', '.']).next().unwrap_or(field);
    let index = field
        .split_once('[')
        .and_then(|(_, rest)| rest.split(']').next())
        .and_then(|n| n.parse::<usize>().ok());
    match base {
        "phones" => "phone".into(),
        "emails" => "email".into(),
        "services" => "service".into(),
        "security_questions" => match (index, field.ends_with(".answer")) {
            (Some(i), true) => format!("answer_{i}"),
            (Some(i), false) => format!("question_{i}"),
            (None, _) => "question_0".into(),
        },
        other => other.into(),
    }
}

/// A value given in a text box, or `None` when left empty.
fn given(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A list typed into one box: separated by commas, semicolons or new lines.
fn list_of(v: &str) -> Vec<String> {
    v.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---- the desk: start, search, register ------------------------------------------------------

/// What the registration form held, to show it again with its problems.
#[derive(Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    national_id_kind: String,
    #[serde(default)]
    national_id: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    question_0: String,
    #[serde(default)]
    answer_0: Secret<String>,
    #[serde(default)]
    question_1: String,
    #[serde(default)]
    answer_1: Secret<String>,
}

/// One customer found by phone, masked.
pub struct FoundRow {
    id: String,
    full_name: String,
    phones: String,
    emails: String,
    national_id: String,
    services: String,
}

#[derive(Template)]
#[template(path = "desk.html")]
struct DeskPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    /// The number searched, to start a call with a found customer.
    searched: String,
    searched_done: bool,
    found: Vec<FoundRow>,
    /// The registration form as sent (answers are never sent back).
    form: RegisterForm,
    problems: BTreeMap<String, String>,
    created_id: String,
    start_problems: BTreeMap<String, String>,
}

impl DeskPage {
    /// The problem of one input, or an empty string.
    fn problem(&self, input: &str) -> String {
        self.problems.get(input).cloned().unwrap_or_default()
    }

    fn start_problem(&self, input: &str) -> String {
        self.start_problems.get(input).cloned().unwrap_or_default()
    }

    fn kind_is(&self, kind: &str) -> bool {
        self.form.national_id_kind == kind
            || (self.form.national_id_kind.is_empty() && kind == "pesel")
    }
}

impl DeskPage {
    fn new(headers: &HeaderMap, p: &Principal) -> (Self, Vec<String>) {
        let c = csrf_of(headers);
        (
            Self {
                csrf: c.token,
                who: who(p),
                error: String::new(),
                notice: String::new(),
                searched: String::new(),
                searched_done: false,
                found: Vec::new(),
                form: RegisterForm::default(),
                problems: BTreeMap::new(),
                created_id: String::new(),
                start_problems: BTreeMap::new(),
            },
            c.new_cookie.into_iter().collect(),
        )
    }
}

async fn desk_page(headers: HeaderMap, p: Principal) -> Response {
    let (page, cookies) = DeskPage::new(&headers, &p);
    render(StatusCode::OK, page, &cookies)
}

#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    phone: String,
}

async fn search(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<SearchForm>,
) -> Response {
    let (mut page, cookies) = DeskPage::new(&headers, &p);
    page.searched = f.phone.trim().to_owned();
    match s.vault.search_phone(&p, &f.phone, None).await {
        Ok(found) => {
            page.searched_done = true;
            page.found = found.iter().map(found_row).collect();
            render(StatusCode::OK, page, &cookies)
        }
        Err(e) => {
            page.error = readable(&e);
            render(crate::http::problem::status_of(&e), page, &cookies)
        }
    }
}

fn found_row(v: &CustomerView) -> FoundRow {
    FoundRow {
        id: v.id.clone(),
        full_name: v.full_name.clone(),
        phones: v.phones.join(", "),
        emails: v.emails.join(", "),
        national_id: v
            .national_id
            .as_ref()
            .map(|n| n.masked.clone())
            .unwrap_or_default(),
        services: v.services.join(", "),
    }
}

/// An error as a sentence, with every invalid field named.
fn readable(e: &Error) -> String {
    match e {
        Error::InvalidFields(list) => {
            let each: Vec<String> = list
                .iter()
                .map(|f| format!("{}: {}", f.field, f.detail))
                .collect();
            format!("Some fields are not valid: {}.", each.join("; "))
        }
        other => other.to_string(),
    }
}

async fn register(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<RegisterForm>,
) -> Response {
    let (mut page, cookies) = DeskPage::new(&headers, &p);
    let mut bad_kind = false;
    let national_id = match given(&f.national_id) {
        None => None,
        Some(value) => {
            let kind = match f.national_id_kind.as_str() {
                "pesel" | "" => Some(NationalIdKind::Pesel),
                "nip" => Some(NationalIdKind::Nip),
                "regon" => Some(NationalIdKind::Regon),
                _ => None,
            };
            match kind {
                Some(kind) => Some(NationalId { kind, value }),
                None => {
                    bad_kind = true;
                    None
                }
            }
        }
    };
    let any_address = [&f.line1, &f.line2, &f.postal_code, &f.city, &f.country]
        .iter()
        .any(|v| !v.trim().is_empty());
    let address = any_address.then(|| Address {
        line1: f.line1.trim().to_owned(),
        line2: given(&f.line2),
        postal_code: f.postal_code.trim().to_owned(),
        city: f.city.trim().to_owned(),
        country: f.country.trim().to_uppercase(),
    });
    let mut questions = Vec::new();
    for (q, a) in [(&f.question_0, &f.answer_0), (&f.question_1, &f.answer_1)] {
        if !q.trim().is_empty() || !a.expose().trim().is_empty() {
            questions.push(SecurityQuestionInput {
                question: q.clone(),
                answer: a.clone(),
            });
        }
    }
    let new = NewCustomer {
        full_name: f.full_name.clone(),
        phones: given(&f.phone).into_iter().collect(),
        emails: given(&f.email).into_iter().collect(),
        national_id,
        date_of_birth: given(&f.date_of_birth),
        address,
        services: given(&f.service).into_iter().collect(),
        security_questions: questions,
    };
    let result = if bad_kind {
        Err(Error::InvalidFields(vec![FieldProblem {
            field: "national_id_kind".into(),
            detail: "choose PESEL, NIP or REGON".into(),
        }]))
    } else {
        s.vault.create(&p.actor(), new).await
    };
    match result {
        Ok(id) => {
            page.notice = format!(
                "Customer {id} is registered. Give the customer this number: it is also their \
                 portal sign-in name."
            );
            page.created_id = id;
            render(StatusCode::CREATED, page, &cookies)
        }
        Err(e) => {
            if let Error::InvalidFields(list) = &e {
                page.problems = problems_by_input(list);
                page.error = format!(
                    "The customer was not registered: {} field(s) need correcting (marked below).",
                    list.len()
                );
                // A problem without an input of its own is named in the message itself.
                let elsewhere: Vec<String> = page
                    .problems
                    .iter()
                    .filter(|(input, _)| !REGISTER_INPUTS.contains(&input.as_str()))
                    .map(|(input, detail)| format!("{input}: {detail}"))
                    .collect();
                if !elsewhere.is_empty() {
                    page.error = format!("{} Also: {}.", page.error, elsewhere.join("; "));
                }
            } else {
                page.error = readable(&e);
            }
            // Everything typed comes back, except the security answers.
            page.form = RegisterForm {
                answer_0: Secret::default(),
                answer_1: Secret::default(),
                ..f
            };
            render(crate::http::problem::status_of(&e), page, &cookies)
        }
    }
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    customer_id: String,
}

async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<StartForm>,
) -> Response {
    let (mut page, cookies) = DeskPage::new(&headers, &p);
    let channel = match f.channel.as_str() {
        "phone" | "" => Some(InteractionChannel::Phone),
        "chat" => Some(InteractionChannel::Chat),
        "email" => Some(InteractionChannel::Email),
        _ => None,
    };
    let direction = match f.direction.as_str() {
        "inbound" | "" => Some(Direction::Inbound),
        "outbound" => Some(Direction::Outbound),
        _ => None,
    };
    let (Some(channel), Some(direction)) = (channel, direction) else {
        page.error = "Choose a channel (phone, chat, e-mail) and a direction.".into();
        return render(StatusCode::UNPROCESSABLE_ENTITY, page, &cookies);
    };
    let r = NewInteraction {
        channel,
        direction,
        from: f.from.clone(),
        customer_id: given(&f.customer_id),
    };
    match s.interactions.start(&p, r).await {
        Ok(v) => Redirect::to(&format!("/desk/interactions/{}", v.id)).into_response(),
        Err(e) => {
            if let Error::InvalidFields(list) = &e {
                page.start_problems = problems_by_input(list);
            }
            page.error = match &e {
                Error::NotFound => "No customer has that id.".into(),
                other => readable(other),
            };
            page.searched = f.from;
            render(crate::http::problem::status_of(&e), page, &cookies)
        }
    }
}

// ---- one interaction ------------------------------------------------------------------------

/// One field of the screen-pop: masked, revealed in the answer to a reveal only.
pub struct ProfileRow {
    field: &'static str,
    label: &'static str,
    masked: String,
    revealed: String,
}

/// One verification step used.
pub struct StepRow {
    method: String,
    level: i64,
    at: String,
}

/// Whether an operation's form is open, and if not, why.
pub struct Gate {
    open: bool,
    why: String,
}

#[derive(Template)]
#[template(path = "interaction.html")]
struct InteractionPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    field_problems: Vec<FieldProblem>,
    id: String,
    active: bool,
    channel: String,
    direction: String,
    started_at: String,
    ended_at: String,
    level: i64,
    steps: Vec<StepRow>,
    attempts_left: i64,
    locked: bool,
    otp_pending: String,
    linked: bool,
    customer_id: String,
    candidates: usize,
    profile: Vec<ProfileRow>,
    questions: Vec<String>,
    notes: usize,
    reasons: Vec<ReasonOption>,
    can_reveal: bool,
    can_identify: bool,
    can_confirm: bool,
    contact: Gate,
    address: Gate,
    note: Gate,
    invoice: Gate,
    transfer: Gate,
}

impl InteractionPage {
    fn level_meaning(&self) -> &'static str {
        match self.level {
            0 => "not verified: nothing can be revealed or changed yet",
            1 => "identified: single fields can be revealed for a reason, notes can be added",
            _ => "verified with a one-time code: every operation is open",
        }
    }
}

/// What a render adds to the interaction: a message, a revealed field.
#[derive(Default)]
struct Extra {
    error: String,
    notice: String,
    field_problems: Vec<FieldProblem>,
    revealed: Option<(Field, String)>,
    status: Option<StatusCode>,
}

impl Extra {
    fn error(e: &Error) -> Self {
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

    fn notice(text: impl Into<String>) -> Self {
        Extra {
            notice: text.into(),
            ..Extra::default()
        }
    }
}

fn profile_rows(c: &CustomerView) -> Vec<ProfileRow> {
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
fn shown(field: Field, v: &Value) -> String {
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

fn method_label(m: &str) -> String {
    match m {
        "national_id" => "national id".into(),
        "service" => "service or account name".into(),
        "security_answers" => "security questions".into(),
        "portal_code" => "code from the customer's portal".into(),
        "otp" => "one-time code sent to the customer".into(),
        other => other.into(),
    }
}

fn interaction_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    v: &InteractionView,
    extra: Extra,
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
        can_identify: active && !v.locked && level == 0,
        can_confirm: active && !v.locked && linked && level == 1,
        contact: open(policy.required(OperationKind::ChangeContact)),
        address: open(policy.required(OperationKind::ChangeAddress)),
        note: open(policy.required(OperationKind::AddNote)),
        invoice: open(policy.required(OperationKind::DuplicateInvoice)),
        transfer: open(policy.required(OperationKind::TransferService)),
    };
    render(
        extra.status.unwrap_or(StatusCode::OK),
        page,
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// Renders the interaction after an action; when even reading it fails, a plain error page.
async fn show(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    id: &str,
    extra: Extra,
) -> Response {
    match s.interactions.get(p, id).await {
        Ok(v) => interaction_view(s, headers, p, &v, extra),
        Err(e) => crate::web::error_page(headers, &e, who(p)),
    }
}

async fn interaction_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
) -> Response {
    show(&s, &headers, &p, &id, Extra::default()).await
}

/// One verification attempt from the panel: `method` says which form was sent.
#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    value: Secret<String>,
    #[serde(default)]
    code: Secret<String>,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    question_0: String,
    #[serde(default)]
    answer_0: Secret<String>,
    #[serde(default)]
    question_1: String,
    #[serde(default)]
    answer_1: Secret<String>,
    #[serde(default)]
    question_2: String,
    #[serde(default)]
    answer_2: Secret<String>,
    #[serde(default)]
    question_3: String,
    #[serde(default)]
    answer_3: Secret<String>,
    #[serde(default)]
    question_4: String,
    #[serde(default)]
    answer_4: Secret<String>,
}

impl VerifyForm {
    fn request(self) -> Result<VerifyRequest, Error> {
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

fn verified_notice(method: &str, r: &VerifyResponse) -> String {
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

async fn verify(
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
pub struct RevealForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    reason: String,
}

async fn reveal(
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
        return interaction_view(&s, &headers, &p, &interaction, Extra::error(&e));
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
pub struct OperationForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    phones: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    invoice: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    to_customer_id: String,
}

impl OperationForm {
    fn data(&self, kind: OperationKind) -> Value {
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

fn done_notice(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::ChangeContact => "Contact details changed.",
        OperationKind::ChangeAddress => "Address changed.",
        OperationKind::TransferService => "Service transferred.",
        OperationKind::DuplicateInvoice => "A duplicate invoice was requested.",
        OperationKind::AddNote => "Note added.",
    }
}

async fn operate(
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
        return interaction_view(&s, &headers, &p, &interaction, Extra::error(&e));
    };
    let r = OperationRequest {
        interaction_id: id.clone(),
        kind,
        data: f.data(kind),
    };
    let extra = match s.interactions.operate(&p, &customer, r).await {
        Ok(_) => Extra::notice(format!(
            "{} The record below shows the change, masked.",
            done_notice(kind)
        )),
        Err(e) => Extra::error(&e),
    };
    show(&s, &headers, &p, &id, extra).await
}

async fn end(
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
            Extra::notice("The interaction has ended: reveals and operations are closed."),
        ),
        Err(e) => show(&s, &headers, &p, &id, Extra::error(&e)).await,
    }
}

crate::web::csrf_forms!(
    OperationForm,
    RegisterForm,
    RevealForm,
    SearchForm,
    StartForm,
    VerifyForm
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_land_next_to_the_input_they_belong_to() {
        assert_eq!(input_of("phones[0]"), "phone");
        assert_eq!(input_of("national_id.value"), "national_id");
        assert_eq!(input_of("security_questions[1].answer"), "answer_1");
        assert_eq!(input_of("security_questions[0].question"), "question_0");
        assert_eq!(input_of("full_name"), "full_name");
        let list = vec![
            FieldProblem {
                field: "phones[0]".into(),
                detail: "not a phone number".into(),
            },
            FieldProblem {
                field: "phones".into(),
                detail: "at most 10 entries".into(),
            },
        ];
        assert_eq!(
            problems_by_input(&list).get("phone").map(String::as_str),
            Some("not a phone number; at most 10 entries")
        );
    }

    #[test]
    fn revealed_values_read_as_text() {
        assert_eq!(
            shown(
                Field::NationalId,
                &json!({"kind": "pesel", "value": "44051401359"})
            ),
            "PESEL 44051401359"
        );
        assert_eq!(
            shown(
                Field::Address,
                &json!({"line1": "ul. Długa 1", "postal_code": "00-950", "city": "Warszawa", "country": "PL"})
            ),
            "ul. Długa 1, 00-950 Warszawa, PL"
        );
        assert_eq!(
            shown(Field::Phones, &json!(["+48601234567", "+48602999888"])),
            "+48601234567, +48602999888"
        );
        assert_eq!(shown(Field::DateOfBirth, &Value::Null), "(none)");
    }

    #[test]
    fn lists_typed_in_one_box_split_on_commas_and_lines() {
        assert_eq!(
            list_of(" +48 602 999 888 ,\n+48601234567;"),
            vec!["+48 602 999 888", "+48601234567"]
        );
        assert!(list_of("  ").is_empty());
    }
}
