//! Staff administration pages: the list of accounts, creating one, and every action the API
//! offers on one (role, disable/enable, reset with a new setup token, unlock), each behind the
//! re-authentication step the page asks for visibly.

use super::api::account_view;
use crate::features::signin::service::SecondFactor;
use crate::http::access::Access;
use crate::principal::Principal;
use crate::principal::RequestContext;
use crate::state::AppState;
use crate::web::ReauthForm;
use crate::web::{csrf_of, error_page, render, who, Checked, CsrfOnly, Flash, PageRoute, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use callguard_core::{Permission, Role, Secret};
use serde::Deserialize;

struct UserRow {
    id: String,
    username: String,
    role: String,
    status: String,
    locked: bool,
    failed_sign_ins: i64,
    last_sign_in: String,
    created_by: String,
    /// For compliance accounts: who confirmed the person, or that nobody has yet.
    confirmation: String,
}

impl UserRow {
    fn is_role(&self, role: &str) -> bool {
        self.role == role
    }
}

#[derive(Template)]
#[template(path = "staff/users.html")]
struct UsersPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    users: Vec<UserRow>,
    setup_token: String,
    created_username: String,
    /// Whether the admin confirmed it is them recently, and until when (RFC 3339).
    reauth_open: bool,
    reauth_until: String,
    /// My own account id: no action on one's own row.
    me: String,
}

pub(crate) async fn users_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    flash: Flash,
    created: Option<(String, Secret<String>)>,
) -> Response {
    let Flash { error, notice } = flash;
    let c = csrf_of(headers);
    let users = match s.accounts.list_accounts().await {
        Ok(u) => u,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let (created_username, setup_token) = created
        .map_or((String::new(), String::new()), |(u, t)| {
            (u, t.expose().clone())
        });
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        UsersPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            users: users
                .iter()
                .map(|a| {
                    let v = account_view(a);
                    let confirmation = match (v.role, &v.confirmed_by) {
                        (Role::Compliance, Some(by)) => format!("confirmed by {by}"),
                        (Role::Compliance, None) => "awaiting confirmation by an officer".into(),
                        _ => String::new(),
                    };
                    UserRow {
                        created_by: v.created_by.clone().unwrap_or_else(|| "unknown".into()),
                        confirmation,
                        id: v.id,
                        username: v.username,
                        role: v.role.to_string(),
                        status: v.status.as_str().to_owned(),
                        locked: v.locked,
                        failed_sign_ins: v.failed_sign_ins,
                        last_sign_in: v.last_sign_in_at.unwrap_or_else(|| "never".into()),
                    }
                })
                .collect(),
            setup_token,
            created_username,
            reauth_open: p.session.recently_authenticated(callguard_core::now()),
            reauth_until: callguard_core::rfc3339(
                p.session.reauth_at + callguard_core::identity::REAUTH_SECONDS,
            ),
            me: p.user.id.clone(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// The page with an action's error, answered with the error's own status (403 for a missing
/// re-authentication, as the API answers).
async fn users_failed(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    e: &crate::error::Error,
) -> Response {
    let mut r = users_view(s, headers, p, Flash::error(e), None).await;
    *r.status_mut() = crate::http::problem::status_of(e);
    r
}

async fn users_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    users_view(&s, &headers, &p, Flash::default(), None).await
}

#[derive(Deserialize)]
struct CreateUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

async fn create_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<CreateUserForm>,
) -> Response {
    let role: Role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => return users_view(&s, &headers, &p, Flash::error(&e), None).await,
    };
    let username = f.username.trim().to_owned();
    match s.accounts.admin_create_user(&p, &username, role).await {
        Ok((_, token)) => {
            users_view(
                &s,
                &headers,
                &p,
                Flash::notice(format!("Account {username} created.")),
                Some((username, token)),
            )
            .await
        }
        Err(e) => users_view(&s, &headers, &p, Flash::error(&e), None).await,
    }
}

async fn unlock_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.accounts.admin_unlock(&p, &id).await {
        Ok(u) => {
            users_view(
                &s,
                &headers,
                &p,
                Flash::notice(format!("{} is unlocked.", u.username)),
                None,
            )
            .await
        }
        Err(e) => users_view(&s, &headers, &p, Flash::error(&e), None).await,
    }
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

async fn set_role(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<RoleForm>,
) -> Response {
    let role: Role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => return users_view(&s, &headers, &p, Flash::error(&e), None).await,
    };
    let flash = match s.accounts.admin_set_role(&p, &id, role).await {
        Ok(u) => Flash::notice(format!(
            "{} is now {}; their sessions ended, so the new rights apply at their next sign-in.",
            u.username, u.role
        )),
        Err(e) => return users_failed(&s, &headers, &p, &e).await,
    };
    users_view(&s, &headers, &p, flash, None).await
}

async fn set_enabled(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    id: &str,
    on: bool,
) -> Response {
    let flash = match s.accounts.admin_set_enabled(p, id, on).await {
        Ok(u) if on => Flash::notice(format!("{} is enabled and may sign in again.", u.username)),
        Ok(u) => Flash::notice(format!("{} is disabled; their sessions ended.", u.username)),
        Err(e) => return users_failed(s, headers, p, &e).await,
    };
    users_view(s, headers, p, flash, None).await
}

async fn enable_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    set_enabled(&s, &headers, &p, &id, true).await
}

async fn disable_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    set_enabled(&s, &headers, &p, &id, false).await
}

/// Wipes the account's credentials and shows the new setup token once, with the setup link.
async fn reset_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.accounts.admin_reset_setup(&p, &id).await {
        Ok(token) => {
            let name = s
                .accounts
                .list_users()
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|u| u.id == id)
                .map_or_else(|| "the account".to_owned(), |u| u.username);
            let notice =
                format!("{name}'s credentials are wiped: they set up again with the token below.");
            users_view(&s, &headers, &p, Flash::notice(notice), Some((name, token))).await
        }
        Err(e) => users_failed(&s, &headers, &p, &e).await,
    }
}

/// Re-authentication before a sensitive admin action, from the users page.
async fn reauth(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    mut p: Principal,
    Checked(f): Checked<ReauthForm>,
) -> Response {
    // Only our own paths: never an open redirect.
    let next = crate::http::access::safe_return_path(&f.next)
        .unwrap_or("/app")
        .to_owned();
    match s
        .identity
        .reauthenticate(&mut p, f.password, SecondFactor::typed(f.code), &ctx)
        .await
    {
        Ok(()) => Redirect::to(&next).into_response(),
        Err(e) if next == "/admin/users" => {
            users_view(&s, &headers, &p, Flash::error(&e), None).await
        }
        Err(e) => error_page(&headers, &e, who(&p)),
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/reauth", Signed(OwnAccount), post(reauth)),
        // One path, two rules: the list needs what the API's list needs, creating what the
        // API's POST /api/v1/users needs (the router merges the two).
        ("/admin/users", Signed(UsersRead), get(users_page)),
        ("/admin/users", Signed(UsersManage), post(create_user)),
        (
            "/admin/users/{id}/unlock",
            Signed(UsersManage),
            post(unlock_user),
        ),
        (
            "/admin/users/{id}/role",
            Signed(UsersManage),
            post(set_role),
        ),
        (
            "/admin/users/{id}/enable",
            Signed(UsersManage),
            post(enable_user),
        ),
        (
            "/admin/users/{id}/disable",
            Signed(UsersManage),
            post(disable_user),
        ),
        (
            "/admin/users/{id}/reset",
            Signed(UsersManage),
            post(reset_user),
        ),
    ]
}

crate::web::csrf_forms!(CreateUserForm, RoleForm);
