//! Transfers over the JSON API: the agent transfers the call they are on to another agent or a
//! queue. A thin layer over [`super::service::Transfers`].

use super::service::{Consult, TransferMode, TransferTo, TransferView};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use callguard_core::Permission;
use serde::Deserialize;

/// `POST /api/v1/interactions/{id}/transfer`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// `{"queue": "billing"}` or `{"agent": "<username>"}`.
    pub to: TransferTo,
    /// `blind` (put through at once) or `attended` (talk to the target first, then complete or
    /// cancel).
    pub mode: TransferMode,
}

async fn transfer(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<TransferRequest>,
) -> Result<(StatusCode, Json<TransferView>), Error> {
    let view = s.transfers.transfer(&p, &id, &r.to, r.mode).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

async fn complete(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    s.transfers.consult(&p, &id, Consult::Complete).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    s.transfers.consult(&p, &id, Consult::Cancel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::AgentState;
    vec![
        route("POST", "/api/v1/interactions/{id}/transfer", Signed(AgentState), "Transfers the call I am on. `blind`: the caller hears the comfort tone, my leg is hung up, and the call rings the target agent (who must be ready) or waits in the target queue; if the target agent does not answer the call goes back to its queue. `attended`: the caller is on hold while the target (the agent, or a ready agent of the queue) is rung and I talk to them; then `complete` or `cancel`. The interaction goes with the call, its verification level intact; the new agent's desk pops with it. Only my own call, only while this server's SIP edge carries it; audited (`call.transfer.*`).", post(transfer))
            .takes::<TransferRequest>().gives::<TransferView>(202).may(&[403, 404, 409, 422]),
        route("POST", "/api/v1/interactions/{id}/transfer/complete", Signed(AgentState), "Completes my attended transfer: the caller is put through to the agent I consulted and I leave the call (applied once they answered).", post(complete))
            .may(&[403, 404, 409]),
        route("POST", "/api/v1/interactions/{id}/transfer/cancel", Signed(AgentState), "Cancels my attended transfer: the consulted agent is hung up and the caller is back with me.", post(cancel))
            .may(&[403, 404, 409]),
    ]
}
