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
    let (mut page, cookies) = DeskPage::new(&s, &headers, &p).await;
    let result = match f.customer() {
        Ok(new) => s.vault.create(&p.actor(), new).await,
        Err(e) => Err(e),
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
            page.error = match &e {
                Error::InvalidFields(list) => {
                    page.problems = problems_by_input(list);
                    refused_fields(&page.problems, list.len())
                }
                _ => readable(&e),
            };
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

/// The message above a refused registration; a problem without an input of its own is named in
/// the message itself.
fn refused_fields(problems: &BTreeMap<String, String>, count: usize) -> String {
    let message = format!(
        "The customer was not registered: {count} field(s) need correcting (marked below)."
    );
    let elsewhere: Vec<String> = problems
        .iter()
        .filter(|(input, _)| !REGISTER_INPUTS.contains(&input.as_str()))
        .map(|(input, detail)| format!("{input}: {detail}"))
        .collect();
    if elsewhere.is_empty() {
        message
    } else {
        format!("{message} Also: {}.", elsewhere.join("; "))
    }
}

impl RegisterForm {
    /// The customer the form describes; a national id of an unknown kind is refused here.
    fn customer(&self) -> Result<NewCustomer, Error> {
        let national_id = match given(&self.national_id) {
            None => None,
            Some(value) => {
                let kind = match self.national_id_kind.as_str() {
                    "pesel" | "" => NationalIdKind::Pesel,
                    "nip" => NationalIdKind::Nip,
                    "regon" => NationalIdKind::Regon,
                    _ => {
                        return Err(Error::InvalidFields(vec![FieldProblem {
                            field: "national_id_kind".into(),
                            detail: "choose PESEL, NIP or REGON".into(),
                        }]))
                    }
                };
                Some(NationalId { kind, value })
            }
        };
        let any_address = [
            &self.line1,
            &self.line2,
            &self.postal_code,
            &self.city,
            &self.country,
        ]
        .iter()
        .any(|v| !v.trim().is_empty());
        let address = any_address.then(|| Address {
            line1: self.line1.trim().to_owned(),
            line2: given(&self.line2),
            postal_code: self.postal_code.trim().to_owned(),
            city: self.city.trim().to_owned(),
            country: self.country.trim().to_uppercase(),
        });
        let mut questions = Vec::new();
        for (q, a) in [
            (&self.question_0, &self.answer_0),
            (&self.question_1, &self.answer_1),
        ] {
            if !q.trim().is_empty() || !a.expose().trim().is_empty() {
                questions.push(SecurityQuestionInput {
                    question: q.clone(),
                    answer: a.clone(),
                });
            }
        }
        Ok(NewCustomer {
            full_name: self.full_name.clone(),
            phones: given(&self.phone).into_iter().collect(),
            emails: given(&self.email).into_iter().collect(),
            national_id,
            date_of_birth: given(&self.date_of_birth),
            address,
            services: given(&self.service).into_iter().collect(),
            security_questions: questions,
        })
    }
}

crate::web::csrf_forms!(RegisterForm);
