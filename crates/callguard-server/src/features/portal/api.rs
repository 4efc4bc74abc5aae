//! The customer portal over the JSON API (customer accounts only): my data in the clear, a
//! one-time code to read to an agent, who looked at my data, my export, my requests. Sign-in is
//! [`crate::features::signin`]'s, for the portal audience.

use crate::error::Error;
use crate::features::gdpr::service::{AccessEntry, MyData, MyExport, RequestKind, Requests};
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Json;
use callguard_core::{rfc3339, Permission};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub async fn me(State(s): State<AppState>, p: Principal) -> Result<Json<MyData>, Error> {
    Ok(Json(s.gdpr.read_mine(&p).await?))
}

pub async fn export(State(s): State<AppState>, p: Principal) -> Result<Json<MyExport>, Error> {
    Ok(Json(s.gdpr.export_mine(&p).await?))
}

/// A one-time verification code to read to an agent.
#[derive(Serialize, JsonSchema)]
pub struct VerificationCode {
    /// 8 characters, shown as `ABCD-EFGH`; works once, for 10 minutes, and only for you.
    pub code: String,
    pub expires_at: String,
}

pub async fn verification_code(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<VerificationCode>, Error> {
    let (code, expires) = s.interactions.issue_portal_code_for(&p).await?;
    Ok(Json(VerificationCode {
        code: code.expose().clone(),
        expires_at: rfc3339(expires),
    }))
}

#[derive(Serialize, JsonSchema)]
pub struct AccessLog {
    pub entries: Vec<AccessEntry>,
}

pub async fn my_access_log(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<AccessLog>, Error> {
    Ok(Json(AccessLog {
        entries: s.gdpr.my_access_log(&p).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub kind: RequestKind,
}

pub async fn make_request(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewRequest>,
) -> Result<Json<Requests>, Error> {
    Ok(Json(s.gdpr.request_mine(&p, r.kind).await?))
}
/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/portal/me", Signed(Portal), "My data, in the clear (only I see it unmasked).", get(me))
            .gives::<MyData>(200).may(&[404]),
        route("POST", "/api/v1/portal/verification-code", Signed(Portal), "A one-time code to read to an agent on a call (single use, 10 minutes).", post(verification_code))
            .gives::<VerificationCode>(200).may(&[404]),
        route("GET", "/api/v1/portal/access-log", Signed(Portal), "Who looked at or changed my data: when, which agent, which field, why.", get(my_access_log))
            .gives::<AccessLog>(200).may(&[404]),
        route("GET", "/api/v1/portal/export", Signed(Portal), "Everything stored about me (GDPR art. 15), with notes and the access log.", get(export))
            .gives::<MyExport>(200).may(&[404]),
        route("POST", "/api/v1/portal/requests", Signed(Portal), "Ask for export or erasure (erasure then needs two compliance officers).", post(make_request))
            .takes::<NewRequest>().gives::<Requests>(200).may(&[404, 409]),
    ]
}
