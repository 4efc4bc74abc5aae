//! The call screen's transfer form: to a queue or an agent, blind; back to the desk (the call
//! is no longer the agent's) or to the call screen with the reason it was refused.

use super::service::{TransferMode, TransferTo};
use crate::http::access::Access;
use crate::state::AppState;
use crate::web::{csrf_forms, Checked, PageRoute};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct TransferForm {
    csrf: String,
    /// `queue` or `agent`.
    kind: String,
    /// The queue's name or the agent's username.
    target: String,
    /// `blind` or `attended`.
    #[serde(default)]
    mode: String,
}
csrf_forms!(TransferForm);

async fn transfer(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
    Path(id): Path<String>,
    Checked(f): Checked<TransferForm>,
) -> Response {
    let target = f.target.trim().to_owned();
    let to = match f.kind.as_str() {
        "agent" => TransferTo::Agent(target),
        _ => TransferTo::Queue(target),
    };
    let mode = match f.mode.as_str() {
        "attended" => TransferMode::Attended,
        _ => TransferMode::Blind,
    };
    match s.transfers.transfer(&p, &id, &to, mode).await {
        Ok(_) => Redirect::to("/desk").into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use callguard_core::Permission::AgentState;
    use Access::Signed;
    vec![(
        "/desk/interactions/{id}/transfer",
        Signed(AgentState),
        axum::routing::post(transfer),
    )]
}
