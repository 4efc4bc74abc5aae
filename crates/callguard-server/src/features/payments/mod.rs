//! Card payments that never touch the agent (SPEC C7): payment requests bound to a verified
//! interaction, pay-by-link with its hosted page, keypad capture for the telephony edge, and the
//! gateway clients that turn card details into a token and a charge.

pub mod api;
pub mod charge;
pub mod gateway;
pub mod link;
pub mod model;
pub mod pages;
pub mod refunds;
pub mod service;
pub mod tamper;
