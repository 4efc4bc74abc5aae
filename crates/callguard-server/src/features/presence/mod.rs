//! Agent states for the queues (SPEC C9, issue #12): ready, not ready, ringing, on call,
//! wrap-up; the desk's state button and call offers; the edge's pick of the longest-idle agent.
pub mod api;
pub mod pages;
pub mod service;
