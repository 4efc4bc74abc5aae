//! Sign-in: password first (throttled per address, counted per account), then the second
//! factor (TOTP, a recovery code or a passkey) on the challenge the first step issued.

use crate::error::Error;
use crate::principal::{Actor, Audience, RequestContext};
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::{self as policy, UserStatus};
use callguard_core::token::{self, TokenKind};
use callguard_core::{now, totp, Secret, UnixTime};
use callguard_store::{Admission, Challenge, CompletedSignIn, FailedAttempt, TakenChallenge};
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
        let address = self.admit_address(ctx).await?;
        // Admission first: a flood is turned away before it costs the database anything.
        let permit = self.hasher.reserve()?;
        let now = now();
        // One read for everything this step needs.
        let facts = self
            .store
            .sign_in_facts(username)
            .await?
            .filter(|f| audience.admits(f.user.role))
            .filter(|f| f.user.status != UserStatus::Pending);
        let anonymous = Actor::anonymous(ctx);
        if let Some(f) = facts.as_ref().filter(|f| f.user.is_dormant(now)) {
            self.disable_dormant_account(&f.user.id, now).await?;
        }
        // The attempt is counted against the account before the password is checked, so that
        // attempts sent together cannot all pass a lock that none of them has set yet. A name
        // without an account costs the store the same write.
        let mut refused = None;
        let mut ticket = None;
        match self
            .store
            .admit_attempt(
                facts.as_ref().map(|f| f.user.id.as_str()),
                &Self::attempt_rule(now, None),
            )
            .await?
        {
            Admission::Admitted(t) => ticket = Some(t),
            Admission::Locked | Admission::TotpLocked => refused = Some("account_locked"),
            Admission::Unavailable => {}
        }
        let disabled = facts
            .as_ref()
            .is_some_and(|f| f.user.status == UserStatus::Disabled || f.user.is_dormant(now));
        if disabled && refused.is_none() {
            refused = Some("account_disabled");
        }
        // Every answer costs one password hash. Only an account that may sign in has its own
        // hash checked; an unknown, locked or disabled one is checked against a dummy hash and
        // always fails, so that its answer is the answer to a wrong password, and a lock or a
        // disabled account tells nothing about the password.
        let stored_hash = match (&facts, &ticket, refused) {
            (Some(f), Some(_), None) => f.credentials.password_hash.clone(),
            _ => None,
        };
        let ok = self
            .hasher
            .verify_reserved(permit, password, stored_hash)
            .await?;
        let (Some(f), Some(ticket), true) = (&facts, &ticket, ok) else {
            let reason = refused.unwrap_or("invalid_credentials");
            self.metrics.sign_in(match reason {
                "account_locked" => "locked",
                "account_disabled" => "disabled",
                _ => "invalid_credentials",
            });
            // An unknown name is never written down: people type passwords into it by mistake.
            let mut audit = anonymous
                .record("auth.sign_in")
                .failure()
                .detail("reason", reason);
            if let Some(f) = &facts {
                audit = audit.target(user_ref(&f.user.id));
            }
            let attempt = FailedAttempt {
                ticket,
                ..FailedAttempt::default()
            };
            return Err(self
                .fail(attempt, audit, Error::InvalidCredentials, address, false)
                .await);
        };
        let user = &f.user;
        let mut methods = vec!["totp"];
        if f.unused_recovery_codes > 0 {
            methods.push("recovery");
        }
        let mut payload = SignInPayload::default();
        let mut webauthn_options = None;
        if let Some(wa) = &self.webauthn {
            let passkeys: Vec<Passkey> = f
                .passkeys
                .iter()
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
        // The right password stops counting, in the same write that stores the challenge.
        self.store
            .accept_password(
                ticket,
                &Challenge {
                    token_hash: token::hash(challenge.expose()),
                    kind: "sign-in".into(),
                    user_id: user.id.clone(),
                    payload: serde_json::to_string(&payload)
                        .map_err(|_| internal("sign-in payload"))?,
                    attempts: 0,
                    expires_at: now + policy::CHALLENGE_SECONDS,
                },
            )
            .await?;
        drop(address);
        Ok(SignInStarted {
            challenge,
            methods,
            webauthn_options,
        })
    }

    /// Disables an active account unused past the dormancy limit (PCI DSS 8.2.6), as the
    /// sweeper would.
    async fn disable_dormant_account(&self, user_id: &str, now: UnixTime) -> Result<(), Error> {
        let audit = Actor {
            id: "system".into(),
            source: None,
        }
        .record("user.disable")
        .target(user_ref(user_id))
        .detail("reason", "dormant_90_days");
        self.store
            .set_status(user_id, UserStatus::Disabled, now, audit)
            .await?;
        tracing::warn!(user_id = %user_id, "account disabled after 90 days without use");
        Ok(())
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
        let address = self.admit_address(ctx).await?;
        let now = now();
        let anonymous = Actor::anonymous(ctx);
        let ch_hash = token::hash(challenge.expose());
        let method = factor_name(&factor);
        let totp_step = matches!(factor, SecondFactor::Totp(_)).then(|| totp::step_of(now));
        // One write: an answer taken on the challenge, and the attempt admitted against its
        // account (and the TOTP step) before anything is checked.
        let taken = self
            .store
            .take_challenge(
                &ch_hash,
                "sign-in",
                policy::CHALLENGE_ATTEMPTS,
                Some(&Self::attempt_rule(now, totp_step)),
                now,
            )
            .await?;
        let Some(TakenChallenge {
            challenge: ch,
            user,
            credentials: creds,
            admission: Some(admission),
        }) = taken
        else {
            return Err(self
                .refuse(
                    "auth.sign_in",
                    "invalid_challenge",
                    Error::ChallengeInvalid,
                    address,
                    ctx,
                )
                .await);
        };
        let failure = |reason: &str| {
            anonymous
                .record("auth.sign_in")
                .failure()
                .target(user_ref(&user.id))
                .detail("method", method)
                .detail("reason", reason.to_owned())
        };
        let ticket = match admission {
            Admission::Admitted(t) => t,
            Admission::Locked => {
                self.metrics.sign_in("locked");
                self.store.delete_challenge(&ch_hash).await?;
                self.store.append(vec![failure("account_locked")]).await?;
                return Err(Error::AccountLocked);
            }
            Admission::TotpLocked => {
                self.metrics.sign_in("second_factor_rejected");
                self.store.append(vec![failure("totp_locked")]).await?;
                return Err(Error::TotpLocked(totp::end_of_step(now) - now));
            }
            Admission::Unavailable => {
                return Err(self
                    .refuse(
                        "auth.sign_in",
                        "invalid_challenge",
                        Error::ChallengeInvalid,
                        address,
                        ctx,
                    )
                    .await)
            }
        };
        let attempt = FailedAttempt {
            ticket: Some(ticket.clone()),
            challenge_hash: Some(ch_hash.clone()),
            ..FailedAttempt::default()
        };
        if !audience.admits(user.role) {
            let audit = anonymous
                .record("auth.sign_in")
                .failure()
                .detail("reason", "invalid_challenge");
            return Err(self
                .fail(attempt, audit, Error::ChallengeInvalid, address, false)
                .await);
        }
        if user.status != UserStatus::Active {
            // The challenge proves the password: its holder may be told.
            self.metrics.sign_in("disabled");
            return Err(self
                .fail(
                    attempt,
                    failure("account_disabled"),
                    Error::AccountDisabled,
                    address,
                    true,
                )
                .await);
        }
        let payload: SignInPayload = serde_json::from_str(&ch.payload).unwrap_or_default();
        let checked = self
            .check_second_factor(&user, Some(creds), &factor, payload.webauthn.as_ref())
            .await?;
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
                        ticket: ticket.clone(),
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
                drop(address);
                return Ok(SignedIn {
                    token,
                    expires_at: session.expires_at(),
                    recovery_codes: Vec::new(),
                });
            }
            // Refused at the last moment: locked or disabled meanwhile, or the factor spent.
            match self.store.user_by_id(&user.id).await? {
                Some(u) if u.is_locked(now) => {
                    self.metrics.sign_in("locked");
                    return Err(self
                        .fail(
                            attempt,
                            failure("account_locked"),
                            Error::AccountLocked,
                            address,
                            true,
                        )
                        .await);
                }
                Some(u) if u.status == UserStatus::Active => {}
                _ => {
                    self.metrics.sign_in("disabled");
                    return Err(self
                        .fail(
                            attempt,
                            failure("account_disabled"),
                            Error::AccountDisabled,
                            address,
                            true,
                        )
                        .await);
                }
            }
        }
        self.metrics.sign_in("second_factor_rejected");
        Err(self
            .fail(
                attempt,
                failure("second_factor_rejected"),
                Error::SecondFactorRejected,
                address,
                true,
            )
            .await)
    }
}
