//! Staff accounts on SQLite: creation and first-time setup, sign-in facts, failed attempts and
//! lockout, spent second factors, recovery codes, roles, status and dormancy. Sessions,
//! challenges and passkeys are in `sessions`.

use super::sessions::{challenge_row, insert_challenge, insert_session, passkey_row};
use super::{backend, SqliteStore};
use crate::guarded::Guarded;
use crate::log::lockout_record;
use crate::sql::{self, CREDENTIAL_COLUMNS, USER_COLUMNS};
use crate::*;
use callguard_core::audit::record::user as user_ref;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) type UserTuple = (
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
pub(super) fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<UserTuple> {
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

pub(super) fn to_user(t: UserTuple) -> StoreResult<User> {
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

/// Takes one attempt against account `id` inside `tx` (see [`UserStore::admit_attempt`]). A
/// refusal after the account was counted (the TOTP step) must be rolled back by the caller.
fn admit(tx: &Connection, id: &str, rule: &AttemptRule) -> rusqlite::Result<Admission> {
    let taken = tx
        .prepare_cached(sql::ADMIT_ATTEMPT.sqlite())?
        .query_row(
            params![rule.now, rule.lockout_max, rule.lock_until, id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((epoch, failures, locked_until)) = taken else {
        let status: Option<String> = tx
            .query_row(sql::ADMISSION_STATE.sqlite(), [id], |r| r.get(0))
            .optional()?;
        return Ok(match status.as_deref() {
            Some("active" | "disabled") => Admission::Locked,
            _ => Admission::Unavailable,
        });
    };
    if let Some((step, max)) = rule.totp {
        if tx.execute(sql::ADMIT_TOTP_CODE.sqlite(), params![step, max, id])? == 0 {
            return Ok(Admission::TotpLocked);
        }
    }
    Ok(Admission::Admitted(AttemptTicket {
        user_id: id.to_owned(),
        epoch,
        failures,
        locked_it: locked_until.is_some(),
        totp_step: rule.totp.map(|(step, _)| step),
    }))
}

/// Keep an admitted attempt, undo a refused one (nothing of it may stay counted).
fn admitted<R>(admission: Option<&Admission>, value: R) -> Guarded<R> {
    match admission {
        None | Some(Admission::Admitted(_)) => Guarded::Keep(value, Vec::new()),
        Some(_) => Guarded::Undo(value),
    }
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
                            u.created_at,
                            u.created_by,
                            u.confirmed_by,
                            u.confirmed_by.as_ref().map(|_| u.created_at),
                        ],
                        user_row,
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

    async fn admit_attempt(
        &self,
        user_id: Option<&str>,
        rule: &AttemptRule,
    ) -> StoreResult<Admission> {
        let (id, rule) = (user_id.unwrap_or_default().to_owned(), *rule);
        self.guarded(move |tx| {
            let admission = admit(tx, &id, &rule)?;
            if let Admission::Locked | Admission::Unavailable = admission {
                tx.execute(sql::STAND_IN_ATTEMPT.sqlite(), [])?;
                return Ok(Guarded::Keep(admission, Vec::new()));
            }
            Ok(admitted(Some(&admission), admission.clone()))
        })
        .await
    }

    async fn take_challenge(
        &self,
        token_hash: &str,
        kind: &str,
        max_answers: i64,
        rule: Option<&AttemptRule>,
        now: UnixTime,
    ) -> StoreResult<Option<TakenChallenge>> {
        let (h, k, rule) = (token_hash.to_owned(), kind.to_owned(), rule.copied());
        let found = self
            .guarded(move |tx| {
                let Some(ch) = tx
                    .prepare_cached(sql::TAKE_CHALLENGE_ANSWER.sqlite())?
                    .query_row(params![h, k, now, max_answers], challenge_row)
                    .optional()?
                else {
                    return Ok(Guarded::Undo(None));
                };
                let Some((user, creds)) = tx
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS}, {CREDENTIAL_COLUMNS} FROM users WHERE id = ?1"
                    ))?
                    .query_row([&ch.user_id], |r| Ok((user_row(r)?, credentials_at(r, 9)?)))
                    .optional()?
                else {
                    return Ok(Guarded::Undo(None));
                };
                let admission = match &rule {
                    Some(rule) => Some(admit(tx, &ch.user_id, rule)?),
                    None => None,
                };
                let keep = admitted(admission.as_ref(), ());
                let found = Some((ch, user, creds, admission));
                Ok(match keep {
                    Guarded::Keep(..) => Guarded::Keep(found, Vec::new()),
                    Guarded::Recorded(()) => Guarded::Recorded(found),
                    Guarded::Undo(()) => Guarded::Undo(found),
                })
            })
            .await?;
        found
            .map(|(challenge, u, credentials, admission)| {
                Ok(TakenChallenge {
                    challenge,
                    user: to_user(u)?,
                    credentials,
                    admission,
                })
            })
            .transpose()
    }

    async fn accept_password(
        &self,
        ticket: &AttemptTicket,
        challenge: &Challenge,
    ) -> StoreResult<()> {
        let (t, ch) = (ticket.clone(), challenge.clone());
        self.guarded(move |tx| {
            tx.execute(
                sql::REFUND_ATTEMPT.sqlite(),
                params![t.user_id, t.epoch, t.locked_it],
            )?;
            insert_challenge(tx, &ch)?;
            Ok(Guarded::Keep((), Vec::new()))
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
    ) -> StoreResult<RecordedFailure> {
        let (row, locked) = self
            .guarded(move |tx| {
                if let Some(ch) = &a.challenge_hash {
                    tx.execute(
                        sql::DELETE_SPENT_CHALLENGE.sqlite(),
                        params![ch, a.challenge_max],
                    )?;
                }
                let source = audit.source.clone();
                let mut records = vec![audit];
                let Some(t) = &a.ticket else {
                    return Ok(Guarded::Keep((None, false), records));
                };
                let locked = t.locked_it
                    && tx
                        .query_row(
                            sql::LOCKED_IN_RUN.sqlite(),
                            params![t.user_id, t.epoch, a.now],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                if !locked {
                    return Ok(Guarded::Keep((None, false), records));
                }
                let row = tx
                    .prepare_cached(sql::USER_BY_ID.sqlite())?
                    .query_row([&t.user_id], user_row)
                    .optional()?;
                if let Some(r) = &row {
                    let until = r.5.unwrap_or(a.now);
                    records.push(lockout_record(&t.user_id, r.4, until, source.as_deref()));
                }
                Ok(Guarded::Keep((row, locked), records))
            })
            .await?;
        Ok(RecordedFailure {
            user: row.map(to_user).transpose()?,
            locked,
        })
    }

    async fn complete_sign_in(&self, s: CompletedSignIn, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            let (t, now) = (&s.ticket, s.session.created_at);
            if tx.execute(sql::DELETE_CHALLENGE.sqlite(), [&s.challenge_hash])? != 1 {
                return Ok(Guarded::Undo(false));
            }
            let still = tx.execute(
                sql::SIGNED_IN.sqlite(),
                params![now, t.user_id, t.epoch, t.totp_step],
            )?;
            if still != 1 || !spend_factor(tx, &t.user_id, &s.factor, now)? {
                return Ok(Guarded::Undo(false));
            }
            tx.execute(sql::TOUCH_LAST_SIGN_IN.sqlite(), params![now, t.user_id])?;
            insert_session(tx, &s.session, &s.token_hash)?;
            Ok(Guarded::keep(true, audit))
        })
        .await
    }

    async fn complete_reauthentication(
        &self,
        session_id: &str,
        ticket: &AttemptTicket,
        factor: SpentFactor,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        let (sid, t) = (session_id.to_owned(), ticket.clone());
        self.guarded(move |tx| {
            let still = tx.execute(
                sql::SIGNED_IN.sqlite(),
                params![now, t.user_id, t.epoch, t.totp_step],
            )?;
            if still != 1 || !spend_factor(tx, &t.user_id, &factor, now)? {
                return Ok(Guarded::Undo(false));
            }
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
            tx.execute(sql::DELETE_SIP_CREDENTIALS_OF.sqlite(), [&id])?;
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
                tx.execute(sql::DELETE_SIP_CREDENTIALS_OF.sqlite(), [&id])?;
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
                tx.execute(sql::DELETE_SIP_CREDENTIALS_OF.sqlite(), [id])?;
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
