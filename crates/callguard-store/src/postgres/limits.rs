//! Shared allowances on PostgreSQL: takers of one key, on any node, queue on a transaction-scoped
//! advisory lock for that key, so counting and recording a use are one step.

use super::{map_err, PostgresStore};
use crate::sql;
use crate::*;

#[async_trait]
impl LimitStore for PostgresStore {
    async fn take_allowance(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        max: i64,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            &[&key],
        )
        .await
        .map_err(map_err)?;
        tx.execute(sql::FORGET_KEY_USES.postgres(), &[&key, &(now - window)])
            .await
            .map_err(map_err)?;
        let used: i64 = tx
            .query_one(sql::COUNT_KEY_USES.postgres(), &[&key])
            .await
            .map_err(map_err)?
            .get(0);
        if used >= max {
            return Ok(false);
        }
        tx.execute(sql::RECORD_KEY_USE.postgres(), &[&key, &now])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn forget_allowances_before(&self, before: UnixTime) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute(sql::FORGET_USES_BEFORE.postgres(), &[&before])
            .await
            .map_err(map_err)
    }
}
