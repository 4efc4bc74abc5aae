//! Interactions over the JSON API: start, get, verify the caller, operate, end.

use super::idempotency::{self, IdempotencyKey};
use super::model::{
    InteractionView, NewInteraction, OperationRequest, VerifyRequest, VerifyResponse,
};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use callguard_core::Permission;

pub async fn operate(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<OperationRequest>,
) -> Result<Response, Error> {
    let key = headers
        .get(idempotency::HEADER)
        .map(|v| IdempotencyKey::parse(v.as_bytes()))
        .transpose()?;
    let (done, replayed) = s
        .interactions
        .operate_keyed(&p, &id, r, key.as_ref())
        .await?;
    let mut response = Json(done).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

pub async fn start_interaction(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewInteraction>,
) -> Result<(StatusCode, Json<InteractionView>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(s.interactions.start(&p, r).await?),
    ))
}

pub async fn get_interaction(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<InteractionView>, Error> {
    Ok(Json(s.interactions.get(&p, &id).await?))
}

pub async fn verify(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResponse>, Error> {
    Ok(Json(s.interactions.verify(&p, &id, r).await?))
}

pub async fn end_interaction(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<InteractionView>, Error> {
    Ok(Json(s.interactions.end(&p, &id).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub async fn wrap_up(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<super::wrap_up::WrapUpRequest>,
) -> Result<Json<InteractionView>, Error> {
    Ok(Json(s.interactions.wrap_up(&p, &id, &r.disposition).await?))
}

pub async fn my_interactions(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<super::wrap_up::InteractionSummary>>, Error> {
    Ok(Json(
        s.interactions.mine(&p, super::wrap_up::MY_LIST).await?,
    ))
}

pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("POST", "/api/v1/customers/{id}/operations", Signed(CustomersOperate), "An operation for the caller (change_contact, change_address, transfer_service, duplicate_invoice: level 2; add_note: level 1). With an `Idempotency-Key` header (1 to 255 visible ASCII characters, per account, kept 24 hours) a retry of the same request answers as the first one did, with `Idempotent-Replayed: true`, and changes nothing; the same key with another request is refused (422).", post(operate))
            .takes::<crate::features::interactions::model::OperationRequest>().gives::<crate::features::interactions::model::OperationResponse>(200).may(&[409, 422]),
        route("POST", "/api/v1/interactions", Signed(InteractionsHandle), "Starts an interaction; a phone call is linked to the customer its number singles out (screen-pop, masked).", post(start_interaction))
            .takes::<crate::features::interactions::model::NewInteraction>().gives::<crate::features::interactions::model::InteractionView>(201).may(&[404, 422]),
        route("GET", "/api/v1/interactions/{id}", Signed(InteractionsHandle), "One of my interactions: level reached, steps, attempts left.", get(get_interaction))
            .gives::<crate::features::interactions::model::InteractionView>(200),
        route("POST", "/api/v1/interactions/{id}/verify", Signed(InteractionsHandle), "One verification attempt: national_id, service or security_answers (level 1); portal_code, or otp_send then otp (level 2, only from level 1).", post(verify))
            .takes::<crate::features::interactions::model::VerifyRequest>().gives::<crate::features::interactions::model::VerifyResponse>(200).may(&[409, 422, 423, 501, 502]),
        route("POST", "/api/v1/interactions/{id}/end", Signed(InteractionsHandle), "Ends one of my interactions: reveals and operations stop at once.", post(end_interaction))
            .gives::<crate::features::interactions::model::InteractionView>(200).may(&[409]),
        route("POST", "/api/v1/interactions/{id}/wrap-up", Signed(InteractionsHandle), "Wraps up one of my interactions with a disposition code from the configured list (desk.dispositions), once; an active one ends with it.", post(wrap_up))
            .takes::<super::wrap_up::WrapUpRequest>().gives::<crate::features::interactions::model::InteractionView>(200).may(&[409, 422]),
        route("GET", "/api/v1/me/interactions", Signed(InteractionsHandle), "My latest interactions, newest first, open and ended, with the level reached and the wrap-up code.", get(my_interactions))
            .gives::<Vec<super::wrap_up::InteractionSummary>>(200),
    ]
}
