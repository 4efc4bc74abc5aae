//! First-time setup of an account (staff or portal): the setup token and a new password, then
//! the first authenticator code; the account becomes active and gets its recovery codes.

use crate::error::Error;
use crate::principal::{Actor, Audience, RequestContext};
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity as policy;
use callguard_core::kek::Sealing;
use callguard_core::token::{self, TokenKind};
use callguard_core::totp::TotpSecret;
use callguard_core::{now, password, Secret};
use callguard_store::{Challenge, CompletedSetup, FailedAttempt};

use super::service::*;

impl Identity {
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
        let address = self.admit_address(ctx).await?;
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
                    address,
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
        let address = self.admit_address(ctx).await?;
        let now = now();
        let ch_hash = token::hash(challenge.expose());
        // One answer is taken on the challenge before the code is checked.
        let owner_admitted = self
            .store
            .take_challenge(&ch_hash, "setup", policy::CHALLENGE_ATTEMPTS, None, now)
            .await?
            .filter(|t| audience.admits(t.user.role))
            .map(|t| (t.challenge, t.user));
        let Some((ch, owner)) = owner_admitted else {
            return Err(self
                .refuse(
                    "auth.setup",
                    "invalid_challenge",
                    Error::ChallengeInvalid,
                    address,
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
                .fail(attempt, audit, Error::SecondFactorRejected, address, false)
                .await);
        };
        let codes: Vec<Secret<String>> = (0..token::RECOVERY_CODES)
            .map(|_| token::recovery_code())
            .collect();
        let (token, session) = new_session(&self.kek, &ch.user_id, ctx);
        let created_by = self
            .store
            .provenance(&ch.user_id)
            .await?
            .and_then(|p| p.created_by)
            .unwrap_or_else(|| "unknown".into());
        let audit = Actor {
            id: user_ref(&ch.user_id),
            source: Some(ctx.source.to_string()),
        }
        .record("auth.setup")
        .target(user_ref(&ch.user_id))
        .detail("second_factor", "totp")
        .detail("session", session.id.clone())
        // The account's first sign-in: who holds it now, and who created it (alerted for
        // privileged roles).
        .detail("role", owner.role.as_str())
        .detail("created_by", created_by);
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
}
