//! Operating the server: health, readiness, metrics and the OpenAPI document.
pub mod api;
pub mod service;
