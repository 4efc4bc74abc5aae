//! Staff accounts on SQLite: creation and first-time setup, sign-in facts, failed attempts and
//! lockout, spent second factors, recovery codes, roles, status and dormancy. Sessions,
//! challenges and passkeys are in `sessions`.

use super::sessions::{insert_session, passkey_row};
use super::{backend, SqliteStore};
use crate::guarded::Guarded;
use crate::log::lockout_record;
use crate::sql::{self, CREDENTIAL_COLUMNS, USER_COLUMNS};
use crate::*;
use callguard_core::audit::record::user as user_ref;
use rusqlite::{params, Connection, OptionalExtension, Row};

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

/// A user row as read (`USER_COLUMNS` from column `at` on), parsed later by [`to_user`]: role
/// and status parse errors are domain errors, not rusqlite ones.
fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<UserTuple> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
        r.get(at + 8)?,
    ))
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserTuple> {
    user_at(r, 0)
}

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

fn provenance_row(r: &Row<'_>) -> rusqlite::Result<Provenance> {
    Ok(Provenance {
        user_id: r.get(0)?,
        created_by: r.get(1)?,
        role_granted_at: r.get(2)?,
        confirmed_by: r.get(3)?,
        confirmed_at: r.get(4)?,
    })
}

/// Who created a new account and, when the creator vouches for the person, its confirmation.
fn set_provenance(
    tx: &Connection,
    id: &str,
    created_by: &str,
    confirmed_by: Option<&str>,
    at: UnixTime,
) -> rusqlite::Result<usize> {
    tx.execute(
        sql::SET_PROVENANCE.sqlite(),
        params![created_by, confirmed_by, confirmed_by.map(|_| at), id],
    )
}

/// `CREDENTIAL_COLUMNS` from column `at` on.
fn credentials_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Credentials> {
    Ok(Credentials {
        password_hash: r.get(at)?,
        totp_sealed: r.get(at + 1)?,
        totp_last_step: r.get(at + 2)?,
        totp_fail_step: r.get(at + 3)?,
        totp_fail_count: r.get(at + 4)?,
    })
}

/// Spends a second factor inside `tx`; false when it was already spent.
fn spend_factor(
    tx: &Connection,
    user_id: &str,
    factor: &SpentFactor,
    now: UnixTime,
) -> rusqlite::Result<bool> {
    let n = match factor {
        SpentFactor::TotpStep(step) => {
            tx.execute(sql::SPEND_TOTP_STEP.sqlite(), params![step, user_id])?
        }
        SpentFactor::RecoveryCode(hash) => tx.execute(
            sql::SPEND_RECOVERY_CODE.sqlite(),
            params![now, user_id, hash],
        )?,
        SpentFactor::Passkey {
            credential_id,
            passkey,
        } => tx.execute(
            sql::SPEND_PASSKEY.sqlite(),
            params![passkey, now, user_id, credential_id],
        )?,
    };
    Ok(n == 1)
}

fn insert_codes(tx: &Connection, user_id: &str, hashes: &[String]) -> rusqlite::Result<()> {
    tx.execute(sql::DELETE_RECOVERY_CODES_OF.sqlite(), [user_id])?;
    let mut st = tx.prepare_cached(sql::INSERT_RECOVERY_CODE.sqlite())?;
    for h in hashes {
        st.execute(params![user_id, h])?;
    }
    Ok(())
}

/// Counts a wrong answer to a challenge; deletes the challenge at its limit.
fn count_challenge_attempt(tx: &Connection, hash: &str, max: i64) -> rusqlite::Result<()> {
    let attempts: Option<i64> = tx
        .query_row(sql::COUNT_CHALLENGE_ATTEMPT.sqlite(), [hash], |r| r.get(0))
        .optional()?;
    if attempts.is_some_and(|n| n >= max) {
        tx.execute(sql::DELETE_CHALLENGE.sqlite(), [hash])?;
    }
    Ok(())
}

/// Counts a failed attempt against account `id`; returns the account after it, and the
/// `auth.account_locked` entry when this failure locked it.
fn count_failure(
    tx: &Connection,
    id: &str,
    a: &FailedAttempt,
    source: Option<&str>,
) -> rusqlite::Result<(Option<UserTuple>, Option<AuditRecord>)> {
    if let Some(step) = a.totp_step {
        tx.execute(sql::COUNT_TOTP_FAILURE.sqlite(), params![step, id])?;
    }
    let before: Option<Option<i64>> = tx
        .query_row("SELECT locked_until FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let row = tx
        .query_row(
            sql::COUNT_SIGN_IN_FAILURE.sqlite(),
            params![a.now, a.lockout_max, a.lock_until, id],
            user_row,
        )
        .optional()?;
    let locked = row.as_ref().and_then(|r| {
        let was_locked = before.flatten().is_some_and(|t| t > a.now);
        let now_locked = r.5.is_some_and(|t| t > a.now);
        (now_locked && !was_locked).then(|| lockout_record(id, r.4, a.lock_until, source))
    });
    Ok((row, locked))
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_pending_user(
        &self,
        u: NewPendingUser,
        audit: AuditRecord,
    ) -> StoreResult<User> {
        // RETURNING gives the row as stored (as on PostgreSQL), without a second read.
        let row = self
            .guarded(move |tx| {
                let row = tx
                    .prepare_cached(sql::INSERT_PENDING_USER.sqlite())?
                    .query_row(
                        params![
                            u.id,
                            u.username,
                            u.role.as_str(),
                            u.setup_token_hash,
                            u.setup_expires_at,
                            u.created_at
                        ],
                        user_row,
                    )?;
                set_provenance(
                    tx,
                    &u.id,
                    &u.created_by,
                    u.confirmed_by.as_deref(),
                    u.created_at,
                )?;
                Ok(Guarded::keep(row, audit))
            })
            .await?;
        to_user(row)
    }

    async fn create_active_user(&self, u: NewActiveUser, audit: AuditRecord) -> StoreResult<User> {
        let id = u.id.clone();
        self.guarded(move |tx| {
            tx.execute(
                "INSERT INTO users (id, username, role, status, password_hash, totp_sealed, created_at, activated_at)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6)",
                params![u.id, u.username, u.role.as_str(), u.password_hash, u.totp_sealed, u.created_at],
            )?;
            insert_codes(tx, &u.id, &u.recovery_code_hashes)?;
            set_provenance(tx, &u.id, &u.created_by, u.confirmed_by.as_deref(), u.created_at)?;
            Ok(Guarded::keep((), audit))
        })
        .await?;
        self.user_by_id(&id)
            .await?
            .ok_or_else(|| backend("created user vanished"))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached(sql::USER_BY_ID.sqlite())?
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
            c.query_row(sql::USER_BY_USERNAME.sqlite(), [name], user_row)
                .optional()
        })
        .await?
        .map(to_user)
        .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .read(|c| {
                let mut st = c.prepare(sql::LIST_USERS.sqlite())?;
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
            c.query_row(sql::CREDENTIALS.sqlite(), [id], |r| credentials_at(r, 0))
                .optional()
        })
        .await
    }

    async fn sign_in_facts(&self, username: &str) -> StoreResult<Option<SignInFacts>> {
        let name = username.to_owned();
        let found = self
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, {CREDENTIAL_COLUMNS} FROM users WHERE username = ?1"
                ))?;
                let Some((user, creds)) = st
                    .query_row([&name], |r| Ok((user_row(r)?, credentials_at(r, 9)?)))
                    .optional()?
                else {
                    return Ok(None);
                };
                let unused: i64 = c
                    .prepare_cached(sql::UNUSED_RECOVERY_CODES.sqlite())?
                    .query_row([&user.0], |r| r.get(0))?;
                let passkeys = c
                    .prepare_cached(sql::PASSKEYS_OF.sqlite())?
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
                    Ok((ch, user_at(r, 6)?, credentials_at(r, 15)?))
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
            c.query_row(sql::USER_BY_SETUP_TOKEN.sqlite(), params![h, now], user_row)
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
        self.guarded(move |tx| {
            if tx.execute(sql::DELETE_CHALLENGE.sqlite(), [&ch])? != 1 {
                return Ok(Guarded::Undo(false));
            }
            let n = tx.execute(
                sql::ACTIVATE_USER.sqlite(),
                params![
                    s.password_hash,
                    s.totp_sealed,
                    s.totp_step,
                    s.now,
                    s.user_id,
                    s.setup_token_hash
                ],
            )?;
            if n != 1 {
                return Ok(Guarded::Undo(false));
            }
            insert_codes(tx, &s.user_id, &s.recovery_code_hashes)?;
            insert_session(tx, &session, &th)?;
            Ok(Guarded::keep(true, audit))
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
        self.guarded(move |tx| {
            let n = tx.execute(sql::RESET_SETUP.sqlite(), params![h, expires_at, id])?;
            if n != 1 {
                return Ok(Guarded::Undo(false));
            }
            for wipe in sql::WIPED_ON_RESET {
                tx.execute(wipe.sqlite(), [&id])?;
            }
            Ok(Guarded::keep(true, audit))
        })
        .await
    }

    async fn fail_attempt(
        &self,
        a: FailedAttempt,
        audit: AuditRecord,
    ) -> StoreResult<Option<User>> {
        let row = self
            .guarded(move |tx| {
                if let Some(ch) = &a.challenge_hash {
                    count_challenge_attempt(tx, ch, a.challenge_max)?;
                }
                let source = audit.source.clone();
                let mut records = vec![audit];
                let mut after = None;
                if let Some(id) = &a.user_id {
                    let (row, locked) = count_failure(tx, id, &a, source.as_deref())?;
                    records.extend(locked);
                    after = row;
                }
                Ok(Guarded::Keep(after, records))
            })
            .await?;
        row.map(to_user).transpose()
    }

    async fn complete_sign_in(&self, s: CompletedSignIn, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            if tx.execute(sql::DELETE_CHALLENGE.sqlite(), [&s.challenge_hash])? != 1 {
                return Ok(Guarded::Undo(false));
            }
            if !spend_factor(tx, &s.user_id, &s.factor, s.session.created_at)? {
                return Ok(Guarded::Undo(false));
            }
            tx.execute(
                sql::SIGNED_IN.sqlite(),
                params![s.session.created_at, s.user_id],
            )?;
            insert_session(tx, &s.session, &s.token_hash)?;
            Ok(Guarded::keep(true, audit))
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
        self.guarded(move |tx| {
            if !spend_factor(tx, &uid, &factor, now)? {
                return Ok(Guarded::Undo(false));
            }
            tx.execute(sql::CLEAR_FAILURES.sqlite(), [&uid])?;
            tx.execute(sql::MARK_REAUTHENTICATED.sqlite(), params![now, sid])?;
            Ok(Guarded::keep(true, audit))
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
        self.guarded(move |tx| {
            insert_codes(tx, &id, &hashes)?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        let id = user_id.to_owned();
        self.read(move |c| c.query_row(sql::UNUSED_RECOVERY_CODES.sqlite(), [id], |r| r.get(0)))
            .await
    }

    async fn unlock(&self, user_id: &str, audit: AuditRecord) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.guarded(move |tx| {
            let n = tx.execute(sql::UNLOCK.sqlite(), [id])?;
            Ok(Guarded::changed(n == 1, audit))
        })
        .await
    }

    async fn set_role(&self, user_id: &str, role: Role, audit: AuditRecord) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.guarded(move |tx| {
            if tx.execute(sql::SET_ROLE.sqlite(), params![role.as_str(), id])? != 1 {
                return Ok(Guarded::Undo(false));
            }
            tx.execute(sql::DELETE_SESSIONS_OF.sqlite(), [&id])?;
            tx.execute(
                sql::ROLE_GRANTED.sqlite(),
                params![callguard_core::now(), id],
            )?;
            Ok(Guarded::keep(true, audit))
        })
        .await
    }

    async fn provenance(&self, user_id: &str) -> StoreResult<Option<Provenance>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            c.query_row(sql::PROVENANCE.sqlite(), [id], provenance_row)
                .optional()
        })
        .await
    }

    async fn provenances(&self) -> StoreResult<Vec<Provenance>> {
        self.read(|c| {
            let mut st = c.prepare(sql::PROVENANCES.sqlite())?;
            let rows = st
                .query_map([], provenance_row)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .await
    }

    async fn confirm_officer(
        &self,
        user_id: &str,
        by: &str,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (id, by) = (user_id.to_owned(), by.to_owned());
        self.guarded(move |tx| {
            let n = tx.execute(sql::CONFIRM_OFFICER.sqlite(), params![by, now, id])?;
            Ok(Guarded::changed(n == 1, audit))
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
        self.guarded(move |tx| {
            // Enabling an account restarts its dormancy clock.
            let n = tx.execute(
                "UPDATE users SET status = ?1, last_sign_in_at = CASE WHEN ?1 = 'active' THEN ?2 ELSE last_sign_in_at END
                 WHERE id = ?3 AND status <> 'pending'",
                params![status.as_str(), now, id],
            )?;
            if n != 1 {
                return Ok(Guarded::Undo(false));
            }
            if status == UserStatus::Disabled {
                tx.execute(sql::DELETE_SESSIONS_OF.sqlite(), [&id])?;
            }
            Ok(Guarded::keep(true, audit))
        })
        .await
    }

    async fn disable_dormant(
        &self,
        cutoff: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<Vec<String>> {
        self.guarded(move |tx| {
            let ids = tx
                .prepare(sql::DISABLE_DORMANT.sqlite())?
                .query_map([cutoff], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            if ids.is_empty() {
                return Ok(Guarded::Undo(ids));
            }
            for id in &ids {
                tx.execute(sql::DELETE_SESSIONS_OF.sqlite(), [id])?;
            }
            let records: Vec<AuditRecord> = ids
                .iter()
                .map(|id| audit.clone().target(user_ref(id)))
                .collect();
            Ok(Guarded::Keep(ids, records))
        })
        .await
    }
}
