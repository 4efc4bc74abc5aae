//! Shared allowances on SQLite: the one writer thread makes each take atomic.

use super::SqliteStore;
use crate::sql;
use crate::*;
use callguard_core::throttle::{Entry, Refusal};
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

    async fn admit_address(
        &self,
        address: &str,
        now: UnixTime,
    ) -> StoreResult<Result<(), Refusal>> {
        let address = address.to_owned();
        self.write(move |c| {
            let mut outcome = Ok(());
            update_address(c, &address, now, |e| {
                outcome = e.admit(now);
                outcome.is_ok()
            })?;
            Ok(outcome)
        })
        .await
    }

    async fn settle_address(&self, address: &str, now: UnixTime, failed: bool) -> StoreResult<()> {
        let address = address.to_owned();
        self.write(move |c| {
            update_address(c, &address, now, |e| {
                e.settle(now, failed);
                true
            })
        })
        .await
    }

    async fn forget_quiet_addresses(&self, before: UnixTime) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(sql::ADDRESSES_FORGET_QUIET.sqlite(), [before])
                .map(|n| n as u64)
        })
        .await
    }
}

fn entry_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        failures: r.get::<_, u32>(0)?,
        pending: r.get::<_, u32>(1)?,
        last_failure: r.get(2)?,
        next_allowed: r.get(3)?,
        pending_until: r.get(4)?,
    })
}

/// Applies `change` to the address's entry in one write: the one writer thread makes it atomic.
fn update_address(
    c: &rusqlite::Connection,
    address: &str,
    now: UnixTime,
    change: impl FnOnce(&mut Entry) -> bool,
) -> rusqlite::Result<()> {
    let mut e = c.query_row(
        sql::ADDRESS_ENTRY_LOCKED.sqlite(),
        params![address, now],
        entry_of,
    )?;
    if !change(&mut e) {
        return Ok(());
    }
    if e.is_clean() {
        c.execute(sql::ADDRESS_FORGET.sqlite(), [address])?;
    } else {
        c.execute(
            sql::ADDRESS_UPDATE.sqlite(),
            params![
                address,
                e.failures,
                e.pending,
                e.last_failure,
                e.next_allowed,
                e.pending_until
            ],
        )?;
    }
    Ok(())
}
