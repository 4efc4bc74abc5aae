//! The HTTP front end's plumbing: the router with its layers (access check per route, security
//! headers, body limits, metrics), the route table's shape, problem+json, the OpenAPI document
//! and TLS. It knows no feature: the features hand it their routes.

pub mod access;
pub mod connection;
pub mod csrf;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod tls;

use crate::error::Error;
use crate::http::routes::PageRoute;
use crate::state::AppState;
use access::{Access, Surface};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use routes::ApiRoute;
use std::time::Instant;

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole application: API and pages, each route behind its access check, with security
/// headers, body limits and metrics on everything.
pub fn router(state: AppState, api: Vec<ApiRoute>, pages: Vec<PageRoute>) -> Router {
    let mut app = Router::new();
    for r in api {
        // A route may accept more than the default body size (a batch of numbers to check).
        let handler = match r.body_limit {
            Some(bytes) => r.handler.layer(DefaultBodyLimit::max(bytes)),
            None => r.handler,
        };
        app = app.route(
            r.path,
            with_access(handler, state.clone(), r.access, Surface::Api),
        );
    }
    for (path, access, handler) in pages {
        app = app.route(
            path,
            with_access(handler, state.clone(), access, Surface::Page),
        );
    }
    app.fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn with_access(
    handler: axum::routing::MethodRouter<AppState>,
    state: AppState,
    access: Access,
    surface: Surface,
) -> axum::routing::MethodRouter<AppState> {
    handler.route_layer(middleware::from_fn_with_state(
        state,
        move |s, req, next| access::authorize(s, access, surface, req, next),
    ))
}

async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    // The route template, never the raw path or query: those may carry identifiers.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    state.metrics.observe_request(&method, &route, status, secs);
    tracing::debug!(%method, %route, status, ms = secs * 1000.0, "request");
    resp
}

/// Content-Security-Policy for every answer: no inline script, nothing from other hosts.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await.into_response();
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if is_static {
        set(h, header::CACHE_CONTROL, "public, max-age=3600");
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}
