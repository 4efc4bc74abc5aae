//! The tamper-evident audit log's pure parts (SPEC C5): canonical JSON of entries (RFC 8785),
//! Merkle tree arithmetic (RFC 6962 / 9162) and signed checkpoints (C2SP signed notes).

pub mod jcs;
pub mod merkle;
pub mod note;
pub mod record;

pub use record::{AuditRecord, Outcome};
