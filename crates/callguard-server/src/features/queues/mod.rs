//! Live queue figures (SPEC C10, issue #12) fed by the telephony edge, the supervisors'
//! wallboard and `GET /api/v1/queues`.
pub mod api;
pub mod charts;
pub mod pages;
pub mod service;
