//! The compliance officer's page of data-subject requests: each export or erasure request with
//! its age and the 30-day deadline (GDPR art. 12(3)), and the four-eyes erasure on the page (one
//! officer requests, a different, confirmed one approves).

use super::service::{PendingRequest, Requests};
use crate::error::Error;
use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render, who, Checked, CsrfOnly, Flash, PageRoute, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use callguard_core::{now, rfc3339, Permission, UnixTime};
use std::collections::HashMap;

/// Days a controller has to answer a data-subject request.
pub const DEADLINE_DAYS: i64 = 30;

/// One request as the page lists it.
pub(crate) struct RequestRow {
    pub(crate) customer_id: String,
    /// `export` or `erasure`.
    pub(crate) kind: &'static str,
    pub(crate) asked_at: String,
    pub(crate) age_days: i64,
    pub(crate) deadline: String,
    pub(crate) days_left: i64,
    /// For erasure: who requested it (username), empty until an officer has.
    pub(crate) requested_by: String,
    pub(crate) requested_by_me: bool,
}

#[derive(Template)]
#[template(path = "gdpr/requests.html")]
pub(crate) struct RequestsPage {
    pub(crate) csrf: String,
    pub(crate) who: Option<Who>,
    pub(crate) error: String,
    pub(crate) notice: String,
    pub(crate) rows: Vec<RequestRow>,
    pub(crate) deadline_days: i64,
}

fn parse(t: &str) -> Option<UnixTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// The rows of one customer's requests, at `t`, staff named by `names`.
pub(crate) fn rows_of(
    p: &PendingRequest,
    t: UnixTime,
    me: &str,
    names: &HashMap<String, String>,
) -> Vec<RequestRow> {
    let Requests {
        export_requested_at,
        erasure_asked_by_customer_at,
        erasure_requested_by,
        erasure_requested_at,
    } = &p.requests;
    let row = |kind: &'static str, asked: &str, by: Option<&String>| {
        let at = parse(asked).unwrap_or(t);
        let due = at + DEADLINE_DAYS * 86_400;
        RequestRow {
            customer_id: p.customer_id.clone(),
            kind,
            asked_at: asked.to_owned(),
            age_days: (t - at).max(0) / 86_400,
            deadline: rfc3339(due),
            days_left: (due - t).div_euclid(86_400),
            requested_by: by
                .map(|b| names.get(b).cloned().unwrap_or_else(|| b.clone()))
                .unwrap_or_default(),
            requested_by_me: by.is_some_and(|b| b == me),
        }
    };
    let mut out = Vec::new();
    if let Some(at) = export_requested_at {
        out.push(row("export", at, None));
    }
    let erasure_at = erasure_asked_by_customer_at
        .as_ref()
        .or(erasure_requested_at.as_ref());
    if let Some(at) = erasure_at {
        out.push(row("erasure", at, erasure_requested_by.as_ref()));
    }
    out
}

async fn requests_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    flash: Flash,
    status: StatusCode,
) -> Response {
    let c = csrf_of(headers);
    let pending = match s.gdpr.pending_requests().await {
        Ok(r) => r,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let names = crate::web::staff_names(s).await;
    let me = callguard_core::audit::record::user(&p.user.id);
    let t = now();
    let mut rows: Vec<RequestRow> = pending
        .requests
        .iter()
        .flat_map(|r| rows_of(r, t, &me, &names))
        .collect();
    rows.sort_by_key(|r| r.days_left);
    let Flash { error, notice } = flash;
    render(
        status,
        RequestsPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            rows,
            deadline_days: DEADLINE_DAYS,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn done(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    r: Result<String, Error>,
) -> Response {
    match r {
        Ok(notice) => requests_view(s, headers, p, Flash::notice(notice), StatusCode::OK).await,
        Err(e) => {
            let status = crate::http::problem::status_of(&e);
            requests_view(s, headers, p, Flash::error(&e), status).await
        }
    }
}

async fn requests_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    requests_view(&s, &headers, &p, Flash::default(), StatusCode::OK).await
}

async fn export(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    let r = s.gdpr.compliance_export(&p, &id).await.map(|x| {
        format!(
            "Export for customer {} handled: {} field(s) delivered to the customer's portal.",
            x.customer_id,
            x.fields.len()
        )
    });
    done(&s, &headers, &p, r).await
}

async fn request_erasure(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    let r = s.gdpr.request_erasure(&p, &id).await.map(|x| {
        format!(
            "Erasure of customer {} requested: a second compliance officer must approve it.",
            x.customer_id
        )
    });
    done(&s, &headers, &p, r).await
}

async fn approve_erasure(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    let r = s.gdpr.approve_erasure(&p, &id).await.map(|x| {
        format!(
            "Customer {} is erased: the data key is destroyed; only an audit tombstone stays.",
            x.customer_id
        )
    });
    done(&s, &headers, &p, r).await
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        (
            "/compliance/requests",
            Signed(CustomersGdpr),
            get(requests_page),
        ),
        (
            "/compliance/requests/{id}/export",
            Signed(CustomersGdpr),
            post(export),
        ),
        (
            "/compliance/requests/{id}/erasure",
            Signed(CustomersGdpr),
            post(request_erasure),
        ),
        (
            "/compliance/requests/{id}/erasure/approve",
            Signed(CustomersGdpr),
            post(approve_erasure),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_shows_its_age_and_the_days_left_to_its_30_day_deadline() {
        let t = parse("2026-12-05T12:00:00Z").unwrap();
        let p = PendingRequest {
            customer_id: "100000000001".into(),
            requests: Requests {
                export_requested_at: Some("2026-11-01T12:00:00Z".into()),
                erasure_asked_by_customer_at: Some("2026-12-04T12:00:00Z".into()),
                erasure_requested_by: Some("user:abc".into()),
                erasure_requested_at: Some("2026-12-05T10:00:00Z".into()),
            },
        };
        let names = HashMap::from([("user:abc".to_owned(), "cora".to_owned())]);
        let rows = rows_of(&p, t, "user:abc", &names);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].kind, rows[0].age_days, rows[0].days_left),
            ("export", 34, -4)
        );
        assert_eq!(rows[0].deadline, "2026-12-01T12:00:00Z");
        assert_eq!(
            (rows[1].kind, rows[1].age_days, rows[1].days_left),
            ("erasure", 1, 29)
        );
        assert_eq!(rows[1].requested_by, "cora");
        assert!(rows[1].requested_by_me);
    }
}
