//! The SQLite backend: one database file in WAL mode with a busy timeout, so that the CLI and a
//! running server can share it. Reads use a small pool of connections on blocking threads.
//!
//! Writes go to one writer thread (SQLite has one writer anyway) that commits in groups: it takes
//! every write waiting in its queue, runs each in its own savepoint inside one transaction,
//! commits once — one fsync for the group — and only then answers each caller. A write that fails
//! or gives up rolls back its own savepoint and nothing else. So every acknowledged change is
//! durable, and concurrent writers share the cost of the fsync.

use crate::log::{lockout_record, parse_frontier, plan, to_hash};
use crate::*;
use callguard_core::audit::record::user as user_ref;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, Savepoint};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod dnc_lists;
mod vault;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_identity.sql")),
    (2, include_str!("../migrations/sqlite/0002_audit.sql")),
    (3, include_str!("../migrations/sqlite/0003_alerts.sql")),
    (4, include_str!("../migrations/sqlite/0004_vault.sql")),
    (5, include_str!("../migrations/sqlite/0005_dnc_lists.sql")),
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
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs unanswered tells each caller the write did not happen.
            tracing::error!(error = %e, "cannot begin a write transaction");
            drop(group);
            continue;
        }
        let dones: Vec<Done> = group.into_iter().map(|job| job(&mut conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(map_err);
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
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)?;
        if done.is_none() {
            tx.execute_batch(sql).map_err(map_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, callguard_core::now()],
            )
            .map_err(map_err)?;
        }
        tx.commit().map_err(map_err)?;
    }
    Ok(())
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserTuple> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

type UserTuple = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn to_user(t: UserTuple) -> StoreResult<User> {
    Ok(User {
        id: t.0,
        username: t.1,
        role: parse_role(&t.2)?,
        status: parse_status(&t.3)?,
        failed_sign_ins: t.4,
        locked_until: t.5,
        created_at: t.6,
        activated_at: t.7,
        last_sign_in_at: t.8,
    })
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at: r.get(2)?,
        last_seen_at: r.get(3)?,
        reauth_at: r.get(4)?,
        source: r.get(5)?,
        user_agent: r.get(6)?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_seen_at, reauth_at, source, user_agent";

fn passkey_row(r: &Row<'_>) -> rusqlite::Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        credential_id: r.get(2)?,
        name: r.get(3)?,
        passkey: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
    })
}

fn user_error(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// One write's own all-or-nothing scope inside the group transaction: committing it keeps its
/// changes, dropping it (an error or an early `Ok(false)`) rolls them back.
fn begin(c: &mut Connection) -> rusqlite::Result<Savepoint<'_>> {
    c.savepoint()
}

/// Appends `records` to the audit log inside `tx`; returns the index of the last one.
fn append_tx(tx: &Connection, records: &[AuditRecord]) -> rusqlite::Result<u64> {
    // Cached statements: this runs for every audited write, on the one writer thread.
    let bytes: Vec<u8> = tx
        .prepare_cached("SELECT frontier FROM audit_head WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let frontier = parse_frontier(&bytes).map_err(user_error)?;
    let planned = plan(frontier, records).map_err(user_error)?;
    {
        let mut entry = tx.prepare_cached(
            "INSERT INTO audit_entries (idx, entry, leaf_hash) VALUES (?1, ?2, ?3)",
        )?;
        for (idx, text, leaf) in &planned.entries {
            entry.execute(params![*idx as i64, text, &leaf[..]])?;
        }
        let mut node =
            tx.prepare_cached("INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        for (s, h) in &planned.nodes {
            node.execute(params![s.level, s.index as i64, &h[..]])?;
        }
    }
    tx.prepare_cached("UPDATE audit_head SET frontier = ?1 WHERE id = 1")?
        .execute([planned.frontier.to_bytes()])?;
    Ok(planned.frontier.size.saturating_sub(1))
}

fn insert_session(tx: &Connection, s: &Session, token_hash: &str) -> rusqlite::Result<()> {
    tx.execute(
        &format!("INSERT INTO sessions ({SESSION_COLUMNS}, token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![s.id, s.user_id, s.created_at, s.last_seen_at, s.reauth_at, s.source, s.user_agent, token_hash],
    )?;
    Ok(())
}

/// Spends a second factor inside `tx`; false when it was already spent.
fn spend_factor(
    tx: &Connection,
    user_id: &str,
    factor: &SpentFactor,
    now: UnixTime,
) -> rusqlite::Result<bool> {
    Ok(match factor {
        SpentFactor::TotpStep(step) => {
            tx.execute(
                "UPDATE users SET totp_last_step = ?1 WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
                params![step, user_id],
            )? == 1
        }
        SpentFactor::RecoveryCode(hash) => {
            tx.execute(
                "UPDATE recovery_codes SET used_at = ?1 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
                params![now, user_id, hash],
            )? == 1
        }
        SpentFactor::Passkey { credential_id, passkey } => {
            tx.execute(
                "UPDATE passkeys SET passkey = ?1, last_used_at = ?2 WHERE user_id = ?3 AND credential_id = ?4",
                params![passkey, now, user_id, credential_id],
            )? == 1
        }
    })
}

fn insert_codes(tx: &Connection, user_id: &str, hashes: &[String]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    let mut st =
        tx.prepare_cached("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)")?;
    for h in hashes {
        st.execute(params![user_id, h])?;
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_pending_user(
        &self,
        u: NewPendingUser,
        audit: AuditRecord,
    ) -> StoreResult<User> {
        // RETURNING gives the row as stored (as on PostgreSQL), without a second read.
        let row = self.write(move |c| {
            let tx = begin(c)?;
            let row = tx
                .prepare_cached(&format!(
                    "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at)
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6) RETURNING {USER_COLUMNS}"
                ))?
                .query_row(
                    params![u.id, u.username, u.role.as_str(), u.setup_token_hash, u.setup_expires_at, u.created_at],
                    user_row,
                )?;
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(row)
        })
        .await?;
        to_user(row)
    }

    async fn create_active_user(&self, u: NewActiveUser, audit: AuditRecord) -> StoreResult<User> {
        let id = u.id.clone();
        self.write(move |c| {
            let tx = begin(c)?;
            tx.execute(
                "INSERT INTO users (id, username, role, status, password_hash, totp_sealed, created_at, activated_at)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6)",
                params![u.id, u.username, u.role.as_str(), u.password_hash, u.totp_sealed, u.created_at],
            )?;
            insert_codes(&tx, &u.id, &u.recovery_code_hashes)?;
            append_tx(&tx, &[audit])?;
            tx.commit()
        })
        .await?;
        self.user_by_id(&id)
            .await?
            .ok_or_else(|| backend("created user vanished"))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id], user_row)
                .optional()
        })
        .await?
        .map(to_user)
        .transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let name = username.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                [name],
                user_row,
            )
            .optional()
        })
        .await?
        .map(to_user)
        .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .read(|c| {
                let mut st = c.prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY username"
                ))?;
                let rows = st
                    .query_map([], user_row)?
                    .collect::<rusqlite::Result<Vec<_>>>();
                rows
            })
            .await?;
        rows.into_iter().map(to_user).collect()
    }

    async fn credentials(&self, user_id: &str) -> StoreResult<Option<Credentials>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT password_hash, totp_sealed, totp_last_step, totp_fail_step, totp_fail_count FROM users WHERE id = ?1",
                [id],
                |r| {
                    Ok(Credentials {
                        password_hash: r.get(0)?,
                        totp_sealed: r.get(1)?,
                        totp_last_step: r.get(2)?,
                        totp_fail_step: r.get(3)?,
                        totp_fail_count: r.get(4)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn sign_in_facts(&self, username: &str) -> StoreResult<Option<SignInFacts>> {
        let name = username.to_owned();
        let found = self
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, password_hash, totp_sealed, totp_last_step, totp_fail_step, totp_fail_count
                     FROM users WHERE username = ?1"
                ))?;
                let Some((user, creds)) = st
                    .query_row([&name], |r| {
                        Ok((
                            user_row(r)?,
                            Credentials {
                                password_hash: r.get(9)?,
                                totp_sealed: r.get(10)?,
                                totp_last_step: r.get(11)?,
                                totp_fail_step: r.get(12)?,
                                totp_fail_count: r.get(13)?,
                            },
                        ))
                    })
                    .optional()?
                else {
                    return Ok(None);
                };
                let unused: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL")?
                    .query_row([&user.0], |r| r.get(0))?;
                let passkeys = c
                    .prepare_cached(
                        "SELECT id, user_id, credential_id, name, passkey, created_at, last_used_at FROM passkeys WHERE user_id = ?1 ORDER BY created_at",
                    )?
                    .query_map([&user.0], passkey_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(Some((user, creds, unused, passkeys)))
            })
            .await?;
        found
            .map(|(u, credentials, unused_recovery_codes, passkeys)| {
                Ok(SignInFacts {
                    user: to_user(u)?,
                    credentials,
                    unused_recovery_codes,
                    passkeys,
                })
            })
            .transpose()
    }

    async fn challenge_facts(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<(Challenge, User, Credentials)>> {
        let (h, k) = (token_hash.to_owned(), kind.to_owned());
        let found = self
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT ch.token_hash, ch.kind, ch.user_id, ch.payload, ch.attempts, ch.expires_at,
                            {cols}, u.password_hash, u.totp_sealed, u.totp_last_step, u.totp_fail_step, u.totp_fail_count
                     FROM challenges ch JOIN users u ON u.id = ch.user_id
                     WHERE ch.token_hash = ?1 AND ch.kind = ?2 AND ch.expires_at > ?3",
                    cols = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
                ))?;
                st.query_row(params![h, k, now], |r| {
                    let ch = Challenge {
                        token_hash: r.get(0)?,
                        kind: r.get(1)?,
                        user_id: r.get(2)?,
                        payload: r.get(3)?,
                        attempts: r.get(4)?,
                        expires_at: r.get(5)?,
                    };
                    let u = (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?);
                    let creds = Credentials {
                        password_hash: r.get(15)?,
                        totp_sealed: r.get(16)?,
                        totp_last_step: r.get(17)?,
                        totp_fail_step: r.get(18)?,
                        totp_fail_count: r.get(19)?,
                    };
                    Ok((ch, u, creds))
                })
                .optional()
            })
            .await?;
        found
            .map(|(ch, u, creds)| Ok((ch, to_user(u)?, creds)))
            .transpose()
    }

    async fn user_by_setup_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<User>> {
        let h = token_hash.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE setup_token_hash = ?1 AND setup_expires_at > ?2 AND status = 'pending'"),
                params![h, now],
                user_row,
            )
            .optional()
        })
        .await?
        .map(to_user)
        .transpose()
    }

    async fn complete_setup(
        &self,
        s: CompletedSetup,
        challenge_hash: &str,
        session: &Session,
        session_token_hash: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (ch, session, th) = (
            challenge_hash.to_owned(),
            session.clone(),
            session_token_hash.to_owned(),
        );
        self.write(move |c| {
            let tx = begin(c)?;
            if tx.execute("DELETE FROM challenges WHERE token_hash = ?1", [&ch])? != 1 {
                return Ok(false);
            }
            let n = tx.execute(
                "UPDATE users SET status = 'active', password_hash = ?1, totp_sealed = ?2, totp_last_step = ?3,
                    setup_token_hash = NULL, setup_expires_at = NULL, activated_at = ?4, last_sign_in_at = ?4,
                    failed_sign_ins = 0, locked_until = NULL
                 WHERE id = ?5 AND status = 'pending' AND setup_token_hash = ?6 AND setup_expires_at > ?4",
                params![s.password_hash, s.totp_sealed, s.totp_step, s.now, s.user_id, s.setup_token_hash],
            )?;
            if n != 1 {
                return Ok(false);
            }
            insert_codes(&tx, &s.user_id, &s.recovery_code_hashes)?;
            insert_session(&tx, &session, &th)?;
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn reset_setup(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (id, h) = (user_id.to_owned(), token_hash.to_owned());
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                "UPDATE users SET status = 'pending', password_hash = NULL, totp_sealed = NULL, totp_last_step = NULL,
                    setup_token_hash = ?1, setup_expires_at = ?2, failed_sign_ins = 0, locked_until = NULL WHERE id = ?3",
                params![h, expires_at, id],
            )?;
            if n != 1 {
                return Ok(false);
            }
            for table in ["recovery_codes", "sessions", "passkeys"] {
                tx.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [&id])?;
            }
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn fail_attempt(
        &self,
        a: FailedAttempt,
        audit: AuditRecord,
    ) -> StoreResult<Option<User>> {
        let row = self
            .write(move |c| {
                let tx = begin(c)?;
                if let Some(ch) = &a.challenge_hash {
                    let attempts: Option<i64> = tx
                        .query_row(
                            "UPDATE challenges SET attempts = attempts + 1 WHERE token_hash = ?1 RETURNING attempts",
                            [ch],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if attempts.is_some_and(|n| n >= a.challenge_max) {
                        tx.execute("DELETE FROM challenges WHERE token_hash = ?1", [ch])?;
                    }
                }
                let mut records = vec![audit];
                let mut after = None;
                if let Some(id) = &a.user_id {
                    if let Some(step) = a.totp_step {
                        tx.execute(
                            "UPDATE users SET totp_fail_count = CASE WHEN totp_fail_step = ?1 THEN totp_fail_count + 1 ELSE 1 END,
                                totp_fail_step = ?1 WHERE id = ?2",
                            params![step, id],
                        )?;
                    }
                    let before: Option<Option<i64>> = tx
                        .query_row("SELECT locked_until FROM users WHERE id = ?1", [id], |r| r.get(0))
                        .optional()?;
                    let row = tx
                        .query_row(
                            &format!(
                                "UPDATE users SET
                                    failed_sign_ins = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN 1 ELSE failed_sign_ins + 1 END,
                                    locked_until = CASE
                                        WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN NULL
                                        WHEN failed_sign_ins + 1 >= ?2 THEN ?3
                                        ELSE locked_until END
                                 WHERE id = ?4 AND status = 'active' RETURNING {USER_COLUMNS}"
                            ),
                            params![a.now, a.lockout_max, a.lock_until, id],
                            user_row,
                        )
                        .optional()?;
                    if let Some(r) = &row {
                        let was_locked = before.flatten().is_some_and(|t| t > a.now);
                        let now_locked = r.5.is_some_and(|t| t > a.now);
                        if now_locked && !was_locked {
                            let source = records.first().and_then(|x| x.source.clone());
                            records.push(lockout_record(id, r.4, a.lock_until, source.as_deref()));
                        }
                    }
                    after = row;
                }
                append_tx(&tx, &records)?;
                tx.commit()?;
                Ok(after)
            })
            .await?;
        row.map(to_user).transpose()
    }

    async fn complete_sign_in(&self, s: CompletedSignIn, audit: AuditRecord) -> StoreResult<bool> {
        self.write(move |c| {
            let tx = begin(c)?;
            if tx.execute("DELETE FROM challenges WHERE token_hash = ?1", [&s.challenge_hash])? != 1 {
                return Ok(false);
            }
            if !spend_factor(&tx, &s.user_id, &s.factor, s.session.created_at)? {
                return Ok(false);
            }
            tx.execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = ?1 WHERE id = ?2",
                params![s.session.created_at, s.user_id],
            )?;
            insert_session(&tx, &s.session, &s.token_hash)?;
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn complete_reauthentication(
        &self,
        session_id: &str,
        user_id: &str,
        factor: SpentFactor,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (sid, uid) = (session_id.to_owned(), user_id.to_owned());
        self.write(move |c| {
            let tx = begin(c)?;
            if !spend_factor(&tx, &uid, &factor, now)? {
                return Ok(false);
            }
            tx.execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL WHERE id = ?1",
                [&uid],
            )?;
            tx.execute(
                "UPDATE sessions SET reauth_at = ?1, last_seen_at = ?1 WHERE id = ?2",
                params![now, sid],
            )?;
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let id = user_id.to_owned();
        let hashes = code_hashes.to_vec();
        self.write(move |c| {
            let tx = begin(c)?;
            insert_codes(&tx, &id, &hashes)?;
            append_tx(&tx, &[audit])?;
            tx.commit()
        })
        .await
    }

    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        let id = user_id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                [id],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn unlock(&self, user_id: &str, audit: AuditRecord) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, totp_fail_count = 0 WHERE id = ?1",
                [id],
            )?;
            if n != 1 {
                return Ok(false);
            }
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn set_role(&self, user_id: &str, role: Role, audit: AuditRecord) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            let tx = begin(c)?;
            if tx.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2",
                params![role.as_str(), id],
            )? != 1
            {
                return Ok(false);
            }
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [&id])?;
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            let tx = begin(c)?;
            // Enabling an account restarts its dormancy clock.
            let n = tx.execute(
                "UPDATE users SET status = ?1, last_sign_in_at = CASE WHEN ?1 = 'active' THEN ?2 ELSE last_sign_in_at END
                 WHERE id = ?3 AND status <> 'pending'",
                params![status.as_str(), now, id],
            )?;
            if n != 1 {
                return Ok(false);
            }
            if status == UserStatus::Disabled {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [&id])?;
            }
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn disable_dormant(
        &self,
        cutoff: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<Vec<String>> {
        self.write(move |c| {
            let tx = begin(c)?;
            let ids = {
                let mut st = tx.prepare(
                    "UPDATE users SET status = 'disabled' WHERE status = 'active' AND role <> 'customer'
                       AND COALESCE(last_sign_in_at, activated_at, created_at) < ?1 RETURNING id",
                )?;
                let ids = st
                    .query_map([cutoff], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                ids
            };
            if ids.is_empty() {
                return Ok(ids);
            }
            for id in &ids {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
            let records: Vec<AuditRecord> = ids
                .iter()
                .map(|id| audit.clone().target(user_ref(id)))
                .collect();
            append_tx(&tx, &records)?;
            tx.commit()?;
            Ok(ids)
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let h = token_hash.to_owned();
        self.point_read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"
            ))?
            .query_row([h], session_row)
            .optional()
        })
        .await
    }

    async fn touch_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1",
                params![now, id],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete_session(&self, id: &str, audit: AuditRecord) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let tx = begin(c)?;
            if tx.execute("DELETE FROM sessions WHERE id = ?1", [id])? != 1 {
                return Ok(false);
            }
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn expire_session(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE id = ?1", [id])
                .map(|_| ())
        })
        .await
    }

    async fn sessions_of(&self, user_id: &str) -> StoreResult<Vec<Session>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY created_at DESC"
            ))?;
            let rows = st.query_map([id], session_row)?.collect();
            rows
        })
        .await
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: UnixTime,
        created_before: UnixTime,
    ) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )
            .map(|n| n as u64)
        })
        .await
    }
}

#[async_trait]
impl ChallengeStore for SqliteStore {
    async fn create_challenge(&self, ch: &Challenge) -> StoreResult<()> {
        let ch = ch.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO challenges (token_hash, kind, user_id, payload, attempts, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ch.token_hash, ch.kind, ch.user_id, ch.payload, ch.attempts, ch.expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn challenge(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<Challenge>> {
        let (h, k) = (token_hash.to_owned(), kind.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT token_hash, kind, user_id, payload, attempts, expires_at FROM challenges
                 WHERE token_hash = ?1 AND kind = ?2 AND expires_at > ?3",
                params![h, k, now],
                |r| {
                    Ok(Challenge {
                        token_hash: r.get(0)?,
                        kind: r.get(1)?,
                        user_id: r.get(2)?,
                        payload: r.get(3)?,
                        attempts: r.get(4)?,
                        expires_at: r.get(5)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<bool> {
        let h = token_hash.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM challenges WHERE token_hash = ?1", [h])
                .map(|n| n == 1)
        })
        .await
    }

    async fn delete_expired_challenges(&self, now: UnixTime) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute("DELETE FROM challenges WHERE expires_at <= ?1", [now])
                .map(|n| n as u64)
        })
        .await
    }
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn add_passkey(&self, p: &PasskeyRecord, audit: AuditRecord) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            let tx = begin(c)?;
            tx.execute(
                "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![p.id, p.user_id, p.credential_id, p.name, p.passkey, p.created_at, p.last_used_at],
            )?;
            append_tx(&tx, &[audit])?;
            tx.commit()
        })
        .await
    }

    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare(
                "SELECT id, user_id, credential_id, name, passkey, created_at, last_used_at FROM passkeys WHERE user_id = ?1 ORDER BY created_at",
            )?;
            let rows = st.query_map([id], passkey_row)?.collect();
            rows
        })
        .await
    }

    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (u, id) = (user_id.to_owned(), id.to_owned());
        self.write(move |c| {
            let tx = begin(c)?;
            if tx.execute(
                "DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2",
                params![u, id],
            )? != 1
            {
                return Ok(false);
            }
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit_level(
        &self,
        level: u32,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.read(move |c| {
            let mut st = if level == 0 {
                c.prepare_cached("SELECT idx, leaf_hash FROM audit_entries WHERE idx >= ?2 AND ?1 = 0 ORDER BY idx LIMIT ?3")?
            } else {
                c.prepare_cached("SELECT idx, hash FROM audit_nodes WHERE level = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3")?
            };
            let rows = st
                .query_map(params![level, start as i64, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect();
            rows
        })
        .await
    }

    async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<StoredEntry>> {
        let f = f.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT idx, entry, leaf_hash FROM audit_entries
                 WHERE (?1 IS NULL OR json_extract(entry, '$.actor') = ?1)
                   AND (?2 IS NULL OR json_extract(entry, '$.action') = ?2)
                   AND (?3 IS NULL OR json_extract(entry, '$.time') >= ?3)
                   AND (?4 IS NULL OR json_extract(entry, '$.time') < ?4)
                   AND (?5 IS NULL OR idx < ?5)
                   AND (?7 IS NULL OR json_extract(entry, '$.target') = ?7)
                 ORDER BY idx DESC LIMIT ?6",
            )?;
            let rows = st
                .query_map(
                    params![
                        f.actor,
                        f.action,
                        f.from,
                        f.to,
                        f.before.map(|b| b as i64),
                        f.limit as i64,
                        f.target
                    ],
                    |r| {
                        Ok(StoredEntry {
                            index: r.get::<_, i64>(0)? as u64,
                            text: r.get(1)?,
                            leaf_hash: r.get(2)?,
                        })
                    },
                )?
                .collect();
            rows
        })
        .await
    }

    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<u64> {
        self.write(move |c| {
            let tx = begin(c)?;
            let last = append_tx(&tx, &records)?;
            tx.commit()?;
            Ok(last)
        })
        .await
    }

    async fn audit_head(&self) -> StoreResult<Frontier> {
        let bytes: Vec<u8> = self
            .read(|c| {
                c.query_row("SELECT frontier FROM audit_head WHERE id = 1", [], |r| {
                    r.get(0)
                })
            })
            .await?;
        parse_frontier(&bytes)
    }

    async fn audit_entries(&self, start: u64, limit: u64) -> StoreResult<Vec<StoredEntry>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT idx, entry, leaf_hash FROM audit_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![start as i64, limit as i64], |r| {
                    Ok(StoredEntry { index: r.get::<_, i64>(0)? as u64, text: r.get(1)?, leaf_hash: r.get(2)? })
                })?
                .collect();
            rows
        })
        .await
    }

    async fn audit_subtrees(&self, subtrees: &[Subtree]) -> StoreResult<Vec<Hash>> {
        let wanted = subtrees.to_vec();
        let raw: Vec<Option<Vec<u8>>> = self
            .read(move |c| {
                let mut leaf =
                    c.prepare_cached("SELECT leaf_hash FROM audit_entries WHERE idx = ?1")?;
                let mut node =
                    c.prepare_cached("SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2")?;
                wanted
                    .iter()
                    .map(|s| {
                        if s.level == 0 {
                            leaf.query_row([s.index as i64], |r| r.get(0)).optional()
                        } else {
                            node.query_row(params![s.level, s.index as i64], |r| r.get(0))
                                .optional()
                        }
                    })
                    .collect()
            })
            .await?;
        raw.into_iter()
            .map(|b| {
                b.ok_or_else(|| backend("a subtree of the audit log is missing"))
                    .and_then(|b| to_hash(&b))
            })
            .collect()
    }

    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> StoreResult<bool> {
        let cp = cp.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (size) DO NOTHING",
                params![cp.size as i64, &cp.root[..], cp.note, cp.created_at],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        let row = self
            .read(|c| {
                c.query_row(
                    "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
                    [],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(size, root, note, created_at)| {
            Ok(StoredCheckpoint {
                size: size as u64,
                root: to_hash(&root)?,
                note,
                created_at,
            })
        })
        .transpose()
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        let rows = self
            .read(|c| {
                let mut st = c.prepare(
                    "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size",
                )?;
                let rows = st
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>();
                rows
            })
            .await?;
        rows.into_iter()
            .map(|(size, root, note, created_at)| {
                Ok(StoredCheckpoint {
                    size: size as u64,
                    root: to_hash(&root)?,
                    note,
                    created_at,
                })
            })
            .collect()
    }
}

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        rule: r.get(2)?,
        entry_index: r.get::<_, i64>(3)? as u64,
        severity: r.get(4)?,
        status: r.get(5)?,
        raised_at: r.get(6)?,
        subject: r.get(7)?,
        summary: r.get(8)?,
        acknowledged_by: r.get(9)?,
        acknowledged_at: r.get(10)?,
        acknowledge_comment: r.get(11)?,
        resolved_by: r.get(12)?,
        resolved_at: r.get(13)?,
        resolve_comment: r.get(14)?,
    })
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn insert_alert(&self, a: &NewAlert) -> StoreResult<bool> {
        let a = a.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO alerts (id, rule, entry_index, severity, status, raised_at, subject, summary)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7) ON CONFLICT (rule, entry_index) DO NOTHING",
                params![a.id, a.rule, a.entry_index as i64, a.severity, a.raised_at, a.subject, a.summary],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn alerts(&self, status: Option<&str>, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let status = status.map(str::to_owned);
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE (?1 IS NULL OR status = ?1) ORDER BY seq DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![status, limit as i64], alert_row)?.collect();
            rows
        })
        .await
    }

    async fn alerts_after(&self, seq: i64, limit: u64) -> StoreResult<Vec<AlertRow>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = st
                .query_map(params![seq, limit as i64], alert_row)?
                .collect();
            rows
        })
        .await
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                alert_row,
            )
            .optional()
        })
        .await
    }

    async fn transition_alert(
        &self,
        id: &str,
        to: &str,
        by: &str,
        at: UnixTime,
        comment: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let Some(from) = alert_transition_from(to) else {
            return Ok(false);
        };
        let (id, by, comment, to) = (
            id.to_owned(),
            by.to_owned(),
            comment.to_owned(),
            to.to_owned(),
        );
        let placeholders = from
            .iter()
            .map(|f| format!("'{f}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let (who, when, what) = if to == "acknowledged" {
            ("acknowledged_by", "acknowledged_at", "acknowledge_comment")
        } else {
            ("resolved_by", "resolved_at", "resolve_comment")
        };
        self.write(move |c| {
            let tx = begin(c)?;
            let n = tx.execute(
                &format!("UPDATE alerts SET status = ?1, {who} = ?2, {when} = ?3, {what} = ?4 WHERE id = ?5 AND status IN ({placeholders})"),
                params![to, by, at, comment, id],
            )?;
            if n != 1 {
                return Ok(false);
            }
            append_tx(&tx, &[audit])?;
            tx.commit()?;
            Ok(true)
        })
        .await
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
