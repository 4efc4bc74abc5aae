//! Starting, finishing and reading call recordings. Each recording is one file in
//! `DATA_DIR/recordings/` sealed with a random per-call data key (`callguard_core::recording`);
//! the database row holds the wrapped share of that key, written with its audit entry, so
//! deleting the row crypto-shreds the file.

use crate::error::Error;
use crate::principal::{customer_ref, Principal};
use callguard_core::kek::Keyring;
use callguard_core::now;
use callguard_core::recording::{KeyShare, RecordingReader, RecordingWriter};
use callguard_store::{RecordingRow, Store};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;

/// The recordings of this node.
pub struct Recordings {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    dir: PathBuf,
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
        Self {
            store,
            kek,
            dir: data_dir.join("recordings"),
        }
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
}

fn read_through(
    id: String,
    mut r: RecordingReader<std::io::BufReader<File>>,
) -> Result<Checked, String> {
    use callguard_core::recording::Chunk;
    let (mut samples, mut audible, mut agent) = (0u64, 0u64, 0u64);
    loop {
        match r.next_chunk() {
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
    })
}
