//! Writes a recording: stereo A-law audio in chunks of about one second, pauses and resumes,
//! and the end chunk.

use super::{
    new_header, new_share, open_share, Header, KeyShare, PauseReason, RecordingError, SAMPLE_RATE,
    TYPE_AUDIO, TYPE_END, TYPE_PAUSE, TYPE_RESUME,
};
use crate::kek::Sealing;
use chacha20poly1305::aead::stream::{StreamBE32, StreamPrimitive};
use chacha20poly1305::XChaCha20Poly1305;
use std::io::Write;

/// A-law silence, for a leg that has nothing to say (the agent leg before the bridge).
const SILENCE: u8 = 0xD5;
/// Stereo bytes in one audio chunk: one second.
const CHUNK_AUDIO: usize = 2 * SAMPLE_RATE as usize;

/// Writes one segment of a recording to `W`.
pub struct RecordingWriter<W: Write> {
    out: W,
    stream: StreamBE32<XChaCha20Poly1305>,
    aad: Vec<u8>,
    position: u32,
    /// Interleaved stereo A-law not yet sealed, and the media time of its first sample.
    audio: Vec<u8>,
    audio_start_samples: u64,
    /// Samples of media time so far (paused time included).
    samples: u64,
    paused: Option<PauseReason>,
    scratch: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for RecordingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("chunks", &self.position)
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

impl<W: Write> RecordingWriter<W> {
    /// Starts a recording (segment 0) with a new data key. Returns the writer and the key share
    /// to store in the database; without that share the recording cannot be read.
    pub fn create(
        out: W,
        keys: &(impl Sealing + ?Sized),
        recording_id: uuid::Uuid,
    ) -> Result<(Self, KeyShare), RecordingError> {
        let (share, wrapped) = new_share(keys, recording_id);
        let (header, key) = new_header(keys, recording_id, 0, &share)?;
        Ok((Self::start(out, &header, &key, 0)?, wrapped))
    }

    /// Starts segment `segment` of a recording after a restart, with the share stored for it,
    /// a new half key and a new nonce prefix. Media time continues from `media_ms`.
    pub fn resume(
        out: W,
        keys: &(impl Sealing + ?Sized),
        recording_id: uuid::Uuid,
        share: &KeyShare,
        segment: u32,
        media_ms: u64,
    ) -> Result<Self, RecordingError> {
        let share = open_share(keys, recording_id, share, keys.id())?;
        let (header, key) = new_header(keys, recording_id, segment, &share)?;
        Self::start(out, &header, &key, media_ms * u64::from(SAMPLE_RATE) / 1000)
    }

    fn start(
        mut out: W,
        header: &Header,
        key: &crate::Secret<Vec<u8>>,
        samples: u64,
    ) -> Result<Self, RecordingError> {
        out.write_all(&header.to_bytes())?;
        Ok(RecordingWriter {
            out,
            stream: header.stream(key)?,
            aad: header.chunk_aad().to_vec(),
            position: 0,
            audio: Vec::with_capacity(CHUNK_AUDIO),
            audio_start_samples: samples,
            samples,
            paused: None,
            scratch: Vec::with_capacity(CHUNK_AUDIO + 64),
        })
    }

    /// Media time so far, in milliseconds.
    #[must_use]
    pub fn media_ms(&self) -> u64 {
        self.samples * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Takes the next A-law samples of both legs (a 20 ms frame is 160 bytes each); a shorter
    /// or empty leg is padded with silence. While paused the audio is dropped and only media
    /// time advances.
    pub fn push(&mut self, caller: &[u8], agent: &[u8]) -> Result<(), RecordingError> {
        let n = caller.len().max(agent.len());
        self.samples += n as u64;
        if self.paused.is_some() {
            self.audio_start_samples = self.samples;
            return Ok(());
        }
        // Silence first, then each leg into its channel: loops the compiler vectorises (a
        // push per sample cost about five times as much; bench/README.md, issue #12).
        let start = self.audio.len();
        self.audio.resize(start + 2 * n, SILENCE);
        let stereo = &mut self.audio[start..];
        for (pair, &c) in stereo.chunks_exact_mut(2).zip(caller) {
            pair[0] = c;
        }
        for (pair, &a) in stereo.chunks_exact_mut(2).zip(agent) {
            pair[1] = a;
        }
        if self.audio.len() >= CHUNK_AUDIO {
            self.flush_audio()?;
        }
        Ok(())
    }

    /// Stops recording audio for `reason` (a pause chunk); audio pushed until [`Self::resume_audio`]
    /// is dropped. Pausing twice keeps the first reason.
    pub fn pause(&mut self, reason: PauseReason) -> Result<(), RecordingError> {
        if self.paused.is_some() {
            return Ok(());
        }
        self.flush_audio()?;
        self.paused = Some(reason);
        self.seal(TYPE_PAUSE, &[reason.code()], false)
    }

    /// Records audio again after a pause (a resume chunk). Does nothing if not paused.
    pub fn resume_audio(&mut self) -> Result<(), RecordingError> {
        if self.paused.take().is_none() {
            return Ok(());
        }
        self.audio_start_samples = self.samples;
        self.seal(TYPE_RESUME, &[], false)
    }

    /// Whether audio is paused, and why.
    #[must_use]
    pub fn paused(&self) -> Option<PauseReason> {
        self.paused
    }

    /// Seals buffered audio, writes the end chunk and returns the output.
    pub fn finish(mut self) -> Result<W, RecordingError> {
        self.flush_audio()?;
        self.seal(TYPE_END, &[], true)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn flush_audio(&mut self) -> Result<(), RecordingError> {
        if self.audio.is_empty() {
            return Ok(());
        }
        let audio = std::mem::take(&mut self.audio);
        let start = self.audio_start_samples;
        let result = self.seal_at(TYPE_AUDIO, start, &audio, false);
        self.audio = audio;
        self.audio.clear();
        self.audio_start_samples = self.samples;
        result
    }

    fn seal(&mut self, kind: u8, body: &[u8], last: bool) -> Result<(), RecordingError> {
        self.seal_at(kind, self.samples, body, last)
    }

    fn seal_at(
        &mut self,
        kind: u8,
        samples: u64,
        body: &[u8],
        last: bool,
    ) -> Result<(), RecordingError> {
        if self.position == u32::MAX {
            return Err(RecordingError::Writer(
                "too many chunks in one segment; start a new segment",
            ));
        }
        let media_ms = samples * 1000 / u64::from(SAMPLE_RATE);
        self.scratch.clear();
        self.scratch.push(kind);
        self.scratch.extend_from_slice(&media_ms.to_be_bytes());
        self.scratch.extend_from_slice(body);
        self.stream
            .encrypt_in_place(self.position, last, &self.aad, &mut self.scratch)
            .map_err(|_| RecordingError::Writer("encryption failed"))?;
        self.position += 1;
        let len = u32::try_from(self.scratch.len())
            .map_err(|_| RecordingError::Writer("chunk too large"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&self.scratch)?;
        Ok(())
    }
}
