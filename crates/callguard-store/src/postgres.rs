//! The PostgreSQL backend, for several stateless nodes sharing one database. Same behaviour as
//! the SQLite backend; migrations run under an advisory lock so that nodes starting together do
//! not race.

use crate::*;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/postgres/0001_identity.sql"))];
/// Arbitrary constant naming Callguard's migration lock.
const MIGRATION_LOCK: i64 = 0x4341_4c4c_4755_4152;

/// The PostgreSQL implementation of every store trait.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

fn map_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict
    } else {
        // The database's message, without the connection string (tokio-postgres never prints it).
        StoreError::Backend(e.to_string())
    }
}

fn pool_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("PostgreSQL connection: {e}"))
}

impl PostgresStore {
    /// Connects with `url` (`postgres://user@host:port/db`) and applies migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL could not be parsed".into()))?;
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr).max_size(16).build().map_err(pool_err)?;
        let store = Self { pool };
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
                    .query_opt("SELECT version FROM schema_migrations WHERE version = $1", &[version])
                    .await
                    .map_err(map_err)?;
                if done.is_none() {
                    tx.batch_execute(sql).await.map_err(map_err)?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
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

fn to_user(r: &Row) -> StoreResult<User> {
    let role: String = r.get(2);
    let status: String = r.get(3);
    Ok(User {
        id: r.get(0),
        username: r.get(1),
        role: parse_role(&role)?,
        status: parse_status(&status)?,
        failed_sign_ins: r.get(4),
        locked_until: r.get(5),
        created_at: r.get(6),
        activated_at: r.get(7),
        last_sign_in_at: r.get(8),
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_seen_at, reauth_at, source, user_agent";

fn to_session(r: &Row) -> Session {
    Session {
        id: r.get(0),
        user_id: r.get(1),
        created_at: r.get(2),
        last_seen_at: r.get(3),
        reauth_at: r.get(4),
        source: r.get(5),
        user_agent: r.get(6),
    }
}

fn to_passkey(r: &Row) -> PasskeyRecord {
    PasskeyRecord {
        id: r.get(0),
        user_id: r.get(1),
        credential_id: r.get(2),
        name: r.get(3),
        passkey: r.get(4),
        created_at: r.get(5),
        last_used_at: r.get(6),
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_pending_user(&self, u: NewPendingUser) -> StoreResult<User> {
        let c = self.client().await?;
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at)
                     VALUES ($1, $2, $3, 'pending', $4, $5, $6) RETURNING {USER_COLUMNS}"
                ),
                &[&u.id, &u.username, &u.role.as_str(), &u.setup_token_hash, &u.setup_expires_at, &u.created_at],
            )
            .await
            .map_err(map_err)?;
        to_user(&row)
    }

    async fn create_active_user(&self, u: NewActiveUser) -> StoreResult<User> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO users (id, username, role, status, password_hash, totp_sealed, created_at, activated_at)
                     VALUES ($1, $2, $3, 'active', $4, $5, $6, $6) RETURNING {USER_COLUMNS}"
                ),
                &[&u.id, &u.username, &u.role.as_str(), &u.password_hash, &u.totp_sealed, &u.created_at],
            )
            .await
            .map_err(map_err)?;
        for h in &u.recovery_code_hashes {
            tx.execute(
                "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
                &[&u.id, h],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        to_user(&row)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_user)
        .transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
            &[&username],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_user)
        .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let c = self.client().await?;
        c.query(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
            &[],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(to_user)
        .collect()
    }

    async fn credentials(&self, user_id: &str) -> StoreResult<Option<Credentials>> {
        let c = self.client().await?;
        Ok(c
            .query_opt(
                "SELECT password_hash, totp_sealed, totp_last_step, totp_fail_step, totp_fail_count FROM users WHERE id = $1",
                &[&user_id],
            )
            .await
            .map_err(map_err)?
            .map(|r| Credentials {
                password_hash: r.get(0),
                totp_sealed: r.get(1),
                totp_last_step: r.get(2),
                totp_fail_step: r.get(3),
                totp_fail_count: r.get(4),
            }))
    }

    async fn user_by_setup_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE setup_token_hash = $1 AND setup_expires_at > $2 AND status = 'pending'"),
            &[&token_hash, &now],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_user)
        .transpose()
    }

    async fn complete_setup(&self, s: CompletedSetup) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE users SET status = 'active', password_hash = $1, totp_sealed = $2, totp_last_step = $3,
                    setup_token_hash = NULL, setup_expires_at = NULL, activated_at = $4, last_sign_in_at = $4,
                    failed_sign_ins = 0, locked_until = NULL
                 WHERE id = $5 AND status = 'pending' AND setup_token_hash = $6 AND setup_expires_at > $4",
                &[&s.password_hash, &s.totp_sealed, &s.totp_step, &s.now, &s.user_id, &s.setup_token_hash],
            )
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM recovery_codes WHERE user_id = $1",
            &[&s.user_id],
        )
        .await
        .map_err(map_err)?;
        for h in &s.recovery_code_hashes {
            tx.execute(
                "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
                &[&s.user_id, h],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn reset_setup(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE users SET status = 'pending', password_hash = NULL, totp_sealed = NULL, totp_last_step = NULL,
                    setup_token_hash = $1, setup_expires_at = $2, failed_sign_ins = 0, locked_until = NULL WHERE id = $3",
                &[&token_hash, &expires_at, &user_id],
            )
            .await
            .map_err(map_err)?;
        for table in ["recovery_codes", "sessions", "passkeys"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE user_id = $1"),
                &[&user_id],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n == 1)
    }

    async fn record_failed_sign_in(
        &self,
        user_id: &str,
        now: UnixTime,
        max: i64,
        lock_until: UnixTime,
    ) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        c.query_opt(
            &format!(
                "UPDATE users SET
                    failed_sign_ins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 1 ELSE failed_sign_ins + 1 END,
                    locked_until = CASE
                        WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN NULL
                        WHEN failed_sign_ins + 1 >= $2 THEN $3
                        ELSE locked_until END
                 WHERE id = $4 RETURNING {USER_COLUMNS}"
            ),
            &[&now, &max, &lock_until, &user_id],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_user)
        .transpose()
    }

    async fn record_successful_sign_in(&self, user_id: &str, now: UnixTime) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = $1 WHERE id = $2",
            &[&now, &user_id],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn record_totp_failure(&self, user_id: &str, step: i64) -> StoreResult<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "UPDATE users SET totp_fail_count = CASE WHEN totp_fail_step = $1 THEN totp_fail_count + 1 ELSE 1 END,
                    totp_fail_step = $1 WHERE id = $2 RETURNING totp_fail_count",
                &[&step, &user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                &[&step, &user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                &[&now, &user_id, &code_hash],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
    ) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])
            .await
            .map_err(map_err)?;
        for h in code_hashes {
            tx.execute(
                "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
                &[&user_id, h],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                &[&user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn unlock(&self, user_id: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, totp_fail_count = 0 WHERE id = $1",
                &[&user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn set_role(&self, user_id: &str, role: Role) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE users SET role = $1 WHERE id = $2",
                &[&role.as_str(), &user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE users SET status = $1::text,
                    last_sign_in_at = CASE WHEN $1::text = 'active' THEN $2 ELSE last_sign_in_at END
                 WHERE id = $3 AND status <> 'pending'",
                &[&status.as_str(), &now, &user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn disable_dormant(&self, cutoff: UnixTime) -> StoreResult<Vec<String>> {
        let c = self.client().await?;
        Ok(c.query(
            "UPDATE users SET status = 'disabled' WHERE status = 'active'
                   AND COALESCE(last_sign_in_at, activated_at, created_at) < $1 RETURNING id",
            &[&cutoff],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &Session, token_hash: &str) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            &format!("INSERT INTO sessions ({SESSION_COLUMNS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[&s.id, &s.user_id, &s.created_at, &s.last_seen_at, &s.reauth_at, &s.source, &s.user_agent, &token_hash],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"),
            &[&token_hash],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_session))
    }

    async fn touch_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1",
            &[&now, &id],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn mark_reauthenticated(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE sessions SET reauth_at = $1, last_seen_at = $1 WHERE id = $2",
            &[&now, &id],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute("DELETE FROM sessions WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?
            == 1)
    }

    async fn delete_sessions_of(&self, user_id: &str) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
            .await
            .map_err(map_err)
    }

    async fn sessions_of(&self, user_id: &str) -> StoreResult<Vec<Session>> {
        let c = self.client().await?;
        Ok(c
            .query(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY created_at DESC"),
                &[&user_id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(to_session)
            .collect())
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: UnixTime,
        created_before: UnixTime,
    ) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2",
            &[&idle_before, &created_before],
        )
        .await
        .map_err(map_err)
    }
}

#[async_trait]
impl ChallengeStore for PostgresStore {
    async fn create_challenge(&self, ch: &Challenge) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO challenges (token_hash, kind, user_id, payload, attempts, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&ch.token_hash, &ch.kind, &ch.user_id, &ch.payload, &ch.attempts, &ch.expires_at],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn challenge(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<Challenge>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT token_hash, kind, user_id, payload, attempts, expires_at FROM challenges
                 WHERE token_hash = $1 AND kind = $2 AND expires_at > $3",
            &[&token_hash, &kind, &now],
        )
        .await
        .map_err(map_err)?
        .map(|r| Challenge {
            token_hash: r.get(0),
            kind: r.get(1),
            user_id: r.get(2),
            payload: r.get(3),
            attempts: r.get(4),
            expires_at: r.get(5),
        }))
    }

    async fn count_challenge_failure(&self, token_hash: &str) -> StoreResult<i64> {
        let c = self.client().await?;
        Ok(c
            .query_opt(
                "UPDATE challenges SET attempts = attempts + 1 WHERE token_hash = $1 RETURNING attempts",
                &[&token_hash],
            )
            .await
            .map_err(map_err)?
            .map_or(i64::MAX, |r| r.get(0)))
    }

    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM challenges WHERE token_hash = $1",
            &[&token_hash],
        )
        .await
        .map_err(map_err)?
            == 1)
    }

    async fn delete_expired_challenges(&self, now: UnixTime) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute("DELETE FROM challenges WHERE expires_at <= $1", &[&now])
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl PasskeyStore for PostgresStore {
    async fn add_passkey(&self, p: &PasskeyRecord) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&p.id, &p.user_id, &p.credential_id, &p.name, &p.passkey, &p.created_at, &p.last_used_at],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let c = self.client().await?;
        Ok(c
            .query(
                "SELECT id, user_id, credential_id, name, passkey, created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at",
                &[&user_id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(to_passkey)
            .collect())
    }

    async fn update_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        passkey: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE user_id = $3 AND credential_id = $4",
            &[&passkey, &now, &user_id, &credential_id],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM passkeys WHERE user_id = $1 AND id = $2",
            &[&user_id, &id],
        )
        .await
        .map_err(map_err)?
            == 1)
    }
}

#[async_trait]
impl Health for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        let c = self.client().await?;
        c.query_one("SELECT 1", &[]).await.map_err(map_err)?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
