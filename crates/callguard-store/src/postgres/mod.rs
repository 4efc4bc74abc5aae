//! The PostgreSQL backend, for several stateless nodes sharing one database. Same behaviour as
//! the SQLite backend; migrations run under an advisory lock so that nodes starting together do
//! not race.

use crate::log::{lockout_record, parse_frontier, plan, to_hash};
use crate::sql::{ALERT_COLUMNS, USER_COLUMNS};
use crate::*;
use callguard_core::audit::record::user as user_ref;
use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

mod dnc_lists;
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
];
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

/// Appends `records` to the audit log inside `tx`. The head row is locked `FOR UPDATE`, so
/// appends from every node are serialised by the database: no gap, no fork.
async fn append_tx(tx: &Transaction<'_>, records: &[AuditRecord]) -> StoreResult<u64> {
    let row = tx
        .query_one(
            "SELECT frontier FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(map_err)?;
    let bytes: Vec<u8> = row.get(0);
    let planned = plan(parse_frontier(&bytes)?, records)?;
    let entry = tx
        .prepare_cached("INSERT INTO audit_entries (idx, entry, leaf_hash) VALUES ($1, $2, $3)")
        .await
        .map_err(map_err)?;
    for (idx, text, leaf) in &planned.entries {
        tx.execute(&entry, &[&(*idx as i64), text, &&leaf[..]])
            .await
            .map_err(map_err)?;
    }
    if !planned.nodes.is_empty() {
        let node = tx
            .prepare_cached("INSERT INTO audit_nodes (level, idx, hash) VALUES ($1, $2, $3)")
            .await
            .map_err(map_err)?;
        for (s, h) in &planned.nodes {
            tx.execute(&node, &[&(s.level as i32), &(s.index as i64), &&h[..]])
                .await
                .map_err(map_err)?;
        }
    }
    tx.execute(
        "UPDATE audit_head SET frontier = $1 WHERE id = 1",
        &[&planned.frontier.to_bytes()],
    )
    .await
    .map_err(map_err)?;
    Ok(planned.frontier.size.saturating_sub(1))
}

async fn insert_session(tx: &Transaction<'_>, s: &Session, token_hash: &str) -> StoreResult<()> {
    tx.execute(
        &format!("INSERT INTO sessions ({SESSION_COLUMNS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        &[&s.id, &s.user_id, &s.created_at, &s.last_seen_at, &s.reauth_at, &s.source, &s.user_agent, &token_hash],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn spend_factor(
    tx: &Transaction<'_>,
    user_id: &str,
    factor: &SpentFactor,
    now: UnixTime,
) -> StoreResult<bool> {
    let n = match factor {
        SpentFactor::TotpStep(step) => tx
            .execute(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                &[step, &user_id],
            )
            .await,
        SpentFactor::RecoveryCode(hash) => tx
            .execute(
                "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                &[&now, &user_id, hash],
            )
            .await,
        SpentFactor::Passkey { credential_id, passkey } => tx
            .execute(
                "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE user_id = $3 AND credential_id = $4",
                &[passkey, &now, &user_id, credential_id],
            )
            .await,
    }
    .map_err(map_err)?;
    Ok(n == 1)
}

async fn insert_codes(tx: &Transaction<'_>, user_id: &str, hashes: &[String]) -> StoreResult<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])
        .await
        .map_err(map_err)?;
    for h in hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
            &[&user_id, h],
        )
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_pending_user(
        &self,
        u: NewPendingUser,
        audit: AuditRecord,
    ) -> StoreResult<User> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at)
                     VALUES ($1, $2, $3, 'pending', $4, $5, $6) RETURNING {USER_COLUMNS}"
                ),
                &[&u.id, &u.username, &u.role.as_str(), &u.setup_token_hash, &u.setup_expires_at, &u.created_at],
            )
            .await
            .map_err(map_err)?;
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        to_user(&row)
    }

    async fn create_active_user(&self, u: NewActiveUser, audit: AuditRecord) -> StoreResult<User> {
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
        insert_codes(&tx, &u.id, &u.recovery_code_hashes).await?;
        append_tx(&tx, &[audit]).await?;
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

    async fn sign_in_facts(&self, username: &str) -> StoreResult<Option<SignInFacts>> {
        let c = self.client().await?;
        let Some(row) = c
            .query_opt(
                &format!(
                    "SELECT {USER_COLUMNS}, password_hash, totp_sealed, totp_last_step, totp_fail_step, totp_fail_count,
                        (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = users.id AND r.used_at IS NULL)
                     FROM users WHERE username = $1"
                ),
                &[&username],
            )
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let user = to_user(&row)?;
        let credentials = Credentials {
            password_hash: row.get(9),
            totp_sealed: row.get(10),
            totp_last_step: row.get(11),
            totp_fail_step: row.get(12),
            totp_fail_count: row.get(13),
        };
        let unused_recovery_codes: i64 = row.get(14);
        let passkeys = c
            .query(
                "SELECT id, user_id, credential_id, name, passkey, created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at",
                &[&user.id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(to_passkey)
            .collect();
        Ok(Some(SignInFacts {
            user,
            credentials,
            unused_recovery_codes,
            passkeys,
        }))
    }

    async fn challenge_facts(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<(Challenge, User, Credentials)>> {
        let c = self.client().await?;
        let cols = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(r) = c
            .query_opt(
                &format!(
                    "SELECT {cols}, u.password_hash, u.totp_sealed, u.totp_last_step, u.totp_fail_step, u.totp_fail_count,
                            ch.token_hash, ch.kind, ch.user_id, ch.payload, ch.attempts, ch.expires_at
                     FROM challenges ch JOIN users u ON u.id = ch.user_id
                     WHERE ch.token_hash = $1 AND ch.kind = $2 AND ch.expires_at > $3"
                ),
                &[&token_hash, &kind, &now],
            )
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let user = to_user(&r)?;
        let creds = Credentials {
            password_hash: r.get(9),
            totp_sealed: r.get(10),
            totp_last_step: r.get(11),
            totp_fail_step: r.get(12),
            totp_fail_count: r.get(13),
        };
        let ch = Challenge {
            token_hash: r.get(14),
            kind: r.get(15),
            user_id: r.get(16),
            payload: r.get(17),
            attempts: r.get(18),
            expires_at: r.get(19),
        };
        Ok(Some((ch, user, creds)))
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

    async fn complete_setup(
        &self,
        s: CompletedSetup,
        challenge_hash: &str,
        session: &Session,
        session_token_hash: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if tx
            .execute(
                "DELETE FROM challenges WHERE token_hash = $1",
                &[&challenge_hash],
            )
            .await
            .map_err(map_err)?
            != 1
        {
            return Ok(false);
        }
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
        insert_codes(&tx, &s.user_id, &s.recovery_code_hashes).await?;
        insert_session(&tx, session, session_token_hash).await?;
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn reset_setup(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: UnixTime,
        audit: AuditRecord,
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
        if n != 1 {
            return Ok(false);
        }
        for table in ["recovery_codes", "sessions", "passkeys"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE user_id = $1"),
                &[&user_id],
            )
            .await
            .map_err(map_err)?;
        }
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn fail_attempt(
        &self,
        a: FailedAttempt,
        audit: AuditRecord,
    ) -> StoreResult<Option<User>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if let Some(ch) = &a.challenge_hash {
            let attempts = tx
                .query_opt(
                    "UPDATE challenges SET attempts = attempts + 1 WHERE token_hash = $1 RETURNING attempts",
                    &[ch],
                )
                .await
                .map_err(map_err)?
                .map(|r| r.get::<_, i64>(0));
            if attempts.is_some_and(|n| n >= a.challenge_max) {
                tx.execute("DELETE FROM challenges WHERE token_hash = $1", &[ch])
                    .await
                    .map_err(map_err)?;
            }
        }
        let mut records = vec![audit];
        let mut after = None;
        if let Some(id) = &a.user_id {
            if let Some(step) = a.totp_step {
                tx.execute(
                    "UPDATE users SET totp_fail_count = CASE WHEN totp_fail_step = $1 THEN totp_fail_count + 1 ELSE 1 END,
                        totp_fail_step = $1 WHERE id = $2",
                    &[&step, id],
                )
                .await
                .map_err(map_err)?;
            }
            let before: Option<i64> = tx
                .query_opt(
                    "SELECT locked_until FROM users WHERE id = $1 FOR UPDATE",
                    &[id],
                )
                .await
                .map_err(map_err)?
                .and_then(|r| r.get(0));
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE users SET
                            failed_sign_ins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 1 ELSE failed_sign_ins + 1 END,
                            locked_until = CASE
                                WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN NULL
                                WHEN failed_sign_ins + 1 >= $2 THEN $3
                                ELSE locked_until END
                         WHERE id = $4 AND status = 'active' RETURNING {USER_COLUMNS}"
                    ),
                    &[&a.now, &a.lockout_max, &a.lock_until, id],
                )
                .await
                .map_err(map_err)?;
            if let Some(r) = &row {
                let u = to_user(r)?;
                let was_locked = before.is_some_and(|t| t > a.now);
                if u.is_locked(a.now) && !was_locked {
                    let source = records.first().and_then(|x| x.source.clone());
                    records.push(lockout_record(
                        id,
                        u.failed_sign_ins,
                        a.lock_until,
                        source.as_deref(),
                    ));
                }
                after = Some(u);
            }
        }
        append_tx(&tx, &records).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }

    async fn complete_sign_in(&self, s: CompletedSignIn, audit: AuditRecord) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if tx
            .execute(
                "DELETE FROM challenges WHERE token_hash = $1",
                &[&s.challenge_hash],
            )
            .await
            .map_err(map_err)?
            != 1
        {
            return Ok(false);
        }
        if !spend_factor(&tx, &s.user_id, &s.factor, s.session.created_at).await? {
            return Ok(false);
        }
        tx.execute(
            "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = $1 WHERE id = $2",
            &[&s.session.created_at, &s.user_id],
        )
        .await
        .map_err(map_err)?;
        insert_session(&tx, &s.session, &s.token_hash).await?;
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn complete_reauthentication(
        &self,
        session_id: &str,
        user_id: &str,
        factor: SpentFactor,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if !spend_factor(&tx, user_id, &factor, now).await? {
            return Ok(false);
        }
        tx.execute(
            "UPDATE users SET failed_sign_ins = 0, locked_until = NULL WHERE id = $1",
            &[&user_id],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "UPDATE sessions SET reauth_at = $1, last_seen_at = $1 WHERE id = $2",
            &[&now, &session_id],
        )
        .await
        .map_err(map_err)?;
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        insert_codes(&tx, user_id, code_hashes).await?;
        append_tx(&tx, &[audit]).await?;
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

    async fn unlock(&self, user_id: &str, audit: AuditRecord) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, totp_fail_count = 0 WHERE id = $1",
                &[&user_id],
            )
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn set_role(&self, user_id: &str, role: Role, audit: AuditRecord) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if tx
            .execute(
                "UPDATE users SET role = $1 WHERE id = $2",
                &[&role.as_str(), &user_id],
            )
            .await
            .map_err(map_err)?
            != 1
        {
            return Ok(false);
        }
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
            .await
            .map_err(map_err)?;
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE users SET status = $1::text,
                    last_sign_in_at = CASE WHEN $1::text = 'active' THEN $2 ELSE last_sign_in_at END
                 WHERE id = $3 AND status <> 'pending'",
                &[&status.as_str(), &now, &user_id],
            )
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
        if status == UserStatus::Disabled {
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
                .await
                .map_err(map_err)?;
        }
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn disable_dormant(
        &self,
        cutoff: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<Vec<String>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let ids: Vec<String> = tx
            .query(
                "UPDATE users SET status = 'disabled' WHERE status = 'active' AND role <> 'customer'
                   AND COALESCE(last_sign_in_at, activated_at, created_at) < $1 RETURNING id",
                &[&cutoff],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        for id in &ids {
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[id])
                .await
                .map_err(map_err)?;
        }
        let records: Vec<AuditRecord> = ids
            .iter()
            .map(|id| audit.clone().target(user_ref(id)))
            .collect();
        append_tx(&tx, &records).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(ids)
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
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

    async fn delete_session(&self, id: &str, audit: AuditRecord) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if tx
            .execute("DELETE FROM sessions WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?
            != 1
        {
            return Ok(false);
        }
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn expire_session(&self, id: &str) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute("DELETE FROM sessions WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?;
        Ok(())
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
    async fn add_passkey(&self, p: &PasskeyRecord, audit: AuditRecord) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&p.id, &p.user_id, &p.credential_id, &p.name, &p.passkey, &p.created_at, &p.last_used_at],
        )
        .await
        .map_err(map_err)?;
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)
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

    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if tx
            .execute(
                "DELETE FROM passkeys WHERE user_id = $1 AND id = $2",
                &[&user_id, &id],
            )
            .await
            .map_err(map_err)?
            != 1
        {
            return Ok(false);
        }
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

fn to_checkpoint(r: &Row) -> StoreResult<StoredCheckpoint> {
    let size: i64 = r.get(0);
    let root: Vec<u8> = r.get(1);
    Ok(StoredCheckpoint {
        size: size as u64,
        root: to_hash(&root)?,
        note: r.get(2),
        created_at: r.get(3),
    })
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit_level(
        &self,
        level: u32,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let c = self.client().await?;
        let rows = if level == 0 {
            c.query(
                "SELECT idx, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                &[&(start as i64), &(limit as i64)],
            )
            .await
        } else {
            c.query(
                "SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                &[&(level as i32), &(start as i64), &(limit as i64)],
            )
            .await
        }
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<StoredEntry>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT idx, entry, leaf_hash FROM audit_entries
                 WHERE ($1::text IS NULL OR entry::jsonb->>'actor' = $1)
                   AND ($2::text IS NULL OR entry::jsonb->>'action' = $2)
                   AND ($3::text IS NULL OR entry::jsonb->>'time' >= $3)
                   AND ($4::text IS NULL OR entry::jsonb->>'time' < $4)
                   AND ($5::bigint IS NULL OR idx < $5)
                   AND ($7::text IS NULL OR entry::jsonb->>'target' = $7)
                 ORDER BY idx DESC LIMIT $6",
            &[
                &f.actor,
                &f.action,
                &f.from,
                &f.to,
                &f.before.map(|b| b as i64),
                &(f.limit as i64),
                &f.target,
            ],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| StoredEntry {
            index: r.get::<_, i64>(0) as u64,
            text: r.get(1),
            leaf_hash: r.get(2),
        })
        .collect())
    }

    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let last = append_tx(&tx, &records).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(last)
    }

    async fn audit_head(&self) -> StoreResult<Frontier> {
        let c = self.client().await?;
        let row = c
            .query_one("SELECT frontier FROM audit_head WHERE id = 1", &[])
            .await
            .map_err(map_err)?;
        let bytes: Vec<u8> = row.get(0);
        parse_frontier(&bytes)
    }

    async fn audit_entries(&self, start: u64, limit: u64) -> StoreResult<Vec<StoredEntry>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT idx, entry, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            &[&(start as i64), &(limit as i64)],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| StoredEntry {
            index: r.get::<_, i64>(0) as u64,
            text: r.get(1),
            leaf_hash: r.get(2),
        })
        .collect())
    }

    async fn audit_subtrees(&self, subtrees: &[Subtree]) -> StoreResult<Vec<Hash>> {
        // One round trip for the whole proof: the wanted (level, index) pairs are unnested and
        // joined to the leaves and the nodes, and answered in the order asked.
        let c = self.client().await?;
        let levels: Vec<i32> = subtrees.iter().map(|s| s.level as i32).collect();
        let indexes: Vec<i64> = subtrees.iter().map(|s| s.index as i64).collect();
        let st = c
            .prepare_cached(
                "SELECT w.ord, COALESCE(e.leaf_hash, n.hash)
                 FROM unnest($1::int[], $2::bigint[]) WITH ORDINALITY AS w(level, idx, ord)
                 LEFT JOIN audit_entries e ON w.level = 0 AND e.idx = w.idx
                 LEFT JOIN audit_nodes n ON w.level > 0 AND n.level = w.level AND n.idx = w.idx
                 ORDER BY w.ord",
            )
            .await
            .map_err(map_err)?;
        let rows = c.query(&st, &[&levels, &indexes]).await.map_err(map_err)?;
        if rows.len() != subtrees.len() {
            return Err(StoreError::Backend(
                "a subtree of the audit log is missing".into(),
            ));
        }
        rows.iter()
            .map(|r| {
                let bytes: Option<Vec<u8>> = r.get(1);
                bytes
                    .ok_or_else(|| {
                        StoreError::Backend("a subtree of the audit log is missing".into())
                    })
                    .and_then(|b| to_hash(&b))
            })
            .collect()
    }

    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING",
                &[&(cp.size as i64), &&cp.root[..], &cp.note, &cp.created_at],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        let c = self.client().await?;
        c.query_opt(
            "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_checkpoint)
        .transpose()
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        let c = self.client().await?;
        c.query(
            "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size",
            &[],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(to_checkpoint)
        .collect()
    }
}

fn to_alert(r: &Row) -> AlertRow {
    AlertRow {
        seq: r.get(0),
        id: r.get(1),
        rule: r.get(2),
        entry_index: r.get::<_, i64>(3) as u64,
        severity: r.get(4),
        status: r.get(5),
        raised_at: r.get(6),
        subject: r.get(7),
        summary: r.get(8),
        acknowledged_by: r.get(9),
        acknowledged_at: r.get(10),
        acknowledge_comment: r.get(11),
        resolved_by: r.get(12),
        resolved_at: r.get(13),
        resolve_comment: r.get(14),
    }
}

#[async_trait]
impl AlertStore for PostgresStore {
    async fn insert_alert(&self, a: &NewAlert) -> StoreResult<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO alerts (id, rule, entry_index, severity, status, raised_at, subject, summary)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) ON CONFLICT (rule, entry_index) DO NOTHING",
                &[&a.id, &a.rule, &(a.entry_index as i64), &a.severity, &a.raised_at, &a.subject, &a.summary],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn alerts(&self, status: Option<&str>, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let c = self.client().await?;
        Ok(c
            .query(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1::text IS NULL OR status = $1) ORDER BY seq DESC LIMIT $2"),
                &[&status, &(limit as i64)],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(to_alert)
            .collect())
    }

    async fn alerts_after(&self, seq: i64, limit: u64) -> StoreResult<Vec<AlertRow>> {
        let c = self.client().await?;
        Ok(c.query(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&seq, &(limit as i64)],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(to_alert)
        .collect())
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRow>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(map_err)?
        .as_ref()
        .map(to_alert))
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
        let Some(statement) = crate::sql::transition_alert(to) else {
            return Ok(false);
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(&statement, &[&to, &by, &at, &comment, &id])
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Ok(false);
        }
        append_tx(&tx, &[audit]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
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
