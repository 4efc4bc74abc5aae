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
pub fn front_end(bound: sip::Bound) -> FrontEnd {
    Box::new(move |state, tasks| {
        state.monitoring.attach(bound.monitor());
        state.transfers.attach(bound.transfers());
        let accounts: Arc<dyn SipAccounts> =
            Arc::new(sip::registrar::IssuedCredentials(state.softphones.clone()));
        tasks.spawn(bound.run(
            state.metrics.clone(),
            state.interactions.clone(),
            state.recordings.clone(),
            accounts,
            Arc::new(sip::presence::DeskAgents {
                presence: state.presence.clone(),
                queues: state.queues.clone(),
            }),
            state.live_calls.clone(),
        ));
    })
}

/// The built-in prompts with each `<prompt-name>.wav` found in `dir` in place of its own.
pub fn load_prompts(dir: &std::path::Path) -> Result<media::prompts::PromptSet, String> {
    let mut set = media::prompts::PromptSet::builtin();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wav"))
        else {
            continue;
        };
        let Some(prompt) = media::prompts::Prompt::from_name(name) else {
            return Err(format!(
                "{} names no prompt; the names are: {}",
                path.display(),
                media::prompts::Prompt::all()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        set.load_wav_file(prompt, &path)
            .map_err(|e| e.to_string())?;
    }
    Ok(set)
}
