//! The prompts the edge plays: built-in recordings (A-law 8 kHz, made by
//! `prompts/make-prompts.sh` with espeak-ng and sox, embedded in the binary) that an operator
//! can replace one by one with a WAV file of their own. Playback comes out in 20 ms frames of
//! the leg's G.711 law.

use super::g711::{linear_to_alaw, Law};
use super::FRAME_SAMPLES;

/// A prompt the call flow can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// "This call is recorded for quality and security."
    RecordingNotice,
    /// The IVR welcome and menu: "For billing, press 1. For technical support, press 2."
    IvrMenu,
    /// "Please enter your customer number or national ID, then press hash."
    EnterCustomerId,
    /// "Please enter the code from your portal, then press hash."
    EnterPortalCode,
    /// "Thank you, you are verified."
    Verified,
    /// "That did not match."
    NoMatch,
    /// "Please hold, an agent will be with you shortly."
    PleaseHold,
    /// "You are caller number", followed by digit prompts.
    CallerNumber,
    /// Two soft 425 Hz beeps and three seconds of quiet, repeated while a caller waits.
    ComfortTone,
    /// A spoken digit, 0–9.
    Digit(Digit),
    /// "We are sorry, no agent is free to take your call. Please call again later. Goodbye."
    /// (the queue's maximum wait passed with no overflow queue).
    Goodbye,
    /// A keypad payment: "Please enter your card number, then press hash."
    CardNumber,
    /// "Please enter the expiry date, two digits for the month and two for the year, then
    /// press hash."
    CardExpiry,
    /// "Please enter the security code from the back of your card, then press hash."
    CardCode,
    /// "Please enter the digits of your postal code, then press hash."
    CardPostalCode,
    /// "That was not accepted. Please enter it again."
    CardRetry,
    /// "Thank you. Your payment has been sent. You are back with your agent."
    CardDone,
    /// "The card payment was cancelled. You are back with your agent."
    CardCancelled,
}

/// A digit 0–9 for [`Prompt::Digit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(u8);

impl Digit {
    /// The digit `n`, if `n` is 0–9.
    pub fn new(n: u8) -> Option<Digit> {
        (n < 10).then_some(Digit(n))
    }

    /// Its value.
    pub fn value(self) -> u8 {
        self.0
    }
}

const DIGITS: [&[u8]; 10] = [
    include_bytes!("../../prompts/digit-0.al"),
    include_bytes!("../../prompts/digit-1.al"),
    include_bytes!("../../prompts/digit-2.al"),
    include_bytes!("../../prompts/digit-3.al"),
    include_bytes!("../../prompts/digit-4.al"),
    include_bytes!("../../prompts/digit-5.al"),
    include_bytes!("../../prompts/digit-6.al"),
    include_bytes!("../../prompts/digit-7.al"),
    include_bytes!("../../prompts/digit-8.al"),
    include_bytes!("../../prompts/digit-9.al"),
];

/// Number of distinct prompts.
pub const COUNT: usize = 27;

impl Prompt {
    /// Every prompt, in a fixed order.
    pub fn all() -> impl Iterator<Item = Prompt> {
        [
            Prompt::RecordingNotice,
            Prompt::IvrMenu,
            Prompt::EnterCustomerId,
            Prompt::EnterPortalCode,
            Prompt::Verified,
            Prompt::NoMatch,
            Prompt::PleaseHold,
            Prompt::CallerNumber,
            Prompt::ComfortTone,
        ]
        .into_iter()
        .chain((0..10).map(|n| Prompt::Digit(Digit(n))))
        .chain([
            Prompt::Goodbye,
            Prompt::CardNumber,
            Prompt::CardExpiry,
            Prompt::CardCode,
            Prompt::CardPostalCode,
            Prompt::CardRetry,
            Prompt::CardDone,
            Prompt::CardCancelled,
        ])
    }

    /// The prompt's name, as in configuration and in the file names under `prompts/`.
    pub fn name(self) -> &'static str {
        const DIGIT_NAMES: [&str; 10] = [
            "digit-0", "digit-1", "digit-2", "digit-3", "digit-4", "digit-5", "digit-6", "digit-7",
            "digit-8", "digit-9",
        ];
        match self {
            Prompt::RecordingNotice => "recording-notice",
            Prompt::IvrMenu => "ivr-menu",
            Prompt::EnterCustomerId => "enter-customer-id",
            Prompt::EnterPortalCode => "enter-portal-code",
            Prompt::Verified => "verified",
            Prompt::NoMatch => "no-match",
            Prompt::PleaseHold => "please-hold",
            Prompt::CallerNumber => "caller-number",
            Prompt::ComfortTone => "comfort-tone",
            Prompt::Digit(d) => DIGIT_NAMES[usize::from(d.0 % 10)],
            Prompt::Goodbye => "goodbye",
            Prompt::CardNumber => "card-number",
            Prompt::CardExpiry => "card-expiry",
            Prompt::CardCode => "card-code",
            Prompt::CardPostalCode => "card-postal-code",
            Prompt::CardRetry => "card-retry",
            Prompt::CardDone => "card-done",
            Prompt::CardCancelled => "card-cancelled",
        }
    }

    /// The prompt of a name, if there is one.
    pub fn from_name(name: &str) -> Option<Prompt> {
        Prompt::all().find(|p| p.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Prompt::RecordingNotice => 0,
            Prompt::IvrMenu => 1,
            Prompt::EnterCustomerId => 2,
            Prompt::EnterPortalCode => 3,
            Prompt::Verified => 4,
            Prompt::NoMatch => 5,
            Prompt::PleaseHold => 6,
            Prompt::CallerNumber => 7,
            Prompt::ComfortTone => 8,
            Prompt::Digit(d) => 9 + usize::from(d.0 % 10),
            Prompt::Goodbye => 19,
            Prompt::CardNumber => 20,
            Prompt::CardExpiry => 21,
            Prompt::CardCode => 22,
            Prompt::CardPostalCode => 23,
            Prompt::CardRetry => 24,
            Prompt::CardDone => 25,
            Prompt::CardCancelled => 26,
        }
    }

    /// The built-in recording, A-law 8 kHz.
    pub fn builtin(self) -> &'static [u8] {
        match self {
            Prompt::RecordingNotice => include_bytes!("../../prompts/recording-notice.al"),
            Prompt::IvrMenu => include_bytes!("../../prompts/ivr-menu.al"),
            Prompt::EnterCustomerId => include_bytes!("../../prompts/enter-customer-id.al"),
            Prompt::EnterPortalCode => include_bytes!("../../prompts/enter-portal-code.al"),
            Prompt::Verified => include_bytes!("../../prompts/verified.al"),
            Prompt::NoMatch => include_bytes!("../../prompts/no-match.al"),
            Prompt::PleaseHold => include_bytes!("../../prompts/please-hold.al"),
            Prompt::CallerNumber => include_bytes!("../../prompts/caller-number.al"),
            Prompt::ComfortTone => include_bytes!("../../prompts/comfort-tone.al"),
            Prompt::Digit(d) => DIGITS[usize::from(d.0 % 10)],
            Prompt::Goodbye => include_bytes!("../../prompts/goodbye.al"),
            Prompt::CardNumber => include_bytes!("../../prompts/card-number.al"),
            Prompt::CardExpiry => include_bytes!("../../prompts/card-expiry.al"),
            Prompt::CardCode => include_bytes!("../../prompts/card-code.al"),
            Prompt::CardPostalCode => include_bytes!("../../prompts/card-postal-code.al"),
            Prompt::CardRetry => include_bytes!("../../prompts/card-retry.al"),
            Prompt::CardDone => include_bytes!("../../prompts/card-done.al"),
            Prompt::CardCancelled => include_bytes!("../../prompts/card-cancelled.al"),
        }
    }
}

/// Why an operator's prompt file cannot be used. Each says what the file must be instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// Not a RIFF/WAVE file.
    #[error("not a WAV file (no RIFF/WAVE header); give a WAV file: 8 kHz mono, 16-bit PCM, A-law or µ-law")]
    NotWav,
    /// A chunk runs past the end of the file, or the fmt or data chunk is missing.
    #[error("the WAV file is damaged or incomplete ({0}); export it again")]
    Damaged(&'static str),
    /// An encoding other than PCM, A-law or µ-law.
    #[error("WAV encoding {0:#06x} is not supported; use 16-bit PCM, A-law or µ-law")]
    Encoding(u16),
    /// Not 8000 samples per second.
    #[error("the WAV file has {0} samples per second; resample it to 8000 (e.g. sox in.wav -r 8000 -c 1 out.wav)")]
    SampleRate(u32),
    /// Not mono.
    #[error("the WAV file has {0} channels; make it mono (e.g. sox in.wav -c 1 out.wav)")]
    Channels(u16),
    /// A sample size that does not fit the encoding.
    #[error("{0}-bit samples do not fit the encoding; use 16-bit PCM or 8-bit A-law/µ-law")]
    BitsPerSample(u16),
    /// No audio at all.
    #[error("the WAV file holds no audio")]
    Empty,
    /// The file cannot be read.
    #[error("cannot read the prompt file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Longer than a prompt may be.
    #[error("the WAV file is longer than {MAX_SECONDS} seconds; shorten it")]
    TooLong,
}

/// The longest prompt accepted from an operator.
pub const MAX_SECONDS: usize = 300;

/// Converts a WAV file (8 kHz mono; 16-bit PCM, A-law or µ-law) to A-law samples.
pub fn wav_to_alaw(file: &[u8]) -> Result<Vec<u8>, PromptError> {
    if file.len() < 12 || &file[..4] != b"RIFF" || &file[8..12] != b"WAVE" {
        return Err(PromptError::NotWav);
    }
    let mut format: Option<(u16, u16, u32, u16)> = None;
    let mut offset = 12;
    while offset + 8 <= file.len() {
        let id = &file[offset..offset + 4];
        let size = u32::from_le_bytes([
            file[offset + 4],
            file[offset + 5],
            file[offset + 6],
            file[offset + 7],
        ]) as usize;
        let body_start = offset + 8;
        let body = file
            .get(body_start..body_start.saturating_add(size))
            .ok_or(PromptError::Damaged("a chunk is cut short"))?;
        match id {
            b"fmt " => format = Some(parse_format(body)?),
            b"data" => {
                let (tag, channels, rate, bits) =
                    format.ok_or(PromptError::Damaged("no fmt chunk before the data"))?;
                return convert(body, tag, channels, rate, bits);
            }
            _ => {}
        }
        offset = body_start + size + (size & 1);
    }
    Err(PromptError::Damaged("no data chunk"))
}

fn parse_format(body: &[u8]) -> Result<(u16, u16, u32, u16), PromptError> {
    if body.len() < 16 {
        return Err(PromptError::Damaged("fmt chunk too short"));
    }
    let u16_at = |o: usize| u16::from_le_bytes([body[o], body[o + 1]]);
    let mut tag = u16_at(0);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
        if body.len() < 26 {
            return Err(PromptError::Damaged("extensible fmt chunk too short"));
        }
        tag = u16_at(24);
    }
    let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    Ok((tag, u16_at(2), rate, u16_at(14)))
}

fn convert(
    data: &[u8],
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
) -> Result<Vec<u8>, PromptError> {
    if !matches!(tag, 1 | 6 | 7) {
        return Err(PromptError::Encoding(tag));
    }
    if rate != 8000 {
        return Err(PromptError::SampleRate(rate));
    }
    if channels != 1 {
        return Err(PromptError::Channels(channels));
    }
    let out: Vec<u8> = match (tag, bits) {
        (1, 16) => data
            .chunks_exact(2)
            .map(|s| linear_to_alaw(i16::from_le_bytes([s[0], s[1]])))
            .collect(),
        (6, 8) => data.to_vec(),
        (7, 8) => data
            .iter()
            .map(|&c| Law::Ulaw.transcode_to(Law::Alaw, c))
            .collect(),
        (_, bits) => return Err(PromptError::BitsPerSample(bits)),
    };
    if out.is_empty() {
        return Err(PromptError::Empty);
    }
    if out.len() > MAX_SECONDS * 8000 {
        return Err(PromptError::TooLong);
    }
    Ok(out)
}

/// The prompts of one edge: the built-in ones, with operator overrides in their place.
#[derive(Debug, Clone)]
pub struct PromptSet {
    overrides: Vec<Option<Vec<u8>>>,
}

impl Default for PromptSet {
    fn default() -> Self {
        PromptSet {
            overrides: vec![None; COUNT],
        }
    }
}

impl PromptSet {
    /// The built-in prompts only.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Replaces `prompt` with a WAV file's audio (8 kHz mono; 16-bit PCM, A-law or µ-law). On
    /// error nothing changes.
    pub fn set_wav(&mut self, prompt: Prompt, file: &[u8]) -> Result<(), PromptError> {
        let audio = wav_to_alaw(file)?;
        self.overrides[prompt.index()] = Some(audio);
        Ok(())
    }

    /// Replaces `prompt` with the WAV file at `path` (see [`PromptSet::set_wav`]).
    pub fn load_wav_file(
        &mut self,
        prompt: Prompt,
        path: &std::path::Path,
    ) -> Result<(), PromptError> {
        let file = std::fs::read(path).map_err(|e| PromptError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.set_wav(prompt, &file)
    }

    /// The prompt's audio, A-law 8 kHz.
    pub fn audio(&self, prompt: Prompt) -> &[u8] {
        self.overrides[prompt.index()]
            .as_deref()
            .unwrap_or_else(|| prompt.builtin())
    }

    /// Plays `prompt` as 20 ms frames in `law`; the last frame is padded with silence.
    pub fn frames(&self, prompt: Prompt, law: Law) -> Frames<'_> {
        Frames {
            audio: self.audio(prompt),
            law,
            at: 0,
        }
    }
}

/// A prompt being played, one 160-byte frame at a time.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    audio: &'a [u8],
    law: Law,
    at: usize,
}

impl Iterator for Frames<'_> {
    type Item = [u8; FRAME_SAMPLES];

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.audio.get(self.at..).filter(|r| !r.is_empty())?;
        let take = rest.len().min(FRAME_SAMPLES);
        let mut frame = [self.law.silence(); FRAME_SAMPLES];
        for (out, &a) in frame.iter_mut().zip(&rest[..take]) {
            *out = Law::Alaw.transcode_to(self.law, a);
        }
        self.at += take;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_to_linear, ALAW_SILENCE};
    use crate::media::goertzel::ToneDetector;

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&tag.to_le_bytes());
        w.extend_from_slice(&channels.to_le_bytes());
        w.extend_from_slice(&rate.to_le_bytes());
        w.extend_from_slice(&(rate * u32::from(channels) * u32::from(bits) / 8).to_le_bytes());
        w.extend_from_slice(&(channels * bits / 8).to_le_bytes());
        w.extend_from_slice(&bits.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(data);
        w
    }

    fn rms(alaw: &[u8]) -> f64 {
        let sum: f64 = alaw
            .iter()
            .map(|&c| f64::from(alaw_to_linear(c)).powi(2))
            .sum();
        (sum / alaw.len() as f64).sqrt()
    }

    #[test]
    fn every_builtin_prompt_is_present_and_audible() {
        let mut total = 0;
        assert_eq!(Prompt::all().count(), COUNT);
        for p in Prompt::all() {
            let audio = p.builtin();
            total += audio.len();
            assert!(audio.len() >= 1600, "{} is shorter than 0.2 s", p.name());
            assert!(
                rms(audio) > 300.0,
                "{} is silent (RMS {})",
                p.name(),
                rms(audio)
            );
            assert_eq!(Prompt::from_name(p.name()), Some(p));
        }
        // About 59 s of speech, 26 prompts with the keypad payment ones.
        assert!(total < 520_000, "prompts take {total} bytes");
    }

    #[test]
    fn no_prompt_sounds_like_a_key_press() {
        for p in Prompt::all() {
            let mut d = ToneDetector::new();
            let mut events = Vec::new();
            for frame in PromptSet::builtin().frames(p, Law::Alaw) {
                d.push_g711(Law::Alaw, &frame, &mut events);
            }
            d.finish(&mut events);
            assert!(events.is_empty(), "{} holds a DTMF digit", p.name());
        }
    }

    #[test]
    fn a_prompt_plays_as_whole_frames_padded_with_silence() {
        let set = PromptSet::builtin();
        let audio = set.audio(Prompt::Verified);
        let frames: Vec<_> = set.frames(Prompt::Verified, Law::Alaw).collect();
        assert_eq!(frames.len(), audio.len().div_ceil(160));
        assert_eq!(&frames[0][..], &audio[..160]);
        let tail = audio.len() % 160;
        if tail > 0 {
            assert!(frames.last().unwrap()[tail..]
                .iter()
                .all(|&b| b == ALAW_SILENCE));
        }
        let ulaw: Vec<_> = set.frames(Prompt::Verified, Law::Ulaw).collect();
        assert_eq!(ulaw.len(), frames.len());
        assert_eq!(ulaw[0][0], Law::Alaw.transcode_to(Law::Ulaw, audio[0]));
    }

    #[test]
    fn a_pcm16_wav_override_loads_and_replaces_the_builtin_prompt() {
        let samples: Vec<u8> = (0..8000)
            .flat_map(|n| (((n as f32 * 0.3).sin() * 8000.0) as i16).to_le_bytes())
            .collect();
        let mut set = PromptSet::builtin();
        set.set_wav(Prompt::RecordingNotice, &wav(1, 1, 8000, 16, &samples))
            .unwrap();
        assert_eq!(set.audio(Prompt::RecordingNotice).len(), 8000);
        assert!(rms(set.audio(Prompt::RecordingNotice)) > 4000.0);
        assert_eq!(set.audio(Prompt::IvrMenu), Prompt::IvrMenu.builtin());
    }

    #[test]
    fn alaw_and_ulaw_wav_overrides_load() {
        let mut set = PromptSet::builtin();
        set.set_wav(Prompt::NoMatch, &wav(6, 1, 8000, 8, &[0x2A; 400]))
            .unwrap();
        assert_eq!(set.audio(Prompt::NoMatch), &[0x2A; 400][..]);
        set.set_wav(Prompt::NoMatch, &wav(7, 1, 8000, 8, &[0xFF; 400]))
            .unwrap();
        assert!(set
            .audio(Prompt::NoMatch)
            .iter()
            .all(|&c| alaw_to_linear(c).abs() <= 8));
    }

    #[test]
    fn a_wav_written_by_sox_loads() {
        let dir = std::env::temp_dir().join(format!("cg-prompt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.wav");
        let status = std::process::Command::new("sox")
            .args([
                "-V1", "-D", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed",
            ])
            .arg(&path)
            .args(["synth", "0.5", "sine", "440", "vol", "0.5"])
            .status()
            .expect("sox must be installed for this test");
        assert!(status.success());
        let mut set = PromptSet::builtin();
        set.load_wav_file(Prompt::PleaseHold, &path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(set.audio(Prompt::PleaseHold).len(), 4000);
        let missing = set.load_wav_file(Prompt::PleaseHold, &dir.join("gone.wav"));
        assert!(matches!(missing, Err(PromptError::Unreadable { .. })));
    }

    #[test]
    fn unusable_wav_files_are_refused_with_what_to_do_and_change_nothing() {
        let pcm = [0u8; 320];
        let cases = [
            (b"not a wav file at all".to_vec(), PromptError::NotWav),
            (wav(1, 1, 16000, 16, &pcm), PromptError::SampleRate(16000)),
            (wav(1, 2, 8000, 16, &pcm), PromptError::Channels(2)),
            (wav(3, 1, 8000, 32, &pcm), PromptError::Encoding(3)),
            (wav(1, 1, 8000, 8, &pcm), PromptError::BitsPerSample(8)),
            (wav(1, 1, 8000, 16, &[]), PromptError::Empty),
        ];
        let mut set = PromptSet::builtin();
        for (file, expected) in cases {
            assert_eq!(set.set_wav(Prompt::Verified, &file), Err(expected.clone()));
            assert!(!expected.to_string().is_empty());
        }
        let mut cut = wav(1, 1, 8000, 16, &pcm);
        cut.truncate(60);
        assert!(matches!(
            set.set_wav(Prompt::Verified, &cut),
            Err(PromptError::Damaged(_))
        ));
        assert_eq!(set.audio(Prompt::Verified), Prompt::Verified.builtin());
        assert!(PromptError::SampleRate(44100).to_string().contains("8000"));
    }
}
