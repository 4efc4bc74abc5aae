//! The customer vault over the JSON API: register, read masked, search, reveal one field.

use super::service::{CustomerView, NewCustomer, RevealReason};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use callguard_core::vault::model::Field;
use callguard_core::Permission;
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
) -> Result<CustomerQuery, Error> {
    q.map(|Query(q)| q).map_err(|_| {
        Error::BadRequest("query parameters: `phone` (E.164) and `interaction_id` only".into())
    })
}

pub async fn create_customer(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewCustomer>,
) -> Result<(StatusCode, Json<CreatedCustomer>), Error> {
    let id = s.vault.create(&p.actor(), r).await?;
    Ok((StatusCode::CREATED, Json(CreatedCustomer { id })))
}

pub async fn get_customer(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    q: Result<Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CustomerView>, Error> {
    let q = query(q)?;
    Ok(Json(
        s.vault.read(&p, &id, q.interaction_id.as_deref()).await?,
    ))
}

pub async fn search_customers(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CustomerList>, Error> {
    let q = query(q)?;
    let phone = q
        .phone
        .ok_or_else(|| Error::BadRequest("query parameter `phone` (E.164) is required".into()))?;
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
) -> Result<Json<RevealResponse>, Error> {
    let value = s
        .interactions
        .reveal(&p, &id, r.field, r.reason, &r.interaction_id)
        .await?;
    Ok(Json(RevealResponse {
        field: r.field,
        value,
    }))
}
/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("POST", "/api/v1/customers", Signed(CustomersCreate), "Registers a customer; every field is validated (E.164, PESEL/NIP/REGON checksums, PESEL birth date) and sealed. 422 lists every invalid field; 409 `duplicate-national-id` when another customer holds the national id.", post(create_customer))
            .takes::<crate::features::vault::service::NewCustomer>().gives::<CreatedCustomer>(201).may(&[409, 422]),
        route("GET", "/api/v1/customers", Signed(CustomersRead), "Search by `phone` (E.164), masked; `interaction_id` ties the look-up to a call (agents without one raise an alert).", get(search_customers))
            .gives::<CustomerList>(200).query_required("phone", "string").query("interaction_id", "string").may(&[422]),
        route("GET", "/api/v1/customers/{id}", Signed(CustomersRead), "A customer, masked; `interaction_id` as for search.", get(get_customer))
            .gives::<crate::features::vault::service::CustomerView>(200).query("interaction_id", "string"),
        route("POST", "/api/v1/customers/{id}/reveal", Signed(CustomersReveal), "Reveals one field during the agent's active interaction with this customer at level 1 or more, for a listed reason; audited, rate-limited.", post(reveal))
            .takes::<RevealRequest>().gives::<RevealResponse>(200).may(&[409, 429]),
    ]
}
