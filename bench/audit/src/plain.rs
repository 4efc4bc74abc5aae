//! "The same writes without the entry": the store API cannot change state without appending
//! its audit entry, so the baselines live here, built exactly as the real backends are built,
//! minus the append:
//!
//! - SQLite: one writer thread with the store's pragmas (WAL, synchronous=FULL, foreign keys,
//!   busy timeout, WAL checkpoint every 10,000 pages) that takes every waiting write (at most
//!   512), runs each in its own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once
//!   (one fsync for the group) and only then answers each caller; the same cached
//!   `INSERT INTO users … RETURNING` statement as `SqliteStore::create_pending_user`.
//! - PostgreSQL: a deadpool pool of the same size and recycling method as `PostgresStore`, and
//!   per write the same transaction with the same `INSERT … RETURNING` text, committed on its own.
//!
//! Both use the store's own migration for the `users` table, so indexes and constraints match.

use crate::Res;
use callguard_store::NewPendingUser;
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const SQLITE_SCHEMA: &str =
    include_str!("../../../crates/callguard-store/migrations/sqlite/0001_identity.sql");
const POSTGRES_SCHEMA: &str =
    include_str!("../../../crates/callguard-store/migrations/postgres/0001_identity.sql");
/// The store's `USER_COLUMNS`.
const USER_COLUMNS: &str =
    "id, username, role, status, failed_sign_ins, locked_until, created_at, activated_at, last_sign_in_at";
/// As in the store.
const MAX_GROUP: usize = 512;
/// The name of the baseline's writer thread (its CPU time is read from /proc).
pub const PLAIN_WRITER_THREAD: &str = "bench-plain-wri";

type Done = Box<dyn FnOnce(Option<String>) + Send>;
type Job = Box<dyn FnOnce(&mut Connection) -> Done + Send>;

/// SQLite without the audit entry.
#[derive(Clone)]
pub struct PlainSqlite {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
    groups: Arc<AtomicU64>,
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn writer_loop(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Job>, groups: &AtomicU64) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
            drop(group);
            continue;
        }
        let dones: Vec<Done> = group.into_iter().map(|job| job(&mut conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        groups.fetch_add(1, Ordering::Relaxed);
        for done in dones {
            done(committed.as_ref().err().cloned());
        }
    }
}

impl PlainSqlite {
    pub async fn open(path: &Path) -> Res<Self> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> Res<Self> {
            let writer = connect(&path)?;
            writer.pragma_update(None, "wal_autocheckpoint", 10_000)?;
            writer.execute_batch(SQLITE_SCHEMA)?;
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let groups = Arc::new(AtomicU64::new(0));
            let counted = groups.clone();
            std::thread::Builder::new()
                .name(PLAIN_WRITER_THREAD.into())
                .spawn(move || writer_loop(writer, rx, &counted))?;
            Ok(Self {
                inner: Arc::new(Inner {
                    writer: Mutex::new(tx),
                    groups,
                }),
            })
        })
        .await?
    }

    /// Group commits so far.
    pub fn groups(&self) -> u64 {
        self.inner.groups.load(Ordering::Relaxed)
    }

    async fn write<R, F>(&self, f: F) -> Res<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<R, String>>();
        let job: Job = Box::new(move |conn: &mut Connection| -> Done {
            let result = f(conn).map_err(|e| e.to_string());
            Box::new(move |commit_error: Option<String>| {
                let _ = answer.send(match commit_error {
                    Some(e) => Err(e),
                    None => result,
                });
            })
        });
        self.inner
            .writer
            .lock()
            .map_err(|_| "the writer queue is poisoned")?
            .send(job)
            .map_err(|_| "the writer thread has stopped")?;
        Ok(answered.await??)
    }

    /// `SqliteStore::create_pending_user` without `append_tx`: the same INSERT … RETURNING in
    /// its own savepoint of a group commit.
    pub async fn create_pending_user(&self, u: NewPendingUser) -> Res<()> {
        let row = self
            .write(move |c| {
                let tx = c.savepoint()?;
                let row = tx
                    .prepare_cached(&format!(
                        "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at)
                         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6) RETURNING {USER_COLUMNS}"
                    ))?
                    .query_row(
                        params![u.id, u.username, u.role.as_str(), u.setup_token_hash, u.setup_expires_at, u.created_at],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, Option<i64>>(5)?,
                                r.get::<_, i64>(6)?,
                                r.get::<_, Option<i64>>(7)?,
                                r.get::<_, Option<i64>>(8)?,
                            ))
                        },
                    )?;
                tx.commit()?;
                Ok(row)
            })
            .await?;
        // The store parses role and status into enums; so does this.
        let _role: callguard_core::Role = row.2.parse().map_err(|_| "unknown role")?;
        Ok(())
    }
}

/// PostgreSQL without the audit entry.
#[derive(Clone)]
pub struct PlainPostgres {
    pool: deadpool_postgres::Pool,
}

impl PlainPostgres {
    pub async fn connect(url: &str) -> Res<Self> {
        let pg: tokio_postgres::Config = url.parse()?;
        let mgr = deadpool_postgres::Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        // PostgresStore's pool size.
        let pool = deadpool_postgres::Pool::builder(mgr).max_size(16).build()?;
        let c = pool.get().await?;
        c.batch_execute(POSTGRES_SCHEMA).await?;
        drop(c);
        Ok(Self { pool })
    }

    /// `PostgresStore::create_pending_user` without `append_tx`.
    pub async fn create_pending_user(&self, u: NewPendingUser) -> Res<()> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // A prepared statement, kept by the connection, as the store's is.
        let st = tx
            .prepare_cached(&format!(
                "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at)
                 VALUES ($1, $2, $3, 'pending', $4, $5, $6) RETURNING {USER_COLUMNS}"
            ))
            .await?;
        let row = tx
            .query_one(
                &st,
                &[
                    &u.id,
                    &u.username,
                    &u.role.as_str(),
                    &u.setup_token_hash,
                    &u.setup_expires_at,
                    &u.created_at,
                ],
            )
            .await?;
        tx.commit().await?;
        let role: String = row.try_get(2)?;
        let _role: callguard_core::Role = role.parse().map_err(|_| "unknown role")?;
        Ok(())
    }
}
