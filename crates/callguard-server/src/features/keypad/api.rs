//! Keypad capture over HTTPS for the telephony edge (its service account's bearer token):
//! start, key events, cancel. A thin layer over [`super::service::Keypad`].

use super::model::{CaptureView, KeyEvents};
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

async fn start_capture(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CaptureView>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(s.keypad.start(&p.actor(), &id).await?),
    ))
}

async fn send_keys(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(k): ApiJson<KeyEvents>,
) -> Result<Json<CaptureView>, Error> {
    Ok(Json(s.keypad.keys(&p.actor(), &id, &k.keys).await?))
}

async fn cancel_capture(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<CaptureView>, Error> {
    Ok(Json(s.keypad.cancel(&p.actor(), &id).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::PaymentsCapture;
    vec![
        route("POST", "/api/v1/payments/{id}/keypad", Signed(PaymentsCapture), "The telephony edge starts the keypad capture of a keypad payment in `created` (one capture per payment: a second start is refused). The caller types the card number first.", post(start_capture))
            .gives::<CaptureView>(201).may(&[404, 409, 501]),
        route("POST", "/api/v1/payments/{id}/keypad/keys", Signed(PaymentsCapture), "Key events of the running capture, in order: digits, `*` clears the field, `#` ends it. Each ended field is answered accepted or rejected (never with its digits); after the last one the card is charged and the payment's outcome answered.", post(send_keys))
            .takes::<KeyEvents>().gives::<CaptureView>(200).may(&[404, 409, 422, 502]),
        route("POST", "/api/v1/payments/{id}/keypad/cancel", Signed(PaymentsCapture), "Ends the running capture without a charge (the caller hung up): the payment is cancelled.", post(cancel_capture))
            .gives::<CaptureView>(200).may(&[404, 409]),
    ]
}
