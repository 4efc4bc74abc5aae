//! Reads a recording chunk by chunk, saying precisely what is wrong with a damaged file, and
//! turns a whole recording into a WAV file for playback.

use super::{
    data_key, read_header, Header, KeyShare, PauseReason, RecordingError, MAX_CHUNK, SAMPLE_RATE,
    TYPE_AUDIO, TYPE_END, TYPE_PAUSE, TYPE_RESUME,
};
use crate::kek::Sealing;
use chacha20poly1305::aead::stream::{StreamBE32, StreamPrimitive};
use chacha20poly1305::XChaCha20Poly1305;
use std::io::{Read, Seek, SeekFrom, Write};

/// One chunk of a recording.
#[derive(Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Stereo A-law audio, caller then agent for each sample, from `media_ms`.
    Audio {
        /// Media time of the first sample, in milliseconds.
        media_ms: u64,
        /// Interleaved samples.
        stereo: Vec<u8>,
    },
    /// Recording paused.
    Pause {
        /// When.
        media_ms: u64,
        /// Why.
        reason: PauseReason,
    },
    /// Recording resumed.
    Resume {
        /// When.
        media_ms: u64,
    },
    /// The end of the segment.
    End {
        /// When.
        media_ms: u64,
    },
}

impl std::fmt::Debug for Chunk {
    // Audio is personal data: Debug shows its size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chunk::Audio { media_ms, stereo } => write!(
                f,
                "Audio {{ media_ms: {media_ms}, bytes: {} }}",
                stereo.len()
            ),
            Chunk::Pause { media_ms, reason } => {
                write!(f, "Pause {{ media_ms: {media_ms}, reason: {reason:?} }}")
            }
            Chunk::Resume { media_ms } => write!(f, "Resume {{ media_ms: {media_ms} }}"),
            Chunk::End { media_ms } => write!(f, "End {{ media_ms: {media_ms} }}"),
        }
    }
}

/// Reads one segment of a recording.
pub struct RecordingReader<R: Read> {
    input: R,
    header: Header,
    stream: StreamBE32<XChaCha20Poly1305>,
    aad: Vec<u8>,
    /// Chunks read intact.
    position: u32,
    /// The next chunk's length bytes, read ahead to learn whether the current one is the last.
    ahead: [u8; 4],
    ahead_len: usize,
    done: bool,
}

impl<R: Read> std::fmt::Debug for RecordingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingReader")
            .field("header", &self.header)
            .field("chunks", &self.position)
            .finish_non_exhaustive()
    }
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, RecordingError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

impl<R: Read> RecordingReader<R> {
    /// Opens a recording with the key-encryption key(s) and the key share stored for it.
    pub fn open(
        mut input: R,
        keys: &(impl Sealing + ?Sized),
        share: &KeyShare,
    ) -> Result<Self, RecordingError> {
        let header = read_header(&mut input)?;
        let key = data_key(keys, &header, share)?;
        let stream = header.stream(&key)?;
        let mut ahead = [0u8; 4];
        let ahead_len = read_up_to(&mut input, &mut ahead)?;
        Ok(RecordingReader {
            input,
            aad: header.chunk_aad().to_vec(),
            header,
            stream,
            position: 0,
            ahead,
            ahead_len,
            done: false,
        })
    }

    /// The file's header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Chunks read intact so far.
    #[must_use]
    pub fn chunks_read(&self) -> u32 {
        self.position
    }

    /// The next chunk; `Ok(None)` after the end chunk. The first error ends the reading.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, RecordingError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_chunk();
        if !matches!(
            result,
            Ok(Some(
                Chunk::Audio { .. } | Chunk::Pause { .. } | Chunk::Resume { .. }
            ))
        ) {
            self.done = true;
        }
        result
    }

    fn read_chunk(&mut self) -> Result<Option<Chunk>, RecordingError> {
        let truncated = RecordingError::Truncated {
            chunks: self.position,
        };
        let number = self.position + 1;
        if self.ahead_len < 4 {
            return Err(truncated);
        }
        let len = u32::from_be_bytes(self.ahead) as usize;
        if !(9 + 16..=MAX_CHUNK).contains(&len) {
            return Err(RecordingError::ChunkFailed { number });
        }
        let mut buf = vec![0u8; len];
        if read_up_to(&mut self.input, &mut buf)? < len {
            return Err(truncated);
        }
        self.ahead_len = read_up_to(&mut self.input, &mut self.ahead)?;
        let at_end = self.ahead_len == 0;
        let sealed = buf.clone();
        // The last chunk is sealed as last; try what the file's shape suggests, then the other.
        let first_try = self
            .stream
            .decrypt_in_place(self.position, at_end, &self.aad, &mut buf);
        let last = if first_try.is_ok() {
            at_end
        } else {
            buf = sealed;
            if self
                .stream
                .decrypt_in_place(self.position, !at_end, &self.aad, &mut buf)
                .is_err()
            {
                return Err(RecordingError::ChunkFailed { number });
            }
            !at_end
        };
        self.position += 1;
        let chunk = parse(&buf).ok_or(RecordingError::Malformed { number })?;
        let is_end = matches!(chunk, Chunk::End { .. });
        match (last, at_end) {
            (true, true) if is_end => Ok(Some(chunk)),
            (false, false) if !is_end => Ok(Some(chunk)),
            (true, false) => Err(RecordingError::TrailingData { number }),
            // An intact chunk that is not the last, and nothing after it: the file was cut short.
            (false, true) => Err(RecordingError::Truncated {
                chunks: self.position,
            }),
            _ => Err(RecordingError::Malformed { number }),
        }
    }
}

fn parse(plain: &[u8]) -> Option<Chunk> {
    let (&kind, rest) = plain.split_first()?;
    let media_ms = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let body = &rest[8..];
    match kind {
        TYPE_AUDIO if body.len() % 2 == 0 && !body.is_empty() => Some(Chunk::Audio {
            media_ms,
            stereo: body.to_vec(),
        }),
        TYPE_PAUSE if body.len() == 1 => Some(Chunk::Pause {
            media_ms,
            reason: PauseReason::from_code(body[0])?,
        }),
        TYPE_RESUME if body.is_empty() => Some(Chunk::Resume { media_ms }),
        TYPE_END if body.is_empty() => Some(Chunk::End { media_ms }),
        _ => None,
    }
}

/// A pause in a recording, for the playback page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseSpan {
    /// Why.
    pub reason: PauseReason,
    /// From (media time, ms).
    pub from_ms: u64,
    /// Until (media time, ms); the end of the recording if it never resumed.
    pub until_ms: u64,
}

/// What a decrypted recording held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavSummary {
    /// Chunks read.
    pub chunks: u32,
    /// Length of the WAV audio, in milliseconds (pauses are silent, so times match the call).
    pub duration_ms: u64,
    /// The pauses.
    pub pauses: Vec<PauseSpan>,
}

/// The longest silence a pause may put into a WAV (four hours).
const MAX_GAP_SAMPLES: u64 = 4 * 3600 * SAMPLE_RATE as u64;

/// Decrypts a whole recording to a WAV file (stereo A-law, format tag 6: caller left, agent
/// right). Paused time is written as silence so the WAV's timeline is the call's. Fails, with
/// the precise error, on any damage; the output is then incomplete and must be discarded.
pub fn decrypt_to_wav<R: Read, W: Write + Seek>(
    input: R,
    keys: &(impl Sealing + ?Sized),
    share: &KeyShare,
    mut out: W,
) -> Result<WavSummary, RecordingError> {
    let mut reader = RecordingReader::open(input, keys, share)?;
    let mut origin = None::<u64>;
    out.write_all(&wav_header(0))?;
    let mut written: u64 = 0; // sample frames
    let mut pauses = Vec::new();
    let mut open_pause: Option<(PauseReason, u64)> = None;
    while let Some(chunk) = reader.next_chunk()? {
        match chunk {
            Chunk::Audio { media_ms, stereo } => {
                let origin = *origin.get_or_insert(media_ms);
                let at = media_ms.saturating_sub(origin) * u64::from(SAMPLE_RATE) / 1000;
                let gap = at.saturating_sub(written).min(MAX_GAP_SAMPLES);
                write_silence(&mut out, gap)?;
                written += gap;
                out.write_all(&stereo)?;
                written += stereo.len() as u64 / 2;
            }
            Chunk::Pause { media_ms, reason } => {
                origin.get_or_insert(media_ms);
                open_pause = Some((reason, media_ms));
            }
            Chunk::Resume { media_ms } => {
                if let Some((reason, from_ms)) = open_pause.take() {
                    pauses.push(PauseSpan {
                        reason,
                        from_ms,
                        until_ms: media_ms,
                    });
                }
            }
            Chunk::End { media_ms } => {
                if let Some((reason, from_ms)) = open_pause.take() {
                    pauses.push(PauseSpan {
                        reason,
                        from_ms,
                        until_ms: media_ms,
                    });
                }
                let origin = *origin.get_or_insert(media_ms);
                let at = media_ms.saturating_sub(origin) * u64::from(SAMPLE_RATE) / 1000;
                let gap = at.saturating_sub(written).min(MAX_GAP_SAMPLES);
                write_silence(&mut out, gap)?;
                written += gap;
            }
        }
    }
    let data_len = u32::try_from(written * 2)
        .map_err(|_| RecordingError::Writer("recording too long for one WAV file"))?;
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&wav_header(data_len))?;
    out.seek(SeekFrom::End(0))?;
    out.flush()?;
    Ok(WavSummary {
        chunks: reader.chunks_read(),
        duration_ms: written * 1000 / u64::from(SAMPLE_RATE),
        pauses,
    })
}

fn write_silence(out: &mut impl Write, frames: u64) -> Result<(), RecordingError> {
    let block = [0xD5u8; 4096];
    let mut left = frames * 2;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// A WAV header for stereo A-law at 8 kHz with `data_len` bytes of samples.
fn wav_header(data_len: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(58);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(50 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&18u32.to_le_bytes());
    h.extend_from_slice(&6u16.to_le_bytes()); // WAVE_FORMAT_ALAW
    h.extend_from_slice(&2u16.to_le_bytes()); // channels: caller, agent
    h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    h.extend_from_slice(&(2 * SAMPLE_RATE).to_le_bytes()); // bytes per second
    h.extend_from_slice(&2u16.to_le_bytes()); // block align
    h.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    h.extend_from_slice(&0u16.to_le_bytes()); // no extension
    h.extend_from_slice(b"fact");
    h.extend_from_slice(&4u32.to_le_bytes());
    h.extend_from_slice(&(data_len / 2).to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}
