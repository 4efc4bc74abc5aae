//! Whether a session still stands, for work that outlives the request that opened it (a live
//! alert stream): the same rule as [`Identity::authenticate`] — the session is stored, neither
//! idle nor too old, and its account is active — checked again later.

use super::service::Identity;
use callguard_core::identity::{Session, UserStatus};
use callguard_core::now;
use std::sync::Arc;
use std::time::Duration;

impl Identity {
    /// True while `session` is still stored, neither idle nor past its absolute limit, and its
    /// account is active. Ends a session found expired. When the store cannot tell, answers
    /// false: a stream that cannot prove its session ends (the client may reconnect).
    pub async fn session_alive(&self, session: &Session) -> bool {
        let now = now();
        let Ok(sessions) = self.store.sessions_of(&session.user_id).await else {
            return false;
        };
        let Some(current) = sessions.into_iter().find(|s| s.id == session.id) else {
            return false;
        };
        if !current.is_live(now) {
            let _ = self.store.expire_session(&current.id).await;
            return false;
        }
        matches!(
            self.store.user_by_id(&session.user_id).await,
            Ok(Some(u)) if u.status == UserStatus::Active
        )
    }

    /// Resolves once `session` has ended (logout, revocation, a disabled account, idle or
    /// absolute expiry), checking every `every` and, on PostgreSQL, at once whenever any node
    /// ends a session or changes an account.
    pub async fn session_ended(self: Arc<Self>, session: Session, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changes = self.store.subscribe_changes();
        loop {
            match changes.as_mut() {
                Some(rx) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        heard = rx.recv() => {
                            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = heard {
                                changes = None;
                            }
                        }
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            if !self.session_alive(&session).await {
                return;
            }
        }
    }
}
