//! The `/compliance` page: the live report with each control expandable to its evidence, the
//! pass/fail trend, the manual control records and the breach register, with their forms.

use super::model::{BreachView, ManualView, RunView};
use super::render;
use super::service::MANUAL_CONTROLS;
use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render as render_page, who, Checked, Flash, PageRoute, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use callguard_core::Permission;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "compliance/compliance.html")]
struct CompliancePage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    generated_at: String,
    checkpoint: String,
    summary: String,
    failing: bool,
    signature: String,
    table: String,
    trend: String,
    manual: Vec<ManualView>,
    manual_controls: Vec<(&'static str, &'static str, i64)>,
    breaches: Vec<BreachView>,
}

async fn view(s: &AppState, headers: &HeaderMap, p: &Principal, flash: Flash) -> Response {
    let Flash { error, notice } = flash;
    let c = csrf_of(headers);
    let (report, _) = match s.compliance.report(&p.actor(), None).await {
        Ok(r) => r,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let runs: Vec<RunView> = s
        .compliance
        .runs(40)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(RunView::from)
        .collect();
    let manual = s.compliance.manual().await.unwrap_or_default();
    let breaches = s.compliance.breaches().await.unwrap_or_default();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let summary = format!(
        "{} pass, {} fail, {} manual, {} not applicable",
        report.count(super::model::Status::Pass),
        report.count(super::model::Status::Fail),
        report.count(super::model::Status::Manual),
        report.count(super::model::Status::NotApplicable)
    );
    render_page(
        status,
        CompliancePage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            generated_at: report.generated_at.clone(),
            checkpoint: report
                .checkpoint
                .as_ref()
                .map_or("none yet".into(), |c| c.size.to_string()),
            summary,
            failing: report.fails(),
            signature: report
                .signature
                .as_ref()
                .map_or(String::new(), |s| s.digest.clone()),
            table: render::html_table(&report),
            trend: render::trend_svg(&runs),
            manual: manual.into_iter().map(ManualView::from).collect(),
            manual_controls: MANUAL_CONTROLS.to_vec(),
            breaches: breaches.into_iter().map(BreachView::from).collect(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    view(&s, &headers, &p, Flash::default()).await
}

#[derive(Deserialize)]
struct ManualForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    control: String,
    #[serde(default)]
    performed_on: String,
    #[serde(default)]
    note: String,
}

async fn record_manual(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<ManualForm>,
) -> Response {
    let flash = match s
        .compliance
        .record_manual(&p.actor(), &f.control, &f.performed_on, &f.note)
        .await
    {
        Ok(m) => Flash::notice(format!("Recorded {} of {}.", m.control, m.performed_on)),
        Err(e) => Flash::error(&e),
    };
    view(&s, &headers, &p, flash).await
}

#[derive(Deserialize)]
struct BreachForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    detected_at: String,
}

async fn record_breach(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<BreachForm>,
) -> Response {
    let flash = match s
        .compliance
        .record_breach(&p.actor(), &f.summary, &f.detected_at)
        .await
    {
        Ok(b) => Flash::notice(format!(
            "Breach recorded; notify the authority by {}.",
            callguard_core::rfc3339(b.detected_at + 72 * 3600)
        )),
        Err(e) => Flash::error(&e),
    };
    view(&s, &headers, &p, flash).await
}

#[derive(Deserialize)]
struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    notified_at: String,
    #[serde(default)]
    no_notice_reason: String,
}

async fn close_breach(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<CloseForm>,
) -> Response {
    let flash = match s
        .compliance
        .close_breach(
            &p.actor(),
            &id,
            given(&f.notified_at),
            given(&f.no_notice_reason),
        )
        .await
    {
        Ok(()) => Flash::notice("Breach closed."),
        Err(e) => Flash::error(&e),
    };
    view(&s, &headers, &p, flash).await
}

/// A form field, unless left empty.
fn given(t: &str) -> Option<&str> {
    Some(t.trim()).filter(|t| !t.is_empty())
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/compliance", Signed(ComplianceEvidence), get(page)),
        (
            "/compliance/manual",
            Signed(ComplianceEvidence),
            post(record_manual),
        ),
        (
            "/compliance/breaches",
            Signed(ComplianceEvidence),
            post(record_breach),
        ),
        (
            "/compliance/breaches/{id}/close",
            Signed(ComplianceEvidence),
            post(close_breach),
        ),
    ]
}

crate::web::csrf_forms!(ManualForm, BreachForm, CloseForm);
