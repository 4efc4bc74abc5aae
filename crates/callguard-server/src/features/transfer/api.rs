//! Transfers over the JSON API: the agent transfers the call they are on to another agent or a
//! queue. A thin layer over [`super::service::Transfers`].

use super::service::{TransferMode, TransferTo, TransferView};
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
    /// `blind` (attended is not available yet).
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

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::AgentState;
    vec![
        route("POST", "/api/v1/interactions/{id}/transfer", Signed(AgentState), "Transfers the call I am on (blind): the caller hears the comfort tone, my leg is hung up, and the call rings the target agent (who must be ready) or waits in the target queue. The interaction goes with it, its verification level intact; the new agent's desk pops with it. If the target agent does not answer the call goes back to its queue. Only my own call, only while this server's SIP edge carries it; audited (`call.transfer.*`).", post(transfer))
            .takes::<TransferRequest>().gives::<TransferView>(202).may(&[403, 404, 409, 422, 501]),
    ]
}
