//! Staff sign-in as a service (SPEC C1): first-time setup, password then second factor,
//! sessions, re-authentication, account administration. HTTP handlers and web pages both call
//! this; neither makes a security decision of its own.

use crate::error::Error;
use crate::hasher::Hasher;
use crate::metrics::Metrics;
use crate::principal::{Actor, Audience, Principal, RequestContext};
use callguard_core::audit::record::user as user_ref;
use callguard_core::audit::AuditRecord;
use callguard_core::identity::{self as policy, Session, User, UserStatus};
use callguard_core::kek::{Keyring, Sealing};
use callguard_core::throttle::AddressThrottle;
use callguard_core::token::{self, TokenKind};
use callguard_core::totp::{self, TotpSecret};
use callguard_core::{now, password, Role, Secret, UnixTime};
use callguard_store::{
    Challenge, CompletedSetup, CompletedSignIn, Credentials, FailedAttempt, NewActiveUser,
    NewPendingUser, PasskeyRecord, SpentFactor, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn,
};

/// Name shown in authenticator apps next to the account.
pub const ISSUER: &str = "Callguard";
const SETUP_CHALLENGE_SECONDS: i64 = 15 * 60;

/// The answer to the first setup step.
pub struct SetupStarted {
    pub challenge: Secret<String>,
    pub totp_secret: Secret<String>,
    pub otpauth_uri: Secret<String>,
    pub username: String,
}

/// A new session, with recovery codes when it ends first-time setup.
pub struct SignedIn {
    pub token: Secret<String>,
    pub expires_at: UnixTime,
    pub recovery_codes: Vec<Secret<String>>,
}

/// The answer to a correct password: what second factors may follow.
pub struct SignInStarted {
    pub challenge: Secret<String>,
    pub methods: Vec<&'static str>,
    /// WebAuthn request options when the account has passkeys.
    pub webauthn_options: Option<serde_json::Value>,
}

/// The second factor offered in step two.
#[derive(Debug)]
pub enum SecondFactor {
    Totp(Secret<String>),
    Recovery(Secret<String>),
    /// A WebAuthn assertion (`PublicKeyCredential` JSON) from the browser.
    WebAuthn(Secret<String>),
}

#[derive(Serialize, Deserialize)]
struct SetupPayload {
    setup_token_hash: String,
    password_hash: String,
    totp_sealed: String,
}

#[derive(Serialize, Deserialize, Default)]
struct SignInPayload {
    webauthn: Option<PasskeyAuthentication>,
}

#[derive(Serialize, Deserialize)]
struct PasskeyRegistrationPayload {
    state: PasskeyRegistration,
}

pub(crate) fn totp_aad(user_id: &str) -> String {
    format!("callguard:totp:{user_id}")
}

fn internal(what: &str) -> Error {
    tracing::error!(what, "identity service failure");
    Error::Internal
}

/// The staff identity service.
pub struct Identity {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    hasher: Hasher,
    throttle: AddressThrottle,
    metrics: Arc<Metrics>,
    webauthn: Option<Arc<Webauthn>>,
}

impl Identity {
    pub fn new(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        hasher: Hasher,
        metrics: Arc<Metrics>,
        webauthn: Option<Arc<Webauthn>>,
    ) -> Self {
        Self {
            store,
            kek,
            hasher,
            throttle: AddressThrottle::new(),
            metrics,
            webauthn,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates a pending account and returns its one-time setup token (valid 72 hours).
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<(User, Secret<String>), Error> {
        policy::check_username(username).map_err(|e| Error::Validation(e.to_string()))?;
        if !role.is_staff() {
            return Err(Error::Validation(
                "`customer` is not a staff role: customers get portal accounts with `callguard customer invite CUSTOMER_ID`".into(),
            ));
        }
        let setup = token::generate(TokenKind::Setup);
        let now = now();
        let id = uuid::Uuid::new_v4().to_string();
        let audit = actor
            .record("user.create")
            .target(user_ref(&id))
            .detail("role", role.as_str());
        let user = self
            .store
            .create_pending_user(
                NewPendingUser {
                    id,
                    username: username.to_owned(),
                    role,
                    setup_token_hash: token::hash(setup.expose()),
                    setup_expires_at: now + policy::SETUP_TOKEN_SECONDS,
                    created_at: now,
                },
                audit,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Error::UsernameTaken,
                other => other.into(),
            })?;
        tracing::info!(user_id = %user.id, role = %role, "account created, waiting for setup");
        Ok((user, setup))
    }

    /// Creates an account that is ready to sign in, with a known TOTP secret: for the demo and
    /// for benchmarks, never reachable over HTTP. Returns the recovery codes.
    pub async fn create_ready_user(
        &self,
        username: &str,
        role: Role,
        password: Secret<String>,
        totp: &TotpSecret,
    ) -> Result<(User, Vec<Secret<String>>), Error> {
        policy::check_username(username).map_err(|e| Error::Validation(e.to_string()))?;
        password::check_new_password(&password, username)?;
        let id = uuid::Uuid::new_v4().to_string();
        let password_hash = self.hasher.hash(password).await?;
        let codes: Vec<Secret<String>> = (0..token::RECOVERY_CODES)
            .map(|_| token::recovery_code())
            .collect();
        let audit = Actor::cli()
            .record("user.create")
            .target(user_ref(&id))
            .detail("role", role.as_str())
            .detail("ready", true);
        let user = self
            .store
            .create_active_user(
                NewActiveUser {
                    id: id.clone(),
                    username: username.to_owned(),
                    role,
                    password_hash,
                    totp_sealed: self.kek.seal(totp.bytes(), &totp_aad(&id)),
                    recovery_code_hashes: codes
                        .iter()
                        .map(|c| token::hash_recovery_code(c.expose()))
                        .collect(),
                    created_at: now(),
                },
                audit,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Error::UsernameTaken,
                other => other.into(),
            })?;
        Ok((user, codes))
    }

    fn check_throttle(&self, ctx: &RequestContext) -> Result<(), Error> {
        self.throttle.check(ctx.source, now()).map_err(|wait| {
            self.metrics.sign_in("throttled");
            Error::Throttled(wait)
        })
    }

    /// Records a failed attempt (audit entry, counters, lockout) and answers with the error to
    /// show: `AccountLocked` when this failure locked the account.
    async fn fail(
        &self,
        attempt: FailedAttempt,
        audit: AuditRecord,
        shown: Error,
        ctx: &RequestContext,
    ) -> Error {
        let now = now();
        self.throttle.record_failure(ctx.source, now);
        let user_known = attempt.user_id.is_some();
        let attempt = FailedAttempt {
            now,
            lockout_max: policy::MAX_FAILED_SIGN_INS,
            lock_until: now + policy::LOCKOUT_SECONDS,
            challenge_max: policy::CHALLENGE_ATTEMPTS,
            ..attempt
        };
        match self.store.fail_attempt(attempt, audit).await {
            Ok(Some(u)) if user_known && u.is_locked(now) => {
                if u.failed_sign_ins >= policy::MAX_FAILED_SIGN_INS
                    && u.locked_until == Some(now + policy::LOCKOUT_SECONDS)
                {
                    self.metrics.lockout();
                    tracing::warn!(user_id = %u.id, "account locked after too many failed sign-ins");
                }
                Error::AccountLocked
            }
            Ok(_) => shown,
            Err(e) => e.into(),
        }
    }

    /// A refusal that names no account (unknown token or challenge): audited and throttled.
    async fn refuse(
        &self,
        action: &str,
        reason: &str,
        shown: Error,
        ctx: &RequestContext,
    ) -> Error {
        let audit = Actor::anonymous(ctx)
            .record(action)
            .failure()
            .detail("reason", reason.to_owned());
        self.fail(FailedAttempt::default(), audit, shown, ctx).await
    }

    /// Setup step one: the setup token and a new password; answers with the TOTP secret to enrol.
    pub async fn begin_setup(
        &self,
        setup_token: &Secret<String>,
        password: Secret<String>,
        ctx: &RequestContext,
    ) -> Result<SetupStarted, Error> {
        self.begin_setup_as(Audience::Staff, setup_token, password, ctx)
            .await
    }

    pub async fn begin_setup_as(
        &self,
        audience: Audience,
        setup_token: &Secret<String>,
        password: Secret<String>,
        ctx: &RequestContext,
    ) -> Result<SetupStarted, Error> {
        self.check_throttle(ctx)?;
        let now = now();
        let token_hash = token::hash(setup_token.expose());
        let Some(user) = self
            .store
            .user_by_setup_token(&token_hash, now)
            .await?
            .filter(|u| audience.admits(u.role))
        else {
            return Err(self
                .refuse(
                    "auth.setup",
                    "invalid_setup_token",
                    Error::SetupTokenInvalid,
                    ctx,
                )
                .await);
        };
        password::check_new_password(&password, &user.username)?;
        let password_hash = self.hasher.hash(password).await?;
        let totp = TotpSecret::generate();
        let payload = SetupPayload {
            setup_token_hash: token_hash,
            password_hash,
            totp_sealed: data_encoding::BASE64
                .encode(&self.kek.seal(totp.bytes(), &totp_aad(&user.id))),
        };
        let challenge = token::generate(TokenKind::Challenge);
        self.store
            .create_challenge(&Challenge {
                token_hash: token::hash(challenge.expose()),
                kind: "setup".into(),
                user_id: user.id.clone(),
                payload: serde_json::to_string(&payload).map_err(|_| internal("setup payload"))?,
                attempts: 0,
                expires_at: now + SETUP_CHALLENGE_SECONDS,
            })
            .await?;
        Ok(SetupStarted {
            challenge,
            totp_secret: totp.to_base32(),
            otpauth_uri: totp.otpauth_uri(ISSUER, &user.username),
            username: user.username,
        })
    }

    /// Setup step two: a code from the newly enrolled authenticator. Activates the account and
    /// answers with a session and ten recovery codes.
    pub async fn confirm_setup(
        &self,
        challenge: &Secret<String>,
        code: &Secret<String>,
        ctx: &RequestContext,
    ) -> Result<SignedIn, Error> {
        self.confirm_setup_as(Audience::Staff, challenge, code, ctx)
            .await
    }

    pub async fn confirm_setup_as(
        &self,
        audience: Audience,
        challenge: &Secret<String>,
        code: &Secret<String>,
        ctx: &RequestContext,
    ) -> Result<SignedIn, Error> {
        self.check_throttle(ctx)?;
        let now = now();
        let ch_hash = token::hash(challenge.expose());
        let owner_admitted = match self.store.challenge(&ch_hash, "setup", now).await? {
            Some(ch) => self
                .store
                .user_by_id(&ch.user_id)
                .await?
                .is_some_and(|u| audience.admits(u.role))
                .then_some(ch),
            None => None,
        };
        let Some(ch) = owner_admitted else {
            return Err(self
                .refuse(
                    "auth.setup",
                    "invalid_challenge",
                    Error::ChallengeInvalid,
                    ctx,
                )
                .await);
        };
        let payload: SetupPayload =
            serde_json::from_str(&ch.payload).map_err(|_| internal("setup payload"))?;
        let sealed = data_encoding::BASE64
            .decode(payload.totp_sealed.as_bytes())
            .map_err(|_| internal("setup totp"))?;
        let secret = self
            .kek
            .open(&sealed, &totp_aad(&ch.user_id))
            .map_err(|_| internal("setup totp"))?;
        let totp = TotpSecret::from_bytes(secret.expose().clone());
        let Some(step) = totp.verify(code.expose(), now, None) else {
            let audit = Actor::anonymous(ctx)
                .record("auth.setup")
                .failure()
                .target(user_ref(&ch.user_id))
                .detail("reason", "second_factor_rejected");
            let attempt = FailedAttempt {
                challenge_hash: Some(ch_hash),
                ..FailedAttempt::default()
            };
            return Err(self
                .fail(attempt, audit, Error::SecondFactorRejected, ctx)
                .await);
        };
        let codes: Vec<Secret<String>> = (0..token::RECOVERY_CODES)
            .map(|_| token::recovery_code())
            .collect();
        let (token, session) = new_session(&ch.user_id, ctx);
        let audit = Actor {
            id: user_ref(&ch.user_id),
            source: Some(ctx.source.to_string()),
        }
        .record("auth.setup")
        .target(user_ref(&ch.user_id))
        .detail("second_factor", "totp")
        .detail("session", session.id.clone());
        let done = self
            .store
            .complete_setup(
                CompletedSetup {
                    user_id: ch.user_id.clone(),
                    setup_token_hash: payload.setup_token_hash,
                    password_hash: payload.password_hash,
                    totp_sealed: sealed,
                    totp_step: step,
                    recovery_code_hashes: codes
                        .iter()
                        .map(|c| token::hash_recovery_code(c.expose()))
                        .collect(),
                    now,
                },
                &ch_hash,
                &session,
                &token::hash(token.expose()),
                audit,
            )
            .await?;
        if !done {
            return Err(Error::SetupTokenInvalid);
        }
        tracing::info!(user_id = %ch.user_id, "account set up with TOTP");
        self.metrics.sign_in("success");
        Ok(SignedIn {
            token,
            expires_at: session.expires_at(),
            recovery_codes: codes,
        })
    }

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

    async fn passkeys(&self, user_id: &str) -> Result<Vec<Passkey>, Error> {
        Ok(self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str(&p.passkey).ok())
            .collect())
    }

    /// Checks a second factor for `user` without spending it; `webauthn_state` is the state of
    /// step one. The store spends an accepted factor atomically with what it unlocks.
    async fn check_second_factor(
        &self,
        user: &User,
        known: Option<Credentials>,
        factor: &SecondFactor,
        webauthn_state: Option<&PasskeyAuthentication>,
    ) -> Result<Checked, Error> {
        let now = now();
        match factor {
            SecondFactor::Totp(code) => {
                let creds = match known {
                    Some(c) => c,
                    None => self
                        .store
                        .credentials(&user.id)
                        .await?
                        .ok_or(Error::InvalidCredentials)?,
                };
                let step = totp::step_of(now);
                if creds.totp_fail_step == Some(step)
                    && creds.totp_fail_count >= totp::MAX_FAILURES_PER_STEP
                {
                    return Err(Error::TotpLocked(totp::end_of_step(now) - now));
                }
                let sealed = creds.totp_sealed.ok_or_else(|| internal("no totp"))?;
                let secret = self
                    .kek
                    .open(&sealed, &totp_aad(&user.id))
                    .map_err(|_| internal("totp open"))?;
                let secret = TotpSecret::from_bytes(secret.expose().clone());
                Ok(
                    match secret.verify(code.expose(), now, creds.totp_last_step) {
                        Some(matched) => Checked::Accepted(SpentFactor::TotpStep(matched)),
                        None => Checked::Rejected {
                            totp_step: Some(step),
                        },
                    },
                )
            }
            SecondFactor::Recovery(code) => Ok(Checked::Accepted(SpentFactor::RecoveryCode(
                token::hash_recovery_code(code.expose()),
            ))),
            SecondFactor::WebAuthn(assertion) => {
                let rejected = Checked::Rejected { totp_step: None };
                let (Some(wa), Some(state)) = (&self.webauthn, webauthn_state) else {
                    return Ok(rejected);
                };
                let Ok(credential) =
                    serde_json::from_str::<PublicKeyCredential>(assertion.expose())
                else {
                    return Ok(rejected);
                };
                let Ok(result) = wa.finish_passkey_authentication(&credential, state) else {
                    return Ok(rejected);
                };
                // Keep the signature counter and backup state current.
                for mut pk in self.passkeys(&user.id).await? {
                    if pk.update_credential(&result).is_some() {
                        let credential_id =
                            data_encoding::BASE64URL_NOPAD.encode(pk.cred_id().as_ref());
                        let passkey =
                            serde_json::to_string(&pk).map_err(|_| internal("passkey"))?;
                        return Ok(Checked::Accepted(SpentFactor::Passkey {
                            credential_id,
                            passkey,
                        }));
                    }
                }
                Ok(rejected)
            }
        }
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
            let (token, session) = new_session(&user.id, ctx);
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

    /// The person behind a session token, or `Unauthenticated`. Ends sessions that are idle,
    /// too old, or whose account is no longer active.
    pub async fn authenticate(
        &self,
        session_token: &str,
        source: IpAddr,
    ) -> Result<Principal, Error> {
        let now = now();
        let session = self
            .store
            .session_by_token(&token::hash(session_token))
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !session.is_live(now) {
            self.store.expire_session(&session.id).await?;
            return Err(Error::Unauthenticated);
        }
        let user = match self.store.user_by_id(&session.user_id).await? {
            Some(u) if u.status == UserStatus::Active => u,
            _ => {
                self.store.expire_session(&session.id).await?;
                return Err(Error::Unauthenticated);
            }
        };
        // Writing on every request would serialise reads behind the writer; ten seconds of
        // slack on a fifteen-minute idle limit is harmless.
        if now - session.last_seen_at >= 10 {
            self.store.touch_session(&session.id, now).await?;
        }
        Ok(Principal {
            user,
            session,
            source,
        })
    }

    pub async fn sign_out(&self, principal: &Principal) -> Result<(), Error> {
        let audit = principal
            .actor()
            .record("auth.sign_out")
            .target(user_ref(&principal.user.id))
            .detail("session", principal.session.id.clone());
        self.store
            .delete_session(&principal.session.id, audit)
            .await?;
        tracing::info!(user_id = %principal.user.id, "signed out");
        Ok(())
    }

    /// Confirms password and second factor again for sensitive actions.
    pub async fn reauthenticate(
        &self,
        principal: &mut Principal,
        password: Secret<String>,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<(), Error> {
        self.check_throttle(ctx)?;
        let now = now();
        let method = factor_name(&factor);
        let failure = |reason: &str| {
            principal
                .actor()
                .record("auth.reauthenticate")
                .failure()
                .target(user_ref(&principal.user.id))
                .detail("method", method)
                .detail("reason", reason.to_owned())
        };
        let hash = self
            .store
            .credentials(&principal.user.id)
            .await?
            .and_then(|c| c.password_hash);
        if !self.hasher.verify(password, hash).await? {
            let attempt = FailedAttempt {
                user_id: Some(principal.user.id.clone()),
                ..FailedAttempt::default()
            };
            return Err(self
                .fail(
                    attempt,
                    failure("invalid_credentials"),
                    Error::InvalidCredentials,
                    ctx,
                )
                .await);
        }
        let checked = match self
            .check_second_factor(&principal.user, None, &factor, None)
            .await
        {
            Ok(c) => c,
            Err(e @ Error::TotpLocked(_)) => {
                self.store.append(vec![failure("totp_locked")]).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let totp_step = match checked {
            Checked::Accepted(spent) => {
                let audit = principal
                    .actor()
                    .record("auth.reauthenticate")
                    .target(user_ref(&principal.user.id))
                    .detail("method", method);
                if self
                    .store
                    .complete_reauthentication(
                        &principal.session.id,
                        &principal.user.id,
                        spent,
                        now,
                        audit,
                    )
                    .await?
                {
                    principal.session.reauth_at = now;
                    return Ok(());
                }
                None
            }
            Checked::Rejected { totp_step } => totp_step,
        };
        let attempt = FailedAttempt {
            user_id: Some(principal.user.id.clone()),
            totp_step,
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

    /// Refuses unless the principal confirmed their credentials within the last five minutes.
    pub fn require_recent_authentication(&self, principal: &Principal) -> Result<(), Error> {
        if principal.session.recently_authenticated(now()) {
            Ok(())
        } else {
            Err(Error::ReauthenticationRequired)
        }
    }

    /// An admin creates an account; creating another admin needs a recent re-authentication.
    pub async fn admin_create_user(
        &self,
        admin: &Principal,
        username: &str,
        role: Role,
    ) -> Result<(User, Secret<String>), Error> {
        if role == Role::Admin {
            self.require_recent_authentication(admin)?;
        }
        self.create_user(username, role, &admin.actor()).await
    }

    /// A staff account an admin acts on. Portal accounts are not the admin's to unlock, reset
    /// or re-role: resetting one would hand an admin a way into a customer's data.
    async fn target(&self, id: &str) -> Result<User, Error> {
        self.store
            .user_by_id(id)
            .await?
            .filter(|u| u.role.is_staff())
            .ok_or(Error::NotFound)
    }

    /// Lifts a lockout; `actor` is the admin (or the CLI operator).
    pub async fn unlock(&self, actor: &Actor, user_id: &str) -> Result<User, Error> {
        self.target(user_id).await?;
        let audit = actor.record("user.unlock").target(user_ref(user_id));
        self.store.unlock(user_id, audit).await?;
        tracing::info!(user_id, by = %actor.id, "account unlocked");
        self.target(user_id).await
    }

    pub async fn admin_unlock(&self, admin: &Principal, user_id: &str) -> Result<User, Error> {
        self.require_recent_authentication(admin)?;
        self.unlock(&admin.actor(), user_id).await
    }

    pub async fn admin_set_role(
        &self,
        admin: &Principal,
        user_id: &str,
        role: Role,
    ) -> Result<User, Error> {
        self.require_recent_authentication(admin)?;
        if admin.user.id == user_id {
            return Err(Error::Validation(
                "an admin cannot change their own role".into(),
            ));
        }
        if !role.is_staff() {
            return Err(Error::Validation(
                "`customer` is not a staff role: a staff account cannot become a customer".into(),
            ));
        }
        let before = self.target(user_id).await?;
        let audit = admin
            .actor()
            .record("user.role_change")
            .target(user_ref(user_id))
            .detail("from", before.role.as_str())
            .detail("to", role.as_str());
        // A role change ends the person's sessions so the new rights apply at once.
        self.store.set_role(user_id, role, audit).await?;
        tracing::info!(user_id, role = %role, by = %admin.user.id, "role changed");
        self.target(user_id).await
    }

    pub async fn admin_set_enabled(
        &self,
        admin: &Principal,
        user_id: &str,
        enabled: bool,
    ) -> Result<User, Error> {
        self.require_recent_authentication(admin)?;
        if admin.user.id == user_id {
            return Err(Error::Validation(
                "an admin cannot disable or enable their own account".into(),
            ));
        }
        let user = self.target(user_id).await?;
        if user.status == UserStatus::Pending {
            return Err(Error::Validation(
                "the account has not been set up yet".into(),
            ));
        }
        let (status, action) = if enabled {
            (UserStatus::Active, "user.enable")
        } else {
            (UserStatus::Disabled, "user.disable")
        };
        let audit = admin.actor().record(action).target(user_ref(user_id));
        self.store.set_status(user_id, status, now(), audit).await?;
        self.target(user_id).await
    }

    /// Issues a fresh setup token, wiping the account's credentials (lost authenticator).
    pub async fn reset_setup(&self, actor: &Actor, user_id: &str) -> Result<Secret<String>, Error> {
        self.target(user_id).await?;
        let setup = token::generate(TokenKind::Setup);
        let audit = actor.record("user.reset").target(user_ref(user_id));
        self.store
            .reset_setup(
                user_id,
                &token::hash(setup.expose()),
                now() + policy::SETUP_TOKEN_SECONDS,
                audit,
            )
            .await?;
        Ok(setup)
    }

    /// A one-time portal setup token for customer `customer_id` (who must exist; checked by the
    /// caller): a new pending portal account, or, for one that exists, its credentials wiped and
    /// a new token (a customer who lost their authenticator). The portal sign-in name is the
    /// customer id.
    pub async fn invite_customer(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<Secret<String>, Error> {
        let setup = token::generate(TokenKind::Setup);
        let now = now();
        if let Some(existing) = self.store.user_by_username(customer_id).await? {
            if existing.role != Role::Customer {
                return Err(internal("a staff account has a customer's id as its name"));
            }
            let audit = actor
                .record("portal.invite")
                .target(crate::principal::customer_ref(customer_id))
                .detail("account", user_ref(&existing.id))
                .detail("reset", true);
            self.store
                .reset_setup(
                    &existing.id,
                    &token::hash(setup.expose()),
                    now + policy::SETUP_TOKEN_SECONDS,
                    audit,
                )
                .await?;
            return Ok(setup);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let audit = actor
            .record("portal.invite")
            .target(crate::principal::customer_ref(customer_id))
            .detail("account", user_ref(&id))
            .detail("reset", false);
        self.store
            .create_pending_user(
                NewPendingUser {
                    id,
                    username: customer_id.to_owned(),
                    role: Role::Customer,
                    setup_token_hash: token::hash(setup.expose()),
                    setup_expires_at: now + policy::SETUP_TOKEN_SECONDS,
                    created_at: now,
                },
                audit,
            )
            .await?;
        Ok(setup)
    }

    /// Disables a customer's portal account and ends its sessions (after erasure).
    pub async fn close_portal_account(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<(), Error> {
        if let Some(u) = self
            .store
            .user_by_username(customer_id)
            .await?
            .filter(|u| u.role == Role::Customer)
        {
            let audit = actor
                .record("portal.close")
                .target(crate::principal::customer_ref(customer_id))
                .detail("account", user_ref(&u.id));
            self.store
                .set_status(&u.id, UserStatus::Disabled, now(), audit)
                .await?;
        }
        Ok(())
    }

    pub async fn admin_reset_setup(
        &self,
        admin: &Principal,
        user_id: &str,
    ) -> Result<Secret<String>, Error> {
        self.require_recent_authentication(admin)?;
        if admin.user.id == user_id {
            return Err(Error::Validation(
                "an admin cannot reset their own account".into(),
            ));
        }
        self.reset_setup(&admin.actor(), user_id).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, Error> {
        let mut users = self.store.list_users().await?;
        users.retain(|u| u.role.is_staff());
        Ok(users)
    }

    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<Session>, Error> {
        let now = now();
        Ok(self
            .store
            .sessions_of(&principal.user.id)
            .await?
            .into_iter()
            .filter(|s| s.is_live(now))
            .collect())
    }

    /// Ends one of the principal's own sessions.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), Error> {
        let own = self.store.sessions_of(&principal.user.id).await?;
        if !own.iter().any(|s| s.id == session_id) {
            return Err(Error::NotFound);
        }
        let audit = principal
            .actor()
            .record("session.revoke")
            .target(format!("session:{session_id}"));
        self.store.delete_session(session_id, audit).await?;
        Ok(())
    }

    /// Replaces the principal's recovery codes; needs a recent re-authentication.
    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Secret<String>>, Error> {
        self.require_recent_authentication(principal)?;
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
        self.store
            .replace_recovery_codes(&principal.user.id, &hashes, audit)
            .await?;
        Ok(codes)
    }

    pub async fn unused_recovery_codes(&self, principal: &Principal) -> Result<i64, Error> {
        Ok(self.store.unused_recovery_codes(&principal.user.id).await?)
    }

    fn webauthn(&self) -> Result<&Webauthn, Error> {
        self.webauthn
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
        self.store
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
            .store
            .challenge(&ch_hash, "passkey-registration", now())
            .await?
            .filter(|c| c.user_id == principal.user.id)
            .ok_or(Error::ChallengeInvalid)?;
        if !self.store.delete_challenge(&ch_hash).await? {
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
        self.store
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
        Ok(self.store.passkeys_of(&principal.user.id).await?)
    }

    pub async fn delete_passkey(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        let audit = principal
            .actor()
            .record("passkey.remove")
            .target(format!("passkey:{id}"));
        if self
            .store
            .delete_passkey(&principal.user.id, id, audit)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Housekeeping: drop expired sessions and challenges, disable dormant accounts.
    pub async fn sweep(&self) -> Result<(), Error> {
        let now = now();
        self.store
            .delete_expired_sessions(
                now - policy::SESSION_IDLE_SECONDS,
                now - policy::SESSION_ABSOLUTE_SECONDS,
            )
            .await?;
        self.store.delete_expired_challenges(now).await?;
        let audit = Actor {
            id: "system".into(),
            source: None,
        }
        .record("user.disable")
        .detail("reason", "dormant_90_days");
        for id in self
            .store
            .disable_dormant(now - policy::DORMANT_SECONDS, audit)
            .await?
        {
            tracing::warn!(user_id = %id, "account disabled after 90 days without use");
        }
        Ok(())
    }
}

/// The outcome of checking a second factor, before anything is spent.
enum Checked {
    Accepted(SpentFactor),
    Rejected { totp_step: Option<i64> },
}

/// A new session for `user_id` (not yet stored) and its token.
fn new_session(user_id: &str, ctx: &RequestContext) -> (Secret<String>, Session) {
    let now = now();
    let token = token::generate(TokenKind::Session);
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        created_at: now,
        last_seen_at: now,
        reauth_at: now,
        source: ctx.source.to_string(),
        user_agent: ctx.user_agent.chars().take(200).collect(),
    };
    (token, session)
}

fn factor_name(f: &SecondFactor) -> &'static str {
    match f {
        SecondFactor::Totp(_) => "totp",
        SecondFactor::Recovery(_) => "recovery",
        SecondFactor::WebAuthn(_) => "webauthn",
    }
}
