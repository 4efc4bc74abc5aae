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
