//! Compliance evidence over the JSON API, for compliance officers: the signed report, its
//! trend, manual control records and the breach register.

use super::model::{BreachView, Framework, ManualView, Report, RunView};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{number, route, ApiRoute, Params};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use callguard_core::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, JsonSchema)]
pub struct RunList {
    /// Newest first.
    pub runs: Vec<RunView>,
}

#[derive(Serialize, JsonSchema)]
pub struct ManualList {
    /// The latest record of each manual control.
    pub records: Vec<ManualView>,
}

#[derive(Serialize, JsonSchema)]
pub struct BreachList {
    /// Newest first.
    pub breaches: Vec<BreachView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewManualRecord {
    /// `access_review`, `restore_test` or `time_sync`.
    pub control: String,
    /// When it was performed: `YYYY-MM-DD`, not in the future.
    pub performed_on: String,
    /// What was done and found (1 to 2000 characters; no personal or card data).
    pub note: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBreach {
    /// What happened (1 to 2000 characters; no personal or card data).
    pub summary: String,
    /// When the breach became known (RFC 3339).
    pub detected_at: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreachClosure {
    /// When the supervisory authority was notified (RFC 3339).
    #[serde(default)]
    pub notified_at: Option<String>,
    /// Why no notice is due (instead of `notified_at`).
    #[serde(default)]
    pub no_notice_reason: Option<String>,
}

async fn report(State(s): State<AppState>, p: Principal, q: Params) -> Result<Json<Report>, Error> {
    let framework = match q.get("framework").map(String::as_str) {
        None | Some("all") => None,
        Some(f) => Some(Framework::parse(f).ok_or_else(|| {
            Error::BadRequest(
                "query parameter `framework` must be pci, gdpr, iso27001 or all".into(),
            )
        })?),
    };
    Ok(Json(s.compliance.report(&p.actor(), framework).await?.0))
}

async fn runs(State(s): State<AppState>, q: Params) -> Result<Json<RunList>, Error> {
    let limit = number(&q, "limit", Some(100))?.clamp(1, 1000);
    let runs = s.compliance.runs(limit).await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(RunView::from).collect(),
    }))
}

async fn manual(State(s): State<AppState>) -> Result<Json<ManualList>, Error> {
    let records = s.compliance.manual().await?;
    Ok(Json(ManualList {
        records: records.into_iter().map(ManualView::from).collect(),
    }))
}

async fn record_manual(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewManualRecord>,
) -> Result<(StatusCode, Json<ManualView>), Error> {
    let m = s
        .compliance
        .record_manual(&p.actor(), &r.control, &r.performed_on, &r.note)
        .await?;
    Ok((StatusCode::CREATED, Json(m.into())))
}

async fn breaches(State(s): State<AppState>) -> Result<Json<BreachList>, Error> {
    let list = s.compliance.breaches().await?;
    Ok(Json(BreachList {
        breaches: list.into_iter().map(BreachView::from).collect(),
    }))
}

async fn record_breach(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewBreach>,
) -> Result<(StatusCode, Json<BreachView>), Error> {
    let b = s
        .compliance
        .record_breach(&p.actor(), &r.summary, &r.detected_at)
        .await?;
    Ok((StatusCode::CREATED, Json(b.into())))
}

async fn close_breach(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<BreachClosure>,
) -> Result<StatusCode, Error> {
    s.compliance
        .close_breach(
            &p.actor(),
            &id,
            r.notified_at.as_deref(),
            r.no_notice_reason.as_deref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/compliance/report", Signed(ComplianceEvidence), "The live compliance report, control by control (`framework`: pci, gdpr, iso27001 or all), signed with the audit key at a named checkpoint; the run is recorded.", get(report))
            .gives::<Report>(200).query("framework", "string"),
        route("GET", "/api/v1/compliance/runs", Signed(ComplianceEvidence), "Past report runs, newest first: the pass/fail trend.", get(runs))
            .gives::<RunList>(200).query("limit", "integer"),
        route("GET", "/api/v1/compliance/manual", Signed(ComplianceEvidence), "The latest record of each manual control.", get(manual))
            .gives::<ManualList>(200),
        route("POST", "/api/v1/compliance/manual", Signed(ComplianceEvidence), "Records a manual control performed (access review, restore test, clock check).", post(record_manual))
            .takes::<NewManualRecord>().gives::<ManualView>(201).may(&[422]),
        route("GET", "/api/v1/compliance/breaches", Signed(ComplianceEvidence), "The breach register (GDPR art. 33), newest first.", get(breaches))
            .gives::<BreachList>(200),
        route("POST", "/api/v1/compliance/breaches", Signed(ComplianceEvidence), "Records a personal data breach; the authority must be notified within 72 hours of `detected_at`.", post(record_breach))
            .takes::<NewBreach>().gives::<BreachView>(201).may(&[422]),
        route("POST", "/api/v1/compliance/breaches/{id}/close", Signed(ComplianceEvidence), "Records when the authority was notified, or why no notice is due.", post(close_breach))
            .takes::<BreachClosure>().may(&[409, 422]),
    ]
}
