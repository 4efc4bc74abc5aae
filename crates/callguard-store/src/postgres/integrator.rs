//! The audit integrator: one node at a time gives committed audit entries their indexes, in
//! batches (see [`super::audit::integrate_batch`]). Which node is chosen by a session-level
//! advisory lock on a connection of its own; the others try again every second, and since the
//! lock goes with its connection, a node that dies (or loses the database) is replaced within
//! about a second of PostgreSQL noticing. The batch runs on the lock's connection, so a holder
//! that lost its lock cannot commit a batch either.

use super::audit::{integrate_batch, BATCH};
use super::{map_err, PostgresStore};
use crate::StoreError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// Arbitrary constant naming the integrator's advisory lock.
const INTEGRATOR_LOCK: i64 = 0x4347_4155_4449_5431;
/// How often a node that does not hold the lock tries to take it.
const RETRY: Duration = Duration::from_secs(1);
/// How often the holder looks for entries other nodes committed (its own wake it at once).
const POLL: Duration = Duration::from_millis(50);
/// After a batch that took what was there, the holder waits this long before the next, so that
/// under load each transaction indexes many entries rather than one (fewer commits and scans
/// competing with the writes themselves).
const PACE: Duration = Duration::from_millis(20);
/// How often the holder writes its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often the holder vacuums `audit_pending`. Every batch deletes the rows it indexed and
/// the next one scans the table (it has no index, so appends from all nodes never contend on
/// one): left to autovacuum (a pass a minute at best), the dead rows of a busy minute would be
/// scanned by every batch of the next. A vacuum of a table of dead rows is quick. It does not
/// truncate the table (that takes a lock every append would wait for): the freed space is
/// reused by the next appends.
const VACUUM: Duration = Duration::from_secs(1);

impl PostgresStore {
    /// Starts the integrator task on first call; later calls do nothing.
    pub(super) fn spawn_integrator(&self, holder: &str) {
        if self.integrator_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.integrator_started.store(false, Ordering::Release);
            return;
        };
        let (store, holder) = (self.clone(), holder.to_owned());
        runtime.spawn(async move {
            loop {
                let outcome = store.integrate_while_holding(&holder).await;
                store.integrating.store(false, Ordering::Release);
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "the audit integrator lost its connection; retrying");
                }
                tokio::time::sleep(RETRY).await;
            }
        });
    }

    /// Connects, waits for the lock, then integrates until the connection fails.
    async fn integrate_while_holding(&self, holder: &str) -> Result<(), StoreError> {
        let (mut client, connection) = self.config.connect(NoTls).await.map_err(map_err)?;
        let driver = tokio::spawn(connection);
        let result: Result<(), StoreError> = async {
            loop {
                let row = client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&INTEGRATOR_LOCK])
                    .await
                    .map_err(map_err)?;
                if row.get::<_, bool>(0) {
                    break;
                }
                tokio::time::sleep(RETRY).await;
            }
            self.integrating.store(true, Ordering::Release);
            tracing::info!(holder, "this node now integrates the audit log");
            let mut beat_due = Instant::now();
            let mut vacuum_due = Instant::now() + VACUUM;
            loop {
                if Instant::now() >= beat_due {
                    client
                        .execute(
                            "UPDATE audit_integrator SET holder = $1,
                                 beat_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                             WHERE id = 1",
                            &[&holder],
                        )
                        .await
                        .map_err(map_err)?;
                    beat_due = Instant::now() + HEARTBEAT;
                }
                if Instant::now() >= vacuum_due {
                    client
                        .batch_execute("VACUUM (TRUNCATE false) audit_pending")
                        .await
                        .map_err(map_err)?;
                    vacuum_due = Instant::now() + VACUUM;
                }
                let tx = client.transaction().await.map_err(map_err)?;
                let n = integrate_batch(&tx, BATCH).await?;
                tx.commit().await.map_err(map_err)?;
                if n == 0 {
                    // Nothing committed yet: wait for a local append or the next poll.
                    let _ = tokio::time::timeout(POLL, self.appended.notified()).await;
                } else if (n as i64) < BATCH {
                    tokio::time::sleep(PACE).await;
                }
            }
        }
        .await;
        drop(client);
        driver.abort();
        result
    }
}
