//! Operating the server: liveness, readiness, Prometheus metrics and the OpenAPI document.

use crate::http::access::Access;
use crate::http::routes::{route, ApiRoute};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema)]
pub struct Health {
    pub status: String,
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness, with each check behind it.
#[derive(Serialize, JsonSchema)]
pub struct Ready {
    /// `ready`, or why not: `draining`, `database unavailable`, `registry loading`.
    pub status: String,
    /// On PostgreSQL, what the audit integrator does: which node gives entries their indexes
    /// and how many wait, for how long (the `audit_integrator` check's detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrator: Option<String>,
    pub checks: Vec<ReadyCheckView>,
}

/// One readiness check.
#[derive(Serialize, JsonSchema)]
pub struct ReadyCheckView {
    /// `not_draining`, `database` or `registry_loaded` (the national DNC registry in force is
    /// loaded, or there is none).
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

async fn readyz(State(s): State<AppState>) -> Response {
    let report = s.readiness.check().await;
    let body = Ready {
        status: match report.verdict {
            Ok(()) => "ready".into(),
            Err(why) => why.as_str().into(),
        },
        integrator: report
            .checks
            .iter()
            .find(|c| c.name == "audit_integrator")
            .map(|c| c.detail.clone()),
        checks: report
            .checks
            .into_iter()
            .map(|c| ReadyCheckView {
                name: c.name.into(),
                ok: c.ok,
                detail: c.detail,
            })
            .collect(),
    };
    let status = if report.verdict.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The metrics, for a peer on `metrics.allow` or one presenting `metrics.token`.
async fn metrics(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    let bearer = crate::http::access::bearer(&headers);
    if let Err(e) = s.metrics_access.check(peer.ip(), bearer) {
        return e.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        format!(
            "{}{}",
            s.metrics.render(),
            crate::features::queues::service::prometheus(&s.queues.board(), &s.presence.counts())
        ),
    )
        .into_response()
}

async fn openapi_json(State(s): State<AppState>) -> Response {
    Json(s.openapi.as_ref().clone()).into_response()
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Public;
    
    vec![
        route("GET", "/healthz", Public, "Liveness: the process answers.", get(healthz)).gives::<Health>(200),
        route("GET", "/readyz", Public, "Readiness for a load balancer: the node is not draining, the database answers, (PostgreSQL) audit entries get their indexes within 30 s (`integrator` says which node gives them), and the national DNC registry in force is loaded. 503 when any check fails; the body lists every check.", get(readyz)).gives::<Ready>(200).gives_also::<Ready>(503),
        route("GET", "/metrics", Public, "Prometheus metrics (text exposition format), for addresses on `metrics.allow` (default 127.0.0.1 and ::1) or with `Authorization: Bearer` the `metrics.token`.", get(metrics)).may(&[401]),
        route("GET", "/api/v1/openapi.json", Public, "This document.", get(openapi_json)),
    ]
}
