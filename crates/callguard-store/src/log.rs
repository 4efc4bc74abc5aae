//! What both backends share when appending to the audit log: numbering the records from the
//! frontier, canonicalising them, hashing the leaves and noting the perfect subtrees completed.

use crate::{StoreError, StoreResult};
use callguard_core::audit::merkle::{Frontier, Hash, Subtree};
use callguard_core::audit::AuditRecord;

/// Rows to write for a batch of records, and the frontier after them.
pub(crate) struct Planned {
    pub entries: Vec<(u64, String, Hash)>,
    /// Completed perfect subtrees above the leaves (level ≥ 1).
    pub nodes: Vec<(Subtree, Hash)>,
    pub frontier: Frontier,
}

pub(crate) fn plan(mut frontier: Frontier, records: &[AuditRecord]) -> StoreResult<Planned> {
    let mut entries = Vec::with_capacity(records.len());
    let mut nodes = Vec::new();
    for r in records {
        let index = frontier.size;
        let (text, leaf) = r.leaf(index).map_err(|e| {
            StoreError::Backend(format!("audit entry cannot be canonicalised: {e}"))
        })?;
        for (subtree, hash) in frontier.append(leaf) {
            if subtree.level > 0 {
                nodes.push((subtree, hash));
            }
        }
        entries.push((index, text, leaf));
    }
    Ok(Planned {
        entries,
        nodes,
        frontier,
    })
}

/// Rows to write for entries written down without an index (`(pending id, head, tail)`, in the
/// order they get their indexes), and the frontier after them.
pub(crate) fn plan_pending(mut frontier: Frontier, rows: &[(i64, String, String)]) -> Planned {
    let mut entries = Vec::with_capacity(rows.len());
    let mut nodes = Vec::new();
    for (_, head, tail) in rows {
        let index = frontier.size;
        let (text, leaf) = AuditRecord::join(head, index, tail);
        for (subtree, hash) in frontier.append(leaf) {
            if subtree.level > 0 {
                nodes.push((subtree, hash));
            }
        }
        entries.push((index, text, leaf));
    }
    Planned {
        entries,
        nodes,
        frontier,
    }
}

pub(crate) fn parse_frontier(bytes: &[u8]) -> StoreResult<Frontier> {
    Frontier::from_bytes(bytes)
        .ok_or_else(|| StoreError::Backend("the audit log head is damaged".into()))
}

/// The entry that follows a failed attempt when it locks the account.
pub(crate) fn lockout_record(
    user_id: &str,
    failed: i64,
    until: i64,
    source: Option<&str>,
) -> AuditRecord {
    let mut r = AuditRecord::new("auth.account_locked", "system")
        .target(callguard_core::audit::record::user(user_id))
        .detail("failed_sign_ins", failed)
        .detail("locked_until", callguard_core::rfc3339(until));
    r.source = source.map(str::to_owned);
    r
}

/// Hash bytes from a database column.
pub(crate) fn to_hash(bytes: &[u8]) -> StoreResult<Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a stored hash has the wrong length".into()))
}
