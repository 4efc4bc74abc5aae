//! Data-subject rights (GDPR): export, access log, erasure with four eyes.
pub mod api;
pub mod pages;
pub mod service;
