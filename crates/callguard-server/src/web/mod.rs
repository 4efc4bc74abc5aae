//! The page kit shared by every feature's pages: the layout's view of who is signed in, the
//! anti-forgery token and checked forms, cookies, rendering, error pages and static assets.

pub mod assets;

use crate::error::Error;
use crate::http::access::{cookie, CSRF_COOKIE, SESSION_COOKIE};
use crate::http::csrf;
use crate::http::problem::PROBLEM_TYPES;
use crate::principal::Principal;
use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use callguard_core::{Permission, Role, Secret};
use serde::Deserialize;

pub use crate::http::routes::PageRoute;

/// The signed-in person as the layout shows them.
pub struct Who {
    pub username: String,
    pub role: String,
    pub is_admin: bool,
    pub sees_alerts: bool,
    pub sees_audit: bool,
    pub sees_compliance: bool,
    pub sees_dnc: bool,
    pub sees_desk: bool,
    pub sees_requests: bool,
    /// Supervisors: the queues' wallboard.
    pub sees_wallboard: bool,
    /// A portal customer: sees the portal's navigation, never the staff's.
    pub is_customer: bool,
}

pub(crate) fn who(p: &Principal) -> Option<Who> {
    Some(Who {
        username: p.user.username.clone(),
        role: p.user.role.to_string(),
        is_admin: p.user.role == Role::Admin,
        sees_alerts: p.user.role.allows(Permission::AlertsRead),
        sees_audit: p.user.role.allows(Permission::AuditRead),
        sees_compliance: p.user.role.allows(Permission::ComplianceEvidence),
        sees_dnc: p.user.role.allows(Permission::DncStatus),
        sees_desk: p.user.role.allows(Permission::InteractionsHandle),
        sees_requests: p.user.role.allows(Permission::CustomersGdpr),
        sees_wallboard: p.user.role.allows(Permission::QueuesRead),
        is_customer: p.user.role == Role::Customer,
    })
}

const COOKIE_ATTRS: &str = "Path=/; Secure; HttpOnly; SameSite=Strict";

/// The anti-forgery token for this browser, and the cookie to set when it is new.
pub(crate) struct Csrf {
    pub(crate) token: String,
    pub(crate) new_cookie: Option<String>,
}

pub(crate) fn csrf_of(headers: &HeaderMap) -> Csrf {
    match cookie(headers, CSRF_COOKIE) {
        Some(t) if t.len() >= 32 => Csrf {
            token: t.to_owned(),
            new_cookie: None,
        },
        _ => {
            let token = csrf::new_token();
            Csrf {
                new_cookie: Some(format!("{CSRF_COOKIE}={token}; {COOKIE_ATTRS}")),
                token,
            }
        }
    }
}

fn check_csrf(headers: &HeaderMap, sent: &str) -> Result<(), Error> {
    if csrf::tokens_match(Some(sent), cookie(headers, CSRF_COOKIE)) {
        Ok(())
    } else {
        Err(Error::Csrf)
    }
}

/// A form whose anti-forgery token has been checked: every state-changing page handler takes
/// its form through this extractor, so none can forget the check.
pub(crate) struct Checked<T>(pub(crate) T);

/// Forms carry their anti-forgery token in a `csrf` field.
pub(crate) trait CsrfField {
    fn csrf(&self) -> &str;
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned + CsrfField> axum::extract::FromRequest<S>
    for Checked<T>
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let Form(form) = Form::<T>::from_request(req, state).await.map_err(|_| {
            error_page(
                &headers,
                &Error::BadRequest("the form could not be read".into()),
                None,
            )
        })?;
        check_csrf(&headers, form.csrf()).map_err(|e| error_page(&headers, &e, None))?;
        Ok(Checked(form))
    }
}

pub(crate) fn render(status: StatusCode, page: impl Template, cookies: &[String]) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            return Error::Internal.into_response();
        }
    };
    let mut resp = (status, Html(body)).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(crate) fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(crate) fn session_cookie(token: &Secret<String>) -> String {
    format!("{SESSION_COOKIE}={}; {COOKIE_ATTRS}", token.expose())
}

pub(crate) fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; {COOKIE_ATTRS}; Max-Age=0")
}

/// A refusal shown as a page in the layout, with a way back (the router's page error).
pub fn page_error(headers: &HeaderMap, e: &Error, p: Option<&Principal>) -> Response {
    error_page(headers, e, p.and_then(who))
}

pub(crate) fn error_page(headers: &HeaderMap, e: &Error, who: Option<Who>) -> Response {
    let c = csrf_of(headers);
    let p = crate::http::problem::problem_of(e);
    let about = PROBLEM_TYPES
        .iter()
        .find(|(s, _, _)| *s == e.slug())
        .map_or("", |(_, _, a)| a);
    render(
        crate::http::problem::status_of(e),
        ProblemPage {
            csrf: c.token,
            who,
            error: p.detail,
            notice: String::new(),
            title: p.title,
            slug: e.slug().into(),
            about: about.into(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[derive(Template)]
#[template(path = "web/problem.html")]
pub(crate) struct ProblemPage {
    pub(crate) csrf: String,
    pub(crate) who: Option<Who>,
    pub(crate) error: String,
    pub(crate) notice: String,
    pub(crate) title: String,
    pub(crate) slug: String,
    pub(crate) about: String,
}

/// Implements [`CsrfField`] for forms that carry their token in a `csrf` field.
macro_rules! csrf_forms {
    ($($form:ty),+ $(,)?) => {$(
        impl $crate::web::CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )+};
}
pub(crate) use csrf_forms;

csrf_forms!(CsrfOnly);

/// Ten new recovery codes, shown once (after setup, or when replaced).
#[derive(Template)]
#[template(path = "web/recovery.html")]
pub(crate) struct RecoveryPage {
    pub(crate) csrf: String,
    pub(crate) who: Option<Who>,
    pub(crate) error: String,
    pub(crate) notice: String,
    pub(crate) codes: Vec<String>,
    /// Where "continue" leads.
    pub(crate) home: String,
}

/// The password and a second factor again, before a sensitive action.
#[derive(Deserialize)]
pub(crate) struct ReauthForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) password: Secret<String>,
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) next: String,
}

csrf_forms!(ReauthForm);

/// What the last action on a page says above it: an error, a notice, or nothing.
#[derive(Debug, Default)]
pub(crate) struct Flash {
    pub(crate) error: String,
    pub(crate) notice: String,
}

impl Flash {
    /// The action failed: say why.
    pub(crate) fn error(e: impl std::fmt::Display) -> Self {
        Self {
            error: e.to_string(),
            notice: String::new(),
        }
    }

    /// The action worked: say what happened.
    pub(crate) fn notice(text: impl Into<String>) -> Self {
        Self {
            error: String::new(),
            notice: text.into(),
        }
    }

    /// The outcome of an action: `done` when it worked, the error otherwise.
    pub(crate) fn of<T>(result: Result<T, Error>, done: impl Into<String>) -> Self {
        match result {
            Ok(_) => Self::notice(done),
            Err(e) => Self::error(e),
        }
    }
}

/// Staff usernames by audit reference (`user:{id}`): people read names, the log keeps ids.
/// A failure to list them leaves ids shown rather than the page failing.
pub(crate) async fn staff_names(
    s: &crate::state::AppState,
) -> std::collections::HashMap<String, String> {
    s.accounts
        .list_users()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|u| (callguard_core::audit::record::user(&u.id), u.username))
        .collect()
}

/// `text` with every staff reference (`user:{id}`) it holds replaced by the username.
pub(crate) fn named(text: &str, names: &std::collections::HashMap<String, String>) -> String {
    if !text.contains("user:") {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for (reference, name) in names {
        if out.contains(reference.as_str()) {
            out = out.replace(reference.as_str(), name);
        }
    }
    out
}

#[cfg(test)]
mod naming_tests {
    use super::named;
    use std::collections::HashMap;

    #[test]
    fn staff_references_in_a_sentence_read_as_usernames() {
        let names = HashMap::from([(
            "user:05e5245b-3e8c-4ebd-8c45-b88147be973d".to_owned(),
            "olga".to_owned(),
        )]);
        assert_eq!(
            named(
                "user:05e5245b-3e8c-4ebd-8c45-b88147be973d changed the role of user:other",
                &names
            ),
            "olga changed the role of user:other"
        );
        assert_eq!(named("nothing to name", &names), "nothing to name");
    }
}
