//! Card payments that never touch the agent (SPEC C7): payment requests bound to a verified
//! interaction, pay-by-link, keypad capture for the telephony edge, and the gateway clients
//! that turn card details into a token and a charge.

pub mod gateway;
