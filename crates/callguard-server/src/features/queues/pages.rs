//! The wallboard.

use crate::http::routes::PageRoute;

/// This feature's pages.
pub fn routes() -> Vec<PageRoute> {
    Vec::new()
}
