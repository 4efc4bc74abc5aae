//! The SQLite backend: one database file in WAL mode with a busy timeout, so that the CLI and a
//! running server can share it. Writes go through one connection (SQLite has one writer anyway);
//! reads use a small pool. Every call runs on a blocking thread, never on the async runtime.

use crate::*;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_identity.sql"))];
const MAX_IDLE_READERS: usize = 8;

/// The SQLite implementation of every store trait.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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
            migrate(&mut writer)?;
            restrict_permissions(&path);
            Ok(Self {
                inner: Arc::new(Inner {
                    path,
                    writer: Mutex::new(writer),
                    readers: Mutex::new(Vec::new()),
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
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => connect(&inner.path).map_err(map_err)?,
            };
            let out = f(&conn).map_err(map_err);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < MAX_IDLE_READERS {
                    pool.push(conn);
                }
            }
            out
        })
        .await
        .map_err(backend)?
    }

    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Backend("writer connection poisoned".into()))?;
            f(&mut conn).map_err(map_err)
        })
        .await
        .map_err(backend)?
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

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_pending_user(&self, u: NewPendingUser) -> StoreResult<User> {
        let id = u.id.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6)",
                params![u.id, u.username, u.role.as_str(), u.setup_token_hash, u.setup_expires_at, u.created_at],
            )
        })
        .await?;
        self.user_by_id(&id)
            .await?
            .ok_or_else(|| backend("created user vanished"))
    }

    async fn create_active_user(&self, u: NewActiveUser) -> StoreResult<User> {
        let id = u.id.clone();
        self.write(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO users (id, username, role, status, password_hash, totp_sealed, created_at, activated_at)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6)",
                params![u.id, u.username, u.role.as_str(), u.password_hash, u.totp_sealed, u.created_at],
            )?;
            for h in &u.recovery_code_hashes {
                tx.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)", params![u.id, h])?;
            }
            tx.commit()
        })
        .await?;
        self.user_by_id(&id)
            .await?
            .ok_or_else(|| backend("created user vanished"))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                user_row,
            )
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

    async fn complete_setup(&self, s: CompletedSetup) -> StoreResult<bool> {
        self.write(move |c| {
            let tx = c.transaction()?;
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
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&s.user_id])?;
            for h in &s.recovery_code_hashes {
                tx.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)", params![s.user_id, h])?;
            }
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
    ) -> StoreResult<bool> {
        let (id, h) = (user_id.to_owned(), token_hash.to_owned());
        self.write(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE users SET status = 'pending', password_hash = NULL, totp_sealed = NULL, totp_last_step = NULL,
                    setup_token_hash = ?1, setup_expires_at = ?2, failed_sign_ins = 0, locked_until = NULL WHERE id = ?3",
                params![h, expires_at, id],
            )?;
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM passkeys WHERE user_id = ?1", [&id])?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn record_failed_sign_in(
        &self,
        user_id: &str,
        now: UnixTime,
        max: i64,
        lock_until: UnixTime,
    ) -> StoreResult<Option<User>> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.query_row(
                &format!(
                    "UPDATE users SET
                        failed_sign_ins = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN 1 ELSE failed_sign_ins + 1 END,
                        locked_until = CASE
                            WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN NULL
                            WHEN failed_sign_ins + 1 >= ?2 THEN ?3
                            ELSE locked_until END
                     WHERE id = ?4 RETURNING {USER_COLUMNS}"
                ),
                params![now, max, lock_until, id],
                user_row,
            )
            .optional()
        })
        .await?
        .map(to_user)
        .transpose()
    }

    async fn record_successful_sign_in(&self, user_id: &str, now: UnixTime) -> StoreResult<()> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = ?1 WHERE id = ?2",
                params![now, id],
            )
            .map(|_| ())
        })
        .await
    }

    async fn record_totp_failure(&self, user_id: &str, step: i64) -> StoreResult<i64> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.query_row(
                "UPDATE users SET totp_fail_count = CASE WHEN totp_fail_step = ?1 THEN totp_fail_count + 1 ELSE 1 END,
                    totp_fail_step = ?1 WHERE id = ?2 RETURNING totp_fail_count",
                params![step, id],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE users SET totp_last_step = ?1 WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
                params![step, id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let (id, h) = (user_id.to_owned(), code_hash.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE recovery_codes SET used_at = ?1 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
                params![now, id, h],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
    ) -> StoreResult<()> {
        let id = user_id.to_owned();
        let hashes = code_hashes.to_vec();
        self.write(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&id])?;
            for h in &hashes {
                tx.execute(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![id, h],
                )?;
            }
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

    async fn unlock(&self, user_id: &str) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, totp_fail_count = 0 WHERE id = ?1",
                [id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn set_role(&self, user_id: &str, role: Role) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2",
                params![role.as_str(), id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |c| {
            // Enabling an account restarts its dormancy clock.
            c.execute(
                "UPDATE users SET status = ?1, last_sign_in_at = CASE WHEN ?1 = 'active' THEN ?2 ELSE last_sign_in_at END
                 WHERE id = ?3 AND status <> 'pending'",
                params![status.as_str(), now, id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn disable_dormant(&self, cutoff: UnixTime) -> StoreResult<Vec<String>> {
        self.write(move |c| {
            let mut st = c.prepare(
                "UPDATE users SET status = 'disabled' WHERE status = 'active'
                   AND COALESCE(last_sign_in_at, activated_at, created_at) < ?1 RETURNING id",
            )?;
            let ids = st
                .query_map([cutoff], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>();
            ids
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &Session, token_hash: &str) -> StoreResult<()> {
        let (s, h) = (s.clone(), token_hash.to_owned());
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO sessions ({SESSION_COLUMNS}, token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![s.id, s.user_id, s.created_at, s.last_seen_at, s.reauth_at, s.source, s.user_agent, h],
            )
            .map(|_| ())
        })
        .await
    }

    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let h = token_hash.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"),
                [h],
                session_row,
            )
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

    async fn mark_reauthenticated(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE sessions SET reauth_at = ?1, last_seen_at = ?1 WHERE id = ?2",
                params![now, id],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE id = ?1", [id])
                .map(|n| n == 1)
        })
        .await
    }

    async fn delete_sessions_of(&self, user_id: &str) -> StoreResult<u64> {
        let id = user_id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE user_id = ?1", [id])
                .map(|n| n as u64)
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

    async fn count_challenge_failure(&self, token_hash: &str) -> StoreResult<i64> {
        let h = token_hash.to_owned();
        self.write(move |c| {
            c.query_row(
                "UPDATE challenges SET attempts = attempts + 1 WHERE token_hash = ?1 RETURNING attempts",
                [h],
                |r| r.get(0),
            )
            .optional()
            .map(|n| n.unwrap_or(i64::MAX))
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
    async fn add_passkey(&self, p: &PasskeyRecord) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![p.id, p.user_id, p.credential_id, p.name, p.passkey, p.created_at, p.last_used_at],
            )
            .map(|_| ())
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

    async fn update_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        passkey: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        let (u, cid, pk) = (
            user_id.to_owned(),
            credential_id.to_owned(),
            passkey.to_owned(),
        );
        self.write(move |c| {
            c.execute(
                "UPDATE passkeys SET passkey = ?1, last_used_at = ?2 WHERE user_id = ?3 AND credential_id = ?4",
                params![pk, now, u, cid],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (u, id) = (user_id.to_owned(), id.to_owned());
        self.write(move |c| {
            c.execute(
                "DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2",
                params![u, id],
            )
            .map(|n| n == 1)
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
