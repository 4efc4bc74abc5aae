//! The HTTP front end's plumbing: the router with its layers (access check per route, security
//! headers, body limits, metrics), the route table's shape, problem+json, the OpenAPI document
//! and TLS. It knows no feature: the features hand it their routes.

pub mod access;
pub mod connection;
pub mod csrf;
pub mod openapi;
pub mod problem;
pub mod proxied;
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
pub fn router(
    state: AppState,
    api: Vec<ApiRoute>,
    pages: Vec<PageRoute>,
    page_error: access::PageError,
) -> Router {
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
            with_access(handler, state.clone(), access, Surface::Page(page_error)),
        );
    }
    // A browser asking for a page that does not exist gets a page; everything else problem+json.
    let not_found = move |headers: axum::http::HeaderMap| async move {
        if wants_html(&headers) {
            page_error(&headers, &Error::NotFound, None)
        } else {
            Error::NotFound.into_response()
        }
    };
    app.fallback(not_found)
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(close_when_body_unread))
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

/// An HTTP/1.1 connection whose request body was not read to the end (refused before reading:
/// no session, wrong content type, too large) cannot carry another request, so hyper closes it
/// after the answer. Without saying so, a client that sends its next request on it at once
/// races the close and sees the connection reset. This answers `Connection: close` in exactly
/// that case, so clients open a new connection instead.
async fn close_when_body_unread(req: Request, next: Next) -> Response {
    use axum::body::{Body, HttpBody};
    use futures_util::stream::{self, StreamExt};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    if req.version() >= axum::http::Version::HTTP_2 || req.body().is_end_stream() {
        return next.run(req).await;
    }
    let read_to_end = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let flag = Arc::clone(&read_to_end);
    let watched = body.into_data_stream().chain(stream::poll_fn(move |_| {
        flag.store(true, Ordering::Relaxed);
        std::task::Poll::Ready(None)
    }));
    let mut resp = next
        .run(Request::from_parts(parts, Body::from_stream(watched)))
        .await;
    if !read_to_end.load(Ordering::Relaxed) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
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
    // A page with a stricter policy of its own (the payment page) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, header::CONTENT_SECURITY_POLICY, CSP);
    }
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

/// Whether the client asked for HTML (a browser navigating), not JSON.
fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn connection_header(app: Router, body: &'static str) -> Option<String> {
        let req = Request::post("/")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(body))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        resp.headers()
            .get(header::CONNECTION)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn an_answer_that_leaves_the_body_unread_closes_the_connection_openly() {
        let refuses = Router::new()
            .route("/", post(|| async { Error::Unauthenticated }))
            .layer(middleware::from_fn(close_when_body_unread));
        assert_eq!(
            connection_header(refuses.clone(), "{\"a\": 1}")
                .await
                .as_deref(),
            Some("close")
        );
        assert_eq!(connection_header(refuses, "").await, None);
        let reads = Router::new()
            .route("/", post(|body: String| async move { body }))
            .layer(middleware::from_fn(close_when_body_unread));
        assert_eq!(connection_header(reads, "{\"a\": 1}").await, None);
    }
}
