//! The audit log as a service (SPEC C5): signed checkpoints issued on a timer and written to a
//! witness outside the database, entries and proofs for the compliance role, and the verifier
//! behind `callguard audit verify`. Appending itself happens in the store, inside the
//! transaction of each change.

use crate::error::Error;
use crate::principal::Actor;
use callguard_core::audit::merkle::{self, Hash, Subtree};
use callguard_core::audit::note::{self, NoteSigner};
use callguard_core::audit::AuditRecord;
use callguard_store::{AuditFilter, Store, StoredCheckpoint, StoredEntry};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where checkpoints go besides the database.
#[derive(Debug, Clone)]
pub struct WitnessSettings {
    /// Directory of the append-only witness file `checkpoints.jsonl`.
    pub dir: PathBuf,
    /// `host:port` of a syslog collector (RFC 5424 over UDP), if any.
    pub syslog: Option<String>,
    /// A URL that receives every checkpoint as a `text/plain` POST (e.g. a witness service).
    pub url: Option<url::Url>,
}

impl WitnessSettings {
    #[must_use]
    pub fn file(&self) -> PathBuf {
        self.dir.join("checkpoints.jsonl")
    }
}

/// Loads the checkpoint signing key from `path`, creating it (0600) when missing.
pub fn load_or_create_signer(path: &Path, origin: &str) -> Result<NoteSigner, String> {
    let shown = path.display().to_string();
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the audit signing key {shown}: {e}"))?;
        let der = data_encoding::BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| format!("the audit signing key {shown} is not base64"))?;
        return NoteSigner::from_pkcs8(origin, &der)
            .map_err(|e| format!("the audit signing key {shown}: {e}"));
    }
    if let Some(parent) = path.parent() {
        crate::bootstrap::create_private_dir(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let signer =
        NoteSigner::generate(origin).map_err(|e| format!("audit origin {origin:?}: {e}"))?;
    crate::bootstrap::write_private_file(
        path,
        format!(
            "{}\n",
            data_encoding::BASE64.encode(signer.pkcs8().expose())
        )
        .as_bytes(),
    )
    .map_err(|e| format!("cannot write the audit signing key {shown}: {e}"))?;
    tracing::info!(path = %shown, "created the audit checkpoint signing key");
    Ok(signer)
}

/// One line of the witness file.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct WitnessLine {
    pub(crate) size: u64,
    pub(crate) note: String,
}

/// The audit log service.
pub struct AuditLog {
    store: Arc<dyn Store>,
    signer: NoteSigner,
    witness: WitnessSettings,
    /// Serialises checkpointing within this node.
    checkpointing: tokio::sync::Mutex<()>,
    http: reqwest::Client,
}

impl AuditLog {
    pub fn new(
        store: Arc<dyn Store>,
        signer: NoteSigner,
        witness: WitnessSettings,
    ) -> Result<Self, String> {
        crate::bootstrap::create_private_dir(&witness.dir)
            .map_err(|e| format!("witness directory {}: {e}", witness.dir.display()))?;
        Ok(Self {
            store,
            signer,
            witness,
            checkpointing: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        })
    }

    #[must_use]
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// Signs `text` (ending with a newline) with the log's key into a signed note, for other
    /// evidence the log vouches for (the compliance report). Verify with the verifier key.
    #[must_use]
    pub fn sign_note(&self, text: &str) -> String {
        self.signer.sign(text)
    }

    /// Where checkpoints are witnessed.
    #[must_use]
    pub fn witness(&self) -> &WitnessSettings {
        &self.witness
    }

    /// Signs a checkpoint of the current tree if it grew since the last one, stores it and
    /// sends it to the witness. Returns the latest checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, Error> {
        let _guard = self.checkpointing.lock().await;
        let head = self.store.audit_head().await?;
        let latest = self.store.latest_checkpoint().await?;
        if head.size == 0 || latest.as_ref().is_some_and(|c| c.size >= head.size) {
            return Ok(latest);
        }
        let root = head.root();
        let text = note::checkpoint_text(self.signer.name(), head.size, &root);
        let cp = StoredCheckpoint {
            size: head.size,
            root,
            note: self.signer.sign(&text),
            created_at: callguard_core::now(),
        };
        if self.store.add_checkpoint(&cp).await? {
            self.to_witness(&cp);
        }
        Ok(Some(cp))
    }

    fn to_witness(&self, cp: &StoredCheckpoint) {
        let line = match serde_json::to_string(&WitnessLine {
            size: cp.size,
            note: cp.note.clone(),
        }) {
            Ok(l) => l,
            Err(_) => return,
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.witness.file())
            .and_then(|mut f| {
                f.write_all(line.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_data()
            });
        if let Err(e) = written {
            tracing::error!(error = %e, file = %self.witness.file().display(), "cannot write the audit witness file");
        }
        if let Some(url) = self.witness.url.clone() {
            let (http, note) = (self.http.clone(), cp.note.clone());
            tokio::spawn(async move {
                for attempt in 1..=3u64 {
                    let sent = http
                        .post(url.clone())
                        .header("content-type", "text/plain; charset=utf-8")
                        .body(note.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => return,
                        Ok(r) => tracing::warn!(
                            status = r.status().as_u16(),
                            attempt,
                            "the checkpoint witness URL refused"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e.without_url(), attempt, "the checkpoint witness URL is unreachable")
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
                }
            });
        }
        if let Some(target) = &self.witness.syslog {
            send_syslog(
                target,
                "audit",
                &format!(
                    "callguard audit checkpoint size={} root={}",
                    cp.size,
                    data_encoding::BASE64.encode(&cp.root)
                ),
            );
        }
    }

    /// Indexes every entry committed so far (on PostgreSQL the integrator does so within
    /// moments anyway), then signs a checkpoint as [`AuditLog::checkpoint`]: what a client saw
    /// acknowledged before asking is inside the answer.
    pub async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, Error> {
        self.store.integrate().await?;
        self.checkpoint().await
    }

    /// Runs checkpoints every `interval` until the process ends.
    pub async fn run(self: Arc<Self>, interval: std::time::Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.checkpoint().await {
                tracing::warn!(error = %e, "checkpoint failed");
            }
        }
    }

    /// Resolves planned subtrees into proof hashes.
    async fn materialise(&self, plan: Vec<Vec<Subtree>>) -> Result<Vec<Hash>, Error> {
        let flat: Vec<Subtree> = plan.iter().flatten().copied().collect();
        let hashes = self.store.audit_subtrees(&flat).await?;
        let mut it = hashes.into_iter();
        let mut out = Vec::with_capacity(plan.len());
        for parts in plan {
            let part_hashes: Vec<Hash> = it.by_ref().take(parts.len()).collect();
            out.push(merkle::fold(&part_hashes).ok_or(Error::Internal)?);
        }
        Ok(out)
    }

    /// Inclusion proof of entry `index` in the tree of `size` entries.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        let head = self.store.audit_head().await?;
        if size > head.size || index >= size {
            return Err(Error::Validation(format!(
                "need index < tree_size <= {} (the current tree size)",
                head.size
            )));
        }
        self.materialise(merkle::inclusion_plan(index, size).ok_or(Error::Internal)?)
            .await
    }

    /// Consistency proof between tree sizes `first` and `second`.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, Error> {
        let head = self.store.audit_head().await?;
        if first == 0 || first > second || second > head.size {
            return Err(Error::Validation(format!(
                "need 0 < first <= second <= {} (the current tree size)",
                head.size
            )));
        }
        self.materialise(merkle::consistency_plan(first, second).ok_or(Error::Internal)?)
            .await
    }

    /// Whether entry `index` (stored as `text`) is provably in the latest signed checkpoint.
    pub async fn proof_status(
        &self,
        index: u64,
        text: &str,
        latest: Option<&StoredCheckpoint>,
    ) -> String {
        let Some(cp) = latest else {
            return "awaiting the first checkpoint".into();
        };
        if index >= cp.size {
            return "awaiting the next checkpoint".into();
        }
        let leaf = merkle::leaf_hash(text.as_bytes());
        match self.inclusion_proof(index, cp.size).await {
            Ok(proof) if merkle::verify_inclusion(index, cp.size, &leaf, &proof, &cp.root) => {
                format!("✓ included in checkpoint {}", cp.size)
            }
            Ok(_) => "✗ PROOF FAILS: entry or tree altered".into(),
            Err(_) => "✗ proof unavailable".into(),
        }
    }

    /// Appends a record that accompanies no other change (e.g. reading the log itself).
    pub async fn record(&self, record: AuditRecord) -> Result<(), Error> {
        self.store.append(vec![record]).await?;
        Ok(())
    }

    /// Entries `start..start+limit` (limit 1 to 1000) and the tree size, for the API. Reading
    /// the log is itself an action the log records (PCI DSS 10.2.1.3).
    pub async fn read_page(
        &self,
        reader: &Actor,
        start: u64,
        limit: u64,
    ) -> Result<(u64, Vec<serde_json::Value>), Error> {
        if limit == 0 || limit > 1000 {
            return Err(Error::Validation(
                "`limit` must be between 1 and 1000".into(),
            ));
        }
        if i64::try_from(start).is_err() {
            return Err(Error::Validation(format!(
                "`start` must be at most {}",
                i64::MAX
            )));
        }
        self.record(
            reader
                .record("audit.read")
                .detail("start", start)
                .detail("limit", limit),
        )
        .await?;
        // What was acknowledged before this read (this read's own entry too) is indexed first.
        self.store.integrate().await?;
        let tree_size = self.store.audit_head().await?.size;
        let rows = self.store.audit_entries(start, limit).await?;
        let entries = rows
            .iter()
            .map(|e| serde_json::from_str(&e.text).map_err(|_| Error::Internal))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((tree_size, entries))
    }

    /// The audit browser's search, newest first, each entry with its proof status. Recorded like
    /// every read of the log, with only identifier-shaped filter values: free text typed into a
    /// filter box could be a name, and the log holds no personal data.
    pub async fn search(&self, reader: &Actor, filter: &AuditFilter) -> Result<Search, Error> {
        let mut read = reader.record("audit.read").detail("page", "audit browser");
        for (k, v) in [("actor", &filter.actor), ("action", &filter.action)] {
            if let Some(v) = v {
                let value = if looks_like_identifier(v) {
                    v.clone()
                } else {
                    "(free text, not recorded)".into()
                };
                read = read.detail(k, value);
            }
        }
        self.record(read).await?;
        self.store.integrate().await?;
        let rows = self.store.search_audit(filter).await?;
        let tree_size = self.store.audit_head().await.map(|h| h.size).unwrap_or(0);
        let latest = self.store.latest_checkpoint().await.ok().flatten();
        let mut entries = Vec::with_capacity(rows.len());
        for e in rows {
            let proof = self.proof_status(e.index, &e.text, latest.as_ref()).await;
            entries.push((e, proof));
        }
        Ok(Search {
            tree_size,
            latest,
            entries,
        })
    }
}

/// Sends one RFC 5424 message over UDP to `target` (`host:port`): facility
/// security/authorization (10), severity notice (5), MSGID `msg_id`.
pub fn send_syslog(target: &str, msg_id: &str, message: &str) {
    // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "-".into());
    let line = format!(
        "<85>1 {} {host} callguard {} {msg_id} - {}",
        callguard_core::rfc3339(callguard_core::now()),
        std::process::id(),
        message
    );
    if let Ok(sock) = std::net::UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(line.as_bytes(), target);
    }
}

/// What the audit browser shows: the log's size, its latest checkpoint, and the entries found
/// with their proof status.
pub struct Search {
    pub tree_size: u64,
    pub latest: Option<StoredCheckpoint>,
    pub entries: Vec<(StoredEntry, String)>,
}

/// `user:<uuid>`, `cli`, `system`, `anonymous`, or a dotted action name like `auth.sign_in`.
pub fn looks_like_identifier(v: &str) -> bool {
    let uuid_ref = v.split_once(':').is_some_and(|(kind, id)| {
        matches!(kind, "user" | "customer" | "alert" | "session")
            && uuid::Uuid::parse_str(id).is_ok()
    });
    let word = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
    uuid_ref || word
}
