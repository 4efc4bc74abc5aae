//! DTMF masking for secure keypad payments (SPEC C9, PCI DSS's "DTMF masking"): the caller's
//! audio toward the agent (and anyone listening with them) runs a fixed delay behind the caller
//! ([`DELAY`], 60 ms), long enough for the Goertzel detector to confirm a digit before the
//! digit's first sample leaves the line. From the tone's onset until [`TAIL`] (40 ms) after its
//! end the audio is replaced: by one flat 400 Hz tone of [`FLAT`] samples, the same for every
//! key, then silence, or by silence only ([`MaskStyle`]). No DTMF frequency, no key-dependent
//! length or pitch reaches the other side; everything else passes unchanged, only delayed.
//!
//! Pure signal processing: the SIP edge feeds the caller's frames in and sends what comes out.

use super::g711::Law;
use super::goertzel::{ToneDetector, ToneEvent};
use std::collections::VecDeque;

/// Samples the audio runs behind the caller (60 ms at 8 kHz). The detector confirms a digit at
/// most 409 samples after its onset (its run of equal windows: 2 windows of 205, one hop of
/// 102 apart, plus one more hop at the worst alignment), so the onset is still in the line.
pub const DELAY: usize = 480;
/// Samples masked after a digit's end (40 ms).
pub const TAIL: u64 = 320;
/// Length of the flat tone that replaces a digit (80 ms): the same for every key.
pub const FLAT: u64 = 640;
/// Frequency of the flat tone: a single tone far from the DTMF rows (697 Hz and up).
const FLAT_HZ: f32 = 400.0;
/// Level of the flat tone (about −18 dBFS).
const FLAT_LEVEL: f32 = 4000.0;

/// What replaces a digit's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskStyle {
    /// One flat tone of fixed length (the agent hears that a key was pressed), then silence.
    #[default]
    Tone,
    /// Silence only.
    Silence,
}

impl MaskStyle {
    /// `tone` or `silence`, as in the setting `sip.dtmf_mask`.
    pub fn parse(text: &str) -> Option<MaskStyle> {
        match text.trim() {
            "tone" => Some(MaskStyle::Tone),
            "silence" => Some(MaskStyle::Silence),
            _ => None,
        }
    }
}

/// A span of masked samples: from `from`, until `until` (open while the digit sounds).
#[derive(Debug, Clone, Copy)]
struct Span {
    from: u64,
    until: Option<u64>,
}

/// The delay line and masker of one direction of one call (caller → agent).
pub struct Masker {
    detector: ToneDetector,
    style: MaskStyle,
    /// Samples in the line; the front is sample number `out_pos` of the input stream minus
    /// [`DELAY`] (the line starts full of silence).
    line: VecDeque<i16>,
    /// Input sample number of the next sample to leave the line (negative while the initial
    /// silence leaves: kept as an offset).
    out_pos: u64,
    spans: VecDeque<Span>,
    /// Output sample number where the last span ended (for [`Masker::quiet_for`]).
    last_end: u64,
    events: Vec<ToneEvent>,
    /// Buffers of [`Masker::push_g711`]: the decoded input and the masked output.
    decoded: (Vec<i16>, Vec<i16>),
    /// Digits confirmed (for the edge's counts; never which key).
    masked: u64,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("style", &self.style)
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// A masker whose line starts with [`DELAY`] samples of silence.
    pub fn new(style: MaskStyle) -> Self {
        let mut line = VecDeque::with_capacity(DELAY + 480);
        line.extend(std::iter::repeat_n(0i16, DELAY));
        Masker {
            detector: ToneDetector::new(),
            style,
            line,
            out_pos: 0,
            spans: VecDeque::new(),
            last_end: 0,
            events: Vec::new(),
            decoded: (Vec::with_capacity(320), Vec::with_capacity(320)),
            masked: 0,
        }
    }

    /// Digits masked so far.
    pub fn digits_masked(&self) -> u64 {
        self.masked
    }

    /// Takes the caller's samples and appends as many (delayed, masked) to `out`.
    pub fn push(&mut self, samples: &[i16], out: &mut Vec<i16>) {
        self.line.extend(samples.iter().copied());
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.detector.push(samples, &mut events);
        for e in &events {
            match *e {
                ToneEvent::Started { onset, .. } => {
                    self.masked += 1;
                    // Onsets are input sample numbers; the output runs DELAY behind, so input
                    // sample n leaves as output sample n + DELAY.
                    let from = onset + DELAY as u64;
                    match self.spans.back_mut() {
                        // Overlapping the previous digit's tail: one span.
                        Some(s) if s.until.is_none_or(|u| u >= from) => s.until = None,
                        _ => self.spans.push_back(Span { from, until: None }),
                    }
                }
                ToneEvent::Ended { end, .. } => {
                    if let Some(s) = self.spans.back_mut() {
                        let until = end + DELAY as u64 + TAIL;
                        s.until = Some(s.until.map_or(until, |u| u.max(until)));
                    }
                }
            }
        }
        self.events = events;
        for _ in 0..samples.len() {
            let Some(v) = self.line.pop_front() else {
                break;
            };
            let n = self.out_pos;
            self.out_pos += 1;
            out.push(self.sample_at(n, v));
        }
    }

    /// The output sample number `n` whose original is `v`: `v`, or the replacement inside a
    /// masked span.
    fn sample_at(&mut self, n: u64, v: i16) -> i16 {
        while let Some(s) = self.spans.front() {
            match s.until {
                Some(u) if u <= n => {
                    self.last_end = u;
                    self.spans.pop_front();
                }
                _ => break,
            }
        }
        let Some(s) = self.spans.front() else {
            return v;
        };
        if n < s.from {
            return v;
        }
        let k = n - s.from;
        match self.style {
            MaskStyle::Tone if k < FLAT => flat_tone(k),
            _ => 0,
        }
    }

    /// G.711 in (`from` law) and out (`to` law): as [`Masker::push`].
    pub fn push_g711(&mut self, from: Law, codes: &[u8], to: Law, out: &mut Vec<u8>) {
        let (mut decoded, mut masked) = std::mem::take(&mut self.decoded);
        decoded.clear();
        masked.clear();
        decoded.extend(codes.iter().map(|&c| from.decode(c)));
        self.push(&decoded, &mut masked);
        out.extend(masked.iter().map(|&s| to.encode(s)));
        self.decoded = (decoded, masked);
    }

    /// Whether no digit sounds or is being masked, and the output has been clear of masking
    /// for at least `samples`: the line holds no digit audio any more.
    pub fn quiet_for(&self, samples: u64) -> bool {
        self.detector.sounding().is_none()
            && self.spans.is_empty()
            && self.out_pos >= self.last_end + samples
    }
}

/// Sample `k` of the flat replacement tone (5 ms ramps at both ends, no click).
fn flat_tone(k: u64) -> i16 {
    const RAMP: u64 = 40;
    let ramp = if k < RAMP {
        k as f32 / RAMP as f32
    } else if k + RAMP > FLAT {
        (FLAT - k) as f32 / RAMP as f32
    } else {
        1.0
    };
    let phase = 2.0 * std::f32::consts::PI * FLAT_HZ * k as f32 / super::SAMPLE_RATE as f32;
    (FLAT_LEVEL * ramp * phase.sin()) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Key;

    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const PAD: &str = "123A456B789C*0#D";

    fn tone(c: char, samples: usize, phase0: usize) -> Vec<i16> {
        let k = PAD.find(c).unwrap();
        let (lo, hi) = (ROWS[k / 4], COLS[k % 4]);
        (phase0..phase0 + samples)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let v = (2.0 * std::f32::consts::PI * lo * t).sin()
                    + (2.0 * std::f32::consts::PI * hi * t).sin();
                (v * 0.35 * 16000.0) as i16
            })
            .collect()
    }

    /// Speech-like audio: a 110–160 Hz voiced source through three vowel formants, with a
    /// syllable envelope (4 per second). Deterministic.
    fn speech(samples: usize, start: usize) -> Vec<i16> {
        (start..start + samples)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let f0 = 135.0 + 25.0 * (2.0 * std::f32::consts::PI * 1.3 * t).sin();
                let mut v = 0.0;
                for h in 1..25 {
                    let f = f0 * h as f32;
                    let formant = |c: f32, w: f32| (-(f - c) * (f - c) / (2.0 * w * w)).exp();
                    let a = formant(700.0, 120.0)
                        + 0.6 * formant(1200.0, 150.0)
                        + 0.3 * formant(2500.0, 200.0);
                    v += a * (2.0 * std::f32::consts::PI * f * t).sin() / h as f32;
                }
                let env = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin().abs();
                (v * env * 5000.0) as i16
            })
            .collect()
    }

    fn keys_in(samples: &[i16]) -> Vec<Key> {
        let mut d = ToneDetector::new();
        let mut ev = Vec::new();
        d.push(samples, &mut ev);
        d.finish(&mut ev);
        ev.iter()
            .filter_map(|e| match *e {
                ToneEvent::Started { key, .. } => Some(key),
                ToneEvent::Ended { .. } => None,
            })
            .collect()
    }

    /// Runs `input` through a masker in 20 ms frames; the output, as long as the input.
    fn mask(style: MaskStyle, input: &[i16]) -> (Vec<i16>, u64) {
        let mut m = Masker::new(style);
        let mut out = Vec::with_capacity(input.len());
        for frame in input.chunks(160) {
            m.push(frame, &mut out);
        }
        (out, m.digits_masked())
    }

    #[test]
    fn no_key_is_detectable_after_masking_at_any_alignment_in_either_style() {
        for style in [MaskStyle::Tone, MaskStyle::Silence] {
            for (i, c) in PAD.chars().enumerate() {
                // Shift each key against the detector's windows and the 20 ms frames.
                let lead = 800 + (i * 37) % 160;
                let mut input = speech(lead, 0);
                input.extend(tone(c, 800, 0));
                input.extend(std::iter::repeat_n(0, 800));
                input.extend(tone(c, 400, 0));
                input.extend(speech(2400, 5000));
                assert_eq!(keys_in(&input).len(), 2, "the input holds the key twice");
                let (out, masked) = mask(style, &input);
                assert_eq!(masked, 2, "both presses confirmed");
                assert!(
                    keys_in(&out).is_empty(),
                    "no key detectable in the masked output ({style:?}, key #{i})"
                );
                // Not even the tone's energy: the key's row frequency is gone from the span.
                let k = PAD.find(c).unwrap();
                let span = &out[lead + DELAY..lead + DELAY + 800];
                assert!(
                    crate::media::goertzel::tone_share(span, ROWS[k / 4]) < 0.01,
                    "the row tone is removed ({style:?}, key #{i})"
                );
            }
        }
    }

    #[test]
    fn speech_like_audio_passes_unchanged_only_delayed() {
        let input = speech(8000 * 3, 0);
        assert!(keys_in(&input).is_empty());
        let (out, masked) = mask(MaskStyle::Tone, &input);
        assert_eq!(masked, 0);
        assert_eq!(out.len(), input.len());
        assert!(
            out[..DELAY].iter().all(|&s| s == 0),
            "the line starts silent"
        );
        assert_eq!(
            &out[DELAY..],
            &input[..input.len() - DELAY],
            "delayed by DELAY"
        );
    }

    #[test]
    fn every_key_is_replaced_by_the_same_audio_so_neither_pitch_nor_length_tells_it() {
        let masked_of = |c: char, style| {
            let mut input = vec![0i16; 1000];
            input.extend(tone(c, 800, 0));
            input.extend(vec![0i16; 2000]);
            mask(style, &input).0
        };
        for style in [MaskStyle::Tone, MaskStyle::Silence] {
            let first = masked_of('1', style);
            for c in PAD.chars().skip(1) {
                assert_eq!(
                    masked_of(c, style),
                    first,
                    "key replaced identically ({style:?})"
                );
            }
        }
        let out = masked_of('5', MaskStyle::Tone);
        let loud: Vec<usize> = (0..out.len()).filter(|&i| out[i] != 0).collect();
        let spread = (loud[loud.len() - 1] - loud[0] + 1) as u64;
        assert!(
            spread > FLAT - 20 && spread <= FLAT,
            "one flat tone of FLAT samples: {spread}"
        );
        let flat = &out[loud[0]..=loud[loud.len() - 1]];
        assert!(crate::media::goertzel::tone_share(flat, FLAT_HZ) > 0.9);
        let silent = masked_of('5', MaskStyle::Silence);
        assert!(silent.iter().all(|&s| s == 0), "silence style: nothing");
    }

    #[test]
    fn g711_in_and_out_keeps_the_frame_length_and_masks() {
        let mut input = speech(1600, 0);
        input.extend(tone('7', 800, 0));
        input.extend(speech(1600, 3000));
        let codes: Vec<u8> = input.iter().map(|&s| Law::Alaw.encode(s)).collect();
        let mut m = Masker::new(MaskStyle::Silence);
        let mut out = Vec::new();
        for frame in codes.chunks(160) {
            let before = out.len();
            m.push_g711(Law::Alaw, frame, Law::Ulaw, &mut out);
            assert_eq!(out.len() - before, frame.len());
        }
        let decoded: Vec<i16> = out.iter().map(|&c| Law::Ulaw.decode(c)).collect();
        assert!(keys_in(&decoded).is_empty());
        assert!(m.quiet_for(0), "the digit is over and out of the line");
        assert!(!m.quiet_for(8000), "but not for a second yet");
    }
}
