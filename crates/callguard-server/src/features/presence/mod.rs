//! Agent states for the queues (SPEC C9, issue #12): ready, not ready, ringing, on call,
//! wrap-up; call offers to the desk; the edge's pick of the longest-idle agent.
pub mod api;
pub mod model;
pub mod service;
#[cfg(test)]
mod tests;
