//! The national Do-Not-Call registry as this node holds it (SPEC C8, part): a compact set on disk
//! under `DATA_DIR/dnc/`, switched atomically by renaming a small pointer file, and reloaded by
//! the server when the pointer changes — the old registry keeps answering until the new one is
//! loaded, and a refused import never touches either. Checks answer in the order asked.
//!
//! On PostgreSQL the registry lives in the database instead (`callguard_store::RegistryStore`):
//! an import on any node stages a new version there and puts it in force with its audit entry;
//! every node loads it at start and whenever it hears of a new one, and switches the same way.

use callguard_core::dnc::elias_fano::EliasFano;
use callguard_core::dnc::hours::CallingHours;
use callguard_core::dnc::number::Callee;
use callguard_store::{RegistryStore, RegistryVersion};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Most numbers one check request may carry.
pub const MAX_BATCH: usize = 10_000;
/// A registry older than this must be refreshed (FTC: scrub at least every 31 days).
pub const MAX_AGE_SECONDS: i64 = 31 * 24 * 3600;

/// What the pointer file says about the registry in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistryInfo {
    pub file: String,
    pub numbers: u64,
    pub sha256: String,
    pub source: String,
    pub imported_at: i64,
    /// The version in the shared database (PostgreSQL); absent for a registry kept in files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// A loaded registry.
pub struct Registry {
    pub set: EliasFano,
    pub info: RegistryInfo,
}

/// Outbound-compliance settings (configuration keys `dnc.*`).
#[derive(Debug, Clone, Default)]
pub struct DncSettings {
    /// Calling-hour windows: a default (TCPA 08:00-21:00) and overrides by region, zone or country.
    pub calling_hours: CallingHours,
}

/// The registry of this node, and the calling-hour windows it checks against.
pub struct Dnc {
    dir: PathBuf,
    current: RwLock<Option<Arc<Registry>>>,
    hours: CallingHours,
    /// False from [`Dnc::expect_shared`] until the registry in force in the database has been
    /// looked for (and loaded, when there is one): the node is not ready before.
    settled: AtomicBool,
    /// One load from the database at a time.
    loading: tokio::sync::Mutex<()>,
}

fn pointer(dir: &Path) -> PathBuf {
    dir.join("current.json")
}

fn io(e: std::io::Error, what: &str, path: &Path) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Dnc {
    /// Opens `dir` (creating it) and loads the registry in force, if any.
    pub fn open(dir: &Path, settings: DncSettings) -> Result<Self, String> {
        crate::bootstrap::create_private_dir(dir).map_err(|e| io(e, "cannot create", dir))?;
        let dnc = Self {
            dir: dir.to_path_buf(),
            current: RwLock::new(None),
            hours: settings.calling_hours,
            settled: AtomicBool::new(true),
            loading: tokio::sync::Mutex::new(()),
        };
        dnc.reload_if_changed()?;
        Ok(dnc)
    }

    #[must_use]
    pub fn current(&self) -> Option<Arc<Registry>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    fn read_pointer(&self) -> Result<Option<RegistryInfo>, String> {
        let p = pointer(&self.dir);
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| format!("{} is damaged", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e, "cannot read", &p)),
        }
    }

    /// Loads the registry the pointer names when it is not the one in memory. Returns whether
    /// it switched.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(info) = self.read_pointer()? else {
            return Ok(false);
        };
        if self.current().is_some_and(|r| r.info == info) {
            return Ok(false);
        }
        let path = self.dir.join(&info.file);
        // Read straight into the set's arrays: while the new registry loads, the old one still
        // answers, and a copy of the file on top of both would double the memory needed.
        let file = std::fs::File::open(&path).map_err(|e| io(e, "cannot read", &path))?;
        let len = file
            .metadata()
            .map_err(|e| io(e, "cannot read", &path))?
            .len();
        let set = EliasFano::read_from(file, len)
            .map_err(|e| io(e, "cannot read", &path))?
            .ok_or_else(|| format!("{} is not a registry file", path.display()))?;
        if set.len() != info.numbers {
            return Err(format!(
                "{} holds {} numbers, its pointer says {}",
                path.display(),
                set.len(),
                info.numbers
            ));
        }
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(Registry { set, info }));
        }
        tracing::info!(file = %path.display(), "national DNC registry loaded");
        Ok(true)
    }

    /// Whether the registry this node must hold at start is loaded (or there is none): false
    /// between [`Dnc::expect_shared`] and the first [`Dnc::sync_shared`] that succeeds.
    #[must_use]
    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// Marks that the registry comes from the shared database and has not been looked for yet.
    pub fn expect_shared(&self) {
        self.settled.store(false, Ordering::Release);
    }

    /// Loads the version in force in the shared database when it is not the one in memory; the
    /// registry in memory answers until the new one is whole and checked, then both switch at
    /// once. Returns whether it switched. With no version in the database, the node keeps what it
    /// has (a registry imported into its own files before the database held one).
    pub async fn sync_shared<S: RegistryStore + ?Sized>(&self, store: &S) -> Result<bool, String> {
        let _one_at_a_time = self.loading.lock().await;
        let stored = store
            .registry_current()
            .await
            .map_err(|e| format!("cannot read the shared registry: {e}"))?;
        let Some(stored) = stored else {
            self.settled.store(true, Ordering::Release);
            return Ok(false);
        };
        if self
            .current()
            .is_some_and(|r| r.info.version == Some(stored.version))
        {
            self.settled.store(true, Ordering::Release);
            return Ok(false);
        }
        let set = load_shared(store, &stored).await?;
        let info = RegistryInfo {
            file: shared_name(&stored.source_sha256, stored.imported_at),
            numbers: set.len(),
            sha256: stored.source_sha256.clone(),
            source: stored.source.clone(),
            imported_at: stored.imported_at,
            version: Some(stored.version),
        };
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(Registry { set, info }));
        }
        self.settled.store(true, Ordering::Release);
        tracing::info!(
            version = stored.version,
            numbers = stored.numbers,
            "national DNC registry loaded from the database"
        );
        Ok(true)
    }

    /// Stores `set` in the shared database as a new version, not yet in force; returns what
    /// [`RegistryStore::registry_publish`] of `info.version` puts in force. Shows progress through
    /// `progress(bytes stored, bytes in all)`.
    pub async fn stage_shared<S: RegistryStore + ?Sized>(
        &self,
        store: &S,
        set: &EliasFano,
        sha256: &str,
        source: &str,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RegistryInfo, String> {
        let bytes = set.to_bytes();
        let now = callguard_core::now();
        let chunks = bytes.chunks(callguard_store::REGISTRY_CHUNK_BYTES);
        let stage = |e: callguard_store::StoreError| format!("cannot store the registry: {e}");
        let version = store
            .registry_stage(&RegistryVersion {
                version: 0,
                numbers: i64::try_from(set.len()).map_err(|_| "too many numbers".to_owned())?,
                source_sha256: sha256.to_owned(),
                source: source.to_owned(),
                imported_at: now,
                size: i64::try_from(bytes.len()).map_err(|_| "registry too large".to_owned())?,
                set_sha256: hex_sha256(&bytes),
                chunks: i32::try_from(chunks.len()).map_err(|_| "registry too large".to_owned())?,
            })
            .await
            .map_err(stage)?;
        let total = bytes.len() as u64;
        let mut done = 0u64;
        for (seq, chunk) in chunks.enumerate() {
            let seq = i32::try_from(seq).map_err(|_| "registry too large".to_owned())?;
            store
                .registry_put_chunk(version, seq, chunk)
                .await
                .map_err(stage)?;
            done += chunk.len() as u64;
            progress(done, total);
        }
        Ok(RegistryInfo {
            file: shared_name(sha256, now),
            numbers: set.len(),
            sha256: sha256.to_owned(),
            source: source.to_owned(),
            imported_at: now,
            version: Some(version),
        })
    }

    /// Writes a new registry file (fsynced) and returns the pointer that would put it in force.
    pub fn stage(
        &self,
        set: &EliasFano,
        sha256: &str,
        source: &str,
    ) -> Result<RegistryInfo, String> {
        let now = callguard_core::now();
        let file = shared_name(sha256, now);
        let path = self.dir.join(&file);
        let tmp = self.dir.join(format!("{file}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(e, "cannot create", &tmp))?;
        f.write_all(&set.to_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| io(e, "cannot write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(e, "cannot rename", &tmp))?;
        Ok(RegistryInfo {
            file,
            numbers: set.len(),
            sha256: sha256.to_owned(),
            source: source.to_owned(),
            imported_at: now,
            version: None,
        })
    }

    /// Puts a staged registry in force: one atomic rename of the pointer. Older files are removed.
    pub fn commit(&self, info: &RegistryInfo) -> Result<(), String> {
        let p = pointer(&self.dir);
        let tmp = self.dir.join("current.json.tmp");
        let text = serde_json::to_vec_pretty(info).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(e, "cannot create", &tmp))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(|e| io(e, "cannot write", &tmp))?;
        std::fs::rename(&tmp, &p).map_err(|e| io(e, "cannot rename", &tmp))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("national-") && name != info.file {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// The calling-hour windows in force.
    #[must_use]
    pub fn calling_hours(&self) -> &CallingHours {
        &self.hours
    }

    /// Checks one number as written by the caller against the national registry only.
    #[must_use]
    pub fn check(&self, registry: &Registry, raw: &str) -> Verdict {
        self.verdict(
            registry,
            Callee::parse(raw).as_ref(),
            &ListFacts::default(),
            None,
        )
    }

    /// The verdict on one number (`None`: not a valid number): the national registry, what the
    /// company's own lists say of it, and, when `at` is given, the calling window at that time.
    /// Reasons come in the order of the public contract.
    #[must_use]
    pub fn verdict(
        &self,
        registry: &Registry,
        callee: Option<&Callee>,
        lists: &ListFacts,
        at: Option<callguard_core::dnc::hours::Timestamp>,
    ) -> Verdict {
        let Some(callee) = callee else {
            return Verdict {
                allowed: false,
                reasons: vec![Reason::InvalidNumber],
            };
        };
        let mut reasons = Vec::new();
        // Outside the North American plan neither the national registry nor the area-code
        // table applies.
        if let Callee::Nanp(n) = callee {
            if registry.set.contains(*n) {
                reasons.push(Reason::NationalDnc);
            }
        }
        let e164 = callee.e164();
        if lists.internal.contains(&e164) {
            reasons.push(Reason::InternalDnc);
        }
        if lists.consented.as_ref().is_some_and(|c| !c.contains(&e164)) {
            reasons.push(Reason::NoConsent);
        }
        if let (Callee::Nanp(n), Some(at)) = (callee, at) {
            if !self.hours.permits(*n, at) {
                reasons.push(Reason::OutsideCallingHours);
            }
        }
        Verdict {
            allowed: reasons.is_empty(),
            reasons,
        }
    }
}

/// Keeps this node's registry the one in force in the shared database: at start, at once
/// whenever any node puts a new one in force (LISTEN/NOTIFY), and every 30 s in case a
/// notification was lost; a failed load is retried every second while the old registry answers.
pub async fn follow_shared(dnc: Arc<Dnc>, store: Arc<dyn callguard_store::Store>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = store.subscribe_changes();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let failed = match dnc.sync_shared(store.as_ref()).await {
            Ok(_) => false,
            Err(e) => {
                tracing::error!(error = %e, "the national DNC registry could not be loaded from the database; the one in memory stays");
                true
            }
        };
        loop {
            let heard = match changes.as_mut() {
                Some(rx) if !failed => tokio::select! {
                    _ = tick.tick() => true,
                    heard = rx.recv() => match heard {
                        Ok(callguard_store::Change::Registry) | Err(RecvError::Lagged(_)) => true,
                        Ok(_) => false,
                        Err(RecvError::Closed) => {
                            changes = None;
                            false
                        }
                    },
                },
                _ if failed => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    true
                }
                _ => {
                    tick.tick().await;
                    true
                }
            };
            if heard {
                break;
            }
        }
    }
}

/// The name a registry goes by in status answers and audit targets (and its file, on SQLite).
fn shared_name(sha256: &str, imported_at: i64) -> String {
    format!(
        "national-{}-{imported_at}.cgef",
        sha256.chars().take(12).collect::<String>()
    )
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
}

/// Reads a stored version chunk by chunk straight into a set (never a whole second copy of its
/// bytes), checking the length and SHA-256 of what was stored.
async fn load_shared<S: RegistryStore + ?Sized>(
    store: &S,
    stored: &RegistryVersion,
) -> Result<EliasFano, String> {
    let (feed, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, String>>(2);
    let size = u64::try_from(stored.size).map_err(|_| "the stored registry is damaged")?;
    let expected = stored.set_sha256.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut r = ChunkReader {
            chunks,
            current: Vec::new(),
            at: 0,
            hash: sha2::Sha256::default(),
            read: 0,
        };
        let set = EliasFano::read_from(&mut r, size);
        // The receiver goes here, so the feeder below stops when reading ended early.
        (set, r.hash, r.read)
    });
    let (version, count) = (stored.version, stored.chunks);
    for seq in 0..count {
        let chunk = match store.registry_chunk(version, seq).await {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err("the registry version was replaced while loading".to_owned()),
            Err(e) => Err(format!("cannot read the shared registry: {e}")),
        };
        let failed = chunk.is_err();
        if feed.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(feed);
    let (set, hash, read) = reader
        .await
        .map_err(|_| "loading the registry stopped".to_owned())?;
    let set = set
        .map_err(|e| e.to_string())?
        .ok_or("the stored registry is damaged (not a registry set)")?;
    use sha2::Digest;
    let hash = data_encoding::HEXLOWER.encode(&hash.finalize());
    if read != size || hash != expected {
        return Err("the stored registry is damaged (length or SHA-256 differ)".into());
    }
    if i64::try_from(set.len()).ok() != Some(stored.numbers) {
        return Err("the stored registry is damaged (number count differs)".into());
    }
    Ok(set)
}

/// A [`std::io::Read`] over chunks arriving from the database, hashing what passes.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    at: usize,
    hash: sha2::Sha256,
    read: u64,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        while self.at >= self.current.len() {
            match self.chunks.blocking_recv() {
                Some(Ok(next)) => {
                    self.current = next;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let rest = self.current.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        let (from, to) = (rest.get(..n).unwrap_or_default(), buf.get_mut(..n));
        if let Some(to) = to {
            to.copy_from_slice(from);
        }
        self.hash.update(from);
        self.at += n;
        self.read += n as u64;
        Ok(n)
    }
}

/// What the company's own lists say about the numbers of one check, by E.164 number.
#[derive(Debug, Clone, Default)]
pub struct ListFacts {
    /// Numbers on the internal Do-Not-Call list.
    pub internal: HashSet<String>,
    /// When consent is required: the numbers that have it. `None`: consent was not asked for.
    pub consented: Option<HashSet<String>>,
}

/// Why a number may not be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// On the national Do-Not-Call registry.
    NationalDnc,
    /// On the company's own Do-Not-Call list (an opt-out).
    InternalDnc,
    /// Consent was required (a `purpose` was given) and there is no active consent for it.
    NoConsent,
    /// Outside the calling window in the called party's local time.
    OutsideCallingHours,
    /// Not a valid phone number.
    InvalidNumber,
}

impl Reason {
    /// The name on the wire and in scrub reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NationalDnc => "national_dnc",
            Reason::InternalDnc => "internal_dnc",
            Reason::NoConsent => "no_consent",
            Reason::OutsideCallingHours => "outside_calling_hours",
            Reason::InvalidNumber => "invalid_number",
        }
    }
}

/// The answer for one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reasons: Vec<Reason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        std::env::temp_dir().join(format!("cg-dnc-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn a_registry_is_put_in_force_atomically_and_reloaded() {
        let d = dir();
        let dnc = Dnc::open(&d, DncSettings::default()).unwrap();
        assert!(dnc.current().is_none());
        let first = EliasFano::from_sorted(&[2_025_550_123], 10_000_000_000).unwrap();
        let staged = dnc.stage(&first, "aa", "first.txt").unwrap();
        assert!(
            !dnc.reload_if_changed().unwrap(),
            "staging alone changes nothing"
        );
        dnc.commit(&staged).unwrap();
        assert!(dnc.reload_if_changed().unwrap());
        let r = dnc.current().unwrap();
        assert!(!dnc.check(&r, "+1 202 555 0123").allowed);
        assert_eq!(
            dnc.check(&r, "2025550124"),
            Verdict {
                allowed: true,
                reasons: vec![]
            }
        );
        let second = EliasFano::from_sorted(&[2_025_550_124], 10_000_000_000).unwrap();
        let staged = dnc.stage(&second, "bb", "second.txt").unwrap();
        // The old registry answers until the new one is in force.
        assert!(!dnc.check(&dnc.current().unwrap(), "2025550123").allowed);
        dnc.commit(&staged).unwrap();
        dnc.reload_if_changed().unwrap();
        let r = dnc.current().unwrap();
        assert!(dnc.check(&r, "2025550123").allowed);
        assert!(!dnc.check(&r, "2025550124").allowed);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            2,
            "pointer and one registry file remain"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_reason_is_given_in_the_contract_order_and_garbage_is_only_invalid() {
        use callguard_core::dnc::hours::Timestamp;
        let d = dir();
        let dnc = Dnc::open(&d, DncSettings::default()).unwrap();
        let r = Registry {
            set: EliasFano::from_sorted(&[3_035_550_100], 10_000_000_000).unwrap(),
            info: RegistryInfo {
                file: String::new(),
                numbers: 1,
                sha256: String::new(),
                source: String::new(),
                imported_at: 0,
                version: None,
            },
        };
        let denver = Callee::parse("+13035550100");
        let facts = ListFacts {
            internal: ["+13035550100".to_owned()].into(),
            consented: Some(HashSet::new()),
        };
        // 13:30 UTC in July is 07:30 in Denver.
        let early: Timestamp = "2024-07-15T13:30:00Z".parse().unwrap();
        assert_eq!(
            dnc.verdict(&r, denver.as_ref(), &facts, Some(early))
                .reasons,
            vec![
                Reason::NationalDnc,
                Reason::InternalDnc,
                Reason::NoConsent,
                Reason::OutsideCallingHours
            ]
        );
        assert_eq!(
            dnc.verdict(&r, None, &facts, Some(early)),
            Verdict {
                allowed: false,
                reasons: vec![Reason::InvalidNumber]
            }
        );
        // Consent on file, no consent asked, or no time given: those reasons go.
        let consented = ListFacts {
            internal: HashSet::new(),
            consented: Some(["+13035550100".to_owned()].into()),
        };
        assert_eq!(
            dnc.verdict(&r, denver.as_ref(), &consented, None).reasons,
            vec![Reason::NationalDnc]
        );
        let pl = Callee::parse("+48 601 234 567");
        assert!(
            dnc.verdict(&r, pl.as_ref(), &ListFacts::default(), Some(early))
                .allowed,
            "no window outside the North American plan"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn garbage_is_invalid_and_foreign_numbers_are_not_on_the_us_registry() {
        let d = dir();
        let dnc = Dnc::open(&d, DncSettings::default()).unwrap();
        let set = EliasFano::from_sorted(&[2_025_550_123], 10_000_000_000).unwrap();
        let r = Registry {
            set,
            info: RegistryInfo {
                file: String::new(),
                numbers: 1,
                sha256: String::new(),
                source: String::new(),
                imported_at: 0,
                version: None,
            },
        };
        for garbage in ["", "hello", "+1 111 555 0123", "12", "+999999"] {
            assert_eq!(
                dnc.check(&r, garbage).reasons,
                vec![Reason::InvalidNumber],
                "{garbage}"
            );
        }
        assert!(
            dnc.check(&r, "+48 601 234 567").allowed,
            "a valid Polish mobile"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
