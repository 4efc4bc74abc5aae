//! The API route table's shape: every route with its access rule, summary and wire types, from
//! which the router, the access check and the OpenAPI document are all built.

use crate::error::Error;
use crate::http::access::Access;
use crate::state::AppState;
use axum::routing::MethodRouter;
use callguard_core::Secret;
use schemars::JsonSchema;

pub type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

pub fn number(q: &Params, name: &str, default: Option<u64>) -> Result<u64, Error> {
    match q.get(name) {
        Some(v) => v.parse().map_err(|_| {
            Error::BadRequest(format!(
                "query parameter `{name}` must be a non-negative integer"
            ))
        }),
        None => default
            .ok_or_else(|| Error::BadRequest(format!("query parameter `{name}` is required"))),
    }
}

/// A page route with its access rule.
pub type PageRoute = (&'static str, Access, MethodRouter<AppState>);

/// Produces a JSON Schema for a wire type, for the OpenAPI document.
pub type SchemaFn = fn(&mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema;

fn schema<T: JsonSchema>(g: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    g.subschema_for::<T>()
}

/// One API route: everything the router, the access check and the OpenAPI document need.
///
/// # Which statuses the OpenAPI document lists for a route
///
/// The document must list every status a route can answer and no other (Schemathesis checks it
/// against the running server: `crates/callguard/tests/e2e/api_schema.rs`). Most statuses
/// follow from the route's shape, and `http::openapi` adds them by itself:
///
/// | the route has | statuses added |
/// |---|---|
/// | `.gives::<T>(s)` | `s` with `T` (none: 204, or the text answers named in `openapi.rs`) |
/// | `.gives_also::<T>(s)` | `s` with `T`: a second JSON answer (`/readyz`'s 503) |
/// | `Signed(_)` access | 401 no valid session, 403 the role lacks the permission |
/// | `.takes::<T>()` (a JSON body) | 400 malformed body, 413 body too large |
/// | a `{param}` in the path | 404 no such resource (or not one you may see) |
/// | `.query(..)` parameters | 400 a parameter is malformed or missing |
///
/// Every other status the handler or the services it calls can answer — a 403 for
/// re-authentication or verification, 409 wrong state or a duplicate, 422 a value refused, 423
/// verification locked, 429 too many attempts, 501 not configured, 502 an upstream down, 503
/// busy — is declared on the route itself with `.may(&[..])`, each as an RFC 9457 problem:
///
/// ```ignore
/// route("POST", "/api/v1/customers", Signed(CustomersCreate), "…", post(create_customer))
///     .takes::<NewCustomer>().gives::<CreatedCustomer>(201).may(&[409, 422]),
/// ```
///
/// When you make a handler answer a status it did not answer before (a new `Error` variant, a
/// new refusal), add it to that route's `.may` in the same change; a status the route cannot
/// answer does not belong there. The descriptions come from `openapi::problem_description`.
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    pub response: Option<(u16, SchemaFn)>,
    /// Other JSON answers with their own schema (not problems), e.g. `/readyz`'s 503.
    pub other_responses: Vec<(u16, SchemaFn)>,
    /// Query parameters: name, JSON type (`"integer"` or `"string"`), required.
    pub query: Vec<(&'static str, &'static str, bool)>,
    /// Problem statuses the handler can answer beyond those its shape implies (see above).
    pub may: Vec<u16>,
    /// A body limit other than the default [`crate::MAX_BODY_BYTES`].
    pub body_limit: Option<usize>,
    pub handler: MethodRouter<AppState>,
}

pub fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        access,
        summary,
        request: None,
        response: None,
        other_responses: Vec::new(),
        query: Vec::new(),
        may: Vec::new(),
        body_limit: None,
        handler,
    }
}

impl ApiRoute {
    pub fn takes<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema::<T>);
        self
    }
    pub fn limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }
    pub fn gives<T: JsonSchema>(mut self, status: u16) -> Self {
        self.response = Some((status, schema::<T>));
        self
    }
    /// A second JSON answer with its own schema (not a problem document).
    pub fn gives_also<T: JsonSchema>(mut self, status: u16) -> Self {
        self.other_responses.push((status, schema::<T>));
        self
    }
    /// An optional query parameter; `kind` is its JSON type, `"integer"` (a non-negative
    /// integer, read with [`number`]) or `"string"`.
    pub fn query(mut self, name: &'static str, kind: &'static str) -> Self {
        self.query.push((name, kind, false));
        self
    }
    /// A query parameter the handler refuses to go without (400).
    pub fn query_required(mut self, name: &'static str, kind: &'static str) -> Self {
        self.query.push((name, kind, true));
        self
    }
    /// Problem statuses this handler can answer besides those its shape implies (see the
    /// type's documentation): `.may(&[409, 422])`.
    pub fn may(mut self, statuses: &[u16]) -> Self {
        self.may.extend_from_slice(statuses);
        self
    }
}

/// Secrets the answer must carry in the clear (new recovery codes, shown once).
#[must_use]
pub fn exposed(codes: &[Secret<String>]) -> Vec<String> {
    codes.iter().map(|c| c.expose().clone()).collect()
}
