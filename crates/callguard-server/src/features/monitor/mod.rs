//! Supervisor listen, whisper and barge on live calls (issue #13 item 2), started from the
//! wallboard; the SIP edge adds the supervisor's softphone to the bridge.
pub mod api;
pub mod pages;
pub mod service;
#[cfg(test)]
mod tests;
