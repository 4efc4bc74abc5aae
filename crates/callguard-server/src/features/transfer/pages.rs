//! The call screen's transfer forms: to a queue or an agent, blind (back to the desk: the call
//! is no longer the agent's) or attended (back to the call screen, where "Complete transfer" and
//! "Cancel transfer" finish it); a refusal shows its reason.

use super::service::{Consult, TransferMode, TransferTo};
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
        Ok(_) if mode == TransferMode::Attended => Redirect::to(&call_screen(&id)).into_response(),
        Ok(_) => Redirect::to("/desk").into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

/// The call screen of `interaction` when it is an id (letters, digits and `-` only).
fn call_screen(interaction: &str) -> String {
    if !interaction.is_empty()
        && interaction.len() <= 64
        && interaction
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        format!("/desk/interactions/{interaction}#transfer")
    } else {
        "/desk".to_owned()
    }
}

#[derive(Deserialize)]
struct ConsultForm {
    csrf: String,
}
csrf_forms!(ConsultForm);

async fn complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
    Path(id): Path<String>,
    Checked(_f): Checked<ConsultForm>,
) -> Response {
    match s.transfers.consult(&p, &id, Consult::Complete).await {
        Ok(()) => Redirect::to("/desk").into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

async fn cancel(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
    Path(id): Path<String>,
    Checked(_f): Checked<ConsultForm>,
) -> Response {
    match s.transfers.consult(&p, &id, Consult::Cancel).await {
        Ok(()) => Redirect::to(&call_screen(&id)).into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use callguard_core::Permission::AgentState;
    use Access::Signed;
    vec![
        (
            "/desk/interactions/{id}/transfer",
            Signed(AgentState),
            axum::routing::post(transfer),
        ),
        (
            "/desk/interactions/{id}/transfer/complete",
            Signed(AgentState),
            axum::routing::post(complete),
        ),
        (
            "/desk/interactions/{id}/transfer/cancel",
            Signed(AgentState),
            axum::routing::post(cancel),
        ),
    ]
}
