//! Shared allowances on PostgreSQL: takers of one key, on any node, queue on a transaction-scoped
//! advisory lock for that key, so counting and recording a use are one step.

use super::{map_err, PostgresStore};
use crate::sql;
use crate::*;
use callguard_core::throttle::{Entry, Refusal};

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

    async fn admit_address(
        &self,
        address: &str,
        now: UnixTime,
    ) -> StoreResult<Result<(), Refusal>> {
        let mut outcome = Ok(());
        update_address(self, address, now, |e| {
            outcome = e.admit(now);
            outcome.is_ok()
        })
        .await?;
        Ok(outcome)
    }

    async fn settle_address(&self, address: &str, now: UnixTime, failed: bool) -> StoreResult<()> {
        update_address(self, address, now, |e| {
            e.settle(now, failed);
            true
        })
        .await
    }

    async fn forget_quiet_addresses(&self, before: UnixTime) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute(sql::ADDRESSES_FORGET_QUIET.postgres(), &[&before])
            .await
            .map_err(map_err)
    }
}

/// Applies `change` to the address's entry in one transaction, its row locked so that every
/// node's attempts on one address queue on it.
async fn update_address(
    store: &PostgresStore,
    address: &str,
    now: UnixTime,
    change: impl FnOnce(&mut Entry) -> bool + Send,
) -> StoreResult<()> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(map_err)?;
    let r = tx
        .query_one(sql::ADDRESS_ENTRY_LOCKED.postgres(), &[&address, &now])
        .await
        .map_err(map_err)?;
    let count = |i: usize| u32::try_from(r.get::<_, i32>(i)).unwrap_or(0);
    let mut e = Entry {
        failures: count(0),
        pending: count(1),
        last_failure: r.get(2),
        next_allowed: r.get(3),
        pending_until: r.get(4),
    };
    if !change(&mut e) {
        return Ok(());
    }
    if e.is_clean() {
        tx.execute(sql::ADDRESS_FORGET.postgres(), &[&address])
            .await
            .map_err(map_err)?;
    } else {
        let as_int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        tx.execute(
            sql::ADDRESS_UPDATE.postgres(),
            &[
                &address,
                &as_int(e.failures),
                &as_int(e.pending),
                &e.last_failure,
                &e.next_allowed,
                &e.pending_until,
            ],
        )
        .await
        .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)
}
