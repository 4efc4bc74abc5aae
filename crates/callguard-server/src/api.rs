//! The JSON API: wire types and thin handlers (extract, call the identity service, map). The
//! route table at the bottom is the single list from which the router, the access checks and
//! the OpenAPI document are all built.

use crate::access::{Access, ApiJson};
use crate::error::ApiError;
use crate::identity::{Principal, RequestContext, SecondFactor};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use callguard_core::identity::{Session, User, UserStatus};
use callguard_core::{rfc3339, Permission, Role, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// ---- wire types -------------------------------------------------------------------------

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

#[derive(Serialize, JsonSchema)]
pub struct MeResponse {
    pub id: String,
    pub username: String,
    pub role: Role,
}

#[derive(Serialize, JsonSchema)]
pub struct SessionView {
    pub id: String,
    pub current: bool,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub source: String,
    pub user_agent: String,
}

#[derive(Serialize, JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Serialize, JsonSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub role: Role,
}

#[derive(Serialize, JsonSchema)]
pub struct CreateUserResponse {
    pub id: String,
    /// One-time setup token for the new person, valid 72 hours. Hand it over out of band.
    pub setup_token: String,
}

#[derive(Serialize, JsonSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub status: UserStatus,
    pub locked: bool,
    pub failed_sign_ins: i64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    pub role: Role,
}

#[derive(Serialize, JsonSchema)]
pub struct SetupTokenResponse {
    pub setup_token: String,
}

#[derive(Serialize, JsonSchema)]
pub struct PasskeyRegistrationStart {
    /// Send back with the credential to `POST /api/v1/me/passkeys`.
    pub challenge: String,
    /// Options for `navigator.credentials.create` (base64url-encoded binary fields).
    pub options: serde_json::Value,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegistrationFinish {
    pub challenge: Secret<String>,
    /// A name to tell passkeys apart, e.g. "laptop".
    pub name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, binary fields base64url.
    pub credential: serde_json::Value,
}

#[derive(Serialize, JsonSchema)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    pub status: String,
}

pub fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id.clone(),
        username: u.username.clone(),
        role: u.role,
        status: u.status,
        locked: u.is_locked(callguard_core::now()),
        failed_sign_ins: u.failed_sign_ins,
        created_at: rfc3339(u.created_at),
        last_sign_in_at: u.last_sign_in_at.map(rfc3339),
    }
}

pub fn session_view(s: &Session, current_id: &str) -> SessionView {
    SessionView {
        id: s.id.clone(),
        current: s.id == current_id,
        created_at: rfc3339(s.created_at),
        last_seen_at: rfc3339(s.last_seen_at),
        expires_at: rfc3339(s.expires_at()),
        source: s.source.clone(),
        user_agent: s.user_agent.clone(),
    }
}

fn factor(method: MfaMethod, code: Secret<String>) -> SecondFactor {
    match method {
        MfaMethod::Totp => SecondFactor::Totp(code),
        MfaMethod::Recovery => SecondFactor::Recovery(code),
        MfaMethod::Webauthn => SecondFactor::WebAuthn(code),
    }
}

fn reveal(codes: &[Secret<String>]) -> Vec<String> {
    codes.iter().map(|c| c.expose().clone()).collect()
}

// ---- handlers ---------------------------------------------------------------------------

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.identity.store().ping().await {
        Ok(()) => Json(Health {
            status: "ready".into(),
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "database unavailable".into(),
                }),
            )
                .into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn openapi_json() -> Response {
    Json(crate::openapi::document()).into_response()
}

async fn setup(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<SetupRequest>,
) -> Result<Json<SetupResponse>, ApiError> {
    let started = s.identity.begin_setup(&r.token, r.password, &ctx).await?;
    Ok(Json(SetupResponse {
        challenge: started.challenge.expose().clone(),
        totp_secret: started.totp_secret.expose().clone(),
        otpauth_uri: started.otpauth_uri.expose().clone(),
    }))
}

async fn setup_confirm(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<SetupConfirmRequest>,
) -> Result<Json<SetupConfirmResponse>, ApiError> {
    let signed = s
        .identity
        .confirm_setup(&r.challenge, &r.code, &ctx)
        .await?;
    Ok(Json(SetupConfirmResponse {
        token: signed.token.expose().clone(),
        expires_at: rfc3339(signed.expires_at),
        recovery_codes: reveal(&signed.recovery_codes),
    }))
}

async fn login(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let started = s
        .identity
        .begin_sign_in(&r.username, r.password, &ctx)
        .await?;
    Ok(Json(LoginResponse {
        challenge: started.challenge.expose().clone(),
        methods: started.methods.iter().map(|m| (*m).to_owned()).collect(),
        webauthn: started.webauthn_options,
    }))
}

async fn mfa(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<MfaRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let signed = s
        .identity
        .finish_sign_in(&r.challenge, factor(r.method, r.code), &ctx)
        .await?;
    Ok(Json(SessionResponse {
        token: signed.token.expose().clone(),
        expires_at: rfc3339(signed.expires_at),
    }))
}

async fn logout(State(s): State<AppState>, p: Principal) -> Result<StatusCode, ApiError> {
    s.identity.sign_out(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reauth(
    State(s): State<AppState>,
    mut p: Principal,
    ctx: RequestContext,
    ApiJson(r): ApiJson<ReauthRequest>,
) -> Result<StatusCode, ApiError> {
    s.identity
        .reauthenticate(&mut p, r.password, factor(r.method, r.code), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(p: Principal) -> Json<MeResponse> {
    Json(MeResponse {
        id: p.user.id,
        username: p.user.username,
        role: p.user.role,
    })
}

async fn my_sessions(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = s.identity.sessions(&p).await?;
    Ok(Json(SessionList {
        sessions: sessions
            .iter()
            .map(|x| session_view(x, &p.session.id))
            .collect(),
    }))
}

async fn revoke_session(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.identity.revoke_session(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate_codes(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let codes = s.identity.regenerate_recovery_codes(&p).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: reveal(&codes),
    }))
}

async fn list_passkeys(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<PasskeyList>, ApiError> {
    let list = s.identity.passkey_list(&p).await?;
    Ok(Json(PasskeyList {
        passkeys: list
            .iter()
            .map(|k| PasskeyView {
                id: k.id.clone(),
                name: k.name.clone(),
                created_at: rfc3339(k.created_at),
                last_used_at: k.last_used_at.map(rfc3339),
            })
            .collect(),
    }))
}

async fn start_passkey(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<PasskeyRegistrationStart>, ApiError> {
    let (challenge, options) = s.identity.begin_passkey_registration(&p).await?;
    Ok(Json(PasskeyRegistrationStart {
        challenge: challenge.expose().clone(),
        options,
    }))
}

async fn finish_passkey(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<PasskeyRegistrationFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let k = s
        .identity
        .finish_passkey_registration(&p, &r.challenge, &r.name, &r.credential)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PasskeyView {
            id: k.id,
            name: k.name,
            created_at: rfc3339(k.created_at),
            last_used_at: None,
        }),
    ))
}

async fn delete_passkey(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.identity.delete_passkey(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_users(State(s): State<AppState>) -> Result<Json<UserList>, ApiError> {
    let users = s.identity.list_users().await?;
    Ok(Json(UserList {
        users: users.iter().map(user_view).collect(),
    }))
}

async fn create_user(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreateUserResponse>), ApiError> {
    let (user, token) = s
        .identity
        .admin_create_user(&p, &r.username, r.role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateUserResponse {
            id: user.id,
            setup_token: token.expose().clone(),
        }),
    ))
}

async fn unlock_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(user_view(&s.identity.admin_unlock(&p, &id).await?)))
}

async fn set_role(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SetRoleRequest>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(user_view(
        &s.identity.admin_set_role(&p, &id, r.role).await?,
    )))
}

async fn enable_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(user_view(
        &s.identity.admin_set_enabled(&p, &id, true).await?,
    )))
}

async fn disable_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(user_view(
        &s.identity.admin_set_enabled(&p, &id, false).await?,
    )))
}

async fn reset_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<SetupTokenResponse>, ApiError> {
    let token = s.identity.admin_reset_setup(&p, &id).await?;
    Ok(Json(SetupTokenResponse {
        setup_token: token.expose().clone(),
    }))
}

// ---- audit log ---------------------------------------------------------------------------

#[derive(Serialize, JsonSchema)]
pub struct AuditPage {
    /// The size of the log when this page was read.
    pub tree_size: u64,
    /// Entries in index order, each exactly the object whose RFC 8785 form is its Merkle leaf.
    pub entries: Vec<serde_json::Value>,
}

#[derive(Serialize, JsonSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    /// Base64 SHA-256 hashes, nearest the leaf first (RFC 9162 §2.1.3).
    pub hashes: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// Base64 SHA-256 hashes (RFC 9162 §2.1.4).
    pub hashes: Vec<String>,
}

type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

fn number(q: &Params, name: &str, default: Option<u64>) -> Result<u64, ApiError> {
    match q.get(name) {
        Some(v) => v.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter `{name}` must be a non-negative integer"
            ))
        }),
        None => default
            .ok_or_else(|| ApiError::BadRequest(format!("query parameter `{name}` is required"))),
    }
}

fn b64(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes
        .iter()
        .map(|h| data_encoding::BASE64.encode(h))
        .collect()
}

async fn audit_entries(
    State(s): State<AppState>,
    p: Principal,
    q: Params,
) -> Result<Json<AuditPage>, ApiError> {
    let start = number(&q, "start", Some(0))?;
    let limit = number(&q, "limit", Some(100))?;
    if limit == 0 || limit > 1000 {
        return Err(ApiError::Validation(
            "`limit` must be between 1 and 1000".into(),
        ));
    }
    // Reading the log is itself an action the log records (PCI DSS 10.2.1.3).
    s.audit
        .record(
            p.actor()
                .record("audit.read")
                .detail("start", start)
                .detail("limit", limit),
        )
        .await?;
    let tree_size = s.identity.store().audit_head().await?.size;
    let rows = s.identity.store().audit_entries(start, limit).await?;
    let entries = rows
        .iter()
        .map(|e| serde_json::from_str(&e.text).map_err(|_| ApiError::Internal))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(AuditPage { tree_size, entries }))
}

async fn audit_checkpoint(State(s): State<AppState>) -> Result<Response, ApiError> {
    let cp = s.audit.checkpoint().await?.ok_or(ApiError::NotFound)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        cp.note,
    )
        .into_response())
}

async fn audit_verifier_key(State(s): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        s.audit.verifier_key(),
    )
        .into_response()
}

async fn audit_inclusion(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<InclusionProof>, ApiError> {
    let index = number(&q, "index", None)?;
    let tree_size = number(&q, "tree_size", None)?;
    let hashes = s.audit.inclusion_proof(index, tree_size).await?;
    Ok(Json(InclusionProof {
        index,
        tree_size,
        hashes: b64(&hashes),
    }))
}

async fn audit_consistency(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let first = number(&q, "first", None)?;
    let second = number(&q, "second", None)?;
    let hashes = s.audit.consistency_proof(first, second).await?;
    Ok(Json(ConsistencyProof {
        first,
        second,
        hashes: b64(&hashes),
    }))
}

// ---- alerts --------------------------------------------------------------------------------

#[derive(Serialize, JsonSchema)]
pub struct AlertList {
    pub alerts: Vec<crate::alerts::AlertView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertComment {
    /// Why: what was checked or done (1 to 1000 characters). Kept with the alert, not in the log.
    pub comment: String,
}

async fn list_alerts(State(s): State<AppState>, q: Params) -> Result<Json<AlertList>, ApiError> {
    let limit = number(&q, "limit", Some(100))?;
    let alerts = s
        .alerts
        .list(q.get("status").map(String::as_str), limit)
        .await?;
    Ok(Json(AlertList { alerts }))
}

/// Server-sent events: `event: alert`, `id: SEQ`, `data: ALERT`. Resumes after
/// `Last-Event-ID` when the browser reconnects.
async fn alert_stream(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::stream::{self, StreamExt};
    let rx = s.alerts.subscribe();
    let missed = match headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(seq) => s.alerts.after(seq).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let last_sent = missed.last().map_or(i64::MIN, |a| a.seq);
    let event = |a: &crate::alerts::AlertView| -> Result<Event, std::convert::Infallible> {
        Ok(Event::default()
            .event("alert")
            .id(a.seq.to_string())
            .data(serde_json::to_string(a).unwrap_or_default()))
    };
    // An opening comment makes the server send the response head at once, so the browser's
    // EventSource reports the stream open before the first alert exists.
    let opening: Result<Event, std::convert::Infallible> = Ok(Event::default().comment("live"));
    let first = stream::iter(
        std::iter::once(opening)
            .chain(missed.iter().map(event))
            .collect::<Vec<_>>(),
    );
    let live = stream::unfold((rx, last_sent), move |(mut rx, last)| async move {
        loop {
            match rx.recv().await {
                Ok(a) if a.seq > last => {
                    let next = a.seq;
                    return Some((a, (rx, next)));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .map(move |a| event(&a));
    Sse::new(first.chain(live).take_until(s.alerts.closed()))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn acknowledge_alert(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AlertComment>,
) -> Result<Json<crate::alerts::AlertView>, ApiError> {
    Ok(Json(s.alerts.transition(&p, &id, false, &r.comment).await?))
}

async fn resolve_alert(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AlertComment>,
) -> Result<Json<crate::alerts::AlertView>, ApiError> {
    Ok(Json(s.alerts.transition(&p, &id, true, &r.comment).await?))
}

// ---- Do-Not-Call -----------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DncCheckRequest {
    /// Up to 10,000 numbers, E.164 (`+12025550123`) or ten NANP digits.
    pub numbers: Vec<String>,
    /// When the calls would start, RFC 3339 (`2025-07-15T13:30:00Z`); default now. Lets a dialer
    /// plan: calling windows are checked in each called party's local time at this instant.
    #[serde(default)]
    pub at: Option<String>,
    /// Consent required for this purpose (e.g. `telemarketing`): numbers without an active
    /// `call` consent for it get `no_consent`. Leave out for calls that need no consent.
    #[serde(default)]
    pub purpose: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct DncResult {
    /// The number as asked.
    pub number: String,
    pub allowed: bool,
    /// Why not, in this order: `national_dnc`, `internal_dnc`, `no_consent`,
    /// `outside_calling_hours`; or `invalid_number` alone.
    pub reasons: Vec<crate::dnc::Reason>,
}

#[derive(Serialize, JsonSchema)]
pub struct DncCheckResponse {
    /// One result per number, in the order asked.
    pub results: Vec<DncResult>,
}

#[derive(Serialize, JsonSchema)]
pub struct DncRegistryStatus {
    pub registry: Option<crate::dnc::RegistryInfo>,
    /// Seconds since the registry in force was imported.
    pub age_seconds: Option<i64>,
    /// True when older than 31 days (the FTC's scrub interval): import a fresh copy.
    pub stale: bool,
}

async fn dnc_check(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<DncCheckRequest>,
) -> Result<Json<DncCheckResponse>, ApiError> {
    use callguard_core::dnc::hours::Timestamp;
    use callguard_core::dnc::number::Callee;
    if r.numbers.is_empty() || r.numbers.len() > crate::dnc::MAX_BATCH {
        return Err(ApiError::Validation(format!(
            "send 1 to {} numbers per request",
            crate::dnc::MAX_BATCH
        )));
    }
    let at = match r.at.as_deref() {
        Some(text) => text.trim().parse::<Timestamp>().map_err(|_| {
            ApiError::Validation(
                "`at` must be an RFC 3339 time with an offset, like 2025-07-15T13:30:00Z".into(),
            )
        })?,
        None => Timestamp::now(),
    };
    if let Some(p) = &r.purpose {
        crate::dnc_lists::valid_purpose(p)?;
    }
    let registry = s.dnc.current().ok_or(ApiError::NotConfigured(
        "no national Do-Not-Call registry is loaded: import one with `callguard dnc import FILE`",
    ))?;
    let callees: Vec<Option<Callee>> = r.numbers.iter().map(|n| Callee::parse(n)).collect();
    let facts = s.dnc_lists.facts(&callees, r.purpose.as_deref()).await?;
    let results = r
        .numbers
        .into_iter()
        .zip(&callees)
        .map(|(number, callee)| {
            let v = s.dnc.verdict(&registry, callee.as_ref(), &facts, Some(at));
            DncResult {
                number,
                allowed: v.allowed,
                reasons: v.reasons,
            }
        })
        .collect();
    Ok(Json(DncCheckResponse { results }))
}

async fn dnc_status(State(s): State<AppState>) -> Json<DncRegistryStatus> {
    let info = s.dnc.current().map(|r| r.info.clone());
    let age = info.as_ref().map(|i| callguard_core::now() - i.imported_at);
    Json(DncRegistryStatus {
        stale: age.is_none_or(|a| a > crate::dnc::MAX_AGE_SECONDS),
        registry: info,
        age_seconds: age,
    })
}

// ---- the internal Do-Not-Call list and the consent ledger ---------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// The number that asked not to be called: E.164, or ten NANP digits.
    pub number: String,
    /// Where the request came from: `agent`, `portal`, `complaint`, `email`, `letter`, `web_form`.
    pub source: String,
}

#[derive(Serialize, JsonSchema)]
pub struct InternalDncList {
    /// Newest first; numbers masked.
    pub entries: Vec<crate::dnc_lists::InternalDncView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The number the consent is for: E.164, or ten NANP digits.
    pub number: String,
    /// What it covers, e.g. `telemarketing` (lower-case word).
    pub purpose: String,
    /// `call` or `sms`.
    pub channel: String,
    /// How it was given: `web_form`, `portal`, `agent`, `paper`, `email`.
    pub source: String,
    /// The evidence: the signed form's text or a URL to it (up to 2,000 characters). Sealed;
    /// never shown by the API.
    pub evidence: Secret<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ConsentList {
    /// Newest first; numbers masked.
    pub consents: Vec<crate::dnc_lists::ConsentView>,
}

async fn add_opt_out(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<OptOutRequest>,
) -> Result<(StatusCode, Json<crate::dnc_lists::InternalDncView>), ApiError> {
    let (entry, added) = s
        .dnc_lists
        .opt_out(&p.actor(), &r.number, &r.source)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)))
}

async fn list_opt_outs(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<InternalDncList>, ApiError> {
    let limit = number(&q, "limit", Some(100))?;
    Ok(Json(InternalDncList {
        entries: s.dnc_lists.internal_list(limit).await?,
    }))
}

async fn grant_consent(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<ConsentRequest>,
) -> Result<(StatusCode, Json<crate::dnc_lists::ConsentView>), ApiError> {
    let consent = crate::dnc_lists::NewConsent {
        number: &r.number,
        purpose: &r.purpose,
        channel: &r.channel,
        source: &r.source,
        evidence: r.evidence.expose(),
    };
    let view = s.dnc_lists.grant_consent(&p.actor(), &consent).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_consents(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<ConsentList>, ApiError> {
    let limit = number(&q, "limit", Some(100))?;
    let consents = s
        .dnc_lists
        .consents(q.get("number").map(String::as_str), limit)
        .await?;
    Ok(Json(ConsentList { consents }))
}

async fn revoke_consent(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::dnc_lists::ConsentView>, ApiError> {
    Ok(Json(s.dnc_lists.revoke_consent(&p.actor(), &id).await?))
}

// ---- the route table ----------------------------------------------------------------------

/// Produces a JSON Schema for a wire type, for the OpenAPI document.
pub type SchemaFn = fn(&mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema;

fn schema<T: JsonSchema>(g: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    g.subschema_for::<T>()
}

/// One API route: everything the router, the access check and the OpenAPI document need.
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    pub response: Option<(u16, SchemaFn)>,
    /// A body limit other than the default [`crate::MAX_BODY_BYTES`].
    pub body_limit: Option<usize>,
    pub handler: MethodRouter<AppState>,
}

fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        access,
        summary,
        request: None,
        response: None,
        body_limit: None,
        handler,
    }
}

impl ApiRoute {
    fn takes<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema::<T>);
        self
    }
    fn limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }
    fn gives<T: JsonSchema>(mut self, status: u16) -> Self {
        self.response = Some((status, schema::<T>));
        self
    }
}

/// Every API route. The router registers exactly these, each behind its access check.
pub fn routes() -> Vec<ApiRoute> {
    use Access::{Public, Signed};
    use Permission::*;
    vec![
        route("GET", "/healthz", Public, "Liveness: the process answers.", get(healthz)).gives::<Health>(200),
        route("GET", "/readyz", Public, "Readiness: the database answers.", get(readyz)).gives::<Health>(200),
        route("GET", "/metrics", Public, "Prometheus metrics (text exposition format).", get(metrics)),
        route("GET", "/api/v1/openapi.json", Public, "This document.", get(openapi_json)),
        route("POST", "/api/v1/auth/setup", Public, "First-time setup, step 1: setup token and new password; returns the TOTP secret to enrol.", post(setup))
            .takes::<SetupRequest>().gives::<SetupResponse>(200),
        route("POST", "/api/v1/auth/setup/confirm", Public, "First-time setup, step 2: a code from the new authenticator; returns a session and ten recovery codes.", post(setup_confirm))
            .takes::<SetupConfirmRequest>().gives::<SetupConfirmResponse>(200),
        route("POST", "/api/v1/auth/login", Public, "Sign-in, step 1: username and password; returns a challenge for the second factor (never a session).", post(login))
            .takes::<LoginRequest>().gives::<LoginResponse>(200),
        route("POST", "/api/v1/auth/mfa", Public, "Sign-in, step 2: TOTP code, recovery code or WebAuthn assertion; returns a session token.", post(mfa))
            .takes::<MfaRequest>().gives::<SessionResponse>(200),
        route("POST", "/api/v1/auth/logout", Signed(OwnAccount), "Ends the current session.", post(logout)),
        route("POST", "/api/v1/auth/reauth", Signed(OwnAccount), "Confirms password and second factor again; sensitive actions need this within 5 minutes.", post(reauth))
            .takes::<ReauthRequest>(),
        route("GET", "/api/v1/me", Signed(OwnAccount), "Who is signed in.", get(me)).gives::<MeResponse>(200),
        route("GET", "/api/v1/me/sessions", Signed(OwnAccount), "My live sessions.", get(my_sessions)).gives::<SessionList>(200),
        route("DELETE", "/api/v1/me/sessions/{id}", Signed(OwnAccount), "Ends one of my sessions.", delete(revoke_session)),
        route("POST", "/api/v1/me/recovery-codes", Signed(OwnAccount), "Replaces my recovery codes (needs re-authentication).", post(regenerate_codes))
            .gives::<RecoveryCodes>(200),
        route("GET", "/api/v1/me/passkeys", Signed(OwnAccount), "My passkeys.", get(list_passkeys)).gives::<PasskeyList>(200),
        route("POST", "/api/v1/me/passkeys/registration", Signed(OwnAccount), "Passkey registration, step 1: options for navigator.credentials.create.", post(start_passkey))
            .gives::<PasskeyRegistrationStart>(200),
        route("POST", "/api/v1/me/passkeys", Signed(OwnAccount), "Passkey registration, step 2: the browser's credential.", post(finish_passkey))
            .takes::<PasskeyRegistrationFinish>().gives::<PasskeyView>(201),
        route("DELETE", "/api/v1/me/passkeys/{id}", Signed(OwnAccount), "Removes one of my passkeys.", delete(delete_passkey)),
        route("GET", "/api/v1/users", Signed(UsersRead), "All staff accounts.", get(list_users)).gives::<UserList>(200),
        route("POST", "/api/v1/users", Signed(UsersManage), "Creates a staff account and returns its one-time setup token (creating an admin needs re-authentication).", post(create_user))
            .takes::<CreateUserRequest>().gives::<CreateUserResponse>(201),
        route("POST", "/api/v1/users/{id}/unlock", Signed(UsersManage), "Lifts a lockout (needs re-authentication).", post(unlock_user)).gives::<UserView>(200),
        route("PUT", "/api/v1/users/{id}/role", Signed(UsersManage), "Changes a role and ends that person's sessions (needs re-authentication).", put(set_role))
            .takes::<SetRoleRequest>().gives::<UserView>(200),
        route("POST", "/api/v1/users/{id}/enable", Signed(UsersManage), "Enables a disabled account (needs re-authentication).", post(enable_user)).gives::<UserView>(200),
        route("POST", "/api/v1/users/{id}/disable", Signed(UsersManage), "Disables an account and ends its sessions (needs re-authentication).", post(disable_user)).gives::<UserView>(200),
        route("POST", "/api/v1/users/{id}/reset", Signed(UsersManage), "Wipes an account's credentials and issues a new setup token (needs re-authentication).", post(reset_user))
            .gives::<SetupTokenResponse>(200),
        route("GET", "/api/v1/audit", Signed(AuditRead), "Audit entries `start..start+limit` (limit ≤ 1000) and the tree size; the read itself is logged.", get(audit_entries))
            .gives::<AuditPage>(200),
        route("GET", "/api/v1/audit/checkpoint", Signed(AuditRead), "The latest signed checkpoint (C2SP tlog-checkpoint signed note, text/plain).", get(audit_checkpoint)),
        route("GET", "/api/v1/audit/verifier-key", Signed(AuditRead), "The checkpoint verifier key in note format (name+keyhash+base64key, text/plain).", get(audit_verifier_key)),
        route("GET", "/api/v1/audit/proof/inclusion", Signed(AuditRead), "Inclusion proof of entry `index` in the tree of `tree_size` entries.", get(audit_inclusion))
            .gives::<InclusionProof>(200),
        route("GET", "/api/v1/audit/proof/consistency", Signed(AuditRead), "Consistency proof between tree sizes `first` and `second`.", get(audit_consistency))
            .gives::<ConsistencyProof>(200),
        route("POST", "/api/v1/dnc/check", Signed(DncCheck), "Checks up to 10,000 numbers before calling: the national registry, the internal DNC list, consent when a `purpose` is named (no active `call` consent for it: `no_consent`), and the calling window in each called party's local time at `at` (default now). Results in the order asked; garbage is `invalid_number`, never allowed.", post(dnc_check))
            .takes::<DncCheckRequest>().gives::<DncCheckResponse>(200).limit(1 << 20),
        route("POST", "/api/v1/dnc/internal", Signed(DncListManage), "Puts a number on the company's own Do-Not-Call list, effective for the very next check (audited). 201 when added, 200 when it was on the list already. Opt-outs are not removed through the API.", post(add_opt_out))
            .takes::<OptOutRequest>().gives::<crate::dnc_lists::InternalDncView>(201),
        route("GET", "/api/v1/dnc/internal", Signed(DncListRead), "The internal Do-Not-Call list, newest first, numbers masked; `limit` ≤ 1000 (default 100).", get(list_opt_outs))
            .gives::<InternalDncList>(200),
        route("POST", "/api/v1/consents", Signed(ConsentManage), "Records TCPA express written consent (number, purpose, channel, source, sealed evidence), effective for the very next check (audited).", post(grant_consent))
            .takes::<ConsentRequest>().gives::<crate::dnc_lists::ConsentView>(201),
        route("GET", "/api/v1/consents", Signed(ConsentRead), "Consent records, newest first, numbers masked; `number` narrows to one number, `limit` ≤ 1000 (default 100).", get(list_consents))
            .gives::<ConsentList>(200),
        route("POST", "/api/v1/consents/{id}/revoke", Signed(ConsentManage), "Revokes a consent, effective for the very next check (audited); 422 when revoked already.", post(revoke_consent))
            .gives::<crate::dnc_lists::ConsentView>(200),
        route("GET", "/api/v1/dnc/status", Signed(DncStatus), "The national registry in force: size, checksum, source, age, and whether it is stale (> 31 days).", get(dnc_status))
            .gives::<DncRegistryStatus>(200),
        route("GET", "/api/v1/alerts", Signed(AlertsRead), "Alerts, newest first; `status` = open, acknowledged or resolved; `limit` ≤ 500.", get(list_alerts))
            .gives::<AlertList>(200),
        route("GET", "/api/v1/alerts/stream", Signed(AlertsRead), "Live alerts as server-sent events (`event: alert`, `id` = seq; resumes after Last-Event-ID).", get(alert_stream)),
        route("POST", "/api/v1/alerts/{id}/acknowledge", Signed(AlertsManage), "Acknowledges an open alert with a comment (audited).", post(acknowledge_alert))
            .takes::<AlertComment>().gives::<crate::alerts::AlertView>(200),
        route("POST", "/api/v1/alerts/{id}/resolve", Signed(AlertsManage), "Resolves an alert with a comment (audited).", post(resolve_alert))
            .takes::<AlertComment>().gives::<crate::alerts::AlertView>(200),
        // ---- the vault and caller verification
        route("POST", "/api/v1/customers", Signed(CustomersCreate), "Registers a customer; every field is validated (E.164, PESEL/NIP/REGON checksums, PESEL birth date) and sealed. 422 lists every invalid field.", post(crate::customer_api::create_customer))
            .takes::<crate::vault::NewCustomer>().gives::<crate::customer_api::CreatedCustomer>(201),
        route("GET", "/api/v1/customers", Signed(CustomersRead), "Search by `phone` (E.164), masked; `interaction_id` ties the look-up to a call (agents without one raise an alert).", get(crate::customer_api::search_customers))
            .gives::<crate::customer_api::CustomerList>(200),
        route("GET", "/api/v1/customers/{id}", Signed(CustomersRead), "A customer, masked; `interaction_id` as for search.", get(crate::customer_api::get_customer))
            .gives::<crate::vault::CustomerView>(200),
        route("POST", "/api/v1/customers/{id}/reveal", Signed(CustomersReveal), "Reveals one field during the agent's active interaction with this customer at level 1 or more, for a listed reason; audited, rate-limited.", post(crate::customer_api::reveal))
            .takes::<crate::customer_api::RevealRequest>().gives::<crate::customer_api::RevealResponse>(200),
        route("POST", "/api/v1/customers/{id}/operations", Signed(CustomersOperate), "An operation for the caller (change_contact, change_address, transfer_service, duplicate_invoice: level 2; add_note: level 1).", post(crate::customer_api::operate))
            .takes::<crate::calls::OperationRequest>().gives::<crate::calls::OperationResponse>(200),
        route("POST", "/api/v1/interactions", Signed(InteractionsHandle), "Starts an interaction; a phone call is linked to the customer its number singles out (screen-pop, masked).", post(crate::customer_api::start_interaction))
            .takes::<crate::calls::NewInteraction>().gives::<crate::calls::InteractionView>(201),
        route("GET", "/api/v1/interactions/{id}", Signed(InteractionsHandle), "One of my interactions: level reached, steps, attempts left.", get(crate::customer_api::get_interaction))
            .gives::<crate::calls::InteractionView>(200),
        route("POST", "/api/v1/interactions/{id}/verify", Signed(InteractionsHandle), "One verification attempt: national_id, service or security_answers (level 1); portal_code, or otp_send then otp (level 2, only from level 1).", post(crate::customer_api::verify))
            .takes::<crate::calls::VerifyRequest>().gives::<crate::calls::VerifyResponse>(200),
        route("POST", "/api/v1/interactions/{id}/end", Signed(InteractionsHandle), "Ends one of my interactions: reveals and operations stop at once.", post(crate::customer_api::end_interaction))
            .gives::<crate::calls::InteractionView>(200),
        // ---- the customer portal (customer accounts only) and GDPR requests
        route("POST", "/api/v1/portal/auth/setup", Public, "Portal setup, step 1: the token from `callguard customer invite` and a new password; returns the TOTP secret to enrol.", post(crate::portal::setup))
            .takes::<SetupRequest>().gives::<SetupResponse>(200),
        route("POST", "/api/v1/portal/auth/setup/confirm", Public, "Portal setup, step 2: a code from the new authenticator; returns a session and ten recovery codes.", post(crate::portal::setup_confirm))
            .takes::<SetupConfirmRequest>().gives::<SetupConfirmResponse>(200),
        route("POST", "/api/v1/portal/auth/login", Public, "Portal sign-in, step 1: customer id and password (customer accounts only).", post(crate::portal::login))
            .takes::<LoginRequest>().gives::<LoginResponse>(200),
        route("POST", "/api/v1/portal/auth/mfa", Public, "Portal sign-in, step 2: TOTP or recovery code; returns a session token.", post(crate::portal::mfa))
            .takes::<MfaRequest>().gives::<SessionResponse>(200),
        route("GET", "/api/v1/portal/me", Signed(Portal), "My data, in the clear (only I see it unmasked).", get(crate::portal::me))
            .gives::<crate::portal::MyData>(200),
        route("POST", "/api/v1/portal/verification-code", Signed(Portal), "A one-time code to read to an agent on a call (single use, 10 minutes).", post(crate::portal::verification_code))
            .gives::<crate::portal::VerificationCode>(200),
        route("GET", "/api/v1/portal/access-log", Signed(Portal), "Who looked at or changed my data: when, which agent, which field, why.", get(crate::portal::my_access_log))
            .gives::<crate::portal::AccessLog>(200),
        route("GET", "/api/v1/portal/export", Signed(Portal), "Everything stored about me (GDPR art. 15), with notes and the access log.", get(crate::portal::export))
            .gives::<crate::portal::MyExport>(200),
        route("POST", "/api/v1/portal/requests", Signed(Portal), "Ask for export or erasure (erasure then needs two compliance officers).", post(crate::portal::make_request))
            .takes::<crate::portal::NewRequest>().gives::<crate::portal::Requests>(200),
        route("GET", "/api/v1/gdpr/requests", Signed(CustomersGdpr), "Customers with pending export or erasure requests.", get(crate::portal::pending_requests))
            .gives::<crate::portal::PendingRequests>(200),
        route("POST", "/api/v1/customers/{id}/export", Signed(CustomersGdpr), "Handles an export request: recorded and delivered to the customer's portal; compliance sees field names only.", post(crate::portal::compliance_export))
            .gives::<crate::portal::ExportReceipt>(200),
        route("POST", "/api/v1/customers/{id}/erasure", Signed(CustomersGdpr), "Requests erasure (first of two compliance officers).", post(crate::portal::request_erasure))
            .gives::<crate::portal::ErasureStatus>(200),
        route("POST", "/api/v1/customers/{id}/erasure/approve", Signed(CustomersGdpr), "Approves erasure (a second, different officer): destroys the data key; only an audit tombstone stays.", post(crate::portal::approve_erasure))
            .gives::<crate::portal::ErasureStatus>(200),
    ]
}
