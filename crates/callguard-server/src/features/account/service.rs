//! My account as a service: my sessions, recovery codes and passkeys. Replacing recovery codes
//! or adding a passkey needs a recent re-authentication.

use crate::error::Error;
use crate::principal::Principal;
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::{self as policy, Session};
use callguard_core::token::{self, TokenKind};
use callguard_core::{now, Secret};
use callguard_store::{Challenge, PasskeyRecord, StoreError};
use std::sync::Arc;
use webauthn_rs::prelude::{RegisterPublicKeyCredential, Webauthn};

use crate::features::signin::service::{
    internal, user_agent_aad, Identity, PasskeyRegistrationPayload,
};

/// The self-service account service.
pub struct Account {
    identity: Arc<Identity>,
}

impl Account {
    #[must_use]
    pub fn new(identity: Arc<Identity>) -> Self {
        Self { identity }
    }

    /// The principal's live sessions, user agents opened (sealed at rest).
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<Session>, Error> {
        let now = now();
        Ok(self
            .identity
            .store
            .sessions_of(&principal.user.id)
            .await?
            .into_iter()
            .filter(|s| s.is_live(now))
            .map(|mut s| {
                s.user_agent = callguard_core::kek::open_text(
                    self.identity.kek.as_ref(),
                    &s.user_agent,
                    &user_agent_aad(&s.id),
                )
                .unwrap_or_default();
                s
            })
            .collect())
    }

    /// Ends one of the principal's own sessions.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), Error> {
        let own = self.identity.store.sessions_of(&principal.user.id).await?;
        if !own.iter().any(|s| s.id == session_id) {
            return Err(Error::NotFound);
        }
        let audit = principal
            .actor()
            .record("session.revoke")
            .target(format!("session:{session_id}"));
        self.identity
            .store
            .delete_session(session_id, audit)
            .await?;
        Ok(())
    }

    /// Replaces the principal's recovery codes; needs a recent re-authentication.
    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Secret<String>>, Error> {
        self.identity.require_recent_authentication(principal)?;
        let codes: Vec<Secret<String>> = (0..token::RECOVERY_CODES)
            .map(|_| token::recovery_code())
            .collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| token::hash_recovery_code(c.expose()))
            .collect();
        let audit = principal
            .actor()
            .record("account.recovery_codes_replace")
            .target(user_ref(&principal.user.id));
        self.identity
            .store
            .replace_recovery_codes(&principal.user.id, &hashes, audit)
            .await?;
        Ok(codes)
    }

    pub async fn unused_recovery_codes(&self, principal: &Principal) -> Result<i64, Error> {
        Ok(self
            .identity
            .store
            .unused_recovery_codes(&principal.user.id)
            .await?)
    }

    fn webauthn(&self) -> Result<&Webauthn, Error> {
        self.identity
            .webauthn
            .as_deref()
            .ok_or(Error::NotConfigured("passkeys need a valid public_url"))
    }

    /// Passkey registration step one: options for `navigator.credentials.create`.
    pub async fn begin_passkey_registration(
        &self,
        principal: &Principal,
    ) -> Result<(Secret<String>, serde_json::Value), Error> {
        let wa = self.webauthn()?;
        let user_uuid =
            uuid::Uuid::parse_str(&principal.user.id).map_err(|_| internal("user id"))?;
        let existing: Vec<_> = self
            .identity
            .passkeys(&principal.user.id)
            .await?
            .iter()
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = wa
            .start_passkey_registration(
                user_uuid,
                &principal.user.username,
                &principal.user.username,
                Some(existing),
            )
            .map_err(|_| internal("webauthn registration start"))?;
        let challenge = token::generate(TokenKind::Challenge);
        self.identity
            .store
            .create_challenge(&Challenge {
                token_hash: token::hash(challenge.expose()),
                kind: "passkey-registration".into(),
                user_id: principal.user.id.clone(),
                payload: serde_json::to_string(&PasskeyRegistrationPayload { state })
                    .map_err(|_| internal("passkey payload"))?,
                attempts: 0,
                expires_at: now() + policy::CHALLENGE_SECONDS,
            })
            .await?;
        let options = serde_json::to_value(options).map_err(|_| internal("passkey options"))?;
        Ok((challenge, options))
    }

    /// Passkey registration step two: the browser's attestation.
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        challenge: &Secret<String>,
        name: &str,
        credential: &serde_json::Value,
    ) -> Result<PasskeyRecord, Error> {
        let wa = self.webauthn()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::Validation(
                "a passkey name has 1 to 64 characters".into(),
            ));
        }
        let ch_hash = token::hash(challenge.expose());
        let ch = self
            .identity
            .store
            .challenge(&ch_hash, "passkey-registration", now())
            .await?
            .filter(|c| c.user_id == principal.user.id)
            .ok_or(Error::ChallengeInvalid)?;
        if !self.identity.store.delete_challenge(&ch_hash).await? {
            return Err(Error::ChallengeInvalid);
        }
        let payload: PasskeyRegistrationPayload =
            serde_json::from_str(&ch.payload).map_err(|_| internal("passkey payload"))?;
        let credential: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|_| {
                Error::BadRequest("`credential` is not a WebAuthn registration response".into())
            })?;
        let passkey = wa
            .finish_passkey_registration(&credential, &payload.state)
            .map_err(|_| Error::SecondFactorRejected)?;
        let record = PasskeyRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: principal.user.id.clone(),
            credential_id: data_encoding::BASE64URL_NOPAD.encode(passkey.cred_id().as_ref()),
            name: name.to_owned(),
            passkey: serde_json::to_string(&passkey).map_err(|_| internal("passkey"))?,
            created_at: now(),
            last_used_at: None,
        };
        let audit = principal
            .actor()
            .record("passkey.register")
            .target(format!("passkey:{}", record.id));
        self.identity
            .store
            .add_passkey(&record, audit)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => {
                    Error::Validation("this passkey is already registered".into())
                }
                other => other.into(),
            })?;
        Ok(record)
    }

    pub async fn passkey_list(&self, principal: &Principal) -> Result<Vec<PasskeyRecord>, Error> {
        Ok(self.identity.store.passkeys_of(&principal.user.id).await?)
    }

    pub async fn delete_passkey(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        let audit = principal
            .actor()
            .record("passkey.remove")
            .target(format!("passkey:{id}"));
        if self
            .identity
            .store
            .delete_passkey(&principal.user.id, id, audit)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}
