//! The customer portal's pages (SPEC roles, C3, C10): my data in the clear, a one-time code to
//! read to an agent, who looked at my data, export and erasure requests. Customer accounts only;
//! sign-in and setup are [`crate::features::signin`]'s pages for the portal audience.

use crate::error::Error;
use crate::features::gdpr::service::{AccessEntry, MyData, RequestKind, Requests};
use crate::http::access::Access;
use crate::http::routes::PageRoute;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render, who, Checked, CsrfOnly, Flash, Who};
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use callguard_core::{rfc3339, Permission};
use serde::Deserialize;

/// The portal's pages, for customers only.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::Portal;
    vec![
        ("/portal", Signed(Portal), get(home)),
        ("/portal/verification-code", Signed(Portal), post(new_code)),
        ("/portal/requests", Signed(Portal), post(make_request)),
        ("/portal/export", Signed(Portal), get(export)),
    ]
}

// ---- my data --------------------------------------------------------------------------------

/// One line of "who looked at my data".
pub struct AccessRow {
    time: String,
    what: String,
    by: String,
    detail: String,
    reason: String,
    interaction: String,
}

#[derive(Template)]
#[template(path = "portal/portal.html")]
struct PortalPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    data: MyData,
    national_id: String,
    address: String,
    code: String,
    code_expires_at: String,
    access: Vec<AccessRow>,
    export_requested_at: String,
    erasure_asked_at: String,
}

/// What a reveal reason means, in the customer's words.
fn reason_text(r: &str) -> String {
    match r {
        "caller_request" => "you asked to hear or confirm it".into(),
        "identity_check" => "to confirm a detail you gave".into(),
        "operation" => "to carry out something you asked for".into(),
        "service_issue" => "a delivery, billing or service problem".into(),
        "fraud_investigation" => "investigating suspected fraud".into(),
        other => other.replace('_', " "),
    }
}

/// How the portal names a member of staff: "agent #" and a short, stable reference, never the
/// username (staff names stay inside the company) nor the full account id.
fn agent_label(id: &str) -> String {
    let short: String = id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(6)
        .collect::<String>()
        .to_uppercase();
    format!("agent #{short}")
}

fn access_row(e: AccessEntry, me: &str) -> AccessRow {
    let by = if e.by == me {
        "you".to_owned()
    } else if let Some(id) = e.by.strip_prefix("user:") {
        agent_label(id)
    } else {
        e.by
    };
    AccessRow {
        time: e.time,
        what: match e.what.as_str() {
            "reveal" => "revealed".into(),
            "read" => "looked up (masked)".into(),
            "operation" => "changed on your behalf".into(),
            "export" => "exported".into(),
            "verification" => "verified your identity".into(),
            other => other.into(),
        },
        by,
        detail: e.detail.unwrap_or_default().replace('_', " "),
        reason: e.reason.as_deref().map(reason_text).unwrap_or_default(),
        interaction: e.interaction.unwrap_or_default(),
    }
}

/// Renders the portal's home, with a fresh code when one was just issued.
async fn home_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    flash: Flash,
    code: Option<(String, String)>,
) -> Response {
    let Flash { error, notice } = flash;
    let data = match s.gdpr.read_mine(p).await {
        Ok(d) => d,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let access = match s.gdpr.access_log(&data.customer_id).await {
        Ok(list) => {
            let me = crate::principal::customer_ref(&data.customer_id);
            // Newest first, as the log answers.
            list.into_iter().map(|e| access_row(e, &me)).collect()
        }
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let c = csrf_of(headers);
    let national_id = data
        .national_id
        .as_ref()
        .map(|n| format!("{} {}", n.kind.as_str().to_uppercase(), n.value))
        .unwrap_or_default();
    let address = data
        .address
        .as_ref()
        .map(|a| {
            let mut parts = vec![a.line1.clone()];
            if let Some(l2) = a.line2.as_ref().filter(|l| !l.is_empty()) {
                parts.push(l2.clone());
            }
            parts.push(format!("{} {}", a.postal_code, a.city));
            parts.push(a.country.clone());
            parts.join(", ")
        })
        .unwrap_or_default();
    let Requests {
        export_requested_at,
        erasure_asked_by_customer_at,
        ..
    } = data.requests.clone();
    let (code, code_expires_at) = code.unwrap_or_default();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        PortalPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            national_id,
            address,
            data,
            code,
            code_expires_at,
            access,
            export_requested_at: export_requested_at.unwrap_or_default(),
            erasure_asked_at: erasure_asked_by_customer_at.unwrap_or_default(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn home(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    home_view(&s, &headers, &p, Flash::default(), None).await
}

async fn new_code(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.interactions.issue_portal_code_for(&p).await {
        Ok((code, expires)) => {
            let code = Some((code.expose().clone(), rfc3339(expires)));
            home_view(&s, &headers, &p, Flash::default(), code).await
        }
        Err(e) => home_view(&s, &headers, &p, Flash::error(&e), None).await,
    }
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    confirm: String,
}

async fn make_request(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<RequestForm>,
) -> Response {
    let kind = match f.kind.as_str() {
        "export" => RequestKind::Export,
        "erasure" if f.confirm == "yes" => RequestKind::Erasure,
        "erasure" => {
            let msg = "Tick the box to confirm that you want your data erased.".to_owned();
            return home_view(&s, &headers, &p, Flash::error(msg), None).await;
        }
        _ => {
            let msg = "Choose export or erasure.".to_owned();
            return home_view(&s, &headers, &p, Flash::error(msg), None).await;
        }
    };
    let flash = match s.gdpr.request_mine(&p, kind).await {
        Ok(_) => {
            let notice = match kind {
                RequestKind::Export => {
                    "Your export request is recorded. You can also download your data below at any time."
                }
                RequestKind::Erasure => {
                    "Your erasure request is recorded. Two compliance officers carry it out; after that your data cannot be recovered, and this account closes."
                }
            };
            Flash::notice(notice)
        }
        Err(e) => Flash::error(&e),
    };
    home_view(&s, &headers, &p, flash, None).await
}

/// My data as a JSON file to keep (GDPR art. 15).
async fn export(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    let doc = match s.gdpr.export_mine(&p).await {
        Ok(d) => d,
        Err(e) => return error_page(&headers, &e, who(&p)),
    };
    let body = match serde_json::to_string_pretty(&doc) {
        Ok(b) => b,
        Err(_) => return error_page(&headers, &Error::Internal, who(&p)),
    };
    let name = format!(
        "attachment; filename=\"callguard-export-{}.json\"",
        doc.data.customer_id
    );
    let mut resp = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&name) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

crate::web::csrf_forms!(RequestForm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_log_reads_in_the_customers_words() {
        let row = access_row(
            AccessEntry {
                time: "2025-01-01T10:00:00Z".into(),
                what: "reveal".into(),
                by: "user:0f8fad5b-d9cb-469f-a165-70867728950e".into(),
                detail: Some("date_of_birth".into()),
                reason: Some("service_issue".into()),
                interaction: None,
            },
            "customer:123456789012",
        );
        assert_eq!(row.what, "revealed");
        assert_eq!(
            row.by, "agent #0F8FAD",
            "a short reference, not the account id"
        );
        assert_eq!(row.detail, "date of birth");
        assert_eq!(row.reason, "a delivery, billing or service problem");
        let mine = access_row(
            AccessEntry {
                time: String::new(),
                what: "export".into(),
                by: "customer:123456789012".into(),
                detail: None,
                reason: None,
                interaction: None,
            },
            "customer:123456789012",
        );
        assert_eq!(mine.by, "you");
    }
}
