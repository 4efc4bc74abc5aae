//! The customer vault (SPEC C3): sealed fields, blind indexes, masking and audited reveals.
pub mod api;
pub mod service;
