//! Encrypted call recordings: the file format the telephony edge writes and the playback page
//! reads. A file is a header, then length-prefixed chunks sealed with XChaCha20-Poly1305 in the
//! STREAM construction (big-endian 32-bit counter and a last-chunk flag in the nonce), so a
//! flipped bit, a removed or reordered chunk and a truncated file are each detected.
//!
//! Keys: each recording has a random 256-bit data key, the XOR of two halves. The header holds
//! one half wrapped by the key-encryption key; the other half ("key share", also wrapped) is
//! handed to the caller to store in the database. Deleting the share crypto-shreds the
//! recording, even where copies of the file survive; rotating the key-encryption key rewraps
//! 73 bytes of the header and the share, never the audio.
//!
//! ```text
//! header   "CGREC1" | recording id (16) | segment u32 | KEK id (8) | len u16 | wrapped half (73)
//!          | STREAM nonce prefix (19)                                              = 128 bytes
//! chunk    length u32 | STREAM ciphertext of: type u8 | media time ms u64 | body | tag (16)
//! types    1 audio (stereo A-law, caller then agent per sample; about one second a chunk)
//!          2 pause (reason u8)   3 resume   4 end (the last chunk, flagged last in the nonce)
//! ```
//!
//! A segment is one file. After a restart the edge starts a new segment: a new file with a new
//! random half and nonce prefix, so no (key, nonce) pair is ever used twice.

mod playback;
mod reader;
mod writer;

pub use playback::{alaw_to_linear, measure, Measured, PcmWav, PCM_WAV_HEADER_LEN};
pub use reader::{decrypt_to_wav, Chunk, PauseSpan, RecordingReader, WavSummary};
pub use writer::RecordingWriter;

use crate::kek::Sealing;
use crate::secret::Secret;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;
use std::io::{Read, Seek, SeekFrom, Write};

const MAGIC: &[u8; 6] = b"CGREC1";
/// Length of the header in bytes.
pub const HEADER_LEN: usize = 128;
const WRAPPED_LEN: usize = 73;
const PREFIX_LEN: usize = 19;
/// Bytes a chunk adds to its body: length, type, media time, tag.
pub const CHUNK_OVERHEAD: usize = 4 + 1 + 8 + 16;
/// Samples per second of each channel.
pub const SAMPLE_RATE: u32 = 8000;
/// The largest chunk a reader accepts (a writer's chunks hold about one second: 16 000 bytes).
const MAX_CHUNK: usize = 1 << 20;

const TYPE_AUDIO: u8 = 1;
const TYPE_PAUSE: u8 = 2;
const TYPE_RESUME: u8 = 3;
const TYPE_END: u8 = 4;

/// Why recording stopped for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// A keypad payment: card data may not be stored, even encrypted (PCI DSS 3.3.1).
    Payment,
    /// The agent put the caller on hold.
    Hold,
}

impl PauseReason {
    fn code(self) -> u8 {
        match self {
            PauseReason::Payment => 1,
            PauseReason::Hold => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(PauseReason::Payment),
            2 => Some(PauseReason::Hold),
            _ => None,
        }
    }

    /// The reason's name, as shown on the playback page.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Payment => "payment",
            PauseReason::Hold => "hold",
        }
    }
}

/// What went wrong with a recording. Messages name the chunk or the cause and never hold audio
/// or key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordingError {
    /// Not a recording, or a header this version cannot read.
    #[error("not a Callguard recording, or its header is damaged")]
    NotARecording,
    /// The key-encryption key or the key share cannot open the data key.
    #[error("the recording's data key cannot be opened: the key-encryption key {kek_id} is not held, the key share belongs to another recording or was erased, or the header was altered")]
    WrongKey {
        /// The id of the key-encryption key that wrapped the header's half.
        kek_id: String,
    },
    /// A chunk failed authentication.
    #[error("chunk {number} failed authentication: the file was altered there, or a chunk before it was removed or reordered")]
    ChunkFailed {
        /// The chunk's place in the file, counting from 1.
        number: u32,
    },
    /// The file ends without its end chunk.
    #[error("the recording is truncated after {chunks} chunks (no end chunk)")]
    Truncated {
        /// Chunks read intact.
        chunks: u32,
    },
    /// Bytes follow the end chunk.
    #[error("data follows the end chunk (chunk {number})")]
    TrailingData {
        /// The end chunk's place, counting from 1.
        number: u32,
    },
    /// A chunk authenticated but its content is not valid.
    #[error("chunk {number} is malformed")]
    Malformed {
        /// The chunk's place, counting from 1.
        number: u32,
    },
    /// The writer was used after `finish`, or after too many chunks.
    #[error("the recording writer cannot take more: {0}")]
    Writer(&'static str),
    /// Reading or writing failed.
    #[error("recording I/O failed: {0}")]
    Io(String),
}

impl From<std::io::Error> for RecordingError {
    fn from(e: std::io::Error) -> Self {
        RecordingError::Io(e.kind().to_string())
    }
}

/// The share of a recording's data key that goes to the database, wrapped by the
/// key-encryption key. Deleting it makes the recording unreadable.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare(pub Vec<u8>);

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyShare(<wrapped>)")
    }
}

/// The parsed header of a recording file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The recording this file belongs to.
    pub recording_id: uuid::Uuid,
    /// The segment number (0 for the first file of a recording).
    pub segment: u32,
    kek_id: [u8; 8],
    wrapped_half: Vec<u8>,
    prefix: [u8; PREFIX_LEN],
}

fn half_aad(id: uuid::Uuid, segment: u32) -> String {
    format!("callguard:recording-key:{id}:{segment}")
}

fn share_aad(id: uuid::Uuid) -> String {
    format!("callguard:recording-share:{id}")
}

fn kek_id_bytes(keys: &(impl Sealing + ?Sized)) -> [u8; 8] {
    let mut out = [0u8; 8];
    if let Ok(bytes) = data_encoding::HEXLOWER.decode(keys.id().as_bytes()) {
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = b;
        }
    }
    out
}

impl Header {
    /// The id of the key-encryption key that wrapped this file's half of the data key.
    #[must_use]
    pub fn kek_id(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.kek_id)
    }

    fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..6].copy_from_slice(MAGIC);
        b[6..22].copy_from_slice(self.recording_id.as_bytes());
        b[22..26].copy_from_slice(&self.segment.to_be_bytes());
        b[26..34].copy_from_slice(&self.kek_id);
        b[34..36].copy_from_slice(&(WRAPPED_LEN as u16).to_be_bytes());
        b[36..36 + WRAPPED_LEN].copy_from_slice(&self.wrapped_half);
        b[HEADER_LEN - PREFIX_LEN..].copy_from_slice(&self.prefix);
        b
    }

    fn parse(b: &[u8; HEADER_LEN]) -> Result<Self, RecordingError> {
        if &b[..6] != MAGIC || u16::from_be_bytes([b[34], b[35]]) as usize != WRAPPED_LEN {
            return Err(RecordingError::NotARecording);
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[6..22]);
        let mut kek_id = [0u8; 8];
        kek_id.copy_from_slice(&b[26..34]);
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&b[HEADER_LEN - PREFIX_LEN..]);
        Ok(Header {
            recording_id: uuid::Uuid::from_bytes(id),
            segment: u32::from_be_bytes([b[22], b[23], b[24], b[25]]),
            kek_id,
            wrapped_half: b[36..36 + WRAPPED_LEN].to_vec(),
            prefix,
        })
    }

    /// What every chunk is bound to: the header less the wrapped key and its KEK id, so that a
    /// key rotation can rewrite those without touching the chunks.
    fn chunk_aad(&self) -> [u8; 6 + 16 + 4 + PREFIX_LEN] {
        let mut a = [0u8; 6 + 16 + 4 + PREFIX_LEN];
        a[..6].copy_from_slice(MAGIC);
        a[6..22].copy_from_slice(self.recording_id.as_bytes());
        a[22..26].copy_from_slice(&self.segment.to_be_bytes());
        a[26..].copy_from_slice(&self.prefix);
        a
    }

    fn stream(
        &self,
        key: &Secret<Vec<u8>>,
    ) -> Result<StreamBE32<XChaCha20Poly1305>, RecordingError> {
        let cipher = XChaCha20Poly1305::new_from_slice(key.expose())
            .map_err(|_| RecordingError::Writer("bad key length"))?;
        Ok(StreamBE32::from_aead(cipher, (&self.prefix).into()))
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

fn xor(a: &[u8], b: &[u8]) -> Secret<Vec<u8>> {
    Secret::new(a.iter().zip(b).map(|(x, y)| x ^ y).collect())
}

/// Opens the share stored in the database for recording `id`.
fn open_share(
    keys: &(impl Sealing + ?Sized),
    id: uuid::Uuid,
    share: &KeyShare,
    kek_id: String,
) -> Result<Secret<Vec<u8>>, RecordingError> {
    keys.open(&share.0, &share_aad(id))
        .map_err(|_| RecordingError::WrongKey { kek_id })
}

/// The data key of the file with `header`.
fn data_key(
    keys: &(impl Sealing + ?Sized),
    header: &Header,
    share: &KeyShare,
) -> Result<Secret<Vec<u8>>, RecordingError> {
    let wrong = || RecordingError::WrongKey {
        kek_id: header.kek_id(),
    };
    let half = keys
        .open(
            &header.wrapped_half,
            &half_aad(header.recording_id, header.segment),
        )
        .map_err(|_| wrong())?;
    let share = open_share(keys, header.recording_id, share, header.kek_id())?;
    if half.expose().len() != 32 || share.expose().len() != 32 {
        return Err(wrong());
    }
    Ok(xor(half.expose(), share.expose()))
}

/// A new key share for a recording: 32 random bytes wrapped for the database.
fn new_share(keys: &(impl Sealing + ?Sized), id: uuid::Uuid) -> (Secret<Vec<u8>>, KeyShare) {
    let share: [u8; 32] = random();
    let wrapped = KeyShare(keys.seal(&share, &share_aad(id)));
    (Secret::new(share.to_vec()), wrapped)
}

/// A header for segment `segment` whose data key is `half ^ share`, with a fresh half and
/// nonce prefix; returns it with the data key.
fn new_header(
    keys: &(impl Sealing + ?Sized),
    id: uuid::Uuid,
    segment: u32,
    share: &Secret<Vec<u8>>,
) -> Result<(Header, Secret<Vec<u8>>), RecordingError> {
    let half: [u8; 32] = random();
    let wrapped_half = keys.seal(&half, &half_aad(id, segment));
    if wrapped_half.len() != WRAPPED_LEN {
        return Err(RecordingError::Writer(
            "the key-encryption key is unavailable",
        ));
    }
    let header = Header {
        recording_id: id,
        segment,
        kek_id: kek_id_bytes(keys),
        wrapped_half,
        prefix: random(),
    };
    Ok((header, xor(&half, share.expose())))
}

/// Reads a recording's header.
pub fn read_header(input: &mut impl Read) -> Result<Header, RecordingError> {
    let mut b = [0u8; HEADER_LEN];
    input.read_exact(&mut b).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => RecordingError::NotARecording,
        _ => RecordingError::from(e),
    })?;
    Header::parse(&b)
}

/// Key rotation: rewraps the file's half of the data key (in place, in the header) and the
/// database's share from `old` to `new`; returns the new share to store. The audio chunks are
/// not touched. On error the file is unchanged.
pub fn rewrap<F: Read + Write + Seek>(
    file: &mut F,
    share: &KeyShare,
    old: &(impl Sealing + ?Sized),
    new: &(impl Sealing + ?Sized),
) -> Result<KeyShare, RecordingError> {
    file.seek(SeekFrom::Start(0))?;
    let mut header = read_header(file)?;
    let aad = half_aad(header.recording_id, header.segment);
    let half = old
        .open(&header.wrapped_half, &aad)
        .map_err(|_| RecordingError::WrongKey {
            kek_id: header.kek_id(),
        })?;
    let share_plain = open_share(old, header.recording_id, share, header.kek_id())?;
    let wrapped_half = new.seal(half.expose(), &aad);
    if wrapped_half.len() != WRAPPED_LEN {
        return Err(RecordingError::Writer(
            "the new key-encryption key is unavailable",
        ));
    }
    let new_share = KeyShare(new.seal(share_plain.expose(), &share_aad(header.recording_id)));
    header.wrapped_half = wrapped_half;
    header.kek_id = kek_id_bytes(new);
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header.to_bytes())?;
    file.flush()?;
    Ok(new_share)
}

#[cfg(test)]
mod tests;
