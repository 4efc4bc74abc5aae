//! Call recordings (SPEC C9): the telephony edge writes them encrypted; this feature keeps the
//! files and their key shares, lists them and plays them back to supervisors and compliance
//! officers for a listed reason, each playback audited.
pub mod api;
pub mod pages;
pub mod service;
