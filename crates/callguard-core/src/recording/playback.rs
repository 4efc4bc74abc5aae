//! Playback: a recording as a 16-bit PCM stereo WAV (caller left, agent right) that every
//! browser's `<audio>` plays, produced block by block so that decrypted audio is never whole in
//! memory nor written anywhere. A recording is read twice: [`measure`] authenticates every
//! chunk and learns the WAV's length (a damaged file is reported before a byte is sent), then
//! [`PcmWav`] streams it, failing again if the file changed in between.

use super::reader::{Chunk, RecordingReader};
use super::{RecordingError, SAMPLE_RATE};
use std::io::Read;

/// The longest silence a pause may put into the WAV (four hours), as in `decrypt_to_wav`.
const MAX_GAP_FRAMES: u64 = 4 * 3600 * SAMPLE_RATE as u64;
/// Bytes of one stereo 16-bit frame.
const FRAME_BYTES: u64 = 4;
/// Frames of silence emitted per block at most.
const SILENCE_BLOCK_FRAMES: u64 = 16_384;
/// Length of the WAV header [`PcmWav`] writes.
pub const PCM_WAV_HEADER_LEN: u64 = 44;

/// What [`measure`] found: an intact recording of `frames` stereo frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Chunks read, all authenticated.
    pub chunks: u32,
    /// Stereo frames of the WAV (8000 a second; paused time is silence).
    pub frames: u64,
}

impl Measured {
    /// Milliseconds of audio.
    #[must_use]
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Bytes of the whole WAV file, header included.
    #[must_use]
    pub fn wav_len(&self) -> u64 {
        PCM_WAV_HEADER_LEN + self.frames * FRAME_BYTES
    }
}

/// Places chunks on the call's timeline: silence for gaps and pauses, then the audio.
#[derive(Default)]
struct Timeline {
    origin: Option<u64>,
    written: u64,
}

impl Timeline {
    /// Frames of silence to write before this chunk's audio (if any), and the audio.
    fn place<'c>(&mut self, chunk: &'c Chunk) -> (u64, Option<&'c [u8]>) {
        match chunk {
            Chunk::Audio { media_ms, stereo } => {
                let gap = self.gap_to(*media_ms);
                self.written += gap + stereo.len() as u64 / 2;
                (gap, Some(stereo))
            }
            Chunk::Pause { media_ms, .. } | Chunk::Resume { media_ms } => {
                self.origin.get_or_insert(*media_ms);
                (0, None)
            }
            Chunk::End { media_ms } => {
                let gap = self.gap_to(*media_ms);
                self.written += gap;
                (gap, None)
            }
        }
    }

    fn gap_to(&mut self, media_ms: u64) -> u64 {
        let origin = *self.origin.get_or_insert(media_ms);
        let at = media_ms.saturating_sub(origin) * u64::from(SAMPLE_RATE) / 1000;
        at.saturating_sub(self.written).min(MAX_GAP_FRAMES)
    }
}

/// Reads a recording to its end, authenticating every chunk, without keeping any audio.
pub fn measure<R: Read>(mut reader: RecordingReader<R>) -> Result<Measured, RecordingError> {
    let mut t = Timeline::default();
    while let Some(chunk) = reader.next_chunk()? {
        t.place(&chunk);
    }
    let frames = t.written;
    if PCM_WAV_HEADER_LEN + frames * FRAME_BYTES > u64::from(u32::MAX) {
        return Err(RecordingError::Writer(
            "recording too long for one WAV file",
        ));
    }
    Ok(Measured {
        chunks: reader.chunks_read(),
        frames,
    })
}

/// A recording as a PCM WAV, block by block. Yields the header first; every later block is
/// audio. An error ends the stream (the file was altered after [`measure`]).
pub struct PcmWav<R: Read> {
    reader: RecordingReader<R>,
    timeline: Timeline,
    expected: Measured,
    header_sent: bool,
    silence_left: u64,
    audio: Option<Vec<u8>>,
    produced: u64,
    finished: bool,
}

impl<R: Read> std::fmt::Debug for PcmWav<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcmWav")
            .field("expected", &self.expected)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl<R: Read> PcmWav<R> {
    /// Streams `reader`, which [`measure`] found to hold `expected`.
    #[must_use]
    pub fn new(reader: RecordingReader<R>, expected: Measured) -> Self {
        Self {
            reader,
            timeline: Timeline::default(),
            expected,
            header_sent: false,
            silence_left: 0,
            audio: None,
            produced: 0,
            finished: false,
        }
    }

    /// The next block of the WAV file; `Ok(None)` at its end.
    pub fn next_block(&mut self) -> Result<Option<Vec<u8>>, RecordingError> {
        if !self.header_sent {
            self.header_sent = true;
            return Ok(Some(pcm_wav_header(self.expected.frames)));
        }
        loop {
            if self.silence_left > 0 {
                let n = self.silence_left.min(SILENCE_BLOCK_FRAMES);
                self.silence_left -= n;
                // A-law silence decoded, as the agent's leg sounds before the bridge.
                let quiet = alaw_to_linear(0xD5).to_le_bytes();
                let block = quiet.repeat((n * 2) as usize);
                return self.emit(block, n);
            }
            if let Some(alaw) = self.audio.take() {
                let frames = alaw.len() as u64 / 2;
                let mut pcm = Vec::with_capacity(alaw.len() * 2);
                for &code in &alaw {
                    pcm.extend_from_slice(&alaw_to_linear(code).to_le_bytes());
                }
                return self.emit(pcm, frames);
            }
            if self.finished {
                return if self.produced == self.expected.frames {
                    Ok(None)
                } else {
                    Err(RecordingError::Malformed {
                        number: self.reader.chunks_read(),
                    })
                };
            }
            match self.reader.next_chunk()? {
                Some(chunk) => {
                    let (gap, audio) = self.timeline.place(&chunk);
                    self.silence_left = gap;
                    self.audio = audio.map(<[u8]>::to_vec);
                }
                None => self.finished = true,
            }
        }
    }

    fn emit(&mut self, block: Vec<u8>, frames: u64) -> Result<Option<Vec<u8>>, RecordingError> {
        self.produced += frames;
        if self.produced > self.expected.frames {
            // The file grew or changed since it was measured: stop rather than lie in the header.
            return Err(RecordingError::Malformed {
                number: self.reader.chunks_read(),
            });
        }
        Ok(Some(block))
    }
}

/// A canonical 44-byte WAV header: PCM 16-bit, stereo, 8 kHz, `frames` frames.
fn pcm_wav_header(frames: u64) -> Vec<u8> {
    let data_len = (frames * FRAME_BYTES) as u32;
    let mut h = Vec::with_capacity(PCM_WAV_HEADER_LEN as usize);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&2u16.to_le_bytes()); // caller, agent
    h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    h.extend_from_slice(&(SAMPLE_RATE * FRAME_BYTES as u32).to_le_bytes());
    h.extend_from_slice(&(FRAME_BYTES as u16).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// G.711 A-law to linear 16-bit (ITU-T G.711, as the telephony edge's table).
#[must_use]
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = (a & 0x70) >> 4;
    let mantissa = i16::from(a & 0x0F);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    if a & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}
