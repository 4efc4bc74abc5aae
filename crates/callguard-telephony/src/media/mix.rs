//! Mixing for supervisor monitoring (issue #13 item 2): G.711 is decoded to linear PCM, added
//! with saturation (a loud sum clips at the i16 range rather than wrapping round into noise),
//! and encoded again. Which leg hears whom is [`Mode`]'s: listen (the supervisor hears caller
//! and agent, nobody hears the supervisor), whisper (the agent also hears the supervisor, the
//! caller does not), barge (all three hear the other two).

use super::g711::Law;
use super::FRAME_SAMPLES;
use std::collections::VecDeque;

/// How a supervisor joins a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The supervisor hears caller and agent; what the supervisor sends goes nowhere.
    Listen,
    /// The agent hears the caller and the supervisor; the caller hears only the agent.
    Whisper,
    /// Three-way: each of caller, agent and supervisor hears the other two.
    Barge,
}

impl Mode {
    /// Whether the agent hears the supervisor.
    #[must_use]
    pub fn agent_hears_supervisor(self) -> bool {
        matches!(self, Mode::Whisper | Mode::Barge)
    }

    /// Whether the caller hears the supervisor.
    #[must_use]
    pub fn caller_hears_supervisor(self) -> bool {
        self == Mode::Barge
    }

    /// The mode's name in the API and the audit log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Listen => "listen",
            Mode::Whisper => "whisper",
            Mode::Barge => "barge",
        }
    }

    /// The mode named `s`, if any.
    #[must_use]
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "listen" => Some(Mode::Listen),
            "whisper" => Some(Mode::Whisper),
            "barge" => Some(Mode::Barge),
            _ => None,
        }
    }
}

/// Adds `extra` into `acc` sample by sample, saturating at the i16 range (the shorter one sets
/// the length mixed).
pub fn add_saturating(acc: &mut [i16], extra: &[i16]) {
    for (a, &b) in acc.iter_mut().zip(extra) {
        *a = a.saturating_add(b);
    }
}

/// Mixes `extra` (linear PCM) into a G.711 `payload` of `law`, in place.
pub fn mix_into_g711(payload: &mut [u8], law: Law, extra: &[i16]) {
    for (c, &b) in payload.iter_mut().zip(extra) {
        *c = law.encode(law.decode(*c).saturating_add(b));
    }
}

/// Decodes a G.711 `payload` of `law` to linear PCM.
#[must_use]
pub fn decode(payload: &[u8], law: Law) -> Vec<i16> {
    payload.iter().map(|&c| law.decode(c)).collect()
}

/// The sum of two linear frames, encoded in `law`, `FRAME_SAMPLES` long (a missing or short
/// frame counts as silence).
#[must_use]
pub fn mix_to_g711(a: &[i16], b: &[i16], law: Law) -> Vec<u8> {
    let mut acc = vec![0i16; FRAME_SAMPLES.max(a.len()).max(b.len())];
    add_saturating(&mut acc, a);
    add_saturating(&mut acc, b);
    acc.iter().map(|&s| law.encode(s)).collect()
}

/// Linear frames of one stream waiting to be mixed: at most `depth` (the newest kept), so a
/// stream that runs ahead of the one it is mixed into never builds up delay.
#[derive(Debug)]
pub struct Frames {
    depth: usize,
    frames: VecDeque<Vec<i16>>,
}

impl Frames {
    #[must_use]
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            frames: VecDeque::new(),
        }
    }

    /// Keeps `frame`, dropping the oldest when full.
    pub fn push(&mut self, frame: Vec<i16>) {
        if self.frames.len() >= self.depth {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
    }

    /// The oldest frame, if any.
    pub fn pop(&mut self) -> Option<Vec<i16>> {
        self.frames.pop_front()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::goertzel::tone_share;

    fn tone(hz: f32, amplitude: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn a_sum_past_the_i16_range_saturates_instead_of_wrapping() {
        let mut acc = vec![30_000, -30_000, 100, i16::MAX];
        add_saturating(&mut acc, &[10_000, -10_000, -300, 1]);
        assert_eq!(acc, vec![i16::MAX, i16::MIN, -200, i16::MAX]);
    }

    #[test]
    fn a_mix_of_two_g711_streams_holds_both_tones_in_either_law() {
        for law in [Law::Alaw, Law::Ulaw] {
            let a = tone(440.0, 8000.0, 1600);
            let b = tone(1600.0, 8000.0, 1600);
            let mut mixed = Vec::new();
            for (fa, fb) in a.chunks(FRAME_SAMPLES).zip(b.chunks(FRAME_SAMPLES)) {
                mixed.extend(decode(&mix_to_g711(fa, fb, law), law));
            }
            assert!(tone_share(&mixed, 440.0) > 0.3, "{law:?}");
            assert!(tone_share(&mixed, 1600.0) > 0.3, "{law:?}");
            assert!(tone_share(&mixed, 1000.0) < 0.05, "{law:?}");
        }
    }

    #[test]
    fn mixing_into_a_payload_adds_the_supervisor_and_keeps_the_speaker() {
        let law = Law::Alaw;
        let speaker = tone(440.0, 6000.0, 800);
        let mut payload: Vec<u8> = speaker.iter().map(|&s| law.encode(s)).collect();
        mix_into_g711(&mut payload, law, &tone(1600.0, 6000.0, 800));
        let heard = decode(&payload, law);
        assert!(tone_share(&heard, 440.0) > 0.3);
        assert!(tone_share(&heard, 1600.0) > 0.3);
        // Mixing silence changes nothing.
        let before: Vec<u8> = speaker.iter().map(|&s| law.encode(s)).collect();
        let mut same = before.clone();
        mix_into_g711(&mut same, law, &[0; 800]);
        assert_eq!(same, before);
    }

    #[test]
    fn a_short_or_missing_frame_mixes_as_silence() {
        let out = mix_to_g711(&[], &[], Law::Ulaw);
        assert_eq!(out, vec![Law::Ulaw.silence(); FRAME_SAMPLES]);
        let out = mix_to_g711(&[1000; 10], &[], Law::Alaw);
        assert_eq!(out.len(), FRAME_SAMPLES);
        assert_eq!(out[10..], vec![Law::Alaw.silence(); FRAME_SAMPLES - 10][..]);
    }

    #[test]
    fn only_whisper_and_barge_reach_the_agent_and_only_barge_the_caller() {
        assert!(!Mode::Listen.agent_hears_supervisor() && !Mode::Listen.caller_hears_supervisor());
        assert!(Mode::Whisper.agent_hears_supervisor() && !Mode::Whisper.caller_hears_supervisor());
        assert!(Mode::Barge.agent_hears_supervisor() && Mode::Barge.caller_hears_supervisor());
        for m in [Mode::Listen, Mode::Whisper, Mode::Barge] {
            assert_eq!(Mode::parse(m.as_str()), Some(m));
        }
        assert_eq!(Mode::parse("spy"), None);
    }

    #[test]
    fn a_frame_queue_keeps_only_the_newest_frames() {
        let mut q = Frames::new(2);
        for i in 0..5 {
            q.push(vec![i]);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(vec![3]));
        assert_eq!(q.pop(), Some(vec![4]));
        assert!(q.pop().is_none() && q.is_empty());
    }
}
