//! Agents' SIP credentials for their softphones (SPEC C9).
pub mod service;
