//! The national Do-Not-Call registry shared through the database (PostgreSQL), so that an import
//! on one node reaches every node. The registry travels as the bytes of its compact set
//! (`callguard_core::dnc::elias_fano`), cut into chunks: staged first under a new version, then
//! put in force by one audited write that every node hears (LISTEN/NOTIFY). On SQLite a node is
//! alone and keeps the registry in files of its own (`DATA_DIR/dnc/`); these methods say so.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use callguard_core::UnixTime;

/// Bytes of the set per stored chunk (the last one may be shorter).
pub const REGISTRY_CHUNK_BYTES: usize = 8 << 20;

/// What describes one stored registry version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryVersion {
    /// Increases with every staged import.
    pub version: i64,
    /// Numbers on the registry.
    pub numbers: i64,
    /// SHA-256 (hex) of the published file it was imported from.
    pub source_sha256: String,
    /// The file's name (or the source the operator named).
    pub source: String,
    pub imported_at: UnixTime,
    /// Length of the set's bytes, and their SHA-256 (hex), checked when a node loads them.
    pub size: i64,
    pub set_sha256: String,
    pub chunks: i32,
}

/// The shared registry (PostgreSQL); SQLite answers that it keeps none.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// Whether the registry is kept in the database for every node (PostgreSQL), rather than in
    /// each node's data directory (SQLite).
    fn shares_registry(&self) -> bool;
    /// Stages a new version (not in force yet) with the description in `v` (its `version` is
    /// ignored); answers the version number.
    async fn registry_stage(&self, v: &RegistryVersion) -> StoreResult<i64>;
    /// Stores chunk `seq` (0, 1, …) of a staged version.
    async fn registry_put_chunk(&self, version: i64, seq: i32, data: &[u8]) -> StoreResult<()>;
    /// Puts a staged version in force together with its audit entry (one transaction), and
    /// forgets every other version. Refused (`Backend`) when the version is not completely staged.
    async fn registry_publish(&self, version: i64, audit: AuditRecord) -> StoreResult<()>;
    /// The version in force, if any.
    async fn registry_current(&self) -> StoreResult<Option<RegistryVersion>>;
    /// Chunk `seq` of `version`; `None` when it is gone (a newer version replaced it).
    async fn registry_chunk(&self, version: i64, seq: i32) -> StoreResult<Option<Vec<u8>>>;
}
