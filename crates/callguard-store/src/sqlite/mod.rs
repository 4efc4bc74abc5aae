//! The SQLite backend: one database file in WAL mode with a busy timeout, so that the CLI and a
//! running server can share it. Reads use a small pool of connections on blocking threads.
//!
//! Writes go to one writer thread (SQLite has one writer anyway) that commits in groups: it takes
//! every write waiting in its queue, runs each in its own savepoint inside one transaction,
//! commits once — one fsync for the group — and only then answers each caller. A write that fails
//! or gives up rolls back its own savepoint and nothing else. So every acknowledged change is
//! durable, and concurrent writers share the cost of the fsync.
//!
//! This module holds the connections, the writer thread, migrations and the helpers every
//! aggregate uses: [`SqliteStore::read`], [`SqliteStore::point_read`], [`SqliteStore::write`] and
//! the audited [`SqliteStore::guarded`]. The aggregates live in the submodules.

use crate::guarded::Guarded;
use crate::sql::{MIGRATION_APPLIED, RECORD_MIGRATION};
use crate::*;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod alerts;
mod audit;
mod compliance;
mod dnc_lists;
mod identity;
mod limits;
mod payments;
mod recordings;
mod registry;
mod service_tokens;
mod sessions;
mod vault;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_identity.sql")),
    (2, include_str!("../../migrations/sqlite/0002_audit.sql")),
    (3, include_str!("../../migrations/sqlite/0003_alerts.sql")),
    (4, include_str!("../../migrations/sqlite/0004_vault.sql")),
    (
        5,
        include_str!("../../migrations/sqlite/0005_dnc_lists.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_sign_in_streaks.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_staff_duties.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_unique_national_id.sql"),
    ),
    (9, include_str!("../../migrations/sqlite/0009_payments.sql")),
    (
        10,
        include_str!("../../migrations/sqlite/0010_compliance.sql"),
    ),
    (
        11,
        include_str!("../../migrations/sqlite/0011_recordings.sql"),
    ),
    (
        12,
        include_str!("../../migrations/sqlite/0012_interaction_wrap_up.sql"),
    ),
    (
        14,
        include_str!("../../migrations/sqlite/0014_shared_allowances.sql"),
    ),
    (
        15,
        include_str!("../../migrations/sqlite/0015_service_tokens.sql"),
    ),
    (
        20,
        include_str!("../../migrations/sqlite/0020_recording_playback.sql"),
    ),
    (
        25,
        include_str!("../../migrations/sqlite/0025_idempotency_keys.sql"),
    ),
];
/// Reads running at once, each on a blocking thread with a pooled connection. Further reads wait
/// for a slot, so that a burst of reads reuses the pooled connections instead of opening (and
/// then closing) one connection per read, which costs far more than the read itself.
const MAX_READERS: usize = 16;

/// The SQLite implementation of every store trait.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// Called after the group's commit, with its error if it failed.
type Done = Box<dyn FnOnce(Option<StoreError>) + Send>;
/// One write: runs on the writer thread inside the group's transaction.
type Job = Box<dyn FnOnce(&mut Connection) -> Done + Send>;

/// WAL pages after which a commit checkpoints the WAL into the database (SQLite's default: 1000).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Most writes committed together.
const MAX_GROUP: usize = 512;

struct Inner {
    path: PathBuf,
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    read_slots: Arc<tokio::sync::Semaphore>,
    /// The key store of data-key shares: a separate file (see `vault::SHARE_FILE`).
    shares: Mutex<Connection>,
}

/// The writer thread: group commit (see the module documentation).
fn writer_loop(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        // Cached statements: parsing BEGIN and COMMIT afresh cost every group a few µs.
        let begun = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut st| st.execute([]));
        if let Err(e) = begun {
            // Dropping the jobs unanswered tells each caller the write did not happen.
            tracing::error!(error = %e, "cannot begin a write transaction");
            drop(group);
            continue;
        }
        let dones: Vec<Done> = group.into_iter().map(|job| job(&mut conn)).collect();
        let committed = conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(map_err);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in dones {
            done(committed.as_ref().err().map(clone_err));
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict,
        _ => backend(e),
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL lets readers and one writer work together; FULL makes every commit durable (fsync)
    // before it is acknowledged.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> StoreResult<Self> {
            let mut writer = connect(&path).map_err(map_err)?;
            // Checkpoint the WAL into the database every ~40 MiB instead of every ~4 MiB: fewer
            // checkpoints (each one an extra fsync of the database file) under a write load.
            writer
                .pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
                .map_err(map_err)?;
            migrate(&mut writer)?;
            restrict_permissions(&path);
            let shares = vault::open_share_file(&path.with_file_name(vault::SHARE_FILE))?;
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("callguard-sqlite-writer".into())
                .spawn(move || writer_loop(writer, rx))
                .map_err(backend)?;
            Ok(Self {
                inner: Arc::new(Inner {
                    path,
                    writer: Mutex::new(tx),
                    readers: Mutex::new(Vec::new()),
                    shares: Mutex::new(shares),
                    read_slots: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
                }),
            })
        })
        .await
        .map_err(backend)?
    }

    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let slot = self
            .inner
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| backend("the reader pool is closed"))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => connect(&inner.path).map_err(map_err)?,
            };
            let out = f(&conn).map_err(map_err);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < MAX_READERS {
                    pool.push(conn);
                }
            }
            out
        })
        .await
        .map_err(backend)?
    }

    /// A point look-up (one row by an indexed key, microseconds): run right here with a pooled
    /// connection, because handing a query this small to a blocking thread costs ten times the
    /// query itself (measured by `bench/vault.sh`). In WAL mode a reader never waits for the
    /// writer. Falls back to [`SqliteStore::read`] when no pooled connection is free. Never for
    /// scans: those go through `read` and stay off the async workers.
    async fn point_read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        match pooled {
            Some(conn) => {
                let out = f(&conn).map_err(map_err);
                if let Ok(mut pool) = self.inner.readers.lock() {
                    if pool.len() < MAX_READERS {
                        pool.push(conn);
                    }
                }
                out
            }
            None => self.read(f).await,
        }
    }

    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |conn: &mut Connection| -> Done {
            let result = f(conn).map_err(map_err);
            Box::new(move |commit_error: Option<StoreError>| {
                let _ = answer.send(match commit_error {
                    Some(e) => Err(e),
                    None => result,
                });
            })
        });
        self.inner
            .writer
            .lock()
            .map_err(|_| backend("the writer queue is poisoned"))?
            .send(job)
            .map_err(|_| backend("the writer thread has stopped"))?;
        answered
            .await
            .map_err(|_| backend("the writer thread dropped a write"))?
    }

    /// An audited write (see [`Guarded`]). `change` runs on the writer thread in its own
    /// savepoint; when it keeps its work, the audit records it names are appended in that same
    /// savepoint before it is released, so the change is never committed without its entries.
    /// An undone change is rolled back and logs nothing.
    async fn guarded<R, F>(&self, change: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<Guarded<R>> + Send + 'static,
    {
        self.write(move |c| {
            let tx = begin(c)?;
            match change(&tx)? {
                Guarded::Undo(value) => Ok(value),
                Guarded::Keep(value, records) => {
                    if !records.is_empty() {
                        audit::append_tx(&tx, &records)?;
                    }
                    tx.commit()?;
                    Ok(value)
                }
                // SQLite writes entries only as above: nothing here writes them itself.
                Guarded::Recorded(_) => Err(user_error(crate::guarded::unrecorded())),
            }
        })
        .await
    }
}

/// The database, its WAL and shared-memory files are readable by their owner only.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let name = path.as_os_str().to_string_lossy().to_string();
        for p in [name.clone(), format!("{name}-wal"), format!("{name}-shm")] {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(map_err)?;
    for (version, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let done: Option<i64> = tx
            .query_row(MIGRATION_APPLIED.sqlite(), [version], |r| r.get(0))
            .optional()
            .map_err(map_err)?;
        if done.is_none() {
            tx.execute_batch(sql).map_err(map_err)?;
            tx.execute(
                RECORD_MIGRATION.sqlite(),
                params![version, callguard_core::now()],
            )
            .map_err(map_err)?;
        }
        tx.commit().map_err(map_err)?;
    }
    Ok(())
}

/// Errors of the domain carried through rusqlite's error type (and back out by `map_err`).
fn user_error(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// One write's own all-or-nothing scope inside the group transaction: committing it keeps its
/// changes, dropping it (an error or an early `Ok(false)`) rolls them back.
fn begin(c: &mut Connection) -> rusqlite::Result<WriteScope<'_>> {
    c.prepare_cached("SAVEPOINT callguard_write")?.execute([])?;
    Ok(WriteScope {
        conn: c,
        released: false,
    })
}

/// The savepoint of [`begin`]: like rusqlite's `Savepoint`, but its `SAVEPOINT`, `RELEASE`
/// and `ROLLBACK TO` are cached statements rather than SQL parsed afresh for every write (the
/// parser was a visible part of a screen-pop's profile).
struct WriteScope<'c> {
    conn: &'c Connection,
    released: bool,
}

impl WriteScope<'_> {
    fn commit(mut self) -> rusqlite::Result<()> {
        self.released = true;
        self.conn
            .prepare_cached("RELEASE callguard_write")?
            .execute([])
            .map(|_| ())
    }
}

impl std::ops::Deref for WriteScope<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteScope<'_> {
    fn drop(&mut self) {
        if !self.released {
            for undo in ["ROLLBACK TO callguard_write", "RELEASE callguard_write"] {
                if let Err(e) = self
                    .conn
                    .prepare_cached(undo)
                    .and_then(|mut st| st.execute([]))
                {
                    tracing::error!(error = %e, "cannot roll back a write's savepoint");
                }
            }
        }
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
        })
        .await
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the throw-away table `probe` exists.
    async fn probe_exists(s: &SqliteStore) -> bool {
        s.read(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'probe'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap()
            == 1
    }

    #[tokio::test]
    async fn a_change_that_says_it_wrote_its_own_entries_is_rolled_back_on_sqlite() {
        let dir = std::env::temp_dir().join(format!(
            "callguard-guarded-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let s = SqliteStore::open(&dir.join("callguard.db")).await.unwrap();
        // Nothing on SQLite writes entries itself: a change that says so is a defect, refused.
        let claimed = s
            .guarded(|c| {
                c.execute_batch("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1);")?;
                Ok(Guarded::Recorded(()))
            })
            .await;
        assert!(matches!(claimed, Err(StoreError::Backend(_))));
        assert!(!probe_exists(&s).await, "rolled back");
        // The same change kept with its entry is committed with it.
        s.guarded(|c| {
            c.execute_batch("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1);")?;
            Ok(Guarded::keep((), AuditRecord::new("test.probe", "system")))
        })
        .await
        .unwrap();
        assert!(probe_exists(&s).await);
        assert_eq!(s.audit_head().await.unwrap().size, 1);
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
