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
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    pub response: Option<(u16, SchemaFn)>,
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
}

/// Secrets the answer must carry in the clear (new recovery codes, shown once).
#[must_use]
pub fn exposed(codes: &[Secret<String>]) -> Vec<String> {
    codes.iter().map(|c| c.expose().clone()).collect()
}
