//! The customer vault (SPEC C3): sealed fields, blind indexes, masking and audited reveals.
pub mod api;
pub mod lookup;
pub mod questions;
pub mod record;
pub mod service;
pub mod validate;
