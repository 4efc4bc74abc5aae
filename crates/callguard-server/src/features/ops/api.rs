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

async fn readyz(State(s): State<AppState>) -> Response {
    match s.readiness.ready().await {
        Ok(()) => Json(Health {
            status: "ready".into(),
        })
        .into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: why.as_str().into(),
            }),
        )
            .into_response(),
    }
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
        route("GET", "/readyz", Public, "Readiness for a load balancer: the database answers and the node is not draining.", get(readyz)).gives::<Health>(200).gives_also::<Health>(503),
        route("GET", "/metrics", Public, "Prometheus metrics (text exposition format), for addresses on `metrics.allow` (default 127.0.0.1 and ::1) or with `Authorization: Bearer` the `metrics.token`.", get(metrics)).may(&[401]),
        route("GET", "/api/v1/openapi.json", Public, "This document.", get(openapi_json)),
    ]
}
