//! Starting, finishing, reading and playing back call recordings. Each recording is one file in
//! `DATA_DIR/recordings/` sealed with a random per-call data key (`callguard_core::recording`);
//! the database row holds the wrapped share of that key, written with its audit entry, so
//! deleting the row crypto-shreds the file.
//!
//! Playback (supervisors and compliance, `Permission::RecordingsPlay`): the listener names a
//! reason from the configured list; the whole recording is authenticated first (a truncated or
//! altered file is reported and never played), the playback is recorded with its audit entry,
//! and a one-time ticket lets that same person fetch the audio once within two minutes. The
//! audio is decrypted block by block into the answer: it is never written anywhere.

use crate::error::Error;
use crate::principal::{customer_ref, Principal};
use callguard_core::kek::Keyring;
use callguard_core::now;
use callguard_core::recording::{KeyShare, Measured, PcmWav, RecordingReader, RecordingWriter};
use callguard_core::{rfc3339, UnixTime};
use callguard_store::{PlaybackRow, RecordingFilter, RecordingRow, Store};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How long a playback ticket may wait to be used (seconds).
pub const TICKET_SECONDS: i64 = 120;
/// Most tickets waiting at once (each is one person's pending playback).
const MAX_TICKETS: usize = 10_000;
/// The longest free text a listener may add to the reason.
pub const MAX_NOTE_CHARS: usize = 500;

/// Settings of the recordings feature (`recordings.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    /// The reasons a listener picks from before a playback.
    pub playback_reasons: Vec<String>,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            playback_reasons: [
                "quality_review",
                "complaint",
                "dispute",
                "legal_request",
                "fraud_investigation",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// A pending playback: one person may fetch one recording's audio once, until `expires_at`.
struct Ticket {
    recording_id: String,
    user_id: String,
    expires_at: UnixTime,
    measured: Measured,
}

/// The recordings of this node.
pub struct Recordings {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    dir: PathBuf,
    settings: RecordingSettings,
    tickets: Mutex<HashMap<String, Ticket>>,
}

/// A recording as the list shows it: no customer, no file, no key.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RecordingView {
    pub id: String,
    pub interaction_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; absent while the call goes on (or if the edge stopped before sealing it).
    pub ended_at: Option<String>,
    /// Seconds from start to end, when ended.
    pub seconds: Option<i64>,
    /// The queue the call waited in, when known.
    pub queue: Option<String>,
}

impl From<&RecordingRow> for RecordingView {
    fn from(r: &RecordingRow) -> Self {
        Self {
            id: r.id.clone(),
            interaction_id: r.interaction_id.clone(),
            started_at: rfc3339(r.started_at),
            ended_at: r.ended_at.map(rfc3339),
            seconds: r.ended_at.map(|e| (e - r.started_at).max(0)),
            queue: r.queue.clone(),
        }
    }
}

/// What a listener may now fetch: the ticket (secret, one use) and what it will play.
pub struct PlaybackTicket {
    pub ticket: callguard_core::Secret<String>,
    pub expires_at: UnixTime,
    pub duration_ms: u64,
}

impl std::fmt::Debug for PlaybackTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackTicket")
            .field("expires_at", &self.expires_at)
            .field("duration_ms", &self.duration_ms)
            .finish_non_exhaustive()
    }
}

/// The audio of one playback: its length in bytes and the WAV file, block by block.
pub struct PlaybackAudio {
    pub bytes: u64,
    pub blocks: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
}

impl std::fmt::Debug for PlaybackAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackAudio")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// A recording being written.
pub struct Recording {
    pub id: String,
    pub writer: RecordingWriter<BufWriter<File>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn io(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "recording file");
    Error::Internal
}

impl Recordings {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, kek: Arc<Keyring>, data_dir: &std::path::Path) -> Self {
        Self::with_settings(store, kek, data_dir, RecordingSettings::default())
    }

    #[must_use]
    pub fn with_settings(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        data_dir: &std::path::Path,
        settings: RecordingSettings,
    ) -> Self {
        Self {
            store,
            kek,
            dir: data_dir.join("recordings"),
            settings,
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// The reasons a listener picks from.
    #[must_use]
    pub fn reasons(&self) -> &[String] {
        &self.settings.playback_reasons
    }

    /// Starts recording a call of `interaction_id`: creates the file and stores the key share
    /// with a `recording.start` entry (the telephony edge is the only caller).
    pub async fn start(
        &self,
        p: &Principal,
        interaction_id: &str,
        customer_id: Option<String>,
    ) -> Result<Recording, Error> {
        crate::bootstrap::create_private_dir(&self.dir).map_err(io)?;
        let uuid = uuid::Uuid::new_v4();
        let file_name = format!("{uuid}.cgrec");
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(self.dir.join(&file_name))
            .map_err(io)?;
        let (writer, share) =
            RecordingWriter::create(BufWriter::new(file), self.kek.as_ref(), uuid).map_err(io)?;
        let row = RecordingRow {
            id: uuid.to_string(),
            interaction_id: interaction_id.to_owned(),
            customer_id: customer_id.clone(),
            file_name,
            key_share: share.0,
            started_at: now(),
            ended_at: None,
            queue: None,
        };
        let mut audit = p
            .actor()
            .record("recording.start")
            .detail("recording", row.id.clone());
        audit.interaction = Some(interaction_id.to_owned());
        if let Some(c) = &customer_id {
            audit = audit.target(customer_ref(c));
        }
        self.store.start_recording(&row, audit).await?;
        Ok(Recording { id: row.id, writer })
    }

    /// Seals the end of a recording and marks it ended with a `recording.end` entry.
    pub async fn finish(&self, p: &Principal, r: Recording) -> Result<(), Error> {
        let seconds = r.writer.media_ms() / 1000;
        let id = r.id.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut out = r.writer.finish().map_err(io)?;
            out.flush().map_err(io)?;
            out.get_ref().sync_all().map_err(io)
        })
        .await
        .map_err(io)??;
        let row = self.store.recording(&id).await?.ok_or(Error::NotFound)?;
        let mut audit = p
            .actor()
            .record("recording.end")
            .detail("recording", id.clone())
            .detail("seconds", seconds);
        audit.interaction = Some(row.interaction_id.clone());
        self.store.end_recording(&id, now(), audit).await?;
        Ok(())
    }

    /// Opens a recording for reading (playback and checks), authenticated chunk by chunk.
    pub async fn open(&self, id: &str) -> Result<RecordingReader<std::io::BufReader<File>>, Error> {
        let row = self.store.recording(id).await?.ok_or(Error::NotFound)?;
        let file = File::open(self.dir.join(&row.file_name)).map_err(|_| Error::NotFound)?;
        RecordingReader::open(
            std::io::BufReader::new(file),
            self.kek.as_ref(),
            &KeyShare(row.key_share),
        )
        .map_err(io)
    }

    /// Reads every recording of `interaction_id` to its end, authenticating each chunk: one
    /// report per recording, or what is wrong with it (tampered, truncated, key missing).
    pub async fn check(&self, interaction_id: &str) -> Result<Vec<Result<Checked, String>>, Error> {
        let mut out = Vec::new();
        for row in self.store.recordings_of(interaction_id).await? {
            let id = row.id.clone();
            let reader = self.open(&id).await;
            let report = tokio::task::spawn_blocking(move || match reader {
                Ok(r) => read_through(id, r),
                Err(e) => Err(format!("recording {id}: cannot open: {e}")),
            })
            .await
            .map_err(io)?;
            out.push(report);
        }
        Ok(out)
    }

    /// The recordings of one interaction, oldest first.
    pub async fn of_interaction(&self, interaction_id: &str) -> Result<Vec<RecordingRow>, Error> {
        Ok(self.store.recordings_of(interaction_id).await?)
    }

    /// Names the queue a recording's call waited in (the telephony edge, once the IVR chose).
    pub async fn set_queue(&self, id: &str, queue: &str) -> Result<(), Error> {
        if self.store.set_recording_queue(id, queue).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Recordings for the list, newest first.
    pub async fn list(&self, filter: &RecordingFilter) -> Result<Vec<RecordingView>, Error> {
        if filter.limit == 0 || filter.limit > 500 {
            return Err(Error::BadRequest(
                "query parameter `limit` must be from 1 to 500".into(),
            ));
        }
        Ok(self
            .store
            .list_recordings(filter)
            .await?
            .iter()
            .map(RecordingView::from)
            .collect())
    }

    /// One recording for the playback page.
    pub async fn view(&self, id: &str) -> Result<RecordingView, Error> {
        let row = self.store.recording(id).await?.ok_or(Error::NotFound)?;
        Ok(RecordingView::from(&row))
    }

    /// Reads the whole recording, authenticating every chunk, without keeping any audio.
    async fn measure(&self, row: &RecordingRow) -> Result<Result<Measured, String>, Error> {
        let file = match File::open(self.dir.join(&row.file_name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err("its file is missing".into()))
            }
            Err(e) => return Err(io(e)),
        };
        let (kek, share) = (self.kek.clone(), KeyShare(row.key_share.clone()));
        tokio::task::spawn_blocking(move || {
            RecordingReader::open(std::io::BufReader::new(file), kek.as_ref(), &share)
                .and_then(callguard_core::recording::measure)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(io)
    }

    /// Starts a playback of recording `id` by `p` for `reason` (one of [`Self::reasons`]) and
    /// `note` (free text, may be empty): checks the recording is intact, records the playback
    /// with a `recording.playback` entry, and returns the one-time ticket for the audio. A
    /// damaged recording is refused and its check audited as failed.
    pub async fn begin_playback(
        &self,
        p: &Principal,
        id: &str,
        reason: &str,
        note: &str,
    ) -> Result<PlaybackTicket, Error> {
        if !self.reasons().iter().any(|r| r == reason) {
            return Err(Error::Validation(format!(
                "choose a reason for listening from the list: {}",
                self.reasons().join(", ")
            )));
        }
        let note = note.trim();
        if note.chars().count() > MAX_NOTE_CHARS || note.chars().any(char::is_control) {
            return Err(Error::Validation(format!(
                "the note must be at most {MAX_NOTE_CHARS} characters on one line"
            )));
        }
        let row = self.store.recording(id).await?.ok_or(Error::NotFound)?;
        if row.ended_at.is_none() {
            return Err(Error::State(
                "this call is still being recorded; play it back once the call has ended",
            ));
        }
        let mut audit = p
            .actor()
            .record("recording.playback")
            .detail("recording", row.id.clone())
            .detail("reason", reason.to_owned());
        audit.interaction = Some(row.interaction_id.clone());
        let measured = match self.measure(&row).await? {
            Ok(m) => m,
            Err(damage) => {
                // Reported, never played: the entry says which recording failed its check.
                self.store
                    .append(vec![audit.detail("damaged", true).failure()])
                    .await?;
                return Err(Error::Validation(format!(
                    "recording {id} cannot be played: {damage}. It was altered or cut short after it was recorded; report it to your compliance officer"
                )));
            }
        };
        let at = now();
        let playback = PlaybackRow {
            id: uuid::Uuid::new_v4().to_string(),
            recording_id: row.id.clone(),
            user_id: p.user.id.clone(),
            reason: reason.to_owned(),
            note: note.to_owned(),
            at,
        };
        let audit = audit
            .detail("playback", playback.id.clone())
            .detail("seconds", measured.duration_ms() / 1000);
        self.store.record_playback(&playback, audit).await?;
        let ticket = data_encoding::BASE32_NOPAD.encode(&rand::random::<[u8; 20]>());
        let expires_at = at + TICKET_SECONDS;
        let mut tickets = self.tickets.lock().map_err(|_| Error::Internal)?;
        tickets.retain(|_, t| t.expires_at > at);
        if tickets.len() >= MAX_TICKETS {
            return Err(Error::Busy);
        }
        tickets.insert(
            ticket.clone(),
            Ticket {
                recording_id: row.id,
                user_id: p.user.id.clone(),
                expires_at,
                measured,
            },
        );
        Ok(PlaybackTicket {
            ticket: callguard_core::Secret::new(ticket),
            expires_at,
            duration_ms: measured.duration_ms(),
        })
    }

    /// The audio of the ticket `ticket`, for the person it was issued to, once. Unknown, used,
    /// expired or someone else's tickets are all "not found".
    pub async fn play(&self, p: &Principal, ticket: &str) -> Result<PlaybackAudio, Error> {
        let t = {
            let mut tickets = self.tickets.lock().map_err(|_| Error::Internal)?;
            match tickets.get(ticket) {
                Some(t) if t.user_id == p.user.id && t.expires_at > now() => tickets.remove(ticket),
                _ => None,
            }
        }
        .ok_or(Error::NotFound)?;
        let reader = self.open(&t.recording_id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let measured = t.measured;
        tokio::task::spawn_blocking(move || {
            let mut wav = PcmWav::new(reader, measured);
            loop {
                let block = match wav.next_block() {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "a recording changed while it was played");
                        Err(std::io::Error::other(
                            "the recording changed while it was played",
                        ))
                    }
                };
                let failed = block.is_err();
                if tx.blocking_send(block).is_err() || failed {
                    return;
                }
            }
        });
        Ok(PlaybackAudio {
            bytes: measured.wav_len(),
            blocks: rx,
        })
    }
}

/// What reading a recording through found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub id: String,
    pub chunks: u32,
    /// Milliseconds of audio.
    pub audio_ms: u64,
    /// Milliseconds in which the caller's channel is not silent.
    pub caller_audible_ms: u64,
    /// Milliseconds in which the agent's channel is not silent (the call was bridged).
    pub agent_audible_ms: u64,
    /// The pauses, in order: why, and from and until when (media time, ms; until `None`
    /// when the recording never resumed).
    pub pauses: Vec<(String, u64, Option<u64>)>,
}

fn read_through(
    id: String,
    mut r: RecordingReader<std::io::BufReader<File>>,
) -> Result<Checked, String> {
    use callguard_core::recording::Chunk;
    let (mut samples, mut audible, mut agent) = (0u64, 0u64, 0u64);
    let mut pauses: Vec<(String, u64, Option<u64>)> = Vec::new();
    loop {
        match r.next_chunk() {
            Ok(Some(Chunk::Pause { media_ms, reason })) => {
                pauses.push((reason.as_str().to_owned(), media_ms, None));
            }
            Ok(Some(Chunk::Resume { media_ms })) => {
                if let Some(p) = pauses.last_mut().filter(|p| p.2.is_none()) {
                    p.2 = Some(media_ms);
                }
            }
            Ok(Some(Chunk::Audio { stereo, .. })) => {
                samples += stereo.len() as u64 / 2;
                audible += stereo.chunks(2).filter(|s| s[0] != 0xD5).count() as u64;
                agent += stereo.chunks(2).filter(|s| s.get(1) != Some(&0xD5)).count() as u64;
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return Err(format!("recording {id}: {e}")),
        }
    }
    Ok(Checked {
        id,
        chunks: r.chunks_read(),
        audio_ms: samples / 8,
        caller_audible_ms: audible / 8,
        agent_audible_ms: agent / 8,
        pauses,
    })
}

/// Deletes the files `file_names` in the recordings directory `dir`: those whose rows retention
/// deleted (their key shares are gone, so they were unreadable already). How many it removed.
pub fn delete_files(dir: &std::path::Path, file_names: &[String]) -> u64 {
    let mut removed = 0;
    for name in file_names {
        // Names come from our own rows; refuse anything that is not a plain file name.
        if name.contains(['/', '\\']) || name.starts_with('.') {
            continue;
        }
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, "an expired recording's file could not be deleted")
            }
        }
    }
    removed
}
