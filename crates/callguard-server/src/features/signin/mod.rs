//! Sign-in (SPEC C1): first-time setup, password then second factor, sessions, re-authentication,
//! passkeys, for staff and for portal customers.
pub(crate) mod address;
pub mod api;
pub mod liveness;
pub mod login;
pub mod pages;
pub mod service;
pub mod setup;
pub mod throttle_alarm;
