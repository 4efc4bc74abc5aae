//! Secure mode on a bridged call (issue 13 item 1): the agent took a keypad payment of the call
//! on their desk ([`callguard_server::features::incall`]); until the capture ends
//! - the caller's telephone events are not carried to the agent's leg, and the audio toward the
//!   agent runs through the masking delay line ([`crate::media::mask`]): in-band digits are
//!   replaced before they leave ([`SecureMedia`], used by the session's media loop);
//! - the recording pauses (reason `payment`) and resumes by itself afterwards;
//! - each key the caller presses goes to the keypad capture in memory (as a [`Secret`]); the
//!   caller hears a prompt per field, the retry prompt on a rejection, and the outcome;
//! - `*` restarts a field (the capture's rule), the capture's timeout, the agent's cancel or the
//!   caller hanging up end it ([`serve`]).
//!
//! SIP INFO DTMF never reaches the agent: the edge is a back-to-back user agent and relays no
//! SIP request from the caller's dialog to the agent's.

use super::ivr::Line;
use super::session::{Command, Heard};
use crate::media::g711::Law;
use crate::media::mask::{MaskStyle, Masker};
use crate::media::prompts::Prompt;
use crate::media::rtp::{RtpHeader, RtpPacket};
use crate::media::{Key, FRAME_SAMPLES};
use callguard_core::Secret;
use callguard_server::features::incall::service::{LiveCommand, LiveLine};
use callguard_server::features::keypad::model::{CaptureState, CaptureView, Field, Verdict};
use callguard_server::principal::Actor;
use std::time::Duration;

/// Output samples without a digit before secure mode may end once the capture has (200 ms): the
/// tail of the last key's tone and its RFC 4733 end packets stay off the agent's leg and the
/// recording.
const DRAIN: u64 = 1600;

/// How often the glue looks whether the capture still runs (the server's timer or a cancel
/// from elsewhere may have ended it).
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// The media side of secure mode, inside the session's loop.
pub struct SecureMedia {
    masker: Masker,
    ending: bool,
    /// Masked payload and the packet rebuilt around it.
    masked: Vec<u8>,
    packet: Vec<u8>,
    /// The stream prompts are played in toward the caller while bridged.
    prompt: RtpHeader,
}

impl SecureMedia {
    /// Secure mode starts, masking in `style`.
    pub fn new(style: MaskStyle) -> Self {
        Self {
            masker: Masker::new(style),
            ending: false,
            masked: Vec::with_capacity(FRAME_SAMPLES),
            packet: Vec::with_capacity(12 + FRAME_SAMPLES),
            prompt: RtpHeader {
                marker: true,
                payload_type: 0,
                sequence: rand::random(),
                timestamp: rand::random(),
                ssrc: rand::random(),
            },
        }
    }

    /// The capture is over: secure mode ends once the line is clear of digits.
    pub fn end(&mut self) {
        self.ending = true;
    }

    /// Secure again before the line ran clear (a new capture): it simply goes on.
    pub fn go_on(&mut self) {
        self.ending = false;
    }

    /// Whether secure mode is over (ended, and no digit audio left in the line).
    pub fn done(&self) -> bool {
        self.ending && self.masker.quiet_for(DRAIN)
    }

    /// The caller's `packet` as it may go toward the agent: its audio delayed and masked, in a
    /// packet of the same header; `None` for anything else (telephone events are consumed).
    pub fn caller_packet(&mut self, packet: &RtpPacket<'_>, codec: u8) -> Option<RtpPacket<'_>> {
        if packet.payload_type != codec {
            return None;
        }
        let law = Law::from_payload_type(codec).unwrap_or(Law::Alaw);
        self.masked.clear();
        self.masker
            .push_g711(law, packet.payload, law, &mut self.masked);
        self.packet.clear();
        RtpHeader {
            marker: packet.marker,
            payload_type: packet.payload_type,
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            ssrc: packet.ssrc,
        }
        .write(&self.masked, &mut self.packet)
        .ok()?;
        RtpPacket::parse(&self.packet).ok()
    }

    /// A prompt frame (in the caller's law `law`) as a packet of the agent's `codec`, for the
    /// relay toward the caller to stamp into the caller's stream.
    pub fn prompt_packet(&mut self, frame: &[u8], law: Law, codec: u8) -> Option<RtpPacket<'_>> {
        let to = Law::from_payload_type(codec).unwrap_or(Law::Alaw);
        self.masked.clear();
        self.masked
            .extend(frame.iter().map(|&c| law.transcode_to(to, c)));
        self.prompt.payload_type = codec;
        self.packet.clear();
        self.prompt.write(&self.masked, &mut self.packet).ok()?;
        self.prompt.marker = false;
        self.prompt.sequence = self.prompt.sequence.wrapping_add(1);
        self.prompt.timestamp = self.prompt.timestamp.wrapping_add(frame.len() as u32);
        RtpPacket::parse(&self.packet).ok()
    }
}

/// The prompt that asks for `field`.
fn ask_for(field: Field) -> Prompt {
    match field {
        Field::Number => Prompt::CardNumber,
        Field::Expiry => Prompt::CardExpiry,
        Field::Cvc => Prompt::CardCode,
        Field::PostalCode => Prompt::CardPostalCode,
    }
}

/// What the caller hears after a key: each rejected field's retry prompt, then the prompt of
/// the field to type now, or the outcome. Nothing while a field is being typed.
fn prompts_after(view: &CaptureView) -> Vec<Prompt> {
    match view.state {
        CaptureState::Submitted => return vec![Prompt::CardDone],
        CaptureState::Cancelled => return vec![Prompt::CardCancelled],
        CaptureState::Collecting => {}
    }
    let mut p = Vec::new();
    if view.results.is_empty() {
        return p;
    }
    if view.results.iter().any(|r| r.result == Verdict::Rejected) {
        p.push(Prompt::CardRetry);
    }
    if let Some(f) = view.field {
        p.push(ask_for(f));
    }
    p
}

/// The capture running on the call: its payment. Dropped while still armed (the bridge ended
/// under it: the agent hung up, or the call failed), it cancels the capture in the background, so
/// no capture outlives its call.
struct Running {
    payment_id: String,
    keypad: std::sync::Arc<callguard_server::features::keypad::service::Keypad>,
    actor: Actor,
    armed: bool,
}

impl Running {
    /// The capture ended by itself: nothing to cancel.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.armed || !self.keypad.is_capturing(&self.payment_id) {
            return;
        }
        let (keypad, actor, id) = (
            self.keypad.clone(),
            self.actor.clone(),
            std::mem::take(&mut self.payment_id),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = keypad.cancel(&actor, &id).await {
                    tracing::info!(error = %e, "the keypad capture of an ended call could not be cancelled");
                }
            });
        }
    }
}

/// The in-call side of a bridged call until the caller's media ends: secure mode on the
/// server's word, keys to the capture, prompts to the caller, and the end of the capture.
pub async fn serve(line: &mut Line, mut live: LiveLine, style: MaskStyle, actor: Actor) {
    let mut running: Option<Running> = None;
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            heard = line.heard.recv() => match heard {
                None => {
                    if let Some(r) = running.take() {
                        // The caller hung up: the capture is cancelled and its digits dropped.
                        let _ = live.keypad().cancel(&actor, &r.payment_id).await;
                        r.disarm();
                    }
                    return;
                }
                Some(Heard::Played) => {}
                Some(Heard::Key(key)) => {
                    let Some(r) = &running else { continue };
                    let Some(view) = key_to_capture(&live, &actor, &r.payment_id, key).await else {
                        continue;
                    };
                    let prompts = prompts_after(&view);
                    if !prompts.is_empty() {
                        let _ = line.commands.send(Command::Interrupt);
                        let _ = line.commands.send(Command::Play(prompts));
                    }
                    if view.state != CaptureState::Collecting {
                        tracing::info!(outcome = ?view.state, "keypad capture in the call ended");
                        if let Some(r) = running.take() {
                            r.disarm();
                        }
                        let _ = line.commands.send(Command::Unsecure);
                    }
                }
            },
            cmd = live.commands.recv() => match cmd {
                Some(LiveCommand::Secure { payment_id }) if running.is_none() => {
                    tracing::info!("the call goes secure for a keypad payment");
                    running = Some(Running {
                        payment_id,
                        keypad: live.keypad().clone(),
                        actor: actor.clone(),
                        armed: true,
                    });
                    let _ = line.commands.send(Command::Secure(style));
                    let _ = line.commands.send(Command::Play(vec![Prompt::CardNumber]));
                }
                Some(LiveCommand::Cancelled { payment_id })
                    if running.as_ref().is_some_and(|r| r.payment_id == payment_id) =>
                {
                    tracing::info!("the agent cancelled the keypad capture in the call");
                    if let Some(r) = running.take() {
                        r.disarm();
                    }
                    leave(line, Prompt::CardCancelled);
                }
                Some(LiveCommand::Secure { payment_id }) => {
                    // One capture per call at a time: a second one is cancelled at once (the
                    // agent's desk shows it cancelled), never left running without a line.
                    tracing::info!("a second keypad capture on a call in secure mode is cancelled");
                    let _ = live.keypad().cancel(&actor, &payment_id).await;
                }
                _ => {}
            },
            _ = check.tick(), if running.is_some() => {
                if running.as_ref().is_some_and(|r| !live.keypad().is_capturing(&r.payment_id)) {
                    tracing::info!("the keypad capture in the call ended on the server (timeout or cancel)");
                    if let Some(r) = running.take() {
                        r.disarm();
                    }
                    leave(line, Prompt::CardCancelled);
                }
            }
        }
    }
}

/// Leaves secure mode with `prompt` to the caller.
fn leave(line: &Line, prompt: Prompt) {
    let _ = line.commands.send(Command::Interrupt);
    let _ = line.commands.send(Command::Play(vec![prompt]));
    let _ = line.commands.send(Command::Unsecure);
}

/// Hands one key to the capture (A–D are not card keys and are dropped); its answer, or
/// nothing when the capture refused it (it ended meanwhile: the periodic check notices).
async fn key_to_capture(
    live: &LiveLine,
    actor: &Actor,
    payment_id: &str,
    key: Key,
) -> Option<CaptureView> {
    let c = key.as_char();
    if !(c.is_ascii_digit() || c == '*' || c == '#') {
        return None;
    }
    let keys = Secret::new(c.to_string());
    match live.keypad().keys(actor, payment_id, &keys).await {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::info!(error = %e, "a key of the caller was not taken by the capture");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_server::features::keypad::model::FieldResult;

    fn view(state: CaptureState, field: Option<Field>, results: Vec<FieldResult>) -> CaptureView {
        CaptureView {
            payment_id: "p".into(),
            state,
            field,
            digits: 0,
            brand: None,
            results,
            seconds_left: 100,
            ended_because: None,
            payment: None,
        }
    }

    fn result(field: Field, result: Verdict) -> FieldResult {
        FieldResult {
            field,
            result,
            reason: None,
            attempts_left: 2,
        }
    }

    #[test]
    fn the_caller_is_prompted_per_field_told_to_retry_and_told_the_outcome() {
        let typing = view(CaptureState::Collecting, Some(Field::Number), vec![]);
        assert!(prompts_after(&typing).is_empty(), "no prompt per digit");
        let accepted = view(
            CaptureState::Collecting,
            Some(Field::Expiry),
            vec![result(Field::Number, Verdict::Accepted)],
        );
        assert_eq!(prompts_after(&accepted), vec![Prompt::CardExpiry]);
        let rejected = view(
            CaptureState::Collecting,
            Some(Field::Cvc),
            vec![result(Field::Cvc, Verdict::Rejected)],
        );
        assert_eq!(
            prompts_after(&rejected),
            vec![Prompt::CardRetry, Prompt::CardCode]
        );
        let restarted = view(
            CaptureState::Collecting,
            Some(Field::Number),
            vec![result(Field::Number, Verdict::Restarted)],
        );
        assert_eq!(prompts_after(&restarted), vec![Prompt::CardNumber]);
        assert_eq!(
            prompts_after(&view(CaptureState::Submitted, None, vec![])),
            vec![Prompt::CardDone]
        );
        assert_eq!(
            prompts_after(&view(CaptureState::Cancelled, None, vec![])),
            vec![Prompt::CardCancelled]
        );
    }

    #[test]
    fn while_secure_telephone_events_are_consumed_and_audio_is_delayed() {
        let mut s = SecureMedia::new(MaskStyle::Silence);
        let event = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 1,
            timestamp: 160,
            ssrc: 9,
        }
        .to_packet(&[4, 10, 0, 160])
        .unwrap();
        assert!(s
            .caller_packet(&RtpPacket::parse(&event).unwrap(), 8)
            .is_none());
        let voice: Vec<u8> = (0..160u16).map(|i| (i % 120) as u8 | 0x80).collect();
        let audio = RtpHeader {
            payload_type: 8,
            ..RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: 2,
                timestamp: 320,
                ssrc: 9,
            }
        }
        .to_packet(&voice)
        .unwrap();
        let p = s
            .caller_packet(&RtpPacket::parse(&audio).unwrap(), 8)
            .unwrap();
        assert_eq!((p.sequence, p.timestamp, p.ssrc), (2, 320, 9));
        assert_eq!(p.payload.len(), 160);
        assert_ne!(
            p.payload,
            &voice[..],
            "the first frame out is the line's silence"
        );
        assert!(!s.done(), "not ended");
        s.end();
        assert!(!s.done(), "the line must run clear first");
    }
}
