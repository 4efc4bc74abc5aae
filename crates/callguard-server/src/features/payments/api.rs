//! Payments over the JSON API: start, read, list, cancel, refund; and the customer's own list.

use super::model::{NewPayment, NewRefund, PaymentList, PaymentView, RefundView};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute, Params};
use crate::principal::{customer_of, Principal};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use callguard_core::Permission;

pub async fn start_payment(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewPayment>,
) -> Result<(StatusCode, Json<PaymentView>), Error> {
    Ok((StatusCode::CREATED, Json(s.payments.start(&p, r).await?)))
}

pub async fn get_payment(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, Error> {
    Ok(Json(s.payments.get(&p, &id).await?))
}

pub async fn list_payments(
    State(s): State<AppState>,
    p: Principal,
    q: Params,
) -> Result<Json<PaymentList>, Error> {
    Ok(Json(match q.get("interaction_id") {
        Some(i) => s.payments.of_interaction(&p, i).await?,
        None => s.payments.recent(&p).await?,
    }))
}

pub async fn cancel_payment(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, Error> {
    Ok(Json(s.payments.cancel(&p, &id).await?))
}

pub async fn refund_payment(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewRefund>,
) -> Result<(StatusCode, Json<RefundView>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(s.payments.refund(&p, &id, r).await?),
    ))
}

pub async fn my_payments(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<PaymentList>, Error> {
    let customer = customer_of(&p)?;
    Ok(Json(s.payments.of_customer(&customer).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("POST", "/api/v1/payments", Signed(PaymentsStart), "Asks the caller of my active, verified interaction (policy level, default 2) to pay: by a single-use link sent by SMS or e-mail, or by keypad. The card never reaches the agent.", post(start_payment))
            .takes::<NewPayment>().gives::<PaymentView>(201).may(&[404, 409, 422, 501, 502]),
        route("GET", "/api/v1/payments", Signed(PaymentsRead), "Payments, newest first: an agent's own (or of one of their interactions with `interaction_id`), everyone's for a supervisor.", get(list_payments))
            .gives::<PaymentList>(200).query("interaction_id", "string").may(&[404]),
        route("GET", "/api/v1/payments/{id}", Signed(PaymentsRead), "One payment: status, amount, brand and last four once known; never the card.", get(get_payment))
            .gives::<PaymentView>(200),
        route("POST", "/api/v1/payments/{id}/cancel", Signed(PaymentsStart), "Cancels my payment request while it is not being charged.", post(cancel_payment))
            .gives::<PaymentView>(200).may(&[409]),
        route("POST", "/api/v1/payments/{id}/refunds", Signed(PaymentsRefund), "Refunds an authorised payment in full or in part (supervisors).", post(refund_payment))
            .takes::<NewRefund>().gives::<RefundView>(201).may(&[409, 422, 501, 502]),
        route("GET", "/api/v1/portal/payments", Signed(Portal), "My payments (amount, status, brand and last four).", get(my_payments))
            .gives::<PaymentList>(200),
    ]
}
