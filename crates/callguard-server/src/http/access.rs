//! The one place where requests are authenticated and authorised. Every route is registered
//! with an [`Access`] from the route table; this middleware resolves the principal (bearer token
//! or session cookie), checks the role against the permission table, and refuses otherwise.
//! A route without an entry cannot exist, so the default is deny.

use crate::error::Error;
use crate::principal::{Principal, RequestContext};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use callguard_core::Permission;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// Name of the session cookie. `__Host-` binds it to this exact origin, Secure, Path=/.
pub const SESSION_COOKIE: &str = "__Host-callguard_session";
/// Name of the anti-forgery cookie (double-submit).
pub const CSRF_COOKIE: &str = "__Host-callguard_csrf";
/// Header carrying the anti-forgery token on API calls authenticated by cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in itself, health, the OpenAPI document).
    Public,
    /// A signed-in person whose role holds the permission.
    Signed(Permission),
}

/// Renders a refusal as a page (the page kit's error page), given to the router by whoever
/// builds it, so that this module needs no page kit.
pub type PageError = fn(&axum::http::HeaderMap, &Error, Option<&Principal>) -> Response;

/// How a denial is shown: API routes answer problem+json; pages send a signed-out visitor to
/// sign-in (coming back afterwards) and show any other refusal as a page.
#[derive(Clone, Copy)]
pub enum Surface {
    Api,
    Page(PageError),
}

/// The sign-in page for `uri`, with the path to come back to after signing in (a GET of one
/// of our own paths only).
fn sign_in_for(uri: &axum::http::Uri, method: &Method) -> String {
    let sign_in = if uri.path().starts_with("/portal") {
        "/portal/login"
    } else {
        "/login"
    };
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    if *method != Method::GET || safe_return_path(back).is_none() {
        return sign_in.to_owned();
    }
    let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    format!("{sign_in}?next={next}")
}

/// `path` when it is a path on this server (`/…`, not `//host/…`, no backslash or control
/// character): the only kind of place a sign-in or a form may send the browser on to.
#[must_use]
pub fn safe_return_path(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.len() <= 2000;
    ok.then_some(path)
}

/// Reads a cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The bearer token of `Authorization: Bearer TOKEN`, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The middleware. `access` comes from the route table.
pub async fn authorize(
    State(state): State<AppState>,
    access: Access,
    surface: Surface,
    mut req: Request,
    next: Next,
) -> Response {
    let Access::Signed(permission) = access else {
        return next.run(req).await;
    };
    // Customers sign in at the portal's own page, staff at theirs.
    let sign_in = sign_in_for(req.uri(), req.method());
    let page_headers = req.headers().clone();
    let deny = |e: Error, p: Option<&Principal>| -> Response {
        match (surface, &e) {
            (Surface::Page(_), Error::Unauthenticated) => Redirect::to(&sign_in).into_response(),
            (Surface::Page(render), _) => render(&page_headers, &e, p),
            (Surface::Api, _) => e.into_response(),
        }
    };
    let headers = req.headers();
    let (token, by_cookie) = match bearer(headers) {
        Some(t) => (Some(t.to_owned()), false),
        None => (cookie(headers, SESSION_COOKIE).map(str::to_owned), true),
    };
    let Some(token) = token else {
        return deny(Error::Unauthenticated, None);
    };
    // A cookie is sent by the browser on its own, so a state-changing API call made with it
    // must also prove it came from our page (double-submit token in a header).
    if by_cookie
        && matches!(surface, Surface::Api)
        && !matches!(*req.method(), Method::GET | Method::HEAD)
    {
        let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let expected = cookie(req.headers(), CSRF_COOKIE);
        if !crate::http::csrf::tokens_match(sent, expected) {
            return deny(Error::Csrf, None);
        }
    }
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    // The telephony edge's service account: its own token, never a session.
    let signed_in = if !by_cookie && token.starts_with(callguard_core::token::SERVICE_TOKEN_PREFIX)
    {
        state.edge_tokens.authenticate(&token, source).await
    } else {
        state.identity.authenticate(&token, source).await
    };
    let principal = match signed_in {
        Ok(p) => p,
        Err(e) => return deny(e, None),
    };
    if !principal.user.role.allows(permission) {
        tracing::info!(user_id = %principal.user.id, role = %principal.user.role, ?permission, "denied");
        return deny(Error::Forbidden, Some(&principal));
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(Error::Unauthenticated)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        Ok(RequestContext { source, user_agent })
    }
}

/// JSON body extractor whose failures are problem+json and never echo the values sent.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(match rejection {
                r if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    Error::PayloadTooLarge
                }
                r if crate::http::connection::caused_by_slow_body(&r) => Error::BadRequest(
                    "the body did not arrive within the time allowed; send it in one go".into(),
                ),
                JsonRejection::MissingJsonContentType(_) => Error::BadRequest(
                    "send the body as JSON with `Content-Type: application/json`".into(),
                ),
                JsonRejection::JsonSyntaxError(_) => {
                    Error::BadRequest("the body is not valid JSON".into())
                }
                JsonRejection::JsonDataError(e) => {
                    Error::BadRequest(describe_data_error(&e.body_text()))
                }
                _ => Error::BadRequest("the body could not be read".into()),
            }),
        }
    }
}

/// Names the offending field for unknown or missing fields; otherwise a generic message, because
/// serde's own messages may quote the value that was sent (a password, a code).
fn describe_data_error(text: &str) -> String {
    for (marker, what) in [
        ("unknown field `", "unknown field"),
        ("missing field `", "missing field"),
    ] {
        if let Some(rest) = text.split(marker).nth(1) {
            if let Some(name) = rest.split('`').next() {
                if name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return format!("{what} `{name}`");
                }
            }
        }
    }
    "the body does not have the expected fields and types; see /api/v1/openapi.json".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_name_fields_but_never_values() {
        assert_eq!(
            describe_data_error("Failed: unknown field `admin`, expected one of `a`"),
            "unknown field `admin`"
        );
        assert_eq!(
            describe_data_error("missing field `password` at line 1"),
            "missing field `password`"
        );
        let msg = describe_data_error("invalid type: string \"hunter2-secret\", expected u32");
        assert!(!msg.contains("hunter2"));
    }

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; __Host-callguard_session=cgs_x; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("cgs_x"));
        assert_eq!(cookie(&h, CSRF_COOKIE), None);
    }

    #[test]
    fn only_paths_of_this_server_are_places_to_return_to() {
        for ok in ["/app", "/audit?action=auth.setup", "/admin/users"] {
            assert_eq!(safe_return_path(ok), Some(ok));
        }
        for evil in [
            "//evil.example",
            "https://evil.example/x",
            "/\\evil.example",
            "evil",
            "",
            "/\u{0}x",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_path(evil), None, "{evil}");
        }
    }

    #[test]
    fn a_signed_out_visit_is_sent_to_its_own_sign_in_with_the_way_back() {
        let uri: axum::http::Uri = "/audit?action=x".parse().unwrap();
        assert_eq!(
            sign_in_for(&uri, &Method::GET),
            "/login?next=%2Faudit%3Faction%3Dx"
        );
        let portal: axum::http::Uri = "/portal".parse().unwrap();
        assert_eq!(
            sign_in_for(&portal, &Method::GET),
            "/portal/login?next=%2Fportal"
        );
        assert_eq!(sign_in_for(&uri, &Method::POST), "/login");
    }
}
