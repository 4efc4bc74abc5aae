//! Callguard's server: the services that hold every rule (under `features/`, one folder per
//! thing the product does), and the HTTPS front end over them (`http/` for the API's plumbing,
//! `web/` for the page kit). A feature's `service.rs` knows nothing of HTTP; its `api.rs` and
//! `pages.rs` extract, make one service call and map the result.
#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod error;
pub mod features;
pub mod hasher;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod principal;
pub mod runtime;
pub mod serve;
pub mod settings;
pub mod state;
pub mod web;

pub use features::{alerts, audit, dnc, interactions, keys, portal, signin, vault};
pub use http::{router, CSP, MAX_BODY_BYTES};
pub use runtime::Runtime;
pub use serve::{serve, serve_with, webauthn_for, FrontEnd};
pub use settings::{AuditSettings, CustomerSettings, KekSource, Settings, StartError};
pub use state::AppState;
