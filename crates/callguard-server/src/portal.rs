//! The customer portal (SPEC: roles, C3, C10) and GDPR requests. Customers sign in like staff
//! (password, then TOTP), but only here: `/api/v1/portal/auth/*` admits customer accounts only,
//! and staff sign-in admits no customer. A signed-in customer sees their own data, gets one-time
//! verification codes to read to an agent, sees who looked at their data, and asks for export or
//! erasure. Compliance handles the requests: export is recorded and handed to the customer's
//! portal; erasure needs two different compliance officers and destroys the data key.

use crate::access::ApiJson;
use crate::api::{
    LoginRequest, LoginResponse, MfaRequest, SessionResponse, SetupConfirmRequest,
    SetupConfirmResponse, SetupRequest, SetupResponse,
};
use crate::error::ApiError;
use crate::identity::{Actor, Audience, Principal, RequestContext, SecondFactor};
use crate::vault::{customer_ref, Note};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use callguard_core::audit::record::user as user_ref;
use callguard_core::vault::model::{Address, NationalId};
use callguard_core::{now, rfc3339, Role, Secret};
use callguard_store::{AuditFilter, VaultWrite};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pending GDPR requests of a customer (stored as the customer row's `requests`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Requests {
    /// When the customer (or compliance for them) asked for an export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_requested_at: Option<String>,
    /// When the customer asked for erasure in the portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_asked_by_customer_at: Option<String>,
    /// The first compliance officer who requested erasure (`user:<id>`); a different one must
    /// approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_requested_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_requested_at: Option<String>,
}

impl Requests {
    fn parse(s: Option<&str>) -> Self {
        s.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.export_requested_at.is_none()
            && self.erasure_asked_by_customer_at.is_none()
            && self.erasure_requested_by.is_none()
    }

    fn stored(&self) -> Option<String> {
        if self.is_empty() {
            None
        } else {
            serde_json::to_string(self).ok()
        }
    }
}

/// The customer a portal principal is.
pub(crate) fn customer_of(p: &Principal) -> Result<String, ApiError> {
    if p.user.role == Role::Customer {
        Ok(p.user.username.clone())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The customer as the actor of audit entries.
fn customer_actor(p: &Principal, customer_id: &str) -> Actor {
    Actor {
        id: customer_ref(customer_id),
        source: Some(p.source.to_string()),
    }
}

// ---- sign-in --------------------------------------------------------------------------------

pub async fn setup(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<SetupRequest>,
) -> Result<Json<SetupResponse>, ApiError> {
    let started = s
        .identity
        .begin_setup_as(Audience::Portal, &r.token, r.password, &ctx)
        .await?;
    Ok(Json(SetupResponse {
        challenge: started.challenge.expose().clone(),
        totp_secret: started.totp_secret.expose().clone(),
        otpauth_uri: started.otpauth_uri.expose().clone(),
    }))
}

pub async fn setup_confirm(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<SetupConfirmRequest>,
) -> Result<Json<SetupConfirmResponse>, ApiError> {
    let signed = s
        .identity
        .confirm_setup_as(Audience::Portal, &r.challenge, &r.code, &ctx)
        .await?;
    Ok(Json(SetupConfirmResponse {
        token: signed.token.expose().clone(),
        expires_at: rfc3339(signed.expires_at),
        recovery_codes: signed
            .recovery_codes
            .iter()
            .map(|c| c.expose().clone())
            .collect(),
    }))
}

pub async fn login(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let started = s
        .identity
        .begin_sign_in_as(Audience::Portal, &r.username, r.password, &ctx)
        .await?;
    Ok(Json(LoginResponse {
        challenge: started.challenge.expose().clone(),
        methods: started.methods.iter().map(|m| (*m).to_owned()).collect(),
        webauthn: started.webauthn_options,
    }))
}

pub async fn mfa(
    State(s): State<AppState>,
    ctx: RequestContext,
    ApiJson(r): ApiJson<MfaRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let factor = match r.method {
        crate::api::MfaMethod::Totp => SecondFactor::Totp(r.code),
        crate::api::MfaMethod::Recovery => SecondFactor::Recovery(r.code),
        crate::api::MfaMethod::Webauthn => SecondFactor::WebAuthn(r.code),
    };
    let signed = s
        .identity
        .finish_sign_in_as(Audience::Portal, &r.challenge, factor, &ctx)
        .await?;
    Ok(Json(SessionResponse {
        token: signed.token.expose().clone(),
        expires_at: rfc3339(signed.expires_at),
    }))
}

// ---- my data ----------------------------------------------------------------------------------

/// A customer's own data, in the clear, for them only.
#[derive(Serialize, JsonSchema)]
pub struct MyData {
    pub customer_id: String,
    pub full_name: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub national_id: Option<NationalId>,
    pub date_of_birth: Option<String>,
    pub address: Option<Address>,
    pub services: Vec<String>,
    /// The knowledge questions on file (answers are stored only as hashes).
    pub security_questions: Vec<String>,
    /// Notes agents wrote (in the export; counted here).
    pub notes: usize,
    pub requests: Requests,
}

/// Everything stored about a customer (GDPR art. 15), for them only.
#[derive(Serialize, JsonSchema)]
pub struct MyExport {
    pub exported_at: String,
    pub data: MyData,
    pub notes: Vec<Note>,
    /// Who looked at or changed the data (from the audit log).
    pub access: Vec<AccessEntry>,
}

async fn my_data(s: &AppState, customer_id: &str) -> Result<(MyData, Vec<Note>), ApiError> {
    let o = s.vault.open(customer_id).await?;
    let questions = o.questions();
    let r = o.record;
    Ok((
        MyData {
            customer_id: customer_id.to_owned(),
            full_name: r.full_name,
            phones: r.phones,
            emails: r.emails,
            national_id: r.national_id,
            date_of_birth: r.date_of_birth,
            address: r.address,
            services: r.services,
            security_questions: questions,
            notes: r.notes.len(),
            requests: Requests::parse(o.row.requests.as_deref()),
        },
        r.notes,
    ))
}

pub async fn me(State(s): State<AppState>, p: Principal) -> Result<Json<MyData>, ApiError> {
    Ok(Json(read_mine(&s, &p).await?))
}

/// A signed-in customer's own data (the API and the portal page), the read recorded.
pub(crate) async fn read_mine(s: &AppState, p: &Principal) -> Result<MyData, ApiError> {
    let id = customer_of(p)?;
    let (data, _) = my_data(s, &id).await?;
    s.vault
        .store()
        .append(vec![customer_actor(p, &id)
            .record("portal.read")
            .target(customer_ref(&id))])
        .await?;
    Ok(data)
}

pub async fn export(State(s): State<AppState>, p: Principal) -> Result<Json<MyExport>, ApiError> {
    Ok(Json(export_mine(&s, &p).await?))
}

/// Everything stored about a signed-in customer, the export recorded.
pub(crate) async fn export_mine(s: &AppState, p: &Principal) -> Result<MyExport, ApiError> {
    let id = customer_of(p)?;
    let (data, notes) = my_data(s, &id).await?;
    let access = access_log(s, &id).await?;
    s.vault
        .store()
        .append(vec![customer_actor(p, &id)
            .record("customer.export")
            .target(customer_ref(&id))
            .detail("by", "customer")])
        .await?;
    Ok(MyExport {
        exported_at: rfc3339(now()),
        data,
        notes,
        access,
    })
}

/// A one-time verification code to read to an agent.
#[derive(Serialize, JsonSchema)]
pub struct VerificationCode {
    /// 8 characters, shown as `ABCD-EFGH`; works once, for 10 minutes, and only for you.
    pub code: String,
    pub expires_at: String,
}

pub async fn verification_code(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<VerificationCode>, ApiError> {
    Ok(Json(issue_code(&s, &p).await?))
}

/// A new portal code for a signed-in customer.
pub(crate) async fn issue_code(s: &AppState, p: &Principal) -> Result<VerificationCode, ApiError> {
    let id = customer_of(p)?;
    let (code, expires) = s
        .calls
        .issue_portal_code(&customer_actor(p, &id), &id)
        .await?;
    Ok(VerificationCode {
        code: code.expose().clone(),
        expires_at: rfc3339(expires),
    })
}

/// One look at or change of a customer's data, as the customer sees it.
#[derive(Serialize, JsonSchema)]
pub struct AccessEntry {
    pub time: String,
    /// `reveal`, `read`, `operation`, `export`, `verification`.
    pub what: String,
    /// The agent's id (`user:<id>`), or `customer:<id>` for yourself.
    pub by: String,
    /// The field revealed, or the operation's kind.
    pub detail: Option<String>,
    /// The reason given for a reveal.
    pub reason: Option<String>,
    pub interaction: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct AccessLog {
    pub entries: Vec<AccessEntry>,
}

pub(crate) async fn access_log(
    s: &AppState,
    customer_id: &str,
) -> Result<Vec<AccessEntry>, ApiError> {
    let rows = s
        .vault
        .store()
        .search_audit(&AuditFilter {
            target: Some(customer_ref(customer_id)),
            limit: 500,
            ..AuditFilter::default()
        })
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(&r.text) else {
            continue;
        };
        if e["outcome"] != "success" {
            continue;
        }
        let what = match e["action"].as_str().unwrap_or_default() {
            "customer.reveal" => "reveal",
            "customer.read" | "customer.search" => "read",
            "customer.operation" => "operation",
            "customer.export" => "export",
            "interaction.verify" => "verification",
            _ => continue,
        };
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        out.push(AccessEntry {
            time: s(&e["time"]).unwrap_or_default(),
            what: what.into(),
            by: s(&e["actor"]).unwrap_or_default(),
            detail: s(&e["details"]["field"]).or_else(|| s(&e["details"]["kind"])),
            reason: s(&e["details"]["reason"]),
            interaction: s(&e["interaction"]),
        });
    }
    Ok(out)
}

pub async fn my_access_log(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<AccessLog>, ApiError> {
    let id = customer_of(&p)?;
    Ok(Json(AccessLog {
        entries: access_log(&s, &id).await?,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    Export,
    Erasure,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub kind: RequestKind,
}

/// Updates a customer's pending requests (one guarded write with its audit entry).
async fn update_requests(
    s: &AppState,
    customer_id: &str,
    change: impl Fn(&mut Requests),
    audit: callguard_core::audit::AuditRecord,
) -> Result<Requests, ApiError> {
    for _ in 0..3 {
        let row = s
            .vault
            .store()
            .customer(customer_id)
            .await?
            .filter(|r| r.status == "active")
            .ok_or(ApiError::NotFound)?;
        let mut req = Requests::parse(row.requests.as_deref());
        change(&mut req);
        let mut next = row.clone();
        next.requests = req.stored();
        next.version += 1;
        next.updated_at = now();
        if s.vault
            .store()
            .vault_commit(VaultWrite {
                customers: vec![(next, Some(row.version))],
                audit: vec![audit.clone()],
                ..VaultWrite::default()
            })
            .await?
        {
            return Ok(req);
        }
    }
    Err(ApiError::State("the customer changed meanwhile; try again"))
}

pub async fn make_request(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<NewRequest>,
) -> Result<Json<Requests>, ApiError> {
    Ok(Json(request_mine(&s, &p, r.kind).await?))
}

/// A signed-in customer asks for export or erasure.
pub(crate) async fn request_mine(
    s: &AppState,
    p: &Principal,
    kind: RequestKind,
) -> Result<Requests, ApiError> {
    let id = customer_of(p)?;
    let at = rfc3339(now());
    let (action, kind_name) = match kind {
        RequestKind::Export => ("gdpr.export_request", "export"),
        RequestKind::Erasure => ("gdpr.erasure_request", "erasure"),
    };
    let audit = customer_actor(p, &id)
        .record(action)
        .target(customer_ref(&id))
        .detail("by", "customer")
        .detail("kind", kind_name);
    update_requests(
        s,
        &id,
        |q| match kind {
            RequestKind::Export => q.export_requested_at = Some(at.clone()),
            RequestKind::Erasure => q.erasure_asked_by_customer_at = Some(at.clone()),
        },
        audit,
    )
    .await
}

// ---- compliance -------------------------------------------------------------------------------

#[derive(Serialize, JsonSchema)]
pub struct PendingRequest {
    pub customer_id: String,
    pub requests: Requests,
}

#[derive(Serialize, JsonSchema)]
pub struct PendingRequests {
    pub requests: Vec<PendingRequest>,
}

pub async fn pending_requests(
    State(s): State<AppState>,
) -> Result<Json<PendingRequests>, ApiError> {
    let rows = s.vault.store().customers_with_requests(200).await?;
    Ok(Json(PendingRequests {
        requests: rows
            .into_iter()
            .map(|r| PendingRequest {
                requests: Requests::parse(r.requests.as_deref()),
                customer_id: r.id,
            })
            .collect(),
    }))
}

/// What an export holds, as compliance sees it: names and counts, never values.
#[derive(Serialize, JsonSchema)]
pub struct ExportReceipt {
    pub customer_id: String,
    /// The fields the export contains.
    pub fields: Vec<String>,
    pub notes: usize,
    /// Where the customer gets it: their portal (`GET /api/v1/portal/export`).
    pub delivered_to: String,
}

/// Compliance handles an export request (GDPR art. 15): recorded, and fulfilled through the
/// customer's own portal, so that compliance never sees the values.
pub async fn compliance_export(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ExportReceipt>, ApiError> {
    let o = s.vault.open(&id).await?;
    let fields: Vec<String> = callguard_core::vault::model::Field::ALL
        .iter()
        .filter(|f| {
            let v = o.record.field(**f);
            !(v.is_null() || v.as_array().is_some_and(Vec::is_empty) || v == "")
        })
        .map(|f| f.as_str().to_owned())
        .collect();
    let audit = p
        .actor()
        .record("gdpr.export")
        .target(customer_ref(&id))
        .detail("fields", fields.clone());
    update_requests(&s, &id, |q| q.export_requested_at = None, audit).await?;
    Ok(Json(ExportReceipt {
        customer_id: id,
        fields,
        notes: o.record.notes.len(),
        delivered_to: "the customer's portal".into(),
    }))
}

#[derive(Serialize, JsonSchema)]
pub struct ErasureStatus {
    pub customer_id: String,
    /// `awaiting_second_approval` or `erased`.
    pub status: String,
    pub requested_by: Option<String>,
    pub approved_by: Option<String>,
}

/// The first of two compliance officers requests erasure.
pub async fn request_erasure(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ErasureStatus>, ApiError> {
    let me = user_ref(&p.user.id);
    let at = rfc3339(now());
    let audit = p
        .actor()
        .record("gdpr.erasure_request")
        .target(customer_ref(&id))
        .detail("by", "compliance");
    let req = update_requests(
        &s,
        &id,
        |q| {
            if q.erasure_requested_by.is_none() {
                q.erasure_requested_by = Some(me.clone());
                q.erasure_requested_at = Some(at.clone());
            }
        },
        audit,
    )
    .await?;
    Ok(Json(ErasureStatus {
        customer_id: id,
        status: "awaiting_second_approval".into(),
        requested_by: req.erasure_requested_by,
        approved_by: None,
    }))
}

/// The second, different compliance officer approves: the customer's key share is destroyed
/// first (after that nothing can open the data, in any copy of the database), then the row
/// becomes a tombstone with its indexes and codes gone, and the portal account is closed.
pub async fn approve_erasure(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ErasureStatus>, ApiError> {
    let row = s
        .vault
        .store()
        .customer(&id)
        .await?
        .filter(|r| r.status == "active")
        .ok_or(ApiError::NotFound)?;
    let req = Requests::parse(row.requests.as_deref());
    let me = user_ref(&p.user.id);
    let Some(first) = req.erasure_requested_by.clone() else {
        return Err(ApiError::State(
            "no erasure was requested: a compliance officer requests it first, another approves",
        ));
    };
    if first == me {
        s.vault
            .store()
            .append(vec![p
                .actor()
                .record("gdpr.erasure_approve")
                .target(customer_ref(&id))
                .failure()
                .detail("refused", "same_officer")])
            .await?;
        return Err(ApiError::FourEyes(
            "the officer who requested the erasure cannot approve it: a second compliance officer must",
        ));
    }
    // Point of no return: without the share the data key cannot be rebuilt.
    s.vault.store().destroy_share(&id).await?;
    let mut tomb = row.clone();
    tomb.status = "erased".into();
    tomb.wrapped_key = None;
    tomb.fields = "{}".into();
    tomb.requests = None;
    tomb.version += 1;
    tomb.updated_at = now();
    let audit = p
        .actor()
        .record("customer.erase")
        .target(customer_ref(&id))
        .detail("requested_by", first.clone())
        .detail("approved_by", me.clone())
        .detail(
            "asked_by_customer",
            req.erasure_asked_by_customer_at.is_some(),
        );
    let ok = s
        .vault
        .store()
        .vault_commit(VaultWrite {
            customers: vec![(tomb, Some(row.version))],
            index: vec![(id.clone(), Vec::new())],
            delete_codes_of: Some(id.clone()),
            audit: vec![audit],
            ..VaultWrite::default()
        })
        .await?;
    if !ok {
        // The share is gone already, so the data is; the tombstone is written on a retry.
        return Err(ApiError::State(
            "the customer changed meanwhile; approve again to finish the tombstone",
        ));
    }
    s.identity.close_portal_account(&p.actor(), &id).await?;
    Ok(Json(ErasureStatus {
        customer_id: id,
        status: "erased".into(),
        requested_by: Some(first),
        approved_by: Some(me),
    }))
}

/// `callguard customer invite`: checks the customer exists, then issues a portal setup token.
pub async fn invite(
    s: &crate::Runtime,
    identity: &crate::identity::Identity,
    customer_id: &str,
) -> Result<Secret<String>, ApiError> {
    let exists = s
        .store
        .customer(customer_id)
        .await?
        .is_some_and(|r| r.status == "active");
    if !exists {
        return Err(ApiError::NotFound);
    }
    identity.invite_customer(&Actor::cli(), customer_id).await
}
