//! Shared allowances on SQLite: the one writer thread makes each take atomic.

use super::SqliteStore;
use crate::sql;
use crate::*;
use rusqlite::params;

#[async_trait]
impl LimitStore for SqliteStore {
    async fn take_allowance(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        max: i64,
    ) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute(sql::FORGET_KEY_USES.sqlite(), params![key, now - window])?;
            let used: i64 = c.query_row(sql::COUNT_KEY_USES.sqlite(), [&key], |r| r.get(0))?;
            if used >= max {
                return Ok(false);
            }
            c.execute(sql::RECORD_KEY_USE.sqlite(), params![key, now])?;
            Ok(true)
        })
        .await
    }

    async fn forget_allowances_before(&self, before: UnixTime) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(sql::FORGET_USES_BEFORE.sqlite(), [before])
                .map(|n| n as u64)
        })
        .await
    }
}
