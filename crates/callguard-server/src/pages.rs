//! Server-rendered web pages.
use crate::access::Access;
use crate::AppState;
use axum::routing::MethodRouter;

pub fn routes() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
    Vec::new()
}
