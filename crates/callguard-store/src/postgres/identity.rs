//! Staff accounts on PostgreSQL: creation and first-time setup, sign-in facts, failed attempts
//! and lockout, spent second factors, recovery codes, roles, status and dormancy. Sessions,
//! challenges and passkeys are in `sessions`.

use super::sessions::{insert_challenge, insert_session, to_challenge, to_passkey};
use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::log::lockout_record;
use crate::sql::{self, CREDENTIAL_COLUMNS, USER_COLUMNS};
use crate::*;
use callguard_core::audit::record::user as user_ref;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

fn to_user(r: &Row) -> StoreResult<User> {
    to_user_at(r, 0)
}

/// The account in `USER_COLUMNS` order from column `at` on.
pub(super) fn to_user_at(r: &Row, at: usize) -> StoreResult<User> {
    let role: String = r.get(at + 2);
    let status: String = r.get(at + 3);
    Ok(User {
        id: r.get(at),
        username: r.get(at + 1),
        role: parse_role(&role)?,
        status: parse_status(&status)?,
        failed_sign_ins: r.get(at + 4),
        locked_until: r.get(at + 5),
        created_at: r.get(at + 6),
        activated_at: r.get(at + 7),
        last_sign_in_at: r.get(at + 8),
    })
}

fn to_provenance(r: &Row) -> Provenance {
    Provenance {
        user_id: r.get(0),
        created_by: r.get(1),
        role_granted_at: r.get(2),
        confirmed_by: r.get(3),
        confirmed_at: r.get(4),
    }
}

/// Who created a new account and, when the creator vouches for the person, its confirmation.
async fn set_provenance(
    tx: &Transaction<'_>,
    id: &str,
    created_by: &str,
    confirmed_by: Option<&str>,
    at: UnixTime,
) -> StoreResult<u64> {
    tx.execute(
        sql::SET_PROVENANCE.postgres(),
        &[&created_by, &confirmed_by, &confirmed_by.map(|_| at), &id],
    )
    .await
    .map_err(map_err)
}

/// `CREDENTIAL_COLUMNS` from column `at` on.
fn credentials_at(r: &Row, at: usize) -> Credentials {
    Credentials {
        password_hash: r.get(at),
        totp_sealed: r.get(at + 1),
        totp_last_step: r.get(at + 2),
        totp_fail_step: r.get(at + 3),
        totp_fail_count: r.get(at + 4),
    }
}

/// Spends a second factor inside `tx`; false when it was already spent.
async fn spend_factor(
    tx: &Transaction<'_>,
    user_id: &str,
    factor: &SpentFactor,
    now: UnixTime,
) -> StoreResult<bool> {
    let n = match factor {
        SpentFactor::TotpStep(step) => {
            tx.execute(sql::SPEND_TOTP_STEP.postgres(), &[step, &user_id])
                .await
        }
        SpentFactor::RecoveryCode(hash) => {
            tx.execute(sql::SPEND_RECOVERY_CODE.postgres(), &[&now, &user_id, hash])
                .await
        }
        SpentFactor::Passkey {
            credential_id,
            passkey,
        } => {
            tx.execute(
                sql::SPEND_PASSKEY.postgres(),
                &[passkey, &now, &user_id, credential_id],
            )
            .await
        }
    }
    .map_err(map_err)?;
    Ok(n == 1)
}

async fn insert_codes(tx: &Transaction<'_>, user_id: &str, hashes: &[String]) -> StoreResult<()> {
    tx.execute(sql::DELETE_RECOVERY_CODES_OF.postgres(), &[&user_id])
        .await
        .map_err(map_err)?;
    for h in hashes {
        tx.execute(sql::INSERT_RECOVERY_CODE.postgres(), &[&user_id, h])
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

/// Rows a statement touched in `tx`, as a store result.
async fn execute(
    tx: &Transaction<'_>,
    statement: &'static str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<u64> {
    // One of the store's constant statements (hence `'static`: the connection's cache of
    // prepared statements stays bounded), prepared once per connection: no parse round trip
    // after the first run.
    let st = tx.prepare_cached(statement).await.map_err(map_err)?;
    tx.execute(&st, params).await.map_err(map_err)
}

/// Takes one attempt against account `id` inside `tx` (see [`UserStore::admit_attempt`]). A
/// refusal after the account was counted (the TOTP step) must be rolled back by the caller.
async fn admit(tx: &Transaction<'_>, id: &str, rule: &AttemptRule) -> StoreResult<Admission> {
    let taken = tx
        .query_opt(
            sql::ADMIT_ATTEMPT.postgres(),
            &[&rule.now, &rule.lockout_max, &rule.lock_until, &id],
        )
        .await
        .map_err(map_err)?;
    let Some(r) = taken else {
        let status: Option<String> = tx
            .query_opt(sql::ADMISSION_STATE.postgres(), &[&id])
            .await
            .map_err(map_err)?
            .map(|r| r.get(0));
        return Ok(match status.as_deref() {
            Some("active" | "disabled") => Admission::Locked,
            _ => Admission::Unavailable,
        });
    };
    if let Some((step, max)) = rule.totp {
        if execute(tx, sql::ADMIT_TOTP_CODE.postgres(), &[&step, &max, &id]).await? == 0 {
            return Ok(Admission::TotpLocked);
        }
    }
    Ok(Admission::Admitted(AttemptTicket {
        user_id: id.to_owned(),
        epoch: r.get(0),
        failures: r.get(1),
        locked_it: r.get::<_, Option<i64>>(2).is_some(),
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
impl UserStore for PostgresStore {
    async fn create_pending_user(
        &self,
        u: NewPendingUser,
        audit: AuditRecord,
    ) -> StoreResult<User> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one_recorded(
                        sql::INSERT_PENDING_USER.postgres(),
                        &[
                            &u.id,
                            &u.username,
                            &u.role.as_str(),
                            &u.setup_token_hash,
                            &u.setup_expires_at,
                            &u.created_at,
                            &u.created_by,
                            &u.confirmed_by,
                            &u.confirmed_by.as_ref().map(|_| u.created_at),
                        ],
                        &[audit],
                    )
                    .await?;
                Ok(Guarded::recorded(row))
            })
        })
        .await
        .and_then(|row| to_user(&row))
    }

    async fn create_active_user(&self, u: NewActiveUser, audit: AuditRecord) -> StoreResult<User> {
        self.guarded(move |tx| {
            Box::pin(async move {
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
                set_provenance(&tx, &u.id, &u.created_by, u.confirmed_by.as_deref(), u.created_at)
                    .await?;
                Ok(Guarded::keep(row, audit))
            })
        })
        .await
        .and_then(|row| to_user(&row))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(sql::USER_BY_ID.postgres())
            .await
            .map_err(map_err)?;
        c.query_opt(&st, &[&id])
            .await
            .map_err(map_err)?
            .as_ref()
            .map(to_user)
            .transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        c.query_opt(sql::USER_BY_USERNAME.postgres(), &[&username])
            .await
            .map_err(map_err)?
            .as_ref()
            .map(to_user)
            .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let c = self.client().await?;
        c.query(sql::LIST_USERS.postgres(), &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(to_user)
            .collect()
    }

    async fn credentials(&self, user_id: &str) -> StoreResult<Option<Credentials>> {
        let c = self.client().await?;
        Ok(c.query_opt(sql::CREDENTIALS.postgres(), &[&user_id])
            .await
            .map_err(map_err)?
            .map(|r| credentials_at(&r, 0)))
    }

    async fn sign_in_facts(&self, username: &str) -> StoreResult<Option<SignInFacts>> {
        let c = self.client().await?;
        let Some(row) = c
            .query_opt(
                &format!(
                    "SELECT {USER_COLUMNS}, {CREDENTIAL_COLUMNS},
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
        let credentials = credentials_at(&row, 9);
        let unused_recovery_codes: i64 = row.get(14);
        let passkeys = c
            .query(sql::PASSKEYS_OF.postgres(), &[&user.id])
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

    async fn admit_attempt(
        &self,
        user_id: Option<&str>,
        rule: &AttemptRule,
    ) -> StoreResult<Admission> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let admission = admit(&tx, user_id.unwrap_or_default(), rule).await?;
                if let Admission::Locked | Admission::Unavailable = admission {
                    execute(&tx, sql::STAND_IN_ATTEMPT.postgres(), &[]).await?;
                    return Ok(Guarded::Keep(admission, Vec::new()));
                }
                Ok(admitted(Some(&admission), admission.clone()))
            })
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
        self.guarded(move |tx| {
            Box::pin(async move {
                let Some(ch) = tx
                    .query_opt(
                        sql::TAKE_CHALLENGE_ANSWER.postgres(),
                        &[&token_hash, &kind, &now, &max_answers],
                    )
                    .await
                    .map_err(map_err)?
                else {
                    return Ok(Guarded::Undo(None));
                };
                let challenge = to_challenge(&ch);
                let Some(r) = tx
                    .query_opt(
                        &format!(
                            "SELECT {USER_COLUMNS}, {CREDENTIAL_COLUMNS} FROM users WHERE id = $1"
                        ),
                        &[&challenge.user_id],
                    )
                    .await
                    .map_err(map_err)?
                else {
                    return Ok(Guarded::Undo(None));
                };
                let user = to_user(&r)?;
                let credentials = credentials_at(&r, 9);
                let admission = match rule {
                    Some(rule) => Some(admit(&tx, &challenge.user_id, rule).await?),
                    None => None,
                };
                let keep = admitted(admission.as_ref(), ());
                let found = Some(TakenChallenge {
                    challenge,
                    user,
                    credentials,
                    admission,
                });
                Ok(match keep {
                    Guarded::Keep(..) => Guarded::Keep(found, Vec::new()),
                    Guarded::Recorded(()) => Guarded::Recorded(found),
                    Guarded::Undo(()) => Guarded::Undo(found),
                })
            })
        })
        .await
    }

    async fn accept_password(
        &self,
        ticket: &AttemptTicket,
        challenge: &Challenge,
    ) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                execute(
                    &tx,
                    sql::REFUND_ATTEMPT.postgres(),
                    &[&ticket.user_id, &ticket.epoch, &ticket.locked_it],
                )
                .await?;
                insert_challenge(&*tx, challenge).await?;
                Ok(Guarded::Keep((), Vec::new()))
            })
        })
        .await
    }

    async fn user_by_setup_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        c.query_opt(sql::USER_BY_SETUP_TOKEN.postgres(), &[&token_hash, &now])
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
        self.guarded(move |tx| {
            Box::pin(async move {
                if execute(&tx, sql::DELETE_CHALLENGE.postgres(), &[&challenge_hash]).await? != 1 {
                    return Ok(Guarded::Undo(false));
                }
                let n = execute(
                    &tx,
                    sql::ACTIVATE_USER.postgres(),
                    &[
                        &s.password_hash,
                        &s.totp_sealed,
                        &s.totp_step,
                        &s.now,
                        &s.user_id,
                        &s.setup_token_hash,
                    ],
                )
                .await?;
                if n != 1 {
                    return Ok(Guarded::Undo(false));
                }
                insert_codes(&tx, &s.user_id, &s.recovery_code_hashes).await?;
                insert_session(&tx, session, session_token_hash).await?;
                Ok(Guarded::keep(true, audit))
            })
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
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = execute(
                    &tx,
                    sql::RESET_SETUP.postgres(),
                    &[&token_hash, &expires_at, &user_id],
                )
                .await?;
                if n != 1 {
                    return Ok(Guarded::Undo(false));
                }
                for wipe in sql::WIPED_ON_RESET {
                    execute(&tx, wipe.postgres(), &[&user_id]).await?;
                }
                Ok(Guarded::keep(true, audit))
            })
        })
        .await
    }

    async fn fail_attempt(
        &self,
        a: FailedAttempt,
        audit: AuditRecord,
    ) -> StoreResult<RecordedFailure> {
        self.guarded(move |tx| {
            Box::pin(async move {
                if let Some(ch) = &a.challenge_hash {
                    execute(
                        &tx,
                        sql::DELETE_SPENT_CHALLENGE.postgres(),
                        &[ch, &a.challenge_max],
                    )
                    .await?;
                }
                let source = audit.source.clone();
                let mut records = vec![audit];
                let Some(t) = &a.ticket else {
                    return Ok(Guarded::Keep(RecordedFailure::default(), records));
                };
                let locked = t.locked_it
                    && tx
                        .query_opt(
                            sql::LOCKED_IN_RUN.postgres(),
                            &[&t.user_id, &t.epoch, &a.now],
                        )
                        .await
                        .map_err(map_err)?
                        .is_some();
                if !locked {
                    return Ok(Guarded::Keep(RecordedFailure::default(), records));
                }
                let user = tx
                    .query_opt(sql::USER_BY_ID.postgres(), &[&t.user_id])
                    .await
                    .map_err(map_err)?
                    .as_ref()
                    .map(to_user)
                    .transpose()?;
                if let Some(u) = &user {
                    let until = u.locked_until.unwrap_or(a.now);
                    records.push(lockout_record(
                        &t.user_id,
                        u.failed_sign_ins,
                        until,
                        source.as_deref(),
                    ));
                }
                Ok(Guarded::Keep(RecordedFailure { user, locked }, records))
            })
        })
        .await
    }

    async fn complete_sign_in(&self, s: CompletedSignIn, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let (t, now) = (&s.ticket, s.session.created_at);
                if execute(&tx, sql::DELETE_CHALLENGE.postgres(), &[&s.challenge_hash]).await? != 1
                {
                    return Ok(Guarded::Undo(false));
                }
                let still = execute(
                    &tx,
                    sql::SIGNED_IN.postgres(),
                    &[&now, &t.user_id, &t.epoch, &t.totp_step],
                )
                .await?;
                if still != 1 || !spend_factor(&tx, &t.user_id, &s.factor, now).await? {
                    return Ok(Guarded::Undo(false));
                }
                execute(&tx, sql::TOUCH_LAST_SIGN_IN.postgres(), &[&now, &t.user_id]).await?;
                insert_session(&tx, &s.session, &s.token_hash).await?;
                Ok(Guarded::keep(true, audit))
            })
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
        self.guarded(move |tx| {
            Box::pin(async move {
                let t = ticket;
                let still = execute(
                    &tx,
                    sql::SIGNED_IN.postgres(),
                    &[&now, &t.user_id, &t.epoch, &t.totp_step],
                )
                .await?;
                if still != 1 || !spend_factor(&tx, &t.user_id, &factor, now).await? {
                    return Ok(Guarded::Undo(false));
                }
                execute(
                    &tx,
                    sql::MARK_REAUTHENTICATED.postgres(),
                    &[&now, &session_id],
                )
                .await?;
                Ok(Guarded::keep(true, audit))
            })
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        audit: AuditRecord,
    ) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                insert_codes(&tx, user_id, code_hashes).await?;
                Ok(Guarded::keep((), audit))
            })
        })
        .await
    }

    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(sql::UNUSED_RECOVERY_CODES.postgres(), &[&user_id])
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn unlock(&self, user_id: &str, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(sql::UNLOCK.postgres(), &[&user_id], &[audit])
                    .await?;
                Ok(Guarded::changed_recorded(n == 1))
            })
        })
        .await
    }

    async fn set_role(&self, user_id: &str, role: Role, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                if execute(&tx, sql::SET_ROLE.postgres(), &[&role.as_str(), &user_id]).await? != 1 {
                    return Ok(Guarded::Undo(false));
                }
                execute(&tx, sql::DELETE_SESSIONS_OF.postgres(), &[&user_id]).await?;
                execute(&tx, sql::DELETE_SIP_CREDENTIALS_OF.postgres(), &[&user_id]).await?;
                execute(
                    &tx,
                    sql::ROLE_GRANTED.postgres(),
                    &[&callguard_core::now(), &user_id],
                )
                .await?;
                Ok(Guarded::keep(true, audit))
            })
        })
        .await
    }

    async fn provenance(&self, user_id: &str) -> StoreResult<Option<Provenance>> {
        let c = self.client().await?;
        Ok(c.query_opt(sql::PROVENANCE.postgres(), &[&user_id])
            .await
            .map_err(map_err)?
            .as_ref()
            .map(to_provenance))
    }

    async fn provenances(&self) -> StoreResult<Vec<Provenance>> {
        let c = self.client().await?;
        Ok(c.query(sql::PROVENANCES.postgres(), &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(to_provenance)
            .collect())
    }

    async fn confirm_officer(
        &self,
        user_id: &str,
        by: &str,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(
                        sql::CONFIRM_OFFICER.postgres(),
                        &[&by, &now, &user_id],
                        &[audit],
                    )
                    .await?;
                Ok(Guarded::changed_recorded(n == 1))
            })
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
        self.guarded(move |tx| {
            Box::pin(async move {
                // Enabling an account restarts its dormancy clock.
                let n = execute(
                    &tx,
                    "UPDATE users SET status = $1::text,
                        last_sign_in_at = CASE WHEN $1::text = 'active' THEN $2 ELSE last_sign_in_at END
                     WHERE id = $3 AND status <> 'pending'",
                    &[&status.as_str(), &now, &user_id],
                )
                .await?;
                if n != 1 {
                    return Ok(Guarded::Undo(false));
                }
                if status == UserStatus::Disabled {
                    execute(&tx, sql::DELETE_SESSIONS_OF.postgres(), &[&user_id]).await?;
                    execute(&tx, sql::DELETE_SIP_CREDENTIALS_OF.postgres(), &[&user_id]).await?;
                }
                Ok(Guarded::keep(true, audit))
            })
        })
        .await
    }

    async fn disable_dormant(
        &self,
        cutoff: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<Vec<String>> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let ids: Vec<String> = tx
                    .query(sql::DISABLE_DORMANT.postgres(), &[&cutoff])
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if ids.is_empty() {
                    return Ok(Guarded::Undo(ids));
                }
                for id in &ids {
                    execute(&tx, sql::DELETE_SESSIONS_OF.postgres(), &[id]).await?;
                    execute(&tx, sql::DELETE_SIP_CREDENTIALS_OF.postgres(), &[id]).await?;
                }
                let records: Vec<AuditRecord> = ids
                    .iter()
                    .map(|id| audit.clone().target(user_ref(id)))
                    .collect();
                Ok(Guarded::Keep(ids, records))
            })
        })
        .await
    }
}
