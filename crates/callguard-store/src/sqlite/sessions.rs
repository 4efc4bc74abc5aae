//! Sessions, sign-in challenges and passkeys on SQLite: the short- and long-lived things a
//! signed-in person holds besides the account itself (which lives in `identity`).

use super::SqliteStore;
use crate::guarded::Guarded;
use crate::sql;
use crate::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) fn session_row(r: &Row<'_>) -> rusqlite::Result<Session> {
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

pub(super) fn insert_session(
    tx: &Connection,
    s: &Session,
    token_hash: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        sql::INSERT_SESSION.sqlite(),
        params![
            s.id,
            s.user_id,
            s.created_at,
            s.last_seen_at,
            s.reauth_at,
            s.source,
            s.user_agent,
            token_hash
        ],
    )?;
    Ok(())
}

pub(super) fn passkey_row(r: &Row<'_>) -> rusqlite::Result<PasskeyRecord> {
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

pub(super) fn challenge_row(r: &Row<'_>) -> rusqlite::Result<Challenge> {
    Ok(Challenge {
        token_hash: r.get(0)?,
        kind: r.get(1)?,
        user_id: r.get(2)?,
        payload: r.get(3)?,
        attempts: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

pub(super) fn insert_challenge(c: &Connection, ch: &Challenge) -> rusqlite::Result<()> {
    c.prepare_cached(sql::INSERT_CHALLENGE.sqlite())?
        .execute(params![
            ch.token_hash,
            ch.kind,
            ch.user_id,
            ch.payload,
            ch.attempts,
            ch.expires_at
        ])?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let h = token_hash.to_owned();
        self.point_read(move |c| {
            c.prepare_cached(sql::SESSION_BY_TOKEN.sqlite())?
                .query_row([h], session_row)
                .optional()
        })
        .await
    }

    async fn session_with_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        let h = token_hash.to_owned();
        let found = self
            .point_read(move |c| {
                c.prepare_cached(sql::SESSION_WITH_USER.sqlite())?
                    .query_row([h], |r| {
                        let user = match r.get::<_, Option<String>>(7)? {
                            Some(_) => Some(super::identity::user_at(r, 7)?),
                            None => None,
                        };
                        Ok((session_row(r)?, user))
                    })
                    .optional()
            })
            .await?;
        match found {
            None => Ok(None),
            Some((session, user)) => Ok(Some((
                session,
                user.map(super::identity::to_user).transpose()?,
            ))),
        }
    }

    async fn touch_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute(sql::TOUCH_SESSION.sqlite(), params![now, id])
                .map(|_| ())
        })
        .await
    }

    async fn delete_session(&self, id: &str, audit: AuditRecord) -> StoreResult<bool> {
        let id = id.to_owned();
        self.guarded(move |tx| {
            let n = tx.execute(sql::DELETE_SESSION.sqlite(), [id])?;
            Ok(Guarded::changed(n == 1, audit))
        })
        .await
    }

    async fn expire_session(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| c.execute(sql::DELETE_SESSION.sqlite(), [id]).map(|_| ()))
            .await
    }

    async fn sessions_of(&self, user_id: &str) -> StoreResult<Vec<Session>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare(sql::SESSIONS_OF.sqlite())?;
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
                sql::DELETE_EXPIRED_SESSIONS.sqlite(),
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
        self.write(move |c| insert_challenge(c, &ch)).await
    }

    async fn challenge(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<Challenge>> {
        let (h, k) = (token_hash.to_owned(), kind.to_owned());
        self.read(move |c| {
            c.query_row(sql::CHALLENGE.sqlite(), params![h, k, now], challenge_row)
                .optional()
        })
        .await
    }

    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<bool> {
        let h = token_hash.to_owned();
        self.write(move |c| {
            c.execute(sql::DELETE_CHALLENGE.sqlite(), [h])
                .map(|n| n == 1)
        })
        .await
    }

    async fn delete_expired_challenges(&self, now: UnixTime) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(sql::DELETE_EXPIRED_CHALLENGES.sqlite(), [now])
                .map(|n| n as u64)
        })
        .await
    }
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn add_passkey(&self, p: &PasskeyRecord, audit: AuditRecord) -> StoreResult<()> {
        let p = p.clone();
        self.guarded(move |tx| {
            tx.execute(
                sql::INSERT_PASSKEY.sqlite(),
                params![
                    p.id,
                    p.user_id,
                    p.credential_id,
                    p.name,
                    p.passkey,
                    p.created_at,
                    p.last_used_at
                ],
            )?;
            Ok(Guarded::keep((), audit))
        })
        .await
    }

    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let id = user_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare(sql::PASSKEYS_OF.sqlite())?;
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
        self.guarded(move |tx| {
            let n = tx.execute(sql::DELETE_PASSKEY.sqlite(), params![u, id])?;
            Ok(Guarded::changed(n == 1, audit))
        })
        .await
    }
}
