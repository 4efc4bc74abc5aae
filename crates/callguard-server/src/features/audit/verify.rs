//! Checking the log end to end (`callguard audit verify`) and its export: every entry canonical
//! and in order, every subtree and checkpoint recomputed, checkpoints matched against the
//! witness copy outside the database.

use super::canonical::is_canonical_entry;
use super::service::WitnessLine;
use callguard_core::audit::jcs;
use callguard_core::audit::merkle::{self, Frontier, Hash, Subtree};
use callguard_core::audit::note::{self};
use callguard_store::{EntryBlock, Store};
use std::io::Write;
use std::path::Path;

/// The first problem found, naming the index where the log stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    #[error("entry {0} is missing: the log jumps from {0} to {1} (deleted entries)")]
    Missing(u64, u64),
    #[error("entry {0} holds the entry numbered {1} (entries were reordered)")]
    Reordered(u64, u64),
    #[error("entry {0} was edited: its content no longer matches its leaf hash")]
    Edited(u64),
    #[error("entry {0} is not a canonical audit entry (edited)")]
    Malformed(u64),
    #[error("the log was truncated: {witness} entries were checkpointed, the log has {have}; entries from index {have} on are missing")]
    Truncated { have: u64, witness: u64 },
    #[error("the checkpoint at tree size {size} does not match the log: an entry below index {size} was altered")]
    CheckpointMismatch { size: u64 },
    #[error("the checkpoint at tree size {size} has no valid signature by the audit key")]
    BadSignature { size: u64 },
    #[error("the log's stored head (size {stored}) does not match its entries (size {computed})")]
    Head { stored: u64, computed: u64 },
    #[error("the stored tree node at level {level}, index {index} is wrong (proofs served from it would fail): it covers entries from index {first_entry}")]
    Node {
        level: u32,
        index: u64,
        first_entry: u64,
    },
    #[error("cannot read the log: {0}")]
    Read(String),
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub root: Hash,
    pub checkpoints: usize,
    pub witness_checkpoints: usize,
}

/// Streams entries in index order and checks them; keeps roots at the sizes of interest.
struct Verifier {
    frontier: Frontier,
    sizes: std::collections::BTreeSet<u64>,
    roots: std::collections::HashMap<u64, Hash>,
    /// Perfect subtrees above the leaves completed by the entries pushed since the last
    /// [`check_nodes`], to compare with the stored nodes proofs are served from.
    nodes: Vec<(Subtree, Hash)>,
    /// Memory reused from one step to the next (see [`Verifier::check_step`]).
    scratch: Scratch,
}

/// A step's working memory, kept between steps: a step of 2^16 entries needs some MiB of
/// leaves and subtrees, and fresh memory for each step was faulted in and zeroed page by page
/// (a tenth of the check's time).
#[derive(Default)]
struct Scratch {
    fast: Vec<Option<Hash>>,
    levels: Vec<Vec<Hash>>,
}

impl Verifier {
    fn append(&mut self, leaf: Hash) {
        for (subtree, hash) in self.frontier.append(leaf) {
            if subtree.level > 0 {
                self.nodes.push((subtree, hash));
            }
        }
    }

    fn new(sizes: impl IntoIterator<Item = u64>) -> Self {
        Self {
            frontier: Frontier::default(),
            sizes: sizes.into_iter().collect(),
            roots: Default::default(),
            nodes: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Checks one entry given as stored text (and, from the database, its stored leaf hash).
    fn push(
        &mut self,
        index: u64,
        text: &str,
        stored_leaf: Option<&[u8]>,
    ) -> Result<(), VerifyFailure> {
        let leaf = entry_leaf(self.frontier.size, index, text, stored_leaf)?;
        self.append(leaf);
        if self.sizes.contains(&self.frontier.size) {
            self.roots.insert(self.frontier.size, self.frontier.root());
        }
        Ok(())
    }

    /// Checks one step of entries read from the database: `block` holds the entries from index
    /// `start` on (a multiple of `2^step_log2`, at most that many). Recomputes every subtree
    /// inside the step, compares them with `stored` (levels `1..=step_log2`, as
    /// [`callguard_store::AuditStore::audit_nodes_over`] reads them), keeps the roots at the
    /// sizes of interest and grows the frontier. Subtrees above the step that it completes are
    /// left in `self.nodes`, to compare with the store. Fails on the first problem in index
    /// order, as [`Verifier::push`] entry by entry would.
    fn check_step(
        &mut self,
        start: u64,
        block: &EntryBlock,
        stored: &[Vec<(u64, Option<Hash>)>],
        step_log2: u32,
    ) -> Result<(), VerifyFailure> {
        debug_assert_eq!(self.frontier.size, start);
        let mut scratch = std::mem::take(&mut self.scratch);
        let checked = self.check_step_with(start, block, stored, step_log2, &mut scratch);
        self.scratch = scratch;
        checked
    }

    fn check_step_with(
        &mut self,
        start: u64,
        block: &EntryBlock,
        stored: &[Vec<(u64, Option<Hash>)>],
        step_log2: u32,
        scratch: &mut Scratch,
    ) -> Result<(), VerifyFailure> {
        fast_leaves_into(block, &mut scratch.fast);
        let levels = &mut scratch.levels;
        levels.resize_with(1, Vec::new);
        let leaves = &mut levels[0];
        leaves.clear();
        leaves.reserve(block.len());
        for (i, &fast_leaf) in scratch.fast.iter().enumerate() {
            let expected = start + i as u64;
            let index = block.indexes[i];
            let stored_leaf = block.leaves[i].as_ref().map_or(&[][..], |h| &h[..]);
            let leaf = match fast_leaf {
                Some(leaf) => {
                    if index > expected {
                        return Err(VerifyFailure::Missing(expected, index));
                    }
                    if index < expected {
                        // A repeated index: the slow path names it.
                        return Err(VerifyFailure::Reordered(expected, index));
                    }
                    if stored_leaf != leaf {
                        return Err(VerifyFailure::Edited(index));
                    }
                    leaf
                }
                None => entry_leaf(expected, index, block.text(i), Some(stored_leaf))?,
            };
            leaves.push(leaf);
        }
        subtree_levels_into(levels, step_log2);
        let levels = &*levels;
        // The stored nodes, level by level, as the entries just checked make them.
        for (level, computed) in levels.iter().enumerate().skip(1) {
            let first = start >> level;
            let stored = stored.get(level - 1).map_or(&[][..], Vec::as_slice);
            for (k, hash) in computed.iter().enumerate() {
                let index = first + k as u64;
                let good = stored
                    .get(k)
                    .is_some_and(|(i, h)| *i == index && h.as_ref() == Some(hash));
                if !good {
                    return Err(VerifyFailure::Node {
                        level: level as u32,
                        index,
                        first_entry: index << level,
                    });
                }
            }
        }
        let end = start + block.len() as u64;
        let subtree = |s: &Subtree| {
            levels
                .get(s.level as usize)
                .and_then(|l| l.get((s.index - (start >> s.level)) as usize))
                .copied()
        };
        let wanted: Vec<u64> = self.sizes.range(start + 1..=end).copied().collect();
        for size in wanted {
            let mut hashes = self.frontier.hashes.clone();
            for s in merkle::decompose(start, size) {
                hashes.push(subtree(&s).ok_or(VerifyFailure::Read("a subtree is missing".into()))?);
            }
            self.roots.insert(
                size,
                merkle::fold(&hashes).unwrap_or_else(merkle::empty_root),
            );
        }
        if end - start == 1u64 << step_log2 {
            let top = subtree(&Subtree {
                level: step_log2,
                index: start >> step_log2,
            })
            .ok_or(VerifyFailure::Read("a subtree is missing".into()))?;
            let completed = self
                .frontier
                .append_subtree(step_log2, top)
                .ok_or(VerifyFailure::Read("a step is not aligned".into()))?;
            self.nodes.extend(completed);
        } else {
            // A partial (last) step: its perfect subtrees join the frontier as they are; the
            // size was a multiple of the step, so nothing merges.
            for s in merkle::decompose(start, end) {
                let hash = subtree(&s).ok_or(VerifyFailure::Read("a subtree is missing".into()))?;
                self.frontier.hashes.push(hash);
            }
            self.frontier.size = end;
        }
        Ok(())
    }

    /// Checks signed checkpoints against the recomputed roots.
    fn check_checkpoints(
        &self,
        notes: &[(u64, String)],
        verifier_key: &str,
    ) -> Result<(), VerifyFailure> {
        for (size, note_text) in notes {
            let cp = note::verify_checkpoint(note_text, verifier_key)
                .map_err(|_| VerifyFailure::BadSignature { size: *size })?;
            if cp.size > self.frontier.size {
                return Err(VerifyFailure::Truncated {
                    have: self.frontier.size,
                    witness: cp.size,
                });
            }
            if self.roots.get(&cp.size) != Some(&cp.root) {
                return Err(VerifyFailure::CheckpointMismatch { size: cp.size });
            }
        }
        Ok(())
    }
}

/// The leaf hash of the entry stored at `index` with `text`, where the entry numbered `expected`
/// belongs; fails naming the problem. The stored leaf hash, when given, must match.
fn entry_leaf(
    expected: u64,
    index: u64,
    text: &str,
    stored_leaf: Option<&[u8]>,
) -> Result<Hash, VerifyFailure> {
    if index > expected {
        return Err(VerifyFailure::Missing(expected, index));
    }
    // Fast path: a text that is already exactly its own canonical form and claims `index`
    // is checked in one scan, without building a JSON value. It ends as the slow path
    // below would for such a text; any other text takes the slow path, which names the
    // problem.
    if is_canonical_entry(text, index) {
        let leaf = merkle::leaf_hash(text.as_bytes());
        if stored_leaf.is_some_and(|s| s != leaf) {
            return Err(VerifyFailure::Edited(index));
        }
        return Ok(leaf);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| VerifyFailure::Malformed(expected))?;
    let claimed = value.get("index").and_then(serde_json::Value::as_u64);
    if claimed != Some(index) {
        return Err(match claimed {
            Some(c) => VerifyFailure::Reordered(index, c),
            None => VerifyFailure::Malformed(index),
        });
    }
    let canonical = jcs::canonical(&value).map_err(|_| VerifyFailure::Malformed(index))?;
    let leaf = merkle::leaf_hash(canonical.as_bytes());
    if canonical != text || stored_leaf.is_some_and(|s| s != leaf) {
        return Err(VerifyFailure::Edited(index));
    }
    Ok(leaf)
}

/// Up to 4 threads for the hashing (the machine's cores).
fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(4)
}

/// Runs `work` over consecutive chunks of `output` on [`threads`] threads (this one
/// included), or on this thread alone when there is little to do; `work` is told where its
/// chunk starts. The chunks are small and taken in turn by whichever thread is free: the
/// store's reader threads share the cores, so halves fixed in advance would leave one thread
/// waiting for the other.
fn parallel<O: Send>(output: &mut [O], work: impl Fn(usize, &mut [O]) + Sync) {
    /// Items per chunk: a few hundred microseconds of hashing.
    const CHUNK: usize = 2048;
    let threads = threads();
    if threads < 2 || output.len() < 1024 {
        work(0, output);
        return;
    }
    let chunks = std::sync::Mutex::new(output.chunks_mut(CHUNK).enumerate());
    let take = || {
        chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next()
    };
    let run = || {
        while let Some((k, o)) = take() {
            work(k * CHUNK, o);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(run);
        }
        // This thread takes chunks too rather than waiting idle.
        run();
    });
}

/// Every perfect subtree inside a run of leaves that starts on a multiple of `2^max_level`:
/// item `l` of `levels` holds the subtrees of level `l` in order; item 0 holds the leaves
/// themselves on entry, the other items are replaced (their memory reused).
fn subtree_levels_into(levels: &mut Vec<Vec<Hash>>, max_level: u32) {
    let mut level = 0;
    while level < max_level as usize {
        let Some(below) = levels.get(level) else {
            break;
        };
        if below.len() < 2 {
            break;
        }
        let count = below.len() / 2;
        let mut above = levels
            .get_mut(level + 1)
            .map(std::mem::take)
            .unwrap_or_default();
        above.clear();
        above.resize(count, [0u8; 32]);
        let below = &levels[level];
        parallel(&mut above, |first, parents| {
            let children = &below[2 * first..2 * (first + parents.len())];
            for (pair, parent) in children.chunks_exact(2).zip(parents.iter_mut()) {
                *parent = merkle::node_hash(&pair[0], &pair[1]);
            }
        });
        if levels.len() == level + 1 {
            levels.push(above);
        } else {
            levels[level + 1] = above;
        }
        level += 1;
    }
    levels.truncate(level + 1);
}

pub fn witness_notes(path: &Path) -> Result<Vec<(u64, String)>, VerifyFailure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(VerifyFailure::Read(format!(
                "witness file {}: {e}",
                path.display()
            )))
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<WitnessLine>(l)
                .map(|w| (w.size, w.note))
                .map_err(|_| {
                    VerifyFailure::Read(format!(
                        "witness file {} has a malformed line",
                        path.display()
                    ))
                })
        })
        .collect()
}

/// Verifies the whole log in the database, its checkpoints and the witness file. `progress`
/// is called with the number of entries checked so far.
pub async fn verify_store(
    store: &dyn Store,
    verifier_key: &str,
    witness_file: &Path,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyFailure> {
    verify_store_in_steps(store, verifier_key, witness_file, STEP_LOG2, progress).await
}

/// Entries read and checked together by `audit verify`: 2^16, so that a step covers whole
/// subtrees up to level 16 and the nodes over it are read and compared in bulk.
const STEP_LOG2: u32 = 16;

async fn verify_store_in_steps(
    store: &dyn Store,
    verifier_key: &str,
    witness_file: &Path,
    step_log2: u32,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyFailure> {
    let read = |e: callguard_store::StoreError| VerifyFailure::Read(e.to_string());
    // Entries committed but not yet indexed (PostgreSQL) get their indexes first, as any node's
    // integrator would give them, so that the log checked is the log acknowledged.
    store.integrate().await.map_err(read)?;
    let checkpoints: Vec<(u64, String)> = store
        .checkpoints()
        .await
        .map_err(read)?
        .into_iter()
        .map(|c| (c.size, c.note))
        .collect();
    let witness = witness_notes(witness_file)?;
    let mut v = Verifier::new(checkpoints.iter().chain(witness.iter()).map(|(s, _)| *s));
    let step = 1u64 << step_log2;
    // A step's entries and the stored nodes over them are read together, on two blocking
    // threads, while the previous step is hashed and checked here. Two entry blocks take
    // turns, so that their memory is reused.
    let read_step = |start: u64, block: EntryBlock| async move {
        tokio::join!(
            store.audit_entry_block(start, step, block),
            store.audit_nodes_over(start, step, step_log2)
        )
    };
    let mut start = 0u64;
    let mut spare = EntryBlock::default();
    let mut next = Some(read_step(0, EntryBlock::default()).await);
    while let Some((block, nodes)) = next.take() {
        let (block, nodes) = (block.map_err(read)?, nodes.map_err(read)?);
        if block.is_empty() {
            break;
        }
        let full = block.len() as u64 == step;
        let check = async { v.check_step(start, &block, &nodes, step_log2) };
        if full {
            let (fetched, checked) = tokio::join!(read_step(start + step, spare), check);
            checked?;
            next = Some(fetched);
        } else {
            check.await?;
        }
        spare = block;
        // Subtrees above the step that it completed: a few, read one level at a time.
        check_nodes(store, &mut v.nodes).await?;
        start = v.frontier.size;
        progress(start);
    }
    v.check_checkpoints(&witness, verifier_key)?;
    v.check_checkpoints(&checkpoints, verifier_key)?;
    let head = store.audit_head().await.map_err(read)?;
    if head.size > v.frontier.size {
        return Err(VerifyFailure::Truncated {
            have: v.frontier.size,
            witness: head.size,
        });
    }
    if head != v.frontier {
        return Err(VerifyFailure::Head {
            stored: head.size,
            computed: v.frontier.size,
        });
    }
    Ok(VerifyReport {
        entries: v.frontier.size,
        root: v.frontier.root(),
        checkpoints: checkpoints.len(),
        witness_checkpoints: witness.len(),
    })
}

/// The leaf hash of every entry of `block` whose text is exactly its canonical form claiming its
/// index (`None` for the others, which take the slow path that names the problem), in `out`.
/// This is most of the work and needs no order, so it is spread over the machine's cores (up
/// to 4); the tree itself is then grown in order.
fn fast_leaves_into(block: &EntryBlock, out: &mut Vec<Option<Hash>>) {
    out.clear();
    out.resize(block.len(), None);
    parallel(out, |first, leaves| {
        for (i, leaf) in (first..).zip(leaves.iter_mut()) {
            let text = block.text(i);
            *leaf = is_canonical_entry(text, block.indexes[i])
                .then(|| merkle::leaf_hash(text.as_bytes()));
        }
    });
}

/// Compares the stored nodes above the leaves with the ones the entries just checked produce.
/// Proofs are served from these nodes, so a damaged one would make honest proofs fail or
/// dishonest ones pass. The leaves themselves were checked against the entries already; nodes
/// are read per level in contiguous runs, in the same pass as the entries.
async fn check_nodes(
    store: &dyn Store,
    computed: &mut Vec<(Subtree, Hash)>,
) -> Result<(), VerifyFailure> {
    let read = |e: callguard_store::StoreError| VerifyFailure::Read(e.to_string());
    computed.sort_by_key(|(s, _)| (s.level, s.index));
    let mut i = 0;
    while i < computed.len() {
        let (level, first) = (computed[i].0.level, computed[i].0.index);
        let mut j = i;
        while j + 1 < computed.len()
            && computed[j + 1].0.level == level
            && computed[j + 1].0.index == computed[j].0.index + 1
        {
            j += 1;
        }
        let stored = store
            .audit_level(level, first, (j - i + 1) as u64)
            .await
            .map_err(read)?;
        for (k, (subtree, hash)) in computed[i..=j].iter().enumerate() {
            let good = stored
                .get(k)
                .is_some_and(|(idx, h)| *idx == subtree.index && h[..] == hash[..]);
            if !good {
                return Err(VerifyFailure::Node {
                    level: subtree.level,
                    index: subtree.index,
                    first_entry: subtree.index << subtree.level,
                });
            }
        }
        i = j + 1;
    }
    computed.clear();
    Ok(())
}

/// Writes an export: a header line, one line per entry, one per checkpoint (JSON lines).
pub async fn export(
    store: &dyn Store,
    verifier_key: &str,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    let header = serde_json::json!({"type": "callguard-audit-export", "version": 1, "verifier_key": verifier_key});
    writeln!(out, "{header}").map_err(|e| e.to_string())?;
    let mut next = 0u64;
    loop {
        let batch = store
            .audit_entries(next, 20_000)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            // The stored leaf hash travels with the entry, so that an offline check names an
            // edited entry exactly, as `audit verify` does on the database.
            writeln!(
                out,
                "{{\"type\":\"entry\",\"leaf_hash\":\"{}\",\"entry\":{}}}",
                data_encoding::BASE64.encode(&e.leaf_hash),
                e.text
            )
            .map_err(|e| e.to_string())?;
            next = e.index + 1;
        }
        progress(next);
    }
    for cp in store.checkpoints().await.map_err(|e| e.to_string())? {
        let line = serde_json::json!({"type": "checkpoint", "size": cp.size, "note": cp.note});
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(next)
}

/// Verifies an export file offline. `verifier_key` overrides the key named in the file.
pub fn verify_export(
    path: &Path,
    verifier_key: Option<&str>,
) -> Result<VerifyReport, VerifyFailure> {
    use std::io::BufRead;
    let file = std::fs::File::open(path)
        .map_err(|e| VerifyFailure::Read(format!("{}: {e}", path.display())))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header: serde_json::Value = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| serde_json::from_str(&l).ok())
        .ok_or_else(|| VerifyFailure::Read("the export has no header line".into()))?;
    let key = match verifier_key {
        Some(k) => k.to_owned(),
        None => header
            .get("verifier_key")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| VerifyFailure::Read("the export names no verifier key".into()))?
            .to_owned(),
    };
    let mut entries: Vec<(String, Option<Hash>)> = Vec::new();
    let mut checkpoints = Vec::new();
    for line in lines {
        let line = line.map_err(|e| VerifyFailure::Read(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|_| VerifyFailure::Read("a line is not JSON".into()))?;
        match v.get("type").and_then(serde_json::Value::as_str) {
            Some("entry") => {
                let e = v
                    .get("entry")
                    .ok_or_else(|| VerifyFailure::Read("an entry line has no entry".into()))?;
                let malformed = VerifyFailure::Malformed(entries.len() as u64);
                // The leaf hash stored with the entry, when the export carries it.
                let leaf = match v.get("leaf_hash") {
                    None => None,
                    Some(h) => Some(
                        h.as_str()
                            .and_then(|h| data_encoding::BASE64.decode(h.as_bytes()).ok())
                            .and_then(|b| Hash::try_from(b.as_slice()).ok())
                            .ok_or_else(|| malformed.clone())?,
                    ),
                };
                // The export keeps each entry's bytes as stored: re-serialise exactly that object.
                entries.push((jcs::canonical(e).map_err(|_| malformed)?, leaf));
            }
            Some("checkpoint") => {
                let size = v
                    .get("size")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let n = v
                    .get("note")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                checkpoints.push((size, n));
            }
            _ => return Err(VerifyFailure::Read("a line has an unknown type".into())),
        }
    }
    let mut v = Verifier::new(checkpoints.iter().map(|(s, _)| *s));
    for (text, leaf) in &entries {
        let index = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|x| x.get("index").and_then(serde_json::Value::as_u64))
            .ok_or(VerifyFailure::Malformed(v.frontier.size))?;
        v.push(index, text, leaf.as_ref().map(|h| &h[..]))?;
        // An export carries no tree nodes to compare with.
        v.nodes.clear();
    }
    if checkpoints.is_empty() {
        return Err(VerifyFailure::Read(
            "the export holds no signed checkpoint to verify against".into(),
        ));
    }
    v.check_checkpoints(&checkpoints, &key)?;
    let latest = checkpoints.iter().map(|(s, _)| *s).max().unwrap_or(0);
    if latest < v.frontier.size {
        tracing::warn!(
            entries = v.frontier.size,
            checkpointed = latest,
            "entries after the latest checkpoint are not covered by a signature"
        );
    }
    Ok(VerifyReport {
        entries: v.frontier.size,
        root: v.frontier.root(),
        checkpoints: checkpoints.len(),
        witness_checkpoints: 0,
    })
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
