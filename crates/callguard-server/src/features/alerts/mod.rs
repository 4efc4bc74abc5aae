//! Alerts (SPEC C6): rules over the audit stream, delivery to webhooks and syslog, handling.
pub mod api;
pub mod pages;
pub mod service;
