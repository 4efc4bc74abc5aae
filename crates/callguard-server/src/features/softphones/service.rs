//! SIP credentials of agents' softphones. Digest authentication (RFC 7616/8760) needs a
//! password-equivalent secret at the server (H(user:realm:password)), so a one-way password hash
//! cannot serve: the password is sealed by the key-encryption key, bound to the account, and
//! opened only to check a REGISTER. Issuing again rotates it; the password is shown once. A
//! registration is refused while the account is not active (disabled, pending) or locked, and
//! disabling, resetting or re-roling an account deletes its credentials (in the same
//! transaction, `callguard_store`'s identity writes).
//!
//! Agents and supervisors issue their own from "My account" (after a fresh confirmation of their
//! password and second factor), with the realm and SIP server address to type into a softphone.

use crate::error::Error;
use crate::principal::{Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::UserStatus;
use callguard_core::kek::{Keyring, Sealing};
use callguard_core::{now, Role, Secret};
use callguard_store::{SipCredentialRow, Store};
use std::sync::Arc;

/// Where softphones register: the registrar's digest realm and the SIP edge's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipServer {
    pub realm: String,
    /// `host:port` as softphones dial it (UDP and TCP).
    pub address: String,
}

/// Agents' softphone credentials.
pub struct Softphones {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    server: Option<SipServer>,
}

/// New credentials, shown once.
pub struct IssuedCredentials {
    pub sip_username: String,
    pub password: Secret<String>,
    /// `None` when this server has no SIP edge configured.
    pub server: Option<SipServer>,
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("sip_username", &self.sip_username)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Whether an account has SIP credentials, for "My account".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialStatus {
    /// Whether the account's role uses a softphone.
    pub eligible: bool,
    pub sip_username: Option<String>,
    pub issued_at: Option<callguard_core::UnixTime>,
    pub server: Option<SipServer>,
}

fn aad(user_id: &str) -> String {
    format!("sip-credentials:{user_id}")
}

impl Softphones {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, kek: Arc<Keyring>) -> Self {
        Self::with_server(store, kek, None)
    }

    /// With the SIP edge softphones register at (shown on "My account").
    #[must_use]
    pub fn with_server(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        server: Option<SipServer>,
    ) -> Self {
        Self { store, kek, server }
    }

    /// Whether `p` has SIP credentials (never the password).
    pub async fn status(&self, p: &Principal) -> Result<CredentialStatus, Error> {
        let row = self.store.sip_credentials_of_user(&p.user.id).await?;
        Ok(CredentialStatus {
            eligible: matches!(p.user.role, Role::Agent | Role::Supervisor),
            sip_username: row.as_ref().map(|r| r.sip_username.clone()),
            issued_at: row.map(|r| r.issued_at),
            server: self.server.clone(),
        })
    }

    /// Issues or rotates `p`'s own credentials: needs a confirmation of their password and
    /// second factor within the last five minutes (whoever holds a stolen session must not get
    /// a phone line on it). The old password stops working at once.
    pub async fn issue_own(&self, p: &Principal) -> Result<IssuedCredentials, Error> {
        if !p.session.recently_authenticated(now()) {
            return Err(Error::ReauthenticationRequired);
        }
        let (sip_username, password) = self.issue(&p.actor(), &p.user.username).await?;
        Ok(IssuedCredentials {
            sip_username,
            password,
            server: self.server.clone(),
        })
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

    /// The registrar stopped taking REGISTERs for an account (`username`, when it names one)
    /// or from `source` after `failures` wrong digests: a `sip.register.locked` entry, from
    /// which the alert engine raises `sip_registration_guessing`. The guessed name itself is
    /// not logged unless it is an account's.
    pub async fn registration_locked(
        &self,
        username: Option<&str>,
        source: std::net::IpAddr,
        failures: u32,
        lock_seconds: u64,
    ) -> Result<(), Error> {
        let user = match username {
            Some(name) => self.store.user_by_username(name).await?,
            None => None,
        };
        let mut audit = Actor::system()
            .record("sip.register.locked")
            .source(source)
            .detail("failures", failures)
            .detail("lock_seconds", lock_seconds)
            .detail(
                "scope",
                if username.is_some() {
                    "account"
                } else {
                    "address"
                },
            )
            .failure();
        if let Some(u) = user {
            audit = audit.target(user_ref(&u.id));
        }
        self.store.append(vec![audit]).await?;
        Ok(())
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
