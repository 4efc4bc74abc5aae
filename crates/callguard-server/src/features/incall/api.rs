//! The agent's keypad payment inside their live call over the API: take it by keypad (the call
//! goes secure), cancel the capture. A thin layer over [`super::service::LiveCalls`].

use crate::error::Error;
use crate::features::keypad::model::CaptureView;
use crate::http::access::Access;
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use callguard_core::Permission;

async fn take_by_keypad(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CaptureView>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(s.live_calls.take_by_keypad(&p, &id).await?),
    ))
}

async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<CaptureView>, Error> {
    Ok(Json(s.live_calls.cancel(&p, &id).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::PaymentsStart;
    vec![
        route("POST", "/api/v1/payments/{id}/keypad/in-call", Signed(PaymentsStart), "Takes my keypad payment on the live call it was asked in: the capture starts and the call goes secure (the caller's keys go to the capture, never to me, a listener or the recording; the recording pauses). Refused when the call is not bridged on this server or a capture runs.", post(take_by_keypad))
            .gives::<CaptureView>(201).may(&[403, 404, 409, 501]),
        route("POST", "/api/v1/payments/{id}/keypad/in-call/cancel", Signed(PaymentsStart), "Cancels the running keypad capture of my payment: the payment is cancelled and the call leaves secure mode.", post(cancel))
            .gives::<CaptureView>(200).may(&[403, 404, 409]),
    ]
}
