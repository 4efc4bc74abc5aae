//! Staff administration over the JSON API: accounts, roles, lockouts, resets.

use super::service::StaffAccount;
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Json;
use callguard_core::identity::{User, UserStatus};
use callguard_core::{rfc3339, Permission, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Who created the account: `user:<id>` of the admin, `cli` for the operator (absent for
    /// accounts older than this record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who confirmed the person behind a compliance account (`user:<id>` of an officer, `cli`,
    /// or `system` for officers older than this record). A compliance account nobody
    /// confirmed cannot approve an erasure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
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

pub fn account_view(a: &StaffAccount) -> UserView {
    UserView {
        created_by: a.provenance.created_by.clone(),
        confirmed_by: a.provenance.confirmed_by.clone(),
        confirmed_at: a.provenance.confirmed_at.map(rfc3339),
        ..user_view(&a.user)
    }
}

pub fn user_view(u: &User) -> UserView {
    UserView {
        created_by: None,
        confirmed_by: None,
        confirmed_at: None,
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

async fn list_users(State(s): State<AppState>) -> Result<Json<UserList>, Error> {
    let accounts = s.accounts.list_accounts().await?;
    Ok(Json(UserList {
        users: accounts.iter().map(account_view).collect(),
    }))
}

async fn confirm_officer(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(account_view(
        &s.accounts.officer_confirm(&p, &id).await?,
    )))
}

async fn create_user(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreateUserResponse>), Error> {
    let (user, token) = s
        .accounts
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
) -> Result<Json<UserView>, Error> {
    Ok(Json(user_view(&s.accounts.admin_unlock(&p, &id).await?)))
}

async fn set_role(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SetRoleRequest>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(user_view(
        &s.accounts.admin_set_role(&p, &id, r.role).await?,
    )))
}

async fn enable_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(user_view(
        &s.accounts.admin_set_enabled(&p, &id, true).await?,
    )))
}

async fn disable_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(user_view(
        &s.accounts.admin_set_enabled(&p, &id, false).await?,
    )))
}

async fn reset_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<SetupTokenResponse>, Error> {
    let token = s.accounts.admin_reset_setup(&p, &id).await?;
    Ok(Json(SetupTokenResponse {
        setup_token: token.expose().clone(),
    }))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/users", Signed(UsersRead), "All staff accounts.", get(list_users)).gives::<UserList>(200),
        route("POST", "/api/v1/users", Signed(UsersManage), "Creates a staff account and returns its one-time setup token, shown this once (creating a supervisor, compliance or admin account needs re-authentication and raises an alert, as does its first sign-in).", post(create_user))
            .takes::<CreateUserRequest>().gives::<CreateUserResponse>(201).may(&[409, 422]),
        route("POST", "/api/v1/users/{id}/unlock", Signed(UsersManage), "Lifts a lockout (needs re-authentication).", post(unlock_user)).gives::<UserView>(200),
        route("PUT", "/api/v1/users/{id}/role", Signed(UsersManage), "Changes a role and ends that person's sessions (needs re-authentication).", put(set_role))
            .takes::<SetRoleRequest>().gives::<UserView>(200).may(&[422]),
        route("POST", "/api/v1/users/{id}/enable", Signed(UsersManage), "Enables a disabled account (needs re-authentication).", post(enable_user)).gives::<UserView>(200).may(&[422]),
        route("POST", "/api/v1/users/{id}/disable", Signed(UsersManage), "Disables an account and ends its sessions (needs re-authentication).", post(disable_user)).gives::<UserView>(200).may(&[422]),
        route("POST", "/api/v1/users/{id}/confirm", Signed(OfficersConfirm), "An existing compliance officer confirms the person behind a new compliance account, which may then approve erasures (needs re-authentication; never one's own).", post(confirm_officer)).gives::<UserView>(200).may(&[409, 422]),
        route("POST", "/api/v1/users/{id}/reset", Signed(UsersManage), "Wipes an account's credentials and issues a new setup token (needs re-authentication).", post(reset_user))
            .gives::<SetupTokenResponse>(200).may(&[422]),
    ]
}
