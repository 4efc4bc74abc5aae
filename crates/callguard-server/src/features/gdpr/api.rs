//! Data-subject requests over the JSON API, for compliance officers: pending requests, export,
//! erasure requested by one officer and approved by another.

use super::service::{ErasureStatus, ExportReceipt, PendingRequests};
use crate::error::Error;
use crate::http::access::Access;
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use callguard_core::Permission;

pub async fn pending_requests(State(s): State<AppState>) -> Result<Json<PendingRequests>, Error> {
    Ok(Json(s.gdpr.pending_requests().await?))
}

pub async fn compliance_export(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ExportReceipt>, Error> {
    Ok(Json(s.gdpr.compliance_export(&p, &id).await?))
}

pub async fn request_erasure(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ErasureStatus>, Error> {
    Ok(Json(s.gdpr.request_erasure(&p, &id).await?))
}

pub async fn approve_erasure(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ErasureStatus>, Error> {
    Ok(Json(s.gdpr.approve_erasure(&p, &id).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/gdpr/requests", Signed(CustomersGdpr), "Customers with pending export or erasure requests.", get(pending_requests))
            .gives::<PendingRequests>(200),
        route("POST", "/api/v1/customers/{id}/export", Signed(CustomersGdpr), "Handles an export request: recorded and delivered to the customer's portal; compliance sees field names only.", post(compliance_export))
            .gives::<ExportReceipt>(200).may(&[409]),
        route("POST", "/api/v1/customers/{id}/erasure", Signed(CustomersGdpr), "Requests erasure (first of two compliance officers).", post(request_erasure))
            .gives::<ErasureStatus>(200).may(&[409]),
        route("POST", "/api/v1/customers/{id}/erasure/approve", Signed(CustomersGdpr), "Approves erasure (a second, different officer): destroys the data key; only an audit tombstone stays.", post(approve_erasure))
            .gives::<ErasureStatus>(200).may(&[409]),
    ]
}
