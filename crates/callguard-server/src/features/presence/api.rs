//! Agent states over the JSON API.

use crate::http::routes::ApiRoute;

/// This feature's API routes, each with its access rule.
pub fn routes() -> Vec<ApiRoute> {
    Vec::new()
}
