//! My account over the JSON API: who I am, my sessions, recovery codes and passkeys.

use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{exposed, route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Json;
use callguard_core::identity::Session;
use callguard_core::{rfc3339, Permission, Role, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

async fn me(p: Principal) -> Json<MeResponse> {
    Json(MeResponse {
        id: p.user.id,
        username: p.user.username,
        role: p.user.role,
    })
}

async fn my_sessions(State(s): State<AppState>, p: Principal) -> Result<Json<SessionList>, Error> {
    let sessions = s.account.sessions(&p).await?;
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
) -> Result<StatusCode, Error> {
    s.account.revoke_session(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate_codes(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<RecoveryCodes>, Error> {
    let codes = s.account.regenerate_recovery_codes(&p).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: exposed(&codes),
    }))
}

#[derive(Serialize, JsonSchema)]
pub struct SipCredentialsStatus {
    /// Whether this account's role uses a softphone (agents and supervisors).
    pub eligible: bool,
    /// Whether credentials are issued (the password is never shown again).
    pub issued: bool,
    pub sip_username: Option<String>,
    /// RFC 3339.
    pub issued_at: Option<String>,
    /// The digest realm to configure in the softphone; absent when this server has no SIP edge.
    pub realm: Option<String>,
    /// The SIP server (`host:port`, UDP or TCP); absent when this server has no SIP edge.
    pub server: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct SipCredentialsIssued {
    pub sip_username: String,
    /// Shown this once; issuing again replaces it.
    pub password: String,
    pub realm: Option<String>,
    pub server: Option<String>,
}

async fn sip_credentials(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<SipCredentialsStatus>, Error> {
    let st = s.softphones.status(&p).await?;
    Ok(Json(SipCredentialsStatus {
        eligible: st.eligible,
        issued: st.sip_username.is_some(),
        sip_username: st.sip_username,
        issued_at: st.issued_at.map(rfc3339),
        realm: st.server.as_ref().map(|x| x.realm.clone()),
        server: st.server.map(|x| x.address),
    }))
}

async fn issue_sip_credentials(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<SipCredentialsIssued>, Error> {
    let c = s.softphones.issue_own(&p).await?;
    Ok(Json(SipCredentialsIssued {
        sip_username: c.sip_username,
        password: c.password.expose().clone(),
        realm: c.server.as_ref().map(|x| x.realm.clone()),
        server: c.server.map(|x| x.address),
    }))
}

async fn list_passkeys(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<PasskeyList>, Error> {
    let list = s.account.passkey_list(&p).await?;
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
) -> Result<Json<PasskeyRegistrationStart>, Error> {
    let (challenge, options) = s.account.begin_passkey_registration(&p).await?;
    Ok(Json(PasskeyRegistrationStart {
        challenge: challenge.expose().clone(),
        options,
    }))
}

async fn finish_passkey(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<PasskeyRegistrationFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), Error> {
    let k = s
        .account
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
) -> Result<StatusCode, Error> {
    s.account.delete_passkey(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/me", Signed(OwnAccount), "Who is signed in.", get(me)).gives::<MeResponse>(200),
        route("GET", "/api/v1/me/sessions", Signed(OwnAccount), "My live sessions.", get(my_sessions)).gives::<SessionList>(200),
        route("DELETE", "/api/v1/me/sessions/{id}", Signed(OwnAccount), "Ends one of my sessions.", delete(revoke_session)),
        route("POST", "/api/v1/me/recovery-codes", Signed(OwnAccount), "Replaces my recovery codes (needs re-authentication).", post(regenerate_codes))
            .gives::<RecoveryCodes>(200),
        route("GET", "/api/v1/me/sip-credentials", Signed(OwnAccount), "Whether I have SIP credentials for a softphone, and where it registers (never the password).", get(sip_credentials))
            .gives::<SipCredentialsStatus>(200),
        route("POST", "/api/v1/me/sip-credentials", Signed(OwnAccount), "Issues or rotates my SIP credentials (agents and supervisors; needs re-authentication): the password is in this answer only (audited).", post(issue_sip_credentials))
            .gives::<SipCredentialsIssued>(200).may(&[409]),
        route("GET", "/api/v1/me/passkeys", Signed(OwnAccount), "My passkeys.", get(list_passkeys)).gives::<PasskeyList>(200),
        route("POST", "/api/v1/me/passkeys/registration", Signed(OwnAccount), "Passkey registration, step 1: options for navigator.credentials.create.", post(start_passkey))
            .gives::<PasskeyRegistrationStart>(200).may(&[501]),
        route("POST", "/api/v1/me/passkeys", Signed(OwnAccount), "Passkey registration, step 2: the browser's credential.", post(finish_passkey))
            .takes::<PasskeyRegistrationFinish>().gives::<PasskeyView>(201).may(&[422, 501]),
        route("DELETE", "/api/v1/me/passkeys/{id}", Signed(OwnAccount), "Removes one of my passkeys.", delete(delete_passkey)),
    ]
}
