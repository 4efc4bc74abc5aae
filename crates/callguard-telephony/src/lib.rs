//! The telephony edge (SPEC C9): a second front end beside the HTTPS server. It answers SIP
//! calls from configured carriers, plays the recording notice and IVR prompts, collects DTMF
//! (RFC 4733 and in-band), lets callers verify themselves by keypad through the same services
//! the desk uses, and records calls encrypted.
//!
//! - `media/`: G.711, RTP packets, RFC 4733 telephone events, the Goertzel DTMF detector,
//!   prompts. Pure signal processing, no sockets.
//! - `sip/`: the SIP endpoint (trunk access list, registrar for agents' softphones, calls).
#![forbid(unsafe_code)]

pub mod media;
pub mod sip;

use callguard_server::FrontEnd;
use sip::registrar::SipAccounts;
use std::sync::Arc;

/// The SIP edge as a front end of `callguard serve`: it runs on the server's metrics and
/// stops with the server.
#[must_use]
pub fn front_end(bound: sip::Bound, accounts: Arc<dyn SipAccounts>) -> FrontEnd {
    Box::new(move |state, tasks| {
        tasks.spawn(bound.run(state.metrics.clone(), accounts));
    })
}
