//! Operating the server: liveness, readiness, Prometheus metrics and the OpenAPI document.

use crate::http::access::Access;
use crate::http::routes::{route, ApiRoute};
use crate::state::AppState;
use axum::extract::State;
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

async fn readyz(State(s): State<AppState>) -> Response {
    if s.readiness.ready().await {
        Json(Health {
            status: "ready".into(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "database unavailable".into(),
            }),
        )
            .into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
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
        route("GET", "/readyz", Public, "Readiness: the database answers.", get(readyz)).gives::<Health>(200).gives_also::<Health>(503),
        route("GET", "/metrics", Public, "Prometheus metrics (text exposition format).", get(metrics)),
        route("GET", "/api/v1/openapi.json", Public, "This document.", get(openapi_json)),
    ]
}
