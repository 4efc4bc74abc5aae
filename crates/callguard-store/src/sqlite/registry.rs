//! On SQLite the node is alone: the national registry stays in files under `DATA_DIR/dnc/`
//! (`callguard_server::features::dnc::registry`), not in the database.

use super::SqliteStore;
use crate::*;

fn not_here() -> StoreError {
    StoreError::Backend("on SQLite the national registry is kept in the data directory".into())
}

#[async_trait]
impl RegistryStore for SqliteStore {
    fn shares_registry(&self) -> bool {
        false
    }

    async fn registry_stage(&self, _v: &RegistryVersion) -> StoreResult<i64> {
        Err(not_here())
    }

    async fn registry_put_chunk(&self, _version: i64, _seq: i32, _data: &[u8]) -> StoreResult<()> {
        Err(not_here())
    }

    async fn registry_publish(&self, _version: i64, _audit: AuditRecord) -> StoreResult<()> {
        Err(not_here())
    }

    async fn registry_current(&self) -> StoreResult<Option<RegistryVersion>> {
        Ok(None)
    }

    async fn registry_chunk(&self, _version: i64, _seq: i32) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }
}
