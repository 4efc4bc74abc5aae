//! Outbound compliance over the JSON API: the pre-call check, the registry's status, the internal
//! Do-Not-Call list and the consent ledger.

use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{number, route, ApiRoute, Params};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use callguard_core::{Permission, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DncCheckRequest {
    /// Up to 10,000 numbers, E.164 (`+12025550123`) or ten NANP digits.
    pub numbers: Vec<String>,
    /// When the calls would start, RFC 3339 (`2025-07-15T13:30:00Z`); default now. Lets a dialer
    /// plan: calling windows are checked in each called party's local time at this instant.
    #[serde(default)]
    pub at: Option<String>,
    /// Consent required for this purpose (e.g. `telemarketing`): numbers without an active
    /// `call` consent for it get `no_consent`. Leave out for calls that need no consent.
    #[serde(default)]
    pub purpose: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct DncResult {
    /// The number as asked.
    pub number: String,
    pub allowed: bool,
    /// Why not, in this order: `national_dnc`, `internal_dnc`, `no_consent`,
    /// `outside_calling_hours`; or `invalid_number` alone.
    pub reasons: Vec<crate::features::dnc::registry::Reason>,
}

#[derive(Serialize, JsonSchema)]
pub struct DncCheckResponse {
    /// One result per number, in the order asked.
    pub results: Vec<DncResult>,
}

#[derive(Serialize, JsonSchema)]
pub struct DncRegistryStatus {
    pub registry: Option<crate::features::dnc::registry::RegistryInfo>,
    /// Seconds since the registry in force was imported.
    pub age_seconds: Option<i64>,
    /// True when older than 31 days (the FTC's scrub interval): import a fresh copy.
    pub stale: bool,
}

async fn dnc_check(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<DncCheckRequest>,
) -> Result<Json<DncCheckResponse>, Error> {
    let checked = s
        .dnc_checks
        .check(r.numbers, r.at.as_deref(), r.purpose.as_deref())
        .await?;
    let results = checked
        .into_iter()
        .map(|c| DncResult {
            number: c.number,
            allowed: c.allowed,
            reasons: c.reasons,
        })
        .collect();
    Ok(Json(DncCheckResponse { results }))
}

async fn dnc_status(State(s): State<AppState>) -> Json<DncRegistryStatus> {
    let info = s.dnc.current().map(|r| r.info.clone());
    let age = info.as_ref().map(|i| callguard_core::now() - i.imported_at);
    Json(DncRegistryStatus {
        stale: age.is_none_or(|a| a > crate::features::dnc::registry::MAX_AGE_SECONDS),
        registry: info,
        age_seconds: age,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// The number that asked not to be called: E.164, or ten NANP digits.
    pub number: String,
    /// Where the request came from: `agent`, `portal`, `complaint`, `email`, `letter`, `web_form`.
    pub source: String,
}

#[derive(Serialize, JsonSchema)]
pub struct InternalDncList {
    /// Newest first; numbers masked.
    pub entries: Vec<crate::features::dnc::lists::InternalDncView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The number the consent is for: E.164, or ten NANP digits.
    pub number: String,
    /// What it covers, e.g. `telemarketing` (lower-case word).
    pub purpose: String,
    /// `call` or `sms`.
    pub channel: String,
    /// How it was given: `web_form`, `portal`, `agent`, `paper`, `email`.
    pub source: String,
    /// The evidence: the signed form's text or a URL to it (up to 2,000 characters). Sealed;
    /// never shown by the API.
    pub evidence: Secret<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ConsentList {
    /// Newest first; numbers masked.
    pub consents: Vec<crate::features::dnc::lists::ConsentView>,
}

async fn add_opt_out(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<OptOutRequest>,
) -> Result<
    (
        StatusCode,
        Json<crate::features::dnc::lists::InternalDncView>,
    ),
    Error,
> {
    let (entry, added) = s
        .dnc_lists
        .opt_out(&p.actor(), &r.number, &r.source)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)))
}

async fn list_opt_outs(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<InternalDncList>, Error> {
    let limit = number(&q, "limit", Some(100))?;
    Ok(Json(InternalDncList {
        entries: s.dnc_lists.internal_list(limit).await?,
    }))
}

async fn grant_consent(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<ConsentRequest>,
) -> Result<(StatusCode, Json<crate::features::dnc::lists::ConsentView>), Error> {
    let consent = crate::features::dnc::lists::NewConsent {
        number: &r.number,
        purpose: &r.purpose,
        channel: &r.channel,
        source: &r.source,
        evidence: r.evidence.expose(),
    };
    let view = s.dnc_lists.grant_consent(&p.actor(), &consent).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_consents(State(s): State<AppState>, q: Params) -> Result<Json<ConsentList>, Error> {
    let limit = number(&q, "limit", Some(100))?;
    let consents = s
        .dnc_lists
        .consents(q.get("number").map(String::as_str), limit)
        .await?;
    Ok(Json(ConsentList { consents }))
}

async fn revoke_consent(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::features::dnc::lists::ConsentView>, Error> {
    Ok(Json(s.dnc_lists.revoke_consent(&p.actor(), &id).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("POST", "/api/v1/dnc/check", Signed(DncCheck), "Checks up to 10,000 numbers before calling: the national registry, the internal DNC list, consent when a `purpose` is named (no active `call` consent for it: `no_consent`), and the calling window in each called party's local time at `at` (default now). Results in the order asked; garbage is `invalid_number`, never allowed.", post(dnc_check))
            .takes::<DncCheckRequest>().gives::<DncCheckResponse>(200).limit(1 << 20).may(&[422, 501]),
        route("POST", "/api/v1/dnc/internal", Signed(DncListManage), "Puts a number on the company's own Do-Not-Call list, effective for the very next check (audited). 201 when added, 200 when it was on the list already. Opt-outs are not removed through the API.", post(add_opt_out))
            .takes::<OptOutRequest>().gives::<crate::features::dnc::lists::InternalDncView>(201)
            .gives_also::<crate::features::dnc::lists::InternalDncView>(200).may(&[422]),
        route("GET", "/api/v1/dnc/internal", Signed(DncListRead), "The internal Do-Not-Call list, newest first, numbers masked; `limit` ≤ 1000 (default 100).", get(list_opt_outs))
            .gives::<InternalDncList>(200).query("limit", "integer").may(&[422]),
        route("POST", "/api/v1/consents", Signed(ConsentManage), "Records TCPA express written consent (number, purpose, channel, source, sealed evidence), effective for the very next check (audited).", post(grant_consent))
            .takes::<ConsentRequest>().gives::<crate::features::dnc::lists::ConsentView>(201).may(&[422]),
        route("GET", "/api/v1/consents", Signed(ConsentRead), "Consent records, newest first, numbers masked; `number` narrows to one number, `limit` ≤ 1000 (default 100).", get(list_consents))
            .gives::<ConsentList>(200).query("number", "string").query("limit", "integer").may(&[422]),
        route("POST", "/api/v1/consents/{id}/revoke", Signed(ConsentManage), "Revokes a consent, effective for the very next check (audited); 422 when revoked already.", post(revoke_consent))
            .gives::<crate::features::dnc::lists::ConsentView>(200).may(&[422]),
        route("GET", "/api/v1/dnc/status", Signed(DncStatus), "The national registry in force: size, checksum, source, age, and whether it is stale (> 31 days).", get(dnc_status))
            .gives::<DncRegistryStatus>(200),
    ]
}
