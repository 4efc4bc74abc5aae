//! The shared national registry on PostgreSQL: versions staged chunk by chunk, one put in force
//! by an audited write whose trigger tells every node (`callguard_dnc`).

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::*;
use tokio_postgres::Row;

const COLUMNS: &str =
    "version, numbers, source_sha256, source, imported_at, size, set_sha256, chunks";

fn version_row(r: &Row) -> RegistryVersion {
    RegistryVersion {
        version: r.get(0),
        numbers: r.get(1),
        source_sha256: r.get(2),
        source: r.get(3),
        imported_at: r.get(4),
        size: r.get(5),
        set_sha256: r.get(6),
        chunks: r.get(7),
    }
}

#[async_trait]
impl RegistryStore for PostgresStore {
    fn shares_registry(&self) -> bool {
        true
    }

    async fn registry_stage(&self, v: &RegistryVersion) -> StoreResult<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO dnc_registry_versions (numbers, source_sha256, source, imported_at, size, set_sha256, chunks) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING version",
                &[&v.numbers, &v.source_sha256, &v.source, &v.imported_at, &v.size, &v.set_sha256, &v.chunks],
            )
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn registry_put_chunk(&self, version: i64, seq: i32, data: &[u8]) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO dnc_registry_chunks (version, seq, data) VALUES ($1, $2, $3)",
            &[&version, &seq, &data],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn registry_publish(&self, version: i64, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                // Only a version with every chunk, of the announced total length, goes in force.
                let complete: Option<bool> = tx
                    .query_opt(
                        "SELECT v.chunks = count(c.seq) AND v.size = coalesce(sum(length(c.data)), 0) \
                         FROM dnc_registry_versions v LEFT JOIN dnc_registry_chunks c ON c.version = v.version \
                         WHERE v.version = $1 GROUP BY v.chunks, v.size",
                        &[&version],
                    )
                    .await
                    .map_err(map_err)?
                    .map(|r| r.get(0));
                if complete != Some(true) {
                    return Err(StoreError::Backend(
                        "the registry version is not completely stored".into(),
                    ));
                }
                tx.execute(
                    "INSERT INTO dnc_registry_current (id, version) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    &[&version],
                )
                .await
                .map_err(map_err)?;
                // Older versions, and older ones staged by imports that never finished (a later
                // import still staging keeps its own).
                tx.execute(
                    "DELETE FROM dnc_registry_versions WHERE version < $1",
                    &[&version],
                )
                .await
                .map_err(map_err)?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn registry_current(&self) -> StoreResult<Option<RegistryVersion>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM dnc_registry_versions \
                     WHERE version = (SELECT version FROM dnc_registry_current WHERE id = 1)"
                ),
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(row.as_ref().map(version_row))
    }

    async fn registry_chunk(&self, version: i64, seq: i32) -> StoreResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT data FROM dnc_registry_chunks WHERE version = $1 AND seq = $2",
                &[&version, &seq],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| r.get(0)))
    }
}
