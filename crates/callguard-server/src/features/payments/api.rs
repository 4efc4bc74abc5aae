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

/// Server-sent events for one of my interactions: `event: payment` with the payment's view
/// (never the card), first for each payment it has, then whenever one changes. Ends with the
/// session that opened it, and when the server stops.
async fn payment_stream(
    State(s): State<AppState>,
    p: Principal,
    q: Params,
) -> Result<axum::response::Response, Error> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::response::IntoResponse;
    use futures_util::stream::{self, StreamExt};
    let interaction = q
        .get("interaction_id")
        .cloned()
        .ok_or_else(|| Error::BadRequest("query parameter `interaction_id` is required".into()))?;
    let rx = s.payments.subscribe();
    let now = s.payments.of_interaction(&p, &interaction).await?;
    let event = |v: &PaymentView| -> Result<Event, std::convert::Infallible> {
        Ok(Event::default()
            .event("payment")
            .data(serde_json::to_string(v).unwrap_or_default()))
    };
    let opening: Result<Event, std::convert::Infallible> = Ok(Event::default().comment("live"));
    let first = stream::iter(
        std::iter::once(opening)
            .chain(now.payments.iter().rev().map(event))
            .collect::<Vec<_>>(),
    );
    let (payments, identity, session) = (s.payments.clone(), s.identity.clone(), p.session.clone());
    let ended = identity
        .clone()
        .session_ended(p.session.clone(), s.alerts.stream_check());
    let live = stream::unfold(rx, move |mut rx| {
        let (payments, identity, session, p, interaction) = (
            payments.clone(),
            identity.clone(),
            session.clone(),
            p.clone(),
            interaction.clone(),
        );
        async move {
            loop {
                match rx.recv().await {
                    Ok(id) => {
                        if !identity.session_alive(&session).await {
                            return None;
                        }
                        match payments.get(&p, &id).await {
                            Ok(v) if v.interaction_id == interaction => return Some((v, rx)),
                            _ => continue,
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
    .map(move |v| event(&v));
    let until = futures_util::future::select(Box::pin(s.alerts.closed()), Box::pin(ended));
    Ok(Sse::new(first.chain(live).take_until(until))
        .keep_alive(KeepAlive::default())
        .into_response())
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
        route("GET", "/api/v1/payments/stream", Signed(PaymentsRead), "Live status of the payments of one of my interactions as server-sent events (`event: payment`, the payment's view; never the card).", get(payment_stream))
            .query_required("interaction_id", "string").may(&[404]),
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
