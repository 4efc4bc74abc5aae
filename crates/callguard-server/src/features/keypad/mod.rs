//! Keypad card capture (SPEC C7, issue 11 item 4): the caller types the card on the phone
//! keypad, the telephony edge streams the key events here one field at a time, and the card is
//! checked field by field, tokenised at the gateway and dropped. The capture state machine is
//! in [`service`], usable in-process by the SIP edge; [`api`] is the thin HTTP layer the edge
//! (or a test playing it) calls with the telephony service account's token ([`token`]).

pub mod api;
pub mod model;
pub mod service;
pub mod token;
