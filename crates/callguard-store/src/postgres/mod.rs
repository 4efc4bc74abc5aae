//! The PostgreSQL backend, for several stateless nodes sharing one database. Same behaviour as
//! the SQLite backend; migrations run under an advisory lock so that nodes starting together do
//! not race.
//!
//! This module holds the pool, migrations and the audited-write helper
//! [`PostgresStore::guarded`]; the aggregates live in the submodules.

use crate::guarded::Guarded;
use crate::*;
use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

mod alerts;
mod audit;
mod changes;
mod compliance;
mod dnc_lists;
mod identity;
mod integrator;
mod limits;
mod payments;
mod recordings;
mod registry;
mod service_tokens;
mod sessions;
mod vault;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../migrations/postgres/0001_identity.sql"),
    ),
    (2, include_str!("../../migrations/postgres/0002_audit.sql")),
    (3, include_str!("../../migrations/postgres/0003_alerts.sql")),
    (4, include_str!("../../migrations/postgres/0004_vault.sql")),
    (
        5,
        include_str!("../../migrations/postgres/0005_dnc_lists.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_sign_in_streaks.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_staff_duties.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_unique_national_id.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_payments.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_compliance.sql"),
    ),
    (
        11,
        include_str!("../../migrations/postgres/0011_recordings.sql"),
    ),
    (
        12,
        include_str!("../../migrations/postgres/0012_interaction_wrap_up.sql"),
    ),
    (
        14,
        include_str!("../../migrations/postgres/0014_shared_allowances.sql"),
    ),
    (
        15,
        include_str!("../../migrations/postgres/0015_service_tokens.sql"),
    ),
    (
        18,
        include_str!("../../migrations/postgres/0018_audit_integrator.sql"),
    ),
    (
        19,
        include_str!("../../migrations/postgres/0019_dnc_registry.sql"),
    ),
    (
        20,
        include_str!("../../migrations/postgres/0020_recording_playback.sql"),
    ),
    (
        25,
        include_str!("../../migrations/postgres/0025_idempotency_keys.sql"),
    ),
];
/// Arbitrary constant naming Callguard's migration lock.
const MIGRATION_LOCK: i64 = 0x4341_4c4c_4755_4152;

/// The PostgreSQL implementation of every store trait.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// For the change listener's own connection.
    config: tokio_postgres::Config,
    changes: tokio::sync::broadcast::Sender<Change>,
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Woken after each local append, so that this node's integrator (when it holds the lock)
    /// indexes it at once; entries from other nodes are found by a short poll.
    appended: std::sync::Arc<tokio::sync::Notify>,
    /// Whether this node's integrator holds the lock now.
    integrating: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether this store's integrator was started.
    integrator_started: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn map_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict
    } else if unreachable(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        // The database's message, without the connection string (tokio-postgres never prints it).
        StoreError::Backend(e.to_string())
    }
}

/// A broken or refused connection, or a server shutting down or starting up (SQLSTATE classes
/// 08 and 57): nothing wrong with the request itself.
fn unreachable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let class = &code.code()[..2.min(code.code().len())];
            class == "08" || class == "57"
        }
        None => e.is_closed() || e.as_db_error().is_none(),
    }
}

/// No connection from the pool: the database is unreachable.
fn pool_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL connection: {e}"))
}

impl PostgresStore {
    /// Connects with `url` (`postgres://user@host:port/db`) and applies migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL could not be parsed".into()))?;
        let mgr = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr).max_size(16).build().map_err(pool_err)?;
        let store = Self {
            pool,
            config: pg,
            changes: tokio::sync::broadcast::channel(16).0,
            listening: std::sync::Arc::default(),
            appended: std::sync::Arc::default(),
            integrating: std::sync::Arc::default(),
            integrator_started: std::sync::Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(map_err)?;
        let result = async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .await
                .map_err(map_err)?;
            for (version, sql) in MIGRATIONS {
                let tx = client.transaction().await.map_err(map_err)?;
                let done = tx
                    .query_opt(crate::sql::MIGRATION_APPLIED.postgres(), &[version])
                    .await
                    .map_err(map_err)?;
                if done.is_none() {
                    tx.batch_execute(sql).await.map_err(map_err)?;
                    tx.execute(
                        crate::sql::RECORD_MIGRATION.postgres(),
                        &[version, &callguard_core::now()],
                    )
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(map_err)?;
        result
    }
}

/// The transaction a guarded write's closure works in (it derefs to [`Transaction`]). `'env` is
/// what the closure borrows from its caller (the `&str` arguments of a trait method); the marker
/// records that this outlives the transaction, which a plain
/// `for<'t> FnOnce(&'t Transaction<'t>) -> … + 't` bound cannot say, so that closures may
/// borrow their arguments instead of copying them.
struct Tx<'t, 'env> {
    tx: &'t Transaction<'t>,
    /// Set once one of the change's statements wrote audit entries itself
    /// ([`Tx::query_one_recorded`]).
    recorded: &'t std::sync::atomic::AtomicBool,
    _env: PhantomData<&'t &'env ()>,
}

impl<'t> std::ops::Deref for Tx<'t, '_> {
    type Target = Transaction<'t>;

    fn deref(&self) -> &Transaction<'t> {
        self.tx
    }
}

/// What a guarded write's closure returns: its work as a future borrowing the transaction.
type TxFuture<'t, R> = Pin<Box<dyn Future<Output = StoreResult<Guarded<R>>> + Send + 't>>;

impl PostgresStore {
    /// An audited write (see [`Guarded`]). `change` runs in a fresh transaction; when it keeps
    /// its work, the audit records it names are written down in that same transaction (without
    /// an index, which the integrator gives them after the commit; no lock on the log's head),
    /// so the change is never committed without its entries. An undone change is rolled back (the transaction dropped) and logs nothing.
    async fn guarded<'env, R, F>(&self, change: F) -> StoreResult<R>
    where
        R: Send,
        F: for<'t> FnOnce(Tx<'t, 'env>) -> TxFuture<'t, R> + Send,
    {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let recorded = std::sync::atomic::AtomicBool::new(false);
        let work = Tx {
            tx: &tx,
            recorded: &recorded,
            _env: PhantomData,
        };
        match change(work).await? {
            Guarded::Undo(value) => Ok(value),
            Guarded::Keep(value, records) => {
                if records.is_empty() {
                    tx.commit().await.map_err(map_err)?;
                    if recorded.load(std::sync::atomic::Ordering::Acquire) {
                        self.appended.notify_one();
                    }
                } else {
                    audit::commit_with_entries(tx, &records).await?;
                    self.appended.notify_one();
                }
                Ok(value)
            }
            Guarded::Recorded(value) => {
                if !recorded.load(std::sync::atomic::Ordering::Acquire) {
                    // Dropping the transaction rolls the change back.
                    return Err(crate::guarded::unrecorded());
                }
                tx.commit().await.map_err(map_err)?;
                self.appended.notify_one();
                Ok(value)
            }
        }
    }
}

#[async_trait]
impl Health for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        let c = self.client().await?;
        c.query_one("SELECT 1", &[]).await.map_err(map_err)?;
        Ok(())
    }

    fn subscribe_changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        Some(self.subscribe())
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database on the test server (as the contract tests make them), its store, and
    /// the command that drops it.
    async fn fresh() -> (PostgresStore, String, String) {
        let admin = std::env::var("CALLGUARD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let db = format!("callguard_guarded_{}", uuid::Uuid::new_v4().simple());
        let psql = |sql: String| {
            let out = std::process::Command::new("psql")
                .args([admin.as_str(), "-qc", &sql])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        psql(format!("CREATE DATABASE {db}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let store = PostgresStore::connect(&format!("{base}/{db}"))
            .await
            .unwrap();
        (store, admin.clone(), db)
    }

    async fn probes(s: &PostgresStore) -> i64 {
        let c = s.client().await.unwrap();
        c.query_one("SELECT count(*) FROM probe", &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_change_that_says_it_wrote_its_own_entries_must_have_written_them() {
        let (s, admin, db) = fresh().await;
        s.client()
            .await
            .unwrap()
            .batch_execute("CREATE TABLE probe (x INTEGER)")
            .await
            .unwrap();
        // Said, not done: refused and rolled back, never committed without its entry.
        let claimed = s
            .guarded(|tx| {
                Box::pin(async move {
                    tx.execute("INSERT INTO probe VALUES (1)", &[])
                        .await
                        .map_err(map_err)?;
                    Ok(Guarded::recorded(()))
                })
            })
            .await;
        assert!(matches!(claimed, Err(StoreError::Backend(_))));
        assert_eq!(probes(&s).await, 0);
        // Done: the entry rides in the statement, and both are committed.
        s.guarded(|tx| {
            Box::pin(async move {
                tx.execute_recorded(
                    "INSERT INTO probe VALUES (1)",
                    &[],
                    &[AuditRecord::new("test.probe", "system")],
                )
                .await?;
                Ok(Guarded::recorded(()))
            })
        })
        .await
        .unwrap();
        assert_eq!(probes(&s).await, 1);
        s.integrate().await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().size, 1);
        drop(s);
        let out = std::process::Command::new("psql")
            .args([
                admin.as_str(),
                "-qc",
                &format!("DROP DATABASE {db} WITH (FORCE)"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
}
