//! Staff administration pages: the list of accounts, creating one, lifting a lockout.

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
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
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
    ]
}

crate::web::csrf_forms!(CreateUserForm);
