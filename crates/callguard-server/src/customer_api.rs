//! JSON handlers of the vault and interactions (customers, reveals, verification, operations).
//! Thin: extract, call [`crate::vault::Vault`] or [`crate::calls::Calls`], map. Their routes are
//! listed in the one route table in `api.rs`.

use crate::access::ApiJson;
use crate::calls::{
    InteractionView, NewInteraction, OperationRequest, OperationResponse, VerifyRequest,
    VerifyResponse,
};
use crate::error::ApiError;
use crate::identity::Principal;
use crate::vault::{CustomerView, NewCustomer, RevealReason};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callguard_core::vault::model::Field;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, JsonSchema)]
pub struct CreatedCustomer {
    /// The customer's id (12 digits; also their portal sign-in name).
    pub id: String,
}

#[derive(Serialize, JsonSchema)]
pub struct CustomerList {
    /// Customers with that phone number, masked (at most 20).
    pub customers: Vec<CustomerView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    /// One of `full_name`, `phones`, `emails`, `national_id`, `date_of_birth`, `address`,
    /// `services`, `notes`.
    pub field: Field,
    /// Why (a listed reason; free text never enters the audit log).
    pub reason: RevealReason,
    /// The agent's active interaction with this customer, verified to level 1 or more.
    pub interaction_id: String,
}

#[derive(Serialize, JsonSchema)]
pub struct RevealResponse {
    pub field: Field,
    /// The field in the clear: a string, a list, or an object (address, national id).
    pub value: serde_json::Value,
}

/// Query of `GET /api/v1/customers` and `GET /api/v1/customers/{id}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Search by this E.164 number (list endpoint only).
    pub phone: Option<String>,
    /// The interaction this look-up belongs to; agents looking without one raise an alert.
    pub interaction_id: Option<String>,
}

fn query(
    q: Result<Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<CustomerQuery, ApiError> {
    q.map(|Query(q)| q).map_err(|_| {
        ApiError::BadRequest("query parameters: `phone` (E.164) and `interaction_id` only".into())
    })
}

pub async fn create_customer(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewCustomer>,
) -> Result<(StatusCode, Json<CreatedCustomer>), ApiError> {
    let id = s.vault.create(&p.actor(), r).await?;
    Ok((StatusCode::CREATED, Json(CreatedCustomer { id })))
}

pub async fn get_customer(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    q: Result<Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CustomerView>, ApiError> {
    let q = query(q)?;
    Ok(Json(
        s.vault.read(&p, &id, q.interaction_id.as_deref()).await?,
    ))
}

pub async fn search_customers(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CustomerList>, ApiError> {
    let q = query(q)?;
    let phone = q.phone.ok_or_else(|| {
        ApiError::BadRequest("query parameter `phone` (E.164) is required".into())
    })?;
    let customers = s
        .vault
        .search_phone(&p, &phone, q.interaction_id.as_deref())
        .await?;
    Ok(Json(CustomerList { customers }))
}

pub async fn reveal(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RevealRequest>,
) -> Result<Json<RevealResponse>, ApiError> {
    let value = s
        .vault
        .reveal(
            &p,
            &id,
            r.field,
            r.reason,
            &r.interaction_id,
            crate::calls::level_of,
        )
        .await?;
    Ok(Json(RevealResponse {
        field: r.field,
        value,
    }))
}

pub async fn operate(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<OperationRequest>,
) -> Result<Json<OperationResponse>, ApiError> {
    Ok(Json(s.calls.operate(&p, &id, r).await?))
}

pub async fn start_interaction(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewInteraction>,
) -> Result<(StatusCode, Json<InteractionView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.calls.start(&p, r).await?)))
}

pub async fn get_interaction(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<InteractionView>, ApiError> {
    Ok(Json(s.calls.get(&p, &id).await?))
}

pub async fn verify(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(s.calls.verify(&p, &id, r).await?))
}

pub async fn end_interaction(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<InteractionView>, ApiError> {
    Ok(Json(s.calls.end(&p, &id).await?))
}
