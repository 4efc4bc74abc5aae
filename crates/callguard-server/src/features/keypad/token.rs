//! The telephony edge's service account: one long random API token, issued, rotated and
//! revoked by the CLI (`callguard telephony token …`), shown once and stored only as its
//! SHA-256. A request carrying it (`Authorization: Bearer cgtel_…`) acts as the role
//! [`Role::Telephony`], which holds only the keypad capture permission: it signs in to no page
//! and reads nothing else.

use crate::error::Error;
use crate::principal::{Actor, Principal};
use callguard_core::identity::{Session, User, UserStatus};
use callguard_core::{now, token, Role, Secret};
use callguard_store::{ServiceTokenRow, Store};
use std::net::IpAddr;
use std::sync::Arc;

/// Every telephony token starts with this, so the server knows where to look it up (and a
/// secret scanner knows what it found).
pub const TOKEN_PREFIX: &str = callguard_core::token::SERVICE_TOKEN_PREFIX;

/// The service account's name: its audit entries' actor is `user:telephony`.
pub const ACCOUNT: &str = "telephony";

/// Issues, rotates, revokes and checks the telephony edge's token.
pub struct EdgeTokens {
    store: Arc<dyn Store>,
}

/// A new token: the prefix and 256 random bits, URL-safe.
fn new_token() -> Secret<String> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(format!(
        "{TOKEN_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(&bytes)
    ))
}

impl EdgeTokens {
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Issues the token (`rotate: false`, refused when one exists) or replaces it (`rotate:
    /// true`, refused when none exists): the new token, to be shown once.
    pub async fn issue(&self, actor: &Actor, rotate: bool) -> Result<Secret<String>, Error> {
        let existing = self.store.service_token(ACCOUNT).await?;
        match (existing.is_some(), rotate) {
            (true, false) => {
                return Err(Error::State(
                    "a telephony token is issued already: rotate it (`callguard telephony token rotate`) or revoke it first",
                ))
            }
            (false, true) => {
                return Err(Error::State(
                    "no telephony token is issued: issue one (`callguard telephony token issue`)",
                ))
            }
            _ => {}
        }
        let t = new_token();
        let row = ServiceTokenRow {
            account: ACCOUNT.into(),
            role: Role::Telephony,
            token_hash: token::hash(t.expose()),
            issued_at: now(),
        };
        let action = if rotate {
            "telephony.token.rotate"
        } else {
            "telephony.token.issue"
        };
        let audit = actor
            .record(action)
            .target(callguard_core::audit::record::user(ACCOUNT));
        self.store.set_service_token(&row, audit).await?;
        Ok(t)
    }

    /// Revokes the token: every request carrying it is refused from now on.
    pub async fn revoke(&self, actor: &Actor) -> Result<(), Error> {
        let audit = actor
            .record("telephony.token.revoke")
            .target(callguard_core::audit::record::user(ACCOUNT));
        if self.store.revoke_service_token(ACCOUNT, audit).await? {
            Ok(())
        } else {
            Err(Error::State("no telephony token is issued"))
        }
    }

    /// The telephony edge, when `token` is its current token; unauthenticated otherwise.
    pub async fn authenticate(&self, token: &str, source: IpAddr) -> Result<Principal, Error> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Err(Error::Unauthenticated);
        }
        let row = self
            .store
            .service_token_by_hash(&token::hash(token))
            .await?
            .ok_or(Error::Unauthenticated)?;
        if row.role != Role::Telephony {
            return Err(Error::Unauthenticated);
        }
        let t = now();
        Ok(Principal {
            user: User {
                id: row.account.clone(),
                username: row.account.clone(),
                role: Role::Telephony,
                status: UserStatus::Active,
                failed_sign_ins: 0,
                locked_until: None,
                created_at: row.issued_at,
                activated_at: Some(row.issued_at),
                last_sign_in_at: None,
            },
            // No session: the token is the credential. The id names the service account.
            session: Session {
                id: format!("service:{}", row.account),
                user_id: row.account,
                created_at: row.issued_at,
                last_seen_at: t,
                reauth_at: row.issued_at,
                source: source.to_string(),
                user_agent: String::new(),
            },
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_prefixed_and_carries_256_bits() {
        let a = new_token();
        let b = new_token();
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
