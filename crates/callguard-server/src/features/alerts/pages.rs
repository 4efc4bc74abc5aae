//! The alerts page: open, acknowledged and resolved alerts, live, with the handling form.

use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render, who, Checked, Flash, PageRoute, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use callguard_core::Permission;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "alerts/alerts.html")]
struct AlertsPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    alerts: Vec<crate::features::alerts::service::AlertView>,
    /// Staff usernames by reference, for the alerts that arrive live.
    names_json: String,
}

async fn alerts_view(s: &AppState, headers: &HeaderMap, p: &Principal, flash: Flash) -> Response {
    let Flash { error, notice } = flash;
    let c = csrf_of(headers);
    let mut alerts = match s.alerts.list(Some("open"), 200).await {
        Ok(a) => a,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    alerts.extend(
        s.alerts
            .list(Some("acknowledged"), 200)
            .await
            .unwrap_or_default(),
    );
    alerts.sort_by_key(|a| std::cmp::Reverse(a.seq));
    let names = crate::web::staff_names(s).await;
    for a in &mut alerts {
        a.summary = crate::web::named(&a.summary, &names);
    }
    let names_json = serde_json::to_string(&names).unwrap_or_else(|_| "{}".into());
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        AlertsPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            alerts,
            names_json,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn alerts_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    alerts_view(&s, &headers, &p, Flash::default()).await
}

#[derive(Deserialize)]
struct HandleAlertForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    to: String,
}

async fn handle_alert(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<HandleAlertForm>,
) -> Response {
    let resolve = match f.to.as_str() {
        "resolved" => true,
        "acknowledged" => false,
        _ => {
            return alerts_view(
                &s,
                &headers,
                &p,
                Flash::error("choose acknowledge or resolve"),
            )
            .await
        }
    };
    let flash = match s.alerts.transition(&p, &id, resolve, &f.comment).await {
        Ok(a) => Flash::notice(format!("Alert {} is {}.", a.rule, a.status)),
        Err(e) => Flash::error(&e),
    };
    alerts_view(&s, &headers, &p, flash).await
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/alerts", Signed(AlertsRead), get(alerts_page)),
        (
            "/alerts/{id}/handle",
            Signed(AlertsManage),
            post(handle_alert),
        ),
    ]
}

crate::web::csrf_forms!(HandleAlertForm);
