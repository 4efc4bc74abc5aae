//! Registering a caller from the desk: one form whose every invalid field is shown next to its
//! input, and nothing stored until all are valid.

use super::*;
use crate::error::{Error, FieldProblem};
use crate::features::vault::service::{NewCustomer, SecurityQuestionInput};
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{render, Checked};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use callguard_core::vault::model::{Address, NationalId, NationalIdKind};
use callguard_core::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Field problems keyed by the form input they belong to.
pub(crate) fn problems_by_input(list: &[FieldProblem]) -> BTreeMap<String, String> {
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
pub(crate) const REGISTER_INPUTS: [&str; 12] = [
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
pub(crate) fn input_of(field: &str) -> String {
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
pub(crate) fn given(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A list typed into one box: separated by commas, semicolons or new lines.
pub(crate) fn list_of(v: &str) -> Vec<String> {
    v.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What the registration form held, to show it again with its problems.
#[derive(Default, Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) full_name: String,
    #[serde(default)]
    pub(crate) phone: String,
    #[serde(default)]
    pub(crate) email: String,
    #[serde(default)]
    pub(crate) national_id_kind: String,
    #[serde(default)]
    pub(crate) national_id: String,
    #[serde(default)]
    pub(crate) date_of_birth: String,
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
    pub(crate) service: String,
    #[serde(default)]
    pub(crate) question_0: String,
    #[serde(default)]
    pub(crate) answer_0: Secret<String>,
    #[serde(default)]
    pub(crate) question_1: String,
    #[serde(default)]
    pub(crate) answer_1: Secret<String>,
}

pub(crate) async fn register(
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

crate::web::csrf_forms!(RegisterForm);
