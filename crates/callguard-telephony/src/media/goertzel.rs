//! In-band DTMF detection on 8 kHz linear PCM with the Goertzel algorithm: windows of 205
//! samples every 102 samples, each scored at the eight DTMF frequencies with exact-frequency
//! coefficients. A window names a key when its energy is above a floor, the strongest row and
//! column tones each stand 8 dB over the rest of their group, the twist is within −4..+8 dB, the
//! two tones carry at least 35 % of the window's energy and 80 % of the energy of the part they
//! cover (`PURITY`), and the column tone has no second harmonic above −20 dB (speech has one; a
//! keyed tone does not). Two equal windows in a row whose tone lasts long enough
//! (`CONFIRM_COVERAGE`) confirm a digit; two empty windows end it. This accepts tones within
//! ±1.5 % of the nominal frequency and 30 ms or longer, and rejects ±3 % and 20 ms tones,
//! speech and single tones.
//!
//! Each digit is reported with its onset and end as sample positions, both on the safe side
//! (the onset no later and the end no earlier than the tone), so that masking can replace
//! exactly that span of audio.

use super::g711::Law;
use super::{Key, SAMPLE_RATE};

/// Samples in one analysis window (25.6 ms).
pub const WINDOW: usize = 205;
/// Samples between the starts of two windows.
pub const HOP: usize = 102;
/// Equal windows in a row that confirm a digit, if their tone adds up to `CONFIRM_COVERAGE`.
const CONFIRM: usize = 2;
/// Empty windows in a row that end a digit.
const RELEASE: usize = 2;
/// Mean square level below which a window is silence (an RMS of 100 of 32768).
const ENERGY_FLOOR: f32 = (WINDOW as f32) * 100.0 * 100.0;
/// 8 dB: the strongest tone of a group over the next one.
const GROUP_MARGIN: f32 = 6.31;
/// Twist limits (row power over column power): −4 dB and +8 dB.
const TWIST_MIN: f32 = 0.398;
const TWIST_MAX: f32 = 6.31;
/// The two tones' share of the window's energy.
const TONE_SHARE: f32 = 0.35;
/// The least share of the energy of the part of the window the tone covers that the two tones
/// must hold, each measured at the best of its nominal frequency and 1.2 % either side (so that
/// off-frequency tones are not under-measured). Keyed tones measured 0.92 or more, alone or next
/// to speech; speech that passed every other test ("talk-off") mostly 0.5–0.8. Without this
/// test, espeak-ng speech in five voices gave 7 false digits in 18 minutes at 17 alignments.
const PURITY: f32 = 0.8;
/// The most power the column tone's second harmonic may have, relative to the tone (−20 dB).
/// Keyed tones are clean; speech that happens to pass the other tests has harmonics (measured:
/// tones at most 0.003, the speech windows that passed everything else 0.02–0.05).
const COL_HARMONIC: f32 = 0.01;
/// The least tone, in samples, that the two confirming windows must hold together (windows
/// overlap, so a sample can count twice). Two windows 102 apart that both name a key hold at
/// most 263 samples of a 20 ms tone and, at the best alignment, at least 326 of a 30 ms one.
/// Measured over every alignment and key (see the tests), the estimate below read 234–287 for
/// 20 ms tones and 328–369 for 30 ms ones; the threshold sits between. Three windows in a row,
/// as often used, cannot tell the two apart: a 30 ms tone covers three windows well enough only
/// at some alignments.
const CONFIRM_COVERAGE: f32 = 308.0;
/// Blocks a window is cut into to measure the tone's power per sample.
const BLOCKS: usize = 5;
const BLOCK: usize = WINDOW / BLOCKS;
/// Blocks this close to the loudest one measure the tone's power.
const STRONG_BLOCK: f32 = 0.5;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// What the detector reports while audio streams through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneEvent {
    /// A digit is confirmed; it sounds from `onset` (sample position from the start of the
    /// stream) and is still sounding.
    Started {
        /// The key.
        key: Key,
        /// The first sample that may belong to the tone.
        onset: u64,
    },
    /// The digit stopped; the tone lay within `onset..end`.
    Ended {
        /// The key.
        key: Key,
        /// As in `Started`.
        onset: u64,
        /// One past the last sample that may belong to the tone.
        end: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Sounding {
    key: Key,
    onset: u64,
    end: u64,
}

/// A streaming in-band DTMF detector for one direction of one call.
pub struct ToneDetector {
    coefficients: [f32; 8],
    /// Coefficients at twice each column frequency.
    harmonics: [f32; 4],
    /// Samples not yet fully analysed; `buffer[0]` is sample number `buffer_start`.
    buffer: Vec<f32>,
    buffer_start: u64,
    next_window: u64,
    /// The run of equal windows now going on: its key, its first window's start, its length
    /// and the tone coverage of its last windows (newest last).
    run: Option<Key>,
    run_start: u64,
    run_len: usize,
    blocks: [[f32; BLOCKS]; CONFIRM],
    empty_run: usize,
    sounding: Option<Sounding>,
    decoded: Vec<i16>,
}

impl std::fmt::Debug for ToneDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToneDetector")
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

impl Default for ToneDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl ToneDetector {
    /// A detector at sample position 0.
    pub fn new() -> Self {
        let mut coefficients = [0.0; 8];
        for (c, f) in coefficients.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE as f32).cos();
        }
        let mut harmonics = [0.0; 4];
        for (c, f) in harmonics.iter_mut().zip(COLS.iter()) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * 2.0 * f / SAMPLE_RATE as f32).cos();
        }
        ToneDetector {
            coefficients,
            harmonics,
            buffer: Vec::with_capacity(WINDOW + 2 * HOP + 320),
            buffer_start: 0,
            next_window: 0,
            run: None,
            run_start: 0,
            run_len: 0,
            blocks: [[0.0; BLOCKS]; CONFIRM],
            empty_run: RELEASE,
            sounding: None,
            decoded: Vec::with_capacity(320),
        }
    }

    /// Samples taken so far.
    pub fn position(&self) -> u64 {
        self.buffer_start + self.buffer.len() as u64
    }

    /// The key sounding now, if a digit is confirmed and not yet ended.
    pub fn sounding(&self) -> Option<Key> {
        self.sounding.map(|s| s.key)
    }

    /// Takes G.711 bytes (a 20 ms frame is 160) and appends what they complete to `events`.
    pub fn push_g711(&mut self, law: Law, codes: &[u8], events: &mut Vec<ToneEvent>) {
        let mut decoded = std::mem::take(&mut self.decoded);
        decoded.clear();
        decoded.extend(codes.iter().map(|&c| law.decode(c)));
        self.push(&decoded, events);
        self.decoded = decoded;
    }

    /// Takes linear PCM samples and appends what they complete to `events`.
    pub fn push(&mut self, samples: &[i16], events: &mut Vec<ToneEvent>) {
        self.buffer.extend(samples.iter().map(|&s| f32::from(s)));
        while self.next_window + WINDOW as u64 <= self.position() {
            let from = (self.next_window - self.buffer_start) as usize;
            let verdict = self.window_key(from);
            self.step(verdict, self.next_window, events);
            self.next_window += HOP as u64;
        }
        let consumed = (self.next_window - self.buffer_start) as usize;
        if consumed > 0 {
            self.buffer.drain(..consumed.min(self.buffer.len()));
            self.buffer_start += consumed as u64;
        }
    }

    /// Ends a sounding digit at the end of the stream (the call ended or the leg went away).
    pub fn finish(&mut self, events: &mut Vec<ToneEvent>) {
        if let Some(s) = self.sounding.take() {
            events.push(ToneEvent::Ended {
                key: s.key,
                onset: s.onset,
                end: s.end,
            });
        }
    }

    fn step(&mut self, verdict: Option<Verdict>, start: u64, events: &mut Vec<ToneEvent>) {
        let key = verdict.map(|v| v.key);
        if key != self.run || key.is_none() {
            self.run = key;
            self.run_start = start;
            self.run_len = 0;
            self.blocks = [[0.0; BLOCKS]; CONFIRM];
        }
        self.run_len += 1;
        self.blocks.rotate_left(1);
        self.blocks[CONFIRM - 1] = verdict.map_or([0.0; BLOCKS], |v| v.blocks);
        let Some(key) = key else {
            self.empty_run += 1;
            if self.empty_run >= RELEASE {
                self.finish(events);
            }
            return;
        };
        self.empty_run = 0;
        let window_end = start + WINDOW as u64;
        let long_enough = self.run_len >= CONFIRM && self.tone_samples() >= CONFIRM_COVERAGE;
        match &mut self.sounding {
            Some(s) if s.key == key => s.end = window_end,
            _ if long_enough => {
                self.finish(events);
                let onset = self.run_start;
                self.sounding = Some(Sounding {
                    key,
                    onset,
                    end: window_end,
                });
                events.push(ToneEvent::Started { key, onset });
            }
            _ => {}
        }
    }

    /// How many samples of tone the confirming windows hold: their energy over the tone's
    /// power per sample, the mean of the blocks within 3 dB of the loudest.
    fn tone_samples(&self) -> f32 {
        let all = self.blocks.iter().flatten();
        let loudest = all.clone().fold(0.0f32, |m, &e| m.max(e));
        let (sum, n) = all
            .clone()
            .filter(|&&e| e >= STRONG_BLOCK * loudest)
            .fold((0.0, 0), |(s, n), &e| (s + e, n + 1));
        if n == 0 {
            return 0.0;
        }
        let power = sum / (n * BLOCK) as f32;
        all.sum::<f32>() / power
    }

    /// The two tones' share of the energy of the part of the window they cover, with each tone
    /// measured at its nominal frequency and 1.2 % either side (the best of three).
    fn purity(
        &self,
        x: &[f32],
        row: usize,
        col: usize,
        blocks: &[f32; BLOCKS],
        energy: f32,
    ) -> f32 {
        let best = |f: f32| {
            [0.988f32, 1.0, 1.012]
                .iter()
                .map(|m| {
                    self.power(
                        x,
                        2.0 * (2.0 * std::f32::consts::PI * f * m / SAMPLE_RATE as f32).cos(),
                    )
                })
                .fold(0.0f32, f32::max)
        };
        let tones = best(ROWS[row]) + best(COLS[col]);
        let loudest = blocks.iter().fold(0.0f32, |m, &b| m.max(b)) / BLOCK as f32;
        let covered = (energy / loudest).min(WINDOW as f32);
        2.0 * tones / (covered * energy)
    }

    /// The power at the eight DTMF frequencies, in one pass (the eight filters side by side
    /// vectorise).
    fn powers(&self, x: &[f32]) -> [f32; 8] {
        let c = self.coefficients;
        let (mut s1, mut s2) = ([0.0f32; 8], [0.0f32; 8]);
        for &v in x {
            for k in 0..8 {
                let s = v + c[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s;
            }
        }
        let mut p = [0.0f32; 8];
        for k in 0..8 {
            p[k] = s1[k] * s1[k] + s2[k] * s2[k] - c[k] * s1[k] * s2[k];
        }
        p
    }

    fn power(&self, x: &[f32], coefficient: f32) -> f32 {
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s = v + coefficient * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - coefficient * s1 * s2
    }

    /// The key one window holds, if it passes every test, with its energy and power.
    fn window_key(&self, from: usize) -> Option<Verdict> {
        let x = &self.buffer[from..from + WINDOW];
        let mut blocks = [0.0f32; BLOCKS];
        for (b, block) in blocks.iter_mut().zip(x.chunks(BLOCK)) {
            *b = block.iter().map(|v| v * v).sum();
        }
        let energy: f32 = blocks.iter().sum();
        if energy < ENERGY_FLOOR {
            return None;
        }
        let p = self.powers(x);
        let (row, row_power) = strongest(&p[..4], GROUP_MARGIN)?;
        let (col, col_power) = strongest(&p[4..], GROUP_MARGIN)?;
        let twist = row_power / col_power;
        if !(TWIST_MIN..=TWIST_MAX).contains(&twist) {
            return None;
        }
        if (row_power + col_power) * 2.0 / (WINDOW as f32) < TONE_SHARE * energy {
            return None;
        }
        if self.power(x, self.harmonics[col]) > COL_HARMONIC * col_power {
            return None;
        }
        let key = Key::from_char(KEYPAD[row][col])?;
        if self.purity(x, row, col, &blocks, energy) < PURITY {
            return None;
        }
        Some(Verdict { key, blocks })
    }
}

#[derive(Debug, Clone, Copy)]
struct Verdict {
    key: Key,
    /// The energy of each of the window's blocks.
    blocks: [f32; BLOCKS],
}

/// The index and power of the strongest of four tones, if it exceeds each other by `margin`.
/// The share (0–1) of the energy of `samples` (8 kHz) that a tone at `frequency` Hz carries,
/// by the Goertzel algorithm over the whole block: about 1 for a pure tone at that frequency,
/// near 0 for silence, other tones or noise. Used to check which audio reached which leg.
#[must_use]
pub fn tone_share(samples: &[i16], frequency: f32) -> f32 {
    let energy: f32 = samples.iter().map(|&v| f32::from(v) * f32::from(v)).sum();
    if samples.is_empty() || energy <= 0.0 {
        return 0.0;
    }
    let c = 2.0 * (2.0 * std::f32::consts::PI * frequency / SAMPLE_RATE as f32).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in samples {
        let s = f32::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2;
    (2.0 * power / samples.len() as f32 / energy).min(1.0)
}

fn strongest(powers: &[f32], margin: f32) -> Option<(usize, f32)> {
    let (best, &best_power) = powers
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let beaten = powers
        .iter()
        .enumerate()
        .any(|(i, &p)| i != best && p * margin > best_power);
    (!beaten).then_some((best, best_power))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_to_linear, linear_to_alaw};

    const KEYS: &str = "0123456789*#ABCD";

    fn frequencies(c: char) -> (f32, f32) {
        for (r, row) in KEYPAD.iter().enumerate() {
            if let Some(col) = row.iter().position(|&k| k == c) {
                return (ROWS[r], COLS[col]);
            }
        }
        panic!("no key {c}")
    }

    /// A two-tone key at `scale` times its nominal frequencies, each tone at `level` of full scale.
    fn tone(c: char, ms: usize, scale: f32, level: f32) -> Vec<i16> {
        let (lo, hi) = frequencies(c);
        (0..ms * 8)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let v = (2.0 * std::f32::consts::PI * lo * scale * t).sin()
                    + (2.0 * std::f32::consts::PI * hi * scale * t).sin();
                (v * level * 32767.0) as i16
            })
            .collect()
    }

    /// Quiet line noise (about −60 dBFS), deterministic.
    fn noise(ms: usize, seed: &mut u32) -> Vec<i16> {
        (0..ms * 8)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((*seed >> 16) as i16) >> 9
            })
            .collect()
    }

    /// Runs the detector over `samples` in 20 ms frames through G.711 A-law, as the edge does.
    fn detect(samples: &[i16]) -> Vec<ToneEvent> {
        let codes: Vec<u8> = samples.iter().map(|&s| linear_to_alaw(s)).collect();
        detect_alaw(&codes)
    }

    fn detect_alaw(codes: &[u8]) -> Vec<ToneEvent> {
        let mut d = ToneDetector::new();
        let mut events = Vec::new();
        for frame in codes.chunks(160) {
            d.push_g711(Law::Alaw, frame, &mut events);
        }
        d.push_g711(Law::Alaw, &[0xD5; 480], &mut events);
        d.finish(&mut events);
        events
    }

    fn digits(events: &[ToneEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                ToneEvent::Started { key, .. } => Some(key.as_char()),
                ToneEvent::Ended { .. } => None,
            })
            .collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run tests/fixtures/make-fixtures.sh"))
    }

    fn keyed(keys: &str, tone_ms: usize, gap_ms: usize, scale: f32) -> Vec<i16> {
        let mut seed = 7;
        let mut s = noise(gap_ms, &mut seed);
        for c in keys.chars() {
            s.extend(tone(c, tone_ms, scale, 0.3));
            s.extend(noise(gap_ms, &mut seed));
        }
        s
    }

    #[test]
    fn all_sixteen_keys_are_found_with_onset_and_end_around_each_tone() {
        let samples = keyed(KEYS, 80, 60, 1.0);
        let events = detect(&samples);
        assert_eq!(digits(&events), KEYS);
        let ends: Vec<_> = events
            .iter()
            .filter_map(|e| match *e {
                ToneEvent::Ended { onset, end, .. } => Some((onset, end)),
                ToneEvent::Started { .. } => None,
            })
            .collect();
        assert_eq!(ends.len(), 16);
        for (i, (onset, end)) in ends.into_iter().enumerate() {
            let (tone_start, tone_end) = (480 + i as u64 * 1120, 480 + i as u64 * 1120 + 640);
            assert!(
                onset <= tone_start && tone_start - onset <= WINDOW as u64,
                "key {i}: onset {onset} for {tone_start}"
            );
            assert!(
                end >= tone_end && end - tone_end <= WINDOW as u64,
                "key {i}: end {end} for {tone_end}"
            );
        }
    }

    #[test]
    fn the_sox_generated_fixture_gives_all_sixteen_keys() {
        assert_eq!(digits(&detect_alaw(&fixture("inband.al"))), KEYS);
    }

    #[test]
    fn tones_one_and_a_half_percent_off_are_accepted_and_three_percent_off_rejected() {
        for scale in [0.985, 1.015] {
            assert_eq!(
                digits(&detect(&keyed(KEYS, 80, 60, scale))),
                KEYS,
                "scale {scale}"
            );
        }
        for scale in [0.97, 1.03] {
            assert_eq!(
                digits(&detect(&keyed(KEYS, 80, 60, scale))),
                "",
                "scale {scale}"
            );
        }
    }

    #[test]
    fn twenty_millisecond_tones_are_rejected_and_thirty_accepted_at_every_alignment() {
        for offset in (0..HOP).step_by(3) {
            let mut lead = vec![0i16; offset];
            let mut seed = 3;
            lead.extend(noise(40, &mut seed));
            let mut with = |ms: usize| {
                let mut s = lead.clone();
                for c in KEYS.chars() {
                    s.extend(tone(c, ms, 1.0, 0.3));
                    s.extend(noise(60, &mut seed));
                }
                s
            };
            assert_eq!(digits(&detect(&with(20))), "", "20 ms at offset {offset}");
            assert_eq!(digits(&detect(&with(30))), KEYS, "30 ms at offset {offset}");
        }
    }

    #[test]
    fn a_held_key_counts_once_and_a_repeated_key_twice() {
        assert_eq!(digits(&detect(&keyed("5", 1500, 60, 1.0))), "5");
        assert_eq!(digits(&detect(&keyed("55", 60, 60, 1.0))), "55");
    }

    #[test]
    fn speech_gives_no_digit() {
        assert_eq!(digits(&detect_alaw(&fixture("speech.al"))), "");
    }

    #[test]
    fn speech_then_keys_at_every_alignment_gives_exactly_the_keys() {
        // Speech that passes every other test at one alignment (the second voice, 40 samples
        // past a window boundary) is refused by the harmonic test.
        let speech = fixture("speech.al");
        let inband = fixture("inband.al");
        for offset in (0..HOP).step_by(4) {
            let mut audio = vec![0xD5; offset];
            audio.extend_from_slice(&speech);
            audio.extend_from_slice(&inband);
            assert_eq!(digits(&detect_alaw(&audio)), KEYS, "offset {offset}");
        }
    }

    #[test]
    fn speech_in_many_voices_at_every_alignment_gives_no_digit() {
        let text = "The quick brown fox jumps over the lazy dog. My card number is four five five six, \
                    seven three two one. Please call me back tomorrow between nine and eleven, thank you.";
        let dir = std::env::temp_dir().join(format!("cg-talkoff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut speech = Vec::new();
        for voice in ["en-us", "en-gb+f2", "de+f4", "es+f1", "pl", "en-us+f5"] {
            let wav = dir.join("v.wav");
            let al = dir.join("v.al");
            let ok = std::process::Command::new("espeak-ng")
                .args(["-v", voice, "-s", "170", "-w"])
                .arg(&wav)
                .arg(text)
                .status()
                .expect("espeak-ng must be installed for this test")
                .success();
            assert!(ok, "espeak-ng {voice}");
            let ok = std::process::Command::new("sox")
                .args(["-V1", "-D"])
                .arg(&wav)
                .args(["-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw"])
                .arg(&al)
                .status()
                .expect("sox must be installed for this test")
                .success();
            assert!(ok, "sox {voice}");
            speech.extend(std::fs::read(&al).unwrap());
        }
        std::fs::remove_dir_all(&dir).unwrap();
        for offset in (0..HOP).step_by(6) {
            let mut audio = vec![0xD5; offset];
            audio.extend_from_slice(&speech);
            assert_eq!(digits(&detect_alaw(&audio)), "", "offset {offset}");
        }
    }

    #[test]
    fn a_tone_share_names_the_frequency_of_a_tone_and_not_another() {
        let tone: Vec<i16> = (0..1600)
            .map(|n| {
                (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(tone_share(&tone, 440.0) > 0.9);
        assert!(tone_share(&tone, 1000.0) < 0.05);
        assert_eq!(tone_share(&[0; 160], 440.0), 0.0);
    }

    #[test]
    fn single_tones_and_silence_give_no_digit() {
        for f in ROWS.iter().chain(COLS.iter()).chain([440.0, 1000.0].iter()) {
            let s: Vec<i16> = (0..8000)
                .map(|n| {
                    ((2.0 * std::f32::consts::PI * f * n as f32 / 8000.0).sin() * 16000.0) as i16
                })
                .collect();
            assert_eq!(digits(&detect(&s)), "", "{f} Hz");
        }
        assert_eq!(digits(&detect(&[0; 8000])), "");
    }

    #[test]
    fn digits_between_and_under_speech_are_all_found() {
        let speech: Vec<i16> = fixture("speech.al")
            .iter()
            .map(|&c| alaw_to_linear(c))
            .collect();
        // Between words: each key 80 ms, cut into the speech every 0.5 s.
        let mut mixed = Vec::new();
        for (piece, c) in speech.chunks(4000).zip(KEYS.chars()) {
            mixed.extend_from_slice(piece);
            mixed.extend(tone(c, 80, 1.0, 0.3));
        }
        assert_eq!(digits(&detect(&mixed)), KEYS);
        // Over speech 20 dB quieter than the tones.
        let mut over: Vec<i16> = speech.iter().map(|&s| s / 10).collect();
        for (i, c) in KEYS.chars().enumerate() {
            let at = 2000 + i * 4000;
            for (j, t) in tone(c, 80, 1.0, 0.3).into_iter().enumerate() {
                over[at + j] = over[at + j].saturating_add(t);
            }
        }
        assert_eq!(digits(&detect(&over)), KEYS);
    }

    #[test]
    fn frame_size_does_not_change_what_is_found() {
        let samples = keyed("19#D", 50, 40, 1.0);
        let mut whole = Vec::new();
        let mut d = ToneDetector::new();
        d.push(&samples, &mut whole);
        d.finish(&mut whole);
        let mut small = Vec::new();
        let mut d = ToneDetector::new();
        for chunk in samples.chunks(7) {
            d.push(chunk, &mut small);
        }
        d.finish(&mut small);
        assert_eq!(whole, small);
        assert_eq!(digits(&whole), "19#D");
    }
}
