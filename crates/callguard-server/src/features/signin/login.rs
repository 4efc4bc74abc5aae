//! Sign-in: password first (throttled per address, counted per account), then the second
//! factor (TOTP, a recovery code or a passkey) on the challenge the first step issued.

use crate::error::Error;
use crate::principal::{Actor, Audience, RequestContext};
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::{self as policy, UserStatus};
use callguard_core::token::{self, TokenKind};
use callguard_core::{now, Secret};
use callguard_store::{Challenge, CompletedSignIn, FailedAttempt};
use webauthn_rs::prelude::Passkey;

use super::service::*;

impl Identity {
    /// Sign-in step one: username and password. A correct password never yields a session by
    /// itself, only a challenge for the second factor.
    pub async fn begin_sign_in(
        &self,
        username: &str,
        password: Secret<String>,
        ctx: &RequestContext,
    ) -> Result<SignInStarted, Error> {
        self.begin_sign_in_as(Audience::Staff, username, password, ctx)
            .await
    }

    pub async fn begin_sign_in_as(
        &self,
        audience: Audience,
        username: &str,
        password: Secret<String>,
        ctx: &RequestContext,
    ) -> Result<SignInStarted, Error> {
        self.check_throttle(ctx)?;
        // Admission first: a flood is turned away before it costs the database anything.
        let permit = self.hasher.reserve()?;
        let now = now();
        // One read for everything this step needs.
        let facts = self
            .store
            .sign_in_facts(username)
            .await?
            .filter(|f| audience.admits(f.user.role));
        let user = facts.as_ref().map(|f| f.user.clone());
        let anonymous = Actor::anonymous(ctx);
        if let Some(u) = &user {
            if u.is_locked(now) {
                self.metrics.sign_in("locked");
                self.throttle.record_failure(ctx.source, now);
                let audit = anonymous
                    .record("auth.sign_in")
                    .failure()
                    .target(user_ref(&u.id))
                    .detail("reason", "account_locked");
                self.store.append(vec![audit]).await?;
                return Err(Error::AccountLocked);
            }
        }
        let stored_hash = match &facts {
            Some(f) if f.user.status != UserStatus::Pending => f.credentials.password_hash.clone(),
            _ => None,
        };
        let ok = self
            .hasher
            .verify_reserved(permit, password, stored_hash)
            .await?;
        let Some(user) = user.clone().filter(|_| ok) else {
            self.metrics.sign_in("invalid_credentials");
            // An unknown name is never written down: people type passwords into it by mistake.
            let known = user.filter(|u| u.status == UserStatus::Active);
            let mut audit = anonymous
                .record("auth.sign_in")
                .failure()
                .detail("reason", "invalid_credentials");
            if let Some(u) = &known {
                audit = audit.target(user_ref(&u.id));
            }
            let attempt = FailedAttempt {
                user_id: known.map(|u| u.id),
                ..FailedAttempt::default()
            };
            return Err(self
                .fail(attempt, audit, Error::InvalidCredentials, ctx)
                .await);
        };
        if user.is_dormant(now) {
            let audit = Actor {
                id: "system".into(),
                source: None,
            }
            .record("user.disable")
            .target(user_ref(&user.id))
            .detail("reason", "dormant_90_days");
            self.store
                .set_status(&user.id, UserStatus::Disabled, now, audit)
                .await?;
            tracing::warn!(user_id = %user.id, "account disabled after 90 days without use");
        }
        if user.status == UserStatus::Disabled || user.is_dormant(now) {
            self.metrics.sign_in("disabled");
            let audit = anonymous
                .record("auth.sign_in")
                .failure()
                .target(user_ref(&user.id))
                .detail("reason", "account_disabled");
            self.store.append(vec![audit]).await?;
            return Err(Error::AccountDisabled);
        }
        let mut methods = vec!["totp"];
        if facts.as_ref().is_some_and(|f| f.unused_recovery_codes > 0) {
            methods.push("recovery");
        }
        let mut payload = SignInPayload::default();
        let mut webauthn_options = None;
        if let Some(wa) = &self.webauthn {
            let passkeys: Vec<Passkey> = facts
                .iter()
                .flat_map(|f| f.passkeys.iter())
                .filter_map(|p| serde_json::from_str(&p.passkey).ok())
                .collect();
            if !passkeys.is_empty() {
                let (options, state) = wa
                    .start_passkey_authentication(&passkeys)
                    .map_err(|_| internal("webauthn start"))?;
                payload.webauthn = Some(state);
                webauthn_options = serde_json::to_value(options).ok();
                methods.push("webauthn");
            }
        }
        let challenge = token::generate(TokenKind::Challenge);
        self.store
            .create_challenge(&Challenge {
                token_hash: token::hash(challenge.expose()),
                kind: "sign-in".into(),
                user_id: user.id.clone(),
                payload: serde_json::to_string(&payload)
                    .map_err(|_| internal("sign-in payload"))?,
                attempts: 0,
                expires_at: now + policy::CHALLENGE_SECONDS,
            })
            .await?;
        Ok(SignInStarted {
            challenge,
            methods,
            webauthn_options,
        })
    }

    /// Sign-in step two: the challenge from step one and a second factor. Answers with a session.
    pub async fn finish_sign_in(
        &self,
        challenge: &Secret<String>,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<SignedIn, Error> {
        self.finish_sign_in_as(Audience::Staff, challenge, factor, ctx)
            .await
    }

    pub async fn finish_sign_in_as(
        &self,
        audience: Audience,
        challenge: &Secret<String>,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<SignedIn, Error> {
        self.check_throttle(ctx)?;
        let now = now();
        let anonymous = Actor::anonymous(ctx);
        let ch_hash = token::hash(challenge.expose());
        // One read: the challenge, its account and the credentials the second factor needs.
        let Some((ch, user, creds)) = self
            .store
            .challenge_facts(&ch_hash, "sign-in", now)
            .await?
            .filter(|(_, u, _)| audience.admits(u.role))
        else {
            return Err(self
                .refuse(
                    "auth.sign_in",
                    "invalid_challenge",
                    Error::ChallengeInvalid,
                    ctx,
                )
                .await);
        };
        let method = factor_name(&factor);
        let failure = |reason: &str| {
            anonymous
                .record("auth.sign_in")
                .failure()
                .target(user_ref(&user.id))
                .detail("method", method)
                .detail("reason", reason.to_owned())
        };
        if user.is_locked(now) {
            self.store.delete_challenge(&ch_hash).await?;
            self.store.append(vec![failure("account_locked")]).await?;
            return Err(Error::AccountLocked);
        }
        if user.status != UserStatus::Active {
            self.store.append(vec![failure("account_disabled")]).await?;
            return Err(Error::AccountDisabled);
        }
        let payload: SignInPayload = serde_json::from_str(&ch.payload).unwrap_or_default();
        let checked = match self
            .check_second_factor(&user, Some(creds), &factor, payload.webauthn.as_ref())
            .await
        {
            Ok(c) => c,
            Err(e @ Error::TotpLocked(_)) => {
                self.metrics.sign_in("second_factor_rejected");
                self.store.append(vec![failure("totp_locked")]).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let mut totp_step = None;
        if let Checked::Accepted(spent) = checked {
            let (token, session) = new_session(&self.kek, &user.id, ctx);
            let audit = Actor {
                id: user_ref(&user.id),
                source: Some(ctx.source.to_string()),
            }
            .record("auth.sign_in")
            .target(user_ref(&user.id))
            .detail("method", method)
            .detail("session", session.id.clone());
            let done = self
                .store
                .complete_sign_in(
                    CompletedSignIn {
                        user_id: user.id.clone(),
                        challenge_hash: ch_hash.clone(),
                        factor: spent,
                        session: session.clone(),
                        token_hash: token::hash(token.expose()),
                    },
                    audit,
                )
                .await?;
            if done {
                self.metrics.sign_in("success");
                tracing::info!(user_id = %user.id, method, "signed in");
                return Ok(SignedIn {
                    token,
                    expires_at: session.expires_at(),
                    recovery_codes: Vec::new(),
                });
            }
        } else if let Checked::Rejected { totp_step: step } = checked {
            totp_step = step;
        }
        self.metrics.sign_in("second_factor_rejected");
        let attempt = FailedAttempt {
            user_id: Some(user.id.clone()),
            totp_step,
            challenge_hash: Some(ch_hash),
            ..FailedAttempt::default()
        };
        Err(self
            .fail(
                attempt,
                failure("second_factor_rejected"),
                Error::SecondFactorRejected,
                ctx,
            )
            .await)
    }
}
