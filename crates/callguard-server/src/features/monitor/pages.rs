//! The wallboard's monitoring buttons: on a call on the line, a supervisor of its queue picks
//! Listen, Whisper or Barge (their softphone rings and joins the call), switches between them
//! while on it, then Leave.

use super::service::MonitorMode;
use crate::error::Error;
use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{error_page, who, Checked, PageRoute};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use callguard_core::Permission;
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct MonitorForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) interaction_id: String,
    #[serde(default)]
    pub(crate) mode: String,
}

crate::web::csrf_forms!(MonitorForm);

async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<MonitorForm>,
) -> Response {
    let Some(mode) = MonitorMode::parse(&f.mode) else {
        let e = Error::Validation("choose listen, whisper or barge".into());
        return error_page(&headers, &e, who(&p));
    };
    match s.monitoring.start(&p, &f.interaction_id, mode).await {
        Ok(_) => Redirect::to("/wallboard").into_response(),
        Err(e) => error_page(&headers, &Error::from(e), who(&p)),
    }
}

async fn switch(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<MonitorForm>,
) -> Response {
    let Some(mode) = MonitorMode::parse(&f.mode) else {
        let e = Error::Validation("choose listen, whisper or barge".into());
        return error_page(&headers, &e, who(&p));
    };
    match s.monitoring.switch(&p, &f.interaction_id, mode).await {
        Ok(_) => Redirect::to("/wallboard").into_response(),
        Err(e) => error_page(&headers, &Error::from(e), who(&p)),
    }
}

async fn stop(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<MonitorForm>,
) -> Response {
    match s.monitoring.stop(&p, &f.interaction_id) {
        Ok(()) => Redirect::to("/wallboard").into_response(),
        Err(e) => error_page(&headers, &Error::from(e), who(&p)),
    }
}

/// This feature's pages, supervisors only.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    vec![
        (
            "/wallboard/monitor",
            Signed(Permission::CallsMonitor),
            post(start),
        ),
        (
            "/wallboard/monitor/mode",
            Signed(Permission::CallsMonitor),
            post(switch),
        ),
        (
            "/wallboard/monitor/stop",
            Signed(Permission::CallsMonitor),
            post(stop),
        ),
    ]
}
