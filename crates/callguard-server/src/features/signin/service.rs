//! Staff sign-in as a service (SPEC C1): first-time setup, password then second factor,
//! sessions, re-authentication, account administration. HTTP handlers and web pages both call
//! this; neither makes a security decision of its own.

use super::address::AddressLimits;
use crate::error::Error;
use crate::hasher::Hasher;
use crate::metrics::Metrics;
use crate::principal::{Actor, Principal, RequestContext};
use callguard_core::audit::record::user as user_ref;
use callguard_core::audit::AuditRecord;
use callguard_core::identity::{self as policy, Session, User, UserStatus};
use callguard_core::kek::{Keyring, Sealing};
use callguard_core::throttle::Refusal;
use callguard_core::token::{self, TokenKind};
use callguard_core::totp::{self, TotpSecret};
use callguard_core::{now, password, Role, Secret, UnixTime};
use callguard_store::{
    Admission, AttemptRule, Credentials, FailedAttempt, NewActiveUser, NewPendingUser, SpentFactor,
    Store, StoreError,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, Webauthn,
};

/// How long an attempt may wait for earlier attempts from its address to be settled before it
/// is turned away (see [`Identity::admit_address`]).
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often an attempt waiting on a shared (PostgreSQL) address entry looks again.
const SHARED_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Name shown in authenticator apps next to the account.
pub const ISSUER: &str = "Callguard";
pub(crate) const SETUP_CHALLENGE_SECONDS: i64 = 15 * 60;

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

impl SecondFactor {
    /// A code typed into a form: six digits are an authenticator code, anything else a
    /// recovery code.
    #[must_use]
    pub fn typed(code: String) -> Self {
        let code = Secret::new(code);
        if code.expose().trim().len() == callguard_core::totp::DIGITS as usize {
            SecondFactor::Totp(code)
        } else {
            SecondFactor::Recovery(code)
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SetupPayload {
    pub(crate) setup_token_hash: String,
    pub(crate) password_hash: String,
    pub(crate) totp_sealed: String,
}

#[derive(Serialize, Deserialize, Default)]
pub(crate) struct SignInPayload {
    pub(crate) webauthn: Option<PasskeyAuthentication>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PasskeyRegistrationPayload {
    pub(crate) state: PasskeyRegistration,
}

pub(crate) fn totp_aad(user_id: &str) -> String {
    format!("callguard:totp:{user_id}")
}

pub(crate) fn internal(what: &str) -> Error {
    tracing::error!(what, "identity service failure");
    Error::Internal
}

/// The staff identity service.
pub struct Identity {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) kek: Arc<Keyring>,
    pub(crate) hasher: Hasher,
    pub(crate) throttle: AddressLimits,
    pub(crate) throttle_alarm: super::throttle_alarm::ThrottleAlarm,
    /// Woken whenever an attempt is settled, for attempts waiting on their address.
    pub(crate) settled: Arc<tokio::sync::Notify>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) webauthn: Option<Arc<Webauthn>>,
}

impl Identity {
    pub fn new(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        hasher: Hasher,
        metrics: Arc<Metrics>,
        webauthn: Option<Arc<Webauthn>>,
    ) -> Self {
        let throttle_store = store.clone();
        Self {
            store,
            kek,
            hasher,
            throttle: AddressLimits::for_store(&throttle_store),
            throttle_alarm: super::throttle_alarm::ThrottleAlarm::default(),
            settled: Arc::new(tokio::sync::Notify::new()),
            metrics,
            webauthn,
        }
    }

    /// Creates a pending account and returns its one-time setup token (valid 72 hours).
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<(User, Secret<String>), Error> {
        policy::check_username(username).map_err(|e| Error::Validation(e.to_string()))?;
        if role == Role::Telephony {
            return Err(Error::Validation(
                "`telephony` is a service account, not a person: issue its API token with `callguard telephony token issue`".into(),
            ));
        }
        if !role.is_staff() {
            return Err(Error::Validation(
                "`customer` is not a staff role: customers get portal accounts with `callguard customer invite CUSTOMER_ID`".into(),
            ));
        }
        let setup = token::generate(TokenKind::Setup);
        let now = now();
        let id = uuid::Uuid::new_v4().to_string();
        // The operator at the CLI vouches for whom they hand the token to; an admin does not
        // (a compliance account an admin creates waits for another officer's confirmation).
        let confirmed_by = (actor.id == Actor::cli().id).then(|| actor.id.clone());
        let mut audit = actor
            .record("user.create")
            .target(user_ref(&id))
            .detail("role", role.as_str())
            .detail("created_by", actor.id.clone());
        if let Some(by) = confirmed_by.as_ref().filter(|_| role == Role::Compliance) {
            audit = audit.detail("confirmed_by", by.clone());
        }
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
                    created_by: actor.id.clone(),
                    confirmed_by,
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
            .detail("ready", true)
            .detail("created_by", Actor::cli().id)
            .detail("confirmed_by", Actor::cli().id);
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
                    created_by: Actor::cli().id,
                    confirmed_by: Some(Actor::cli().id),
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

    /// Admits one attempt from the request's address under the per-address rule, before
    /// anything is checked; it counts as a failure until settled (see
    /// [`callguard_core::throttle`]). While earlier attempts from the address are still being
    /// checked and would use up its free failures, this waits (at most [`ADMISSION_WAIT`]) for
    /// them, so that a burst of right passwords from one address (many people behind one NAT)
    /// is served in turn rather than refused.
    pub(crate) async fn admit_address(
        &self,
        ctx: &RequestContext,
    ) -> Result<AddressAttempt<'_>, Error> {
        let deadline = tokio::time::Instant::now() + ADMISSION_WAIT;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            // Registered before looking, so that a settlement in between is not missed.
            settled.as_mut().enable();
            match self.throttle.admit(ctx.source, now()).await {
                Ok(()) => {
                    return Ok(AddressAttempt {
                        identity: self,
                        source: ctx.source,
                        failed: false,
                    })
                }
                Err(Refusal::Wait(wait)) => {
                    self.metrics.sign_in("throttled");
                    self.note_throttled(ctx, now());
                    return Err(Error::Throttled(wait));
                }
                Err(Refusal::Settling) => {
                    // Other nodes' settlements wake nobody here: look again now and then.
                    let look_again = if self.throttle.is_shared() {
                        deadline.min(tokio::time::Instant::now() + SHARED_POLL)
                    } else {
                        deadline
                    };
                    if tokio::time::timeout_at(look_again, settled).await.is_err()
                        && tokio::time::Instant::now() >= deadline
                    {
                        self.metrics.sign_in("throttled");
                        self.note_throttled(ctx, now());
                        return Err(Error::Throttled(1));
                    }
                }
            }
        }
    }

    /// The limits an attempt against an account is admitted under; `totp_step` for a TOTP code.
    pub(crate) fn attempt_rule(now: UnixTime, totp_step: Option<i64>) -> AttemptRule {
        AttemptRule {
            now,
            lockout_max: policy::MAX_FAILED_SIGN_INS,
            lock_until: now + policy::LOCKOUT_SECONDS,
            totp: totp_step.map(|step| (step, totp::MAX_FAILURES_PER_STEP)),
        }
    }

    /// Records a failed attempt (audit entry; the account counted it when it was admitted) and
    /// settles its address as failed. Answers `shown`, or `AccountLocked` when this failure
    /// locked the account and `tell_lock` (only where the password was proven before: never on
    /// the password step, whose answers must not tell a locked account from others).
    pub(crate) async fn fail(
        &self,
        attempt: FailedAttempt,
        audit: AuditRecord,
        shown: Error,
        mut address: AddressAttempt<'_>,
        tell_lock: bool,
    ) -> Error {
        address.fail();
        let now = now();
        let attempt = FailedAttempt {
            now,
            challenge_max: policy::CHALLENGE_ATTEMPTS,
            ..attempt
        };
        match self.store.fail_attempt(attempt, audit).await {
            Ok(recorded) if recorded.locked => {
                self.metrics.lockout();
                if let Some(u) = &recorded.user {
                    tracing::warn!(user_id = %u.id, "account locked after too many failed sign-ins");
                }
                if tell_lock {
                    Error::AccountLocked
                } else {
                    shown
                }
            }
            Ok(_) => shown,
            Err(e) => e.into(),
        }
    }

    /// A refusal that names no account (unknown token or challenge): audited and throttled.
    pub(crate) async fn refuse(
        &self,
        action: &str,
        reason: &str,
        shown: Error,
        address: AddressAttempt<'_>,
        ctx: &RequestContext,
    ) -> Error {
        let audit = Actor::anonymous(ctx)
            .record(action)
            .failure()
            .detail("reason", reason.to_owned());
        self.fail(FailedAttempt::default(), audit, shown, address, false)
            .await
    }

    pub(crate) async fn passkeys(&self, user_id: &str) -> Result<Vec<Passkey>, Error> {
        Ok(self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str(&p.passkey).ok())
            .collect())
    }

    /// Checks a second factor for `user` without spending it; `webauthn_state` is the state of
    /// step one. The attempt must have been admitted first (the TOTP step's wrong codes are
    /// counted there); the store spends an accepted factor atomically with what it unlocks.
    pub(crate) async fn check_second_factor(
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
                let sealed = creds.totp_sealed.ok_or_else(|| internal("no totp"))?;
                let secret = self
                    .kek
                    .open(&sealed, &totp_aad(&user.id))
                    .map_err(|_| internal("totp open"))?;
                let secret = TotpSecret::from_bytes(secret.expose().clone());
                Ok(
                    match secret.verify(code.expose(), now, creds.totp_last_step) {
                        Some(matched) => Checked::Accepted(SpentFactor::TotpStep(matched)),
                        None => Checked::Rejected,
                    },
                )
            }
            SecondFactor::Recovery(code) => Ok(Checked::Accepted(SpentFactor::RecoveryCode(
                token::hash_recovery_code(code.expose()),
            ))),
            SecondFactor::WebAuthn(assertion) => {
                let rejected = Checked::Rejected;
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

    /// The person behind a session token, or `Unauthenticated`. Ends sessions that are idle,
    /// too old, or whose account is no longer active.
    pub async fn authenticate(
        &self,
        session_token: &str,
        source: IpAddr,
    ) -> Result<Principal, Error> {
        let now = now();
        let (session, user) = self
            .store
            .session_with_user(&token::hash(session_token))
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !session.is_live(now) {
            self.store.expire_session(&session.id).await?;
            return Err(Error::Unauthenticated);
        }
        let user = match user {
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

    /// Confirms password and second factor again for sensitive actions. One admitted attempt
    /// against the account covers both (and the TOTP step, for a code).
    pub async fn reauthenticate(
        &self,
        principal: &mut Principal,
        password: Secret<String>,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<(), Error> {
        let address = self.admit_address(ctx).await?;
        let permit = self.hasher.reserve()?;
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
        let totp_step = matches!(factor, SecondFactor::Totp(_)).then(|| totp::step_of(now));
        let rule = Self::attempt_rule(now, totp_step);
        let ticket = match self
            .store
            .admit_attempt(Some(&principal.user.id), &rule)
            .await?
        {
            Admission::Admitted(t) => t,
            Admission::Locked => {
                self.store.append(vec![failure("account_locked")]).await?;
                return Err(Error::AccountLocked);
            }
            Admission::TotpLocked => {
                self.store.append(vec![failure("totp_locked")]).await?;
                return Err(Error::TotpLocked(totp::end_of_step(now) - now));
            }
            Admission::Unavailable => return Err(Error::Unauthenticated),
        };
        let hash = self
            .store
            .credentials(&principal.user.id)
            .await?
            .and_then(|c| c.password_hash);
        let attempt = FailedAttempt {
            ticket: Some(ticket.clone()),
            ..FailedAttempt::default()
        };
        if !self.hasher.verify_reserved(permit, password, hash).await? {
            return Err(self
                .fail(
                    attempt,
                    failure("invalid_credentials"),
                    Error::InvalidCredentials,
                    address,
                    true,
                )
                .await);
        }
        let checked = self
            .check_second_factor(&principal.user, None, &factor, None)
            .await?;
        if let Checked::Accepted(spent) = checked {
            let audit = principal
                .actor()
                .record("auth.reauthenticate")
                .target(user_ref(&principal.user.id))
                .detail("method", method);
            if self
                .store
                .complete_reauthentication(&principal.session.id, &ticket, spent, now, audit)
                .await?
            {
                principal.session.reauth_at = now;
                return Ok(());
            }
        }
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

    /// Refuses unless the principal confirmed their credentials within the last five minutes.
    pub fn require_recent_authentication(&self, principal: &Principal) -> Result<(), Error> {
        if principal.session.recently_authenticated(now()) {
            Ok(())
        } else {
            Err(Error::ReauthenticationRequired)
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
        self.throttle
            .forget_quiet(now - callguard_core::throttle::FORGET_AFTER_SECONDS)
            .await?;
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
pub(crate) enum Checked {
    Accepted(SpentFactor),
    Rejected,
}

/// One attempt admitted from an address (see [`Identity::admit_address`]). Settled when dropped:
/// as a failure after [`AddressAttempt::fail`], otherwise as no failure (a right answer, or an
/// attempt that ended before anything was checked).
pub(crate) struct AddressAttempt<'a> {
    identity: &'a Identity,
    source: IpAddr,
    failed: bool,
}

impl AddressAttempt<'_> {
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }
}

impl Drop for AddressAttempt<'_> {
    fn drop(&mut self) {
        self.identity
            .throttle
            .settle(self.source, now(), self.failed, &self.identity.settled);
    }
}

/// A new session for `user_id` (not yet stored) and its token. The user agent is sealed by the
/// key-encryption key, bound to the session ([`user_agent_aad`]).
pub(crate) fn new_session(
    kek: &Keyring,
    user_id: &str,
    ctx: &RequestContext,
) -> (Secret<String>, Session) {
    let now = now();
    let token = token::generate(TokenKind::Session);
    let id = uuid::Uuid::new_v4().to_string();
    let user_agent: String = ctx.user_agent.chars().take(200).collect();
    let session = Session {
        user_agent: callguard_core::kek::seal_text(kek, &user_agent, &user_agent_aad(&id)),
        id,
        user_id: user_id.to_owned(),
        created_at: now,
        last_seen_at: now,
        reauth_at: now,
        source: ctx.source.to_string(),
    };
    (token, session)
}

/// Associated data of a session's sealed user agent.
pub(crate) fn user_agent_aad(session_id: &str) -> String {
    format!("callguard:session-user-agent:{session_id}")
}

pub(crate) fn factor_name(f: &SecondFactor) -> &'static str {
    match f {
        SecondFactor::Totp(_) => "totp",
        SecondFactor::Recovery(_) => "recovery",
        SecondFactor::WebAuthn(_) => "webauthn",
    }
}
