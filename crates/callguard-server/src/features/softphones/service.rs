//! SIP credentials of agents' softphones. Digest authentication (RFC 7616/8760) needs a
//! password-equivalent secret at the server (H(user:realm:password)), so a one-way password hash
//! cannot serve: the password is sealed by the key-encryption key, bound to the account, and
//! opened only to check a REGISTER. Issuing again rotates it; the password is shown once. A
//! registration is refused while the account is not active (disabled, pending) or locked.

use crate::error::Error;
use crate::principal::Actor;
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::UserStatus;
use callguard_core::kek::{Keyring, Sealing};
use callguard_core::{now, Role, Secret};
use callguard_store::{SipCredentialRow, Store};
use std::sync::Arc;

/// Agents' softphone credentials.
pub struct Softphones {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
}

fn aad(user_id: &str) -> String {
    format!("sip-credentials:{user_id}")
}

impl Softphones {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, kek: Arc<Keyring>) -> Self {
        Self { store, kek }
    }

    /// Issues (or rotates) the SIP credentials of the agent or supervisor `username`: their
    /// SIP user name (the account's) and a new random password, shown only in this answer.
    pub async fn issue(
        &self,
        actor: &Actor,
        username: &str,
    ) -> Result<(String, Secret<String>), Error> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(Error::NotFound)?;
        if !matches!(user.role, Role::Agent | Role::Supervisor) {
            return Err(Error::State("only agents and supervisors use softphones"));
        }
        let password = Secret::new(data_encoding::BASE32_NOPAD.encode(&rand::random::<[u8; 15]>()));
        let row = SipCredentialRow {
            user_id: user.id.clone(),
            sip_username: user.username.clone(),
            password_sealed: self.kek.seal(password.expose().as_bytes(), &aad(&user.id)),
            issued_at: now(),
        };
        let audit = actor
            .record("sip.credentials.issue")
            .target(user_ref(&user.id));
        self.store.set_sip_credentials(&row, audit).await?;
        Ok((row.sip_username, password))
    }

    /// The password of `sip_username` when that account may register now.
    pub async fn password_for(&self, sip_username: &str) -> Result<Option<Secret<String>>, Error> {
        let Some(row) = self.store.sip_credentials(sip_username).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.user_by_id(&row.user_id).await? else {
            return Ok(None);
        };
        if user.status != UserStatus::Active || user.is_locked(now()) {
            return Ok(None);
        }
        let opened = self
            .kek
            .open(&row.password_sealed, &aad(&row.user_id))
            .map_err(|_| Error::Internal)?;
        let text = String::from_utf8(opened.expose().clone()).map_err(|_| Error::Internal)?;
        Ok(Some(Secret::new(text)))
    }

    /// The account (user id) whose softphone registers as `sip_username`, if credentials were
    /// issued for it. The telephony edge maps a registration to an agent with it.
    pub async fn user_of(&self, sip_username: &str) -> Result<Option<String>, Error> {
        Ok(self
            .store
            .sip_credentials(sip_username)
            .await?
            .map(|row| row.user_id))
    }

    /// The SIP user name of `user_id`'s softphone (their username) when credentials were issued
    /// for that account.
    pub async fn sip_username_of(&self, user_id: &str) -> Result<Option<String>, Error> {
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .sip_credentials(&user.username)
            .await?
            .filter(|row| row.user_id == user.id)
            .map(|row| row.sip_username))
    }
}
