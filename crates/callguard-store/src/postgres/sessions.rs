//! Sessions, sign-in challenges and passkeys on PostgreSQL: the short- and long-lived things a
//! signed-in person holds besides the account itself (which lives in `identity`).

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::sql;
use crate::*;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

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

pub(super) async fn insert_session(
    tx: &Transaction<'_>,
    s: &Session,
    token_hash: &str,
) -> StoreResult<()> {
    tx.execute(
        sql::INSERT_SESSION.postgres(),
        &[
            &s.id,
            &s.user_id,
            &s.created_at,
            &s.last_seen_at,
            &s.reauth_at,
            &s.source,
            &s.user_agent,
            &token_hash,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(super) async fn insert_challenge(
    c: &impl deadpool_postgres::GenericClient,
    ch: &Challenge,
) -> StoreResult<()> {
    c.execute(
        sql::INSERT_CHALLENGE.postgres(),
        &[
            &ch.token_hash,
            &ch.kind,
            &ch.user_id,
            &ch.payload,
            &ch.attempts,
            &ch.expires_at,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(super) fn to_passkey(r: &Row) -> PasskeyRecord {
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

pub(super) fn to_challenge(r: &Row) -> Challenge {
    Challenge {
        token_hash: r.get(0),
        kind: r.get(1),
        user_id: r.get(2),
        payload: r.get(3),
        attempts: r.get(4),
        expires_at: r.get(5),
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let c = self.client().await?;
        // Every authenticated request asks this: prepared once per connection, not per call.
        let st = c
            .prepare_cached(sql::SESSION_BY_TOKEN.postgres())
            .await
            .map_err(map_err)?;
        Ok(c.query_opt(&st, &[&token_hash])
            .await
            .map_err(map_err)?
            .as_ref()
            .map(to_session))
    }

    async fn session_with_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(sql::SESSION_WITH_USER.postgres())
            .await
            .map_err(map_err)?;
        let Some(row) = c.query_opt(&st, &[&token_hash]).await.map_err(map_err)? else {
            return Ok(None);
        };
        let user = match row.get::<_, Option<String>>(7) {
            Some(_) => Some(super::identity::to_user_at(&row, 7)?),
            None => None,
        };
        Ok(Some((to_session(&row), user)))
    }

    async fn touch_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(sql::TOUCH_SESSION.postgres())
            .await
            .map_err(map_err)?;
        c.execute(&st, &[&now, &id]).await.map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id: &str, audit: AuditRecord) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(sql::DELETE_SESSION.postgres(), &[&id], &[audit])
                    .await?;
                Ok(Guarded::changed_recorded(n == 1))
            })
        })
        .await
    }

    async fn expire_session(&self, id: &str) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(sql::DELETE_SESSION.postgres(), &[&id])
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn sessions_of(&self, user_id: &str) -> StoreResult<Vec<Session>> {
        let c = self.client().await?;
        Ok(c.query(sql::SESSIONS_OF.postgres(), &[&user_id])
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
            sql::DELETE_EXPIRED_SESSIONS.postgres(),
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
        insert_challenge(&c, ch).await
    }

    async fn challenge(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<Challenge>> {
        let c = self.client().await?;
        Ok(
            c.query_opt(sql::CHALLENGE.postgres(), &[&token_hash, &kind, &now])
                .await
                .map_err(map_err)?
                .as_ref()
                .map(to_challenge),
        )
    }

    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute(sql::DELETE_CHALLENGE.postgres(), &[&token_hash])
            .await
            .map_err(map_err)?
            == 1)
    }

    async fn delete_expired_challenges(&self, now: UnixTime) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute(sql::DELETE_EXPIRED_CHALLENGES.postgres(), &[&now])
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl PasskeyStore for PostgresStore {
    async fn add_passkey(&self, p: &PasskeyRecord, audit: AuditRecord) -> StoreResult<()> {
        self.guarded(move |tx| {
            Box::pin(async move {
                tx.execute_recorded(
                    sql::INSERT_PASSKEY.postgres(),
                    &[
                        &p.id,
                        &p.user_id,
                        &p.credential_id,
                        &p.name,
                        &p.passkey,
                        &p.created_at,
                        &p.last_used_at,
                    ],
                    &[audit],
                )
                .await?;
                Ok(Guarded::recorded(()))
            })
        })
        .await
    }

    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let c = self.client().await?;
        Ok(c.query(sql::PASSKEYS_OF.postgres(), &[&user_id])
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
        self.guarded(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute_recorded(sql::DELETE_PASSKEY.postgres(), &[&user_id, &id], &[audit])
                    .await?;
                Ok(Guarded::changed_recorded(n == 1))
            })
        })
        .await
    }
}
