//! The agent desktop (SPEC C10, C3, C4): start an interaction and see the caller's record pop up
//! masked, verify the caller step by step, reveal one field at a time for a listed reason, and
//! carry out what the verification level allows. Pages only: every decision is taken by
//! [`crate::features::interactions::service::Interactions`] and [`crate::features::vault::service::Vault`], exactly as for the JSON API.

pub mod call;
pub mod register;
pub mod state;
pub mod wrap;

use crate::error::Error;
use crate::features::interactions::model::{Direction, InteractionChannel, NewInteraction};
use crate::features::interactions::wrap_up::InteractionSummary;
use crate::features::vault::lookup::{classify, Lookup};
use crate::features::vault::service::{CustomerView, RevealReason};
use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, render, who, Checked, Who};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use call::*;
use callguard_core::Permission;
use register::*;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The desk's routes, agents only (every permission here is an agent's alone).
pub(crate) fn routes() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/desk", Signed(InteractionsHandle), get(desk_page)),
        ("/desk/state", Signed(AgentState), post(state::set_state)),
        ("/desk/search", Signed(InteractionsHandle), post(search)),
        (
            "/desk/customers",
            Signed(CustomersCreate),
            post(register::register),
        ),
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
        (
            "/desk/interactions/{id}/wrap-up",
            Signed(InteractionsHandle),
            post(wrap::wrap_up),
        ),
        (
            "/desk/interactions/{id}/opt-out",
            Signed(DncListManage),
            post(wrap::opt_out),
        ),
    ]
}

/// The reveal reasons as the select offers them.
pub(crate) const REASONS: [(RevealReason, &str); 5] = [
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

pub(crate) fn parse_reason(s: &str) -> Option<RevealReason> {
    REASONS.iter().map(|(r, _)| *r).find(|r| r.as_str() == s)
}

/// One reason in a select.
pub(crate) struct ReasonOption {
    pub(crate) value: &'static str,
    pub(crate) label: &'static str,
}

pub(crate) fn reason_options() -> Vec<ReasonOption> {
    REASONS
        .iter()
        .map(|(r, label)| ReasonOption {
            value: r.as_str(),
            label,
        })
        .collect()
}

/// One customer found by phone, masked.
pub(crate) struct FoundRow {
    pub(crate) id: String,
    pub(crate) full_name: String,
    pub(crate) phones: String,
    pub(crate) emails: String,
    pub(crate) national_id: String,
    pub(crate) services: String,
}

#[derive(Template)]
#[template(path = "desk/desk.html")]
pub(crate) struct DeskPage {
    pub(crate) csrf: String,
    pub(crate) who: Option<Who>,
    pub(crate) error: String,
    pub(crate) notice: String,
    /// The number searched, to start a call with a found customer.
    pub(crate) searched: String,
    pub(crate) searched_done: bool,
    pub(crate) found: Vec<FoundRow>,
    /// The registration form as sent (answers are never sent back).
    pub(crate) form: RegisterForm,
    pub(crate) problems: BTreeMap<String, String>,
    pub(crate) created_id: String,
    pub(crate) start_problems: BTreeMap<String, String>,
    /// What was typed in the search box.
    pub(crate) query: String,
    /// The number a search found nobody for, offered to the registration form.
    pub(crate) register_phone: String,
    pub(crate) open_calls: Vec<InteractionSummary>,
    pub(crate) recent_calls: Vec<InteractionSummary>,
    /// My state for queued calls, and the call ringing me.
    pub(crate) presence: state::DeskPresence,
}

impl DeskPage {
    /// The problem of one input, or an empty string.
    pub(crate) fn problem(&self, input: &str) -> String {
        self.problems.get(input).cloned().unwrap_or_default()
    }

    pub(crate) fn start_problem(&self, input: &str) -> String {
        self.start_problems.get(input).cloned().unwrap_or_default()
    }

    pub(crate) fn kind_is(&self, kind: &str) -> bool {
        self.form.national_id_kind == kind
            || (self.form.national_id_kind.is_empty() && kind == "pesel")
    }
}

impl DeskPage {
    /// The desk with my calls listed: the open ones first (so a reload or a second tab finds a
    /// call again), then the recent ones.
    pub(crate) async fn new(
        s: &AppState,
        headers: &HeaderMap,
        p: &Principal,
    ) -> (Self, Vec<String>) {
        let c = csrf_of(headers);
        // The list is an aid: a failure to read it leaves it empty rather than the desk unusable.
        let mine = s
            .interactions
            .mine(p, crate::features::interactions::wrap_up::MY_LIST)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the agent's calls could not be listed");
                Vec::new()
            });
        let (open_calls, recent_calls) = mine.into_iter().partition(|c| c.status == "active");
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
                query: String::new(),
                register_phone: String::new(),
                open_calls,
                recent_calls,
                presence: state::DeskPresence::of(s, p),
            },
            c.new_cookie.into_iter().collect(),
        )
    }
}

pub(crate) async fn desk_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
) -> Response {
    let (page, cookies) = DeskPage::new(&s, &headers, &p).await;
    render(StatusCode::OK, page, &cookies)
}

#[derive(Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    pub(crate) csrf: String,
    /// A phone in any format, an e-mail, a national id or a service name.
    #[serde(default)]
    pub(crate) q: String,
    /// The call the search is made in, if any (audited as inside it).
    #[serde(default)]
    pub(crate) interaction: String,
}

pub(crate) async fn search(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<SearchForm>,
) -> Response {
    let (mut page, cookies) = DeskPage::new(&s, &headers, &p).await;
    page.query = f.q.trim().to_owned();
    let phone = match classify(&f.q) {
        Ok(Lookup::Digits { phone, .. }) => phone,
        _ => None,
    };
    page.searched = phone.clone().unwrap_or_default();
    let inside = given(&f.interaction);
    match s.vault.search_any(&p, &f.q, inside.as_deref()).await {
        Ok(found) => {
            page.searched_done = true;
            if found.is_empty() {
                page.register_phone = phone.unwrap_or_default();
            }
            page.found = found.iter().map(found_row).collect();
            render(StatusCode::OK, page, &cookies)
        }
        Err(e) => {
            page.error = readable(&e);
            render(crate::http::problem::status_of(&e), page, &cookies)
        }
    }
}

pub(crate) fn found_row(v: &CustomerView) -> FoundRow {
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
pub(crate) fn readable(e: &Error) -> String {
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

#[derive(Deserialize)]
pub(crate) struct StartForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) channel: String,
    #[serde(default)]
    pub(crate) direction: String,
    #[serde(default)]
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) customer_id: String,
}

pub(crate) async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<StartForm>,
) -> Response {
    let (mut page, cookies) = DeskPage::new(&s, &headers, &p).await;
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

crate::web::csrf_forms!(SearchForm, StartForm);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldProblem;
    use callguard_core::vault::model::Field;
    use serde_json::{json, Value};

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
