//! The call screen's buttons for a keypad payment: "Take card payment by keypad" and "Cancel
//! card capture" (forms posted from the payment panel), back to the call screen.

use crate::http::access::Access;
use crate::state::AppState;
use crate::web::{csrf_forms, Checked, PageRoute};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct PaymentForm {
    csrf: String,
    /// The call screen to go back to.
    interaction: String,
}
csrf_forms!(PaymentForm);

/// The call screen of `interaction` when it is an id (letters, digits and `-` only).
fn back_to(interaction: &str) -> String {
    if !interaction.is_empty()
        && interaction.len() <= 64
        && interaction
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        format!("/desk/interactions/{interaction}#payments")
    } else {
        "/desk".to_owned()
    }
}

async fn take(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
    Path(id): Path<String>,
    Checked(f): Checked<PaymentForm>,
) -> Response {
    match s.live_calls.take_by_keypad(&p, &id).await {
        Ok(_) => Redirect::to(&back_to(&f.interaction)).into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

async fn cancel(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
    Path(id): Path<String>,
    Checked(f): Checked<PaymentForm>,
) -> Response {
    match s.live_calls.cancel(&p, &id).await {
        Ok(_) => Redirect::to(&back_to(&f.interaction)).into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use callguard_core::Permission::PaymentsStart;
    use Access::Signed;
    vec![
        (
            "/desk/payments/{id}/keypad",
            Signed(PaymentsStart),
            axum::routing::post(take),
        ),
        (
            "/desk/payments/{id}/keypad/cancel",
            Signed(PaymentsStart),
            axum::routing::post(cancel),
        ),
    ]
}
