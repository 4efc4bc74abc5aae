//! Sign-in over the JSON API for both audiences: staff at `/api/v1/auth/*`, customers at
//! `/api/v1/portal/auth/*`. One handler set; the audience is a type parameter, so the portal can
//! never admit staff nor the staff endpoints a customer.

use super::service::SecondFactor;
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{exposed, route, ApiRoute};
use crate::principal::{AudienceKind, PortalSide, Principal, RequestContext, StaffSide};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use callguard_core::{rfc3339, Permission, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time setup token from `callguard user add` or `POST /api/v1/users`.
    pub token: Secret<String>,
    /// The new password: at least 12 characters, not a common password.
    pub password: Secret<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct SetupResponse {
    /// Answer this challenge with a code from the authenticator at `/api/v1/auth/setup/confirm`.
    pub challenge: String,
    /// The TOTP secret in base32, for typing into an authenticator app.
    pub totp_secret: String,
    /// The same secret as an `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupConfirmRequest {
    pub challenge: Secret<String>,
    /// A current six-digit code from the authenticator.
    pub code: Secret<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct SetupConfirmResponse {
    /// A session token: send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    pub expires_at: String,
    /// Ten single-use recovery codes; shown once, keep them safe.
    pub recovery_codes: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: Secret<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct LoginResponse {
    /// Answer this challenge with a second factor at `/api/v1/auth/mfa`.
    pub challenge: String,
    /// The second factors this account can use: `totp`, `recovery`, `webauthn`.
    pub methods: Vec<String>,
    /// WebAuthn request options (for `navigator.credentials.get`) when `webauthn` is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<serde_json::Value>,
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MfaMethod {
    Totp,
    Recovery,
    Webauthn,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    pub challenge: Secret<String>,
    pub method: MfaMethod,
    /// The TOTP code, the recovery code, or the WebAuthn assertion as a JSON string.
    pub code: Secret<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct SessionResponse {
    pub token: String,
    pub expires_at: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    pub password: Secret<String>,
    pub method: MfaMethod,
    pub code: Secret<String>,
}

fn factor(method: MfaMethod, code: Secret<String>) -> SecondFactor {
    match method {
        MfaMethod::Totp => SecondFactor::Totp(code),
        MfaMethod::Recovery => SecondFactor::Recovery(code),
        MfaMethod::Webauthn => SecondFactor::WebAuthn(code),
    }
}

async fn setup<A: AudienceKind>(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<SetupRequest>,
) -> Result<Json<SetupResponse>, Error> {
    let started = s
        .identity
        .begin_setup_as(A::AUDIENCE, &r.token, r.password, &ctx)
        .await?;
    Ok(Json(SetupResponse {
        challenge: started.challenge.expose().clone(),
        totp_secret: started.totp_secret.expose().clone(),
        otpauth_uri: started.otpauth_uri.expose().clone(),
    }))
}

async fn setup_confirm<A: AudienceKind>(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<SetupConfirmRequest>,
) -> Result<Json<SetupConfirmResponse>, Error> {
    let signed = s
        .identity
        .confirm_setup_as(A::AUDIENCE, &r.challenge, &r.code, &ctx)
        .await?;
    Ok(Json(SetupConfirmResponse {
        token: signed.token.expose().clone(),
        expires_at: rfc3339(signed.expires_at),
        recovery_codes: exposed(&signed.recovery_codes),
    }))
}

async fn login<A: AudienceKind>(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let started = s
        .identity
        .begin_sign_in_as(A::AUDIENCE, &r.username, r.password, &ctx)
        .await?;
    Ok(Json(LoginResponse {
        challenge: started.challenge.expose().clone(),
        methods: started.methods.iter().map(|m| (*m).to_owned()).collect(),
        webauthn: started.webauthn_options,
    }))
}

async fn mfa<A: AudienceKind>(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<MfaRequest>,
) -> Result<Json<SessionResponse>, Error> {
    let signed = s
        .identity
        .finish_sign_in_as(A::AUDIENCE, &r.challenge, factor(r.method, r.code), &ctx)
        .await?;
    Ok(Json(SessionResponse {
        token: signed.token.expose().clone(),
        expires_at: rfc3339(signed.expires_at),
    }))
}

async fn logout(State(s): State<AppState>, p: Principal) -> Result<StatusCode, Error> {
    s.identity.sign_out(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reauth(
    State(s): State<AppState>,
    mut p: Principal,
    ctx: RequestContext,
    ApiJson(r): ApiJson<ReauthRequest>,
) -> Result<StatusCode, Error> {
    s.identity
        .reauthenticate(&mut p, r.password, factor(r.method, r.code), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::{Public, Signed};
    use Permission::*;
    vec![
        route("POST", "/api/v1/auth/setup", Public, "First-time setup, step 1: setup token and new password; returns the TOTP secret to enrol.", post(setup::<StaffSide>))
            .takes::<SetupRequest>().gives::<SetupResponse>(200).may(&[401, 422, 429, 503]),
        route("POST", "/api/v1/auth/setup/confirm", Public, "First-time setup, step 2: a code from the new authenticator; returns a session and ten recovery codes.", post(setup_confirm::<StaffSide>))
            .takes::<SetupConfirmRequest>().gives::<SetupConfirmResponse>(200).may(&[401, 429]),
        route("POST", "/api/v1/auth/login", Public, "Sign-in, step 1: username and password; returns a challenge for the second factor (never a session).", post(login::<StaffSide>))
            .takes::<LoginRequest>().gives::<LoginResponse>(200).may(&[401, 403, 429, 503]),
        route("POST", "/api/v1/auth/mfa", Public, "Sign-in, step 2: TOTP code, recovery code or WebAuthn assertion; returns a session token.", post(mfa::<StaffSide>))
            .takes::<MfaRequest>().gives::<SessionResponse>(200).may(&[401, 403, 429]),
        route("POST", "/api/v1/portal/auth/setup", Public, "Portal setup, step 1: the token from `callguard customer invite` and a new password; returns the TOTP secret to enrol.", post(setup::<PortalSide>))
            .takes::<SetupRequest>().gives::<SetupResponse>(200).may(&[401, 422, 429, 503]),
        route("POST", "/api/v1/portal/auth/setup/confirm", Public, "Portal setup, step 2: a code from the new authenticator; returns a session and ten recovery codes.", post(setup_confirm::<PortalSide>))
            .takes::<SetupConfirmRequest>().gives::<SetupConfirmResponse>(200).may(&[401, 429]),
        route("POST", "/api/v1/portal/auth/login", Public, "Portal sign-in, step 1: customer id and password (customer accounts only).", post(login::<PortalSide>))
            .takes::<LoginRequest>().gives::<LoginResponse>(200).may(&[401, 403, 429, 503]),
        route("POST", "/api/v1/portal/auth/mfa", Public, "Portal sign-in, step 2: TOTP or recovery code; returns a session token.", post(mfa::<PortalSide>))
            .takes::<MfaRequest>().gives::<SessionResponse>(200).may(&[401, 403, 429]),
        route("POST", "/api/v1/auth/logout", Signed(OwnAccount), "Ends the current session.", post(logout)),
        route("POST", "/api/v1/auth/reauth", Signed(OwnAccount), "Confirms password and second factor again; sensitive actions need this within 5 minutes.", post(reauth))
            .takes::<ReauthRequest>().may(&[429, 503]),
    ]
}
