//! Outbound compliance (SPEC C8): the national registry, the internal list, consent, calling
//! hours, and the one verdict that the API, the scrub and the dialer all use.
pub mod api;
pub mod lists;
pub mod pages;
pub mod registry;
pub mod service;
