//! My account pages: home, sessions, passkeys, recovery codes, re-authentication.

use super::api::{session_view, SessionView};
use crate::features::signin::service::SecondFactor;
use crate::http::access::Access;
use crate::principal::{Principal, RequestContext};
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render, who, Checked, CsrfOnly, Flash, PageRoute, Who};
use crate::web::{ReauthForm, RecoveryPage};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use callguard_core::{rfc3339, Permission, Role};

#[derive(Template)]
#[template(path = "account/home.html")]
struct HomePage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    username: String,
    role: String,
    is_admin: bool,
}

struct PasskeyRow {
    id: String,
    name: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "account/account.html")]
struct AccountPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    sessions: Vec<SessionView>,
    passkeys: Vec<PasskeyRow>,
    recovery_left: i64,
    sip: SipSection,
}

/// The softphone section of My account.
struct SipSection {
    eligible: bool,
    sip_username: String,
    issued_at: String,
    realm: String,
    server: String,
}

#[derive(Template)]
#[template(path = "account/sip.html")]
struct SipIssuedPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    sip_username: String,
    password: String,
    realm: String,
    server: String,
}

async fn home(headers: HeaderMap, p: Principal) -> Response {
    // Customers have a home of their own, without staff navigation.
    if p.user.role == Role::Customer {
        return Redirect::to("/portal").into_response();
    }
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        HomePage {
            csrf: c.token,
            who: who(&p),
            error: String::new(),
            notice: String::new(),
            username: p.user.username.clone(),
            role: p.user.role.to_string(),
            is_admin: p.user.role == Role::Admin,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn account_page(s: &AppState, headers: &HeaderMap, p: &Principal, flash: Flash) -> Response {
    let Flash { error, notice } = flash;
    let c = csrf_of(headers);
    let sessions = match s.account.sessions(p).await {
        Ok(x) => x,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let passkeys = match s.account.passkey_list(p).await {
        Ok(x) => x,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let recovery_left = s.account.unused_recovery_codes(p).await.unwrap_or(0);
    let sip = match s.softphones.status(p).await {
        Ok(x) => SipSection {
            eligible: x.eligible,
            sip_username: x.sip_username.unwrap_or_default(),
            issued_at: x.issued_at.map(rfc3339).unwrap_or_default(),
            realm: x
                .server
                .as_ref()
                .map(|v| v.realm.clone())
                .unwrap_or_default(),
            server: x.server.map(|v| v.address).unwrap_or_default(),
        },
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        AccountPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            sessions: sessions
                .iter()
                .map(|x| session_view(x, &p.session.id))
                .collect(),
            passkeys: passkeys
                .into_iter()
                .map(|k| PasskeyRow {
                    id: k.id,
                    name: k.name,
                    created_at: rfc3339(k.created_at),
                })
                .collect(),
            recovery_left,
            sip,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn account(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    account_page(&s, &headers, &p, Flash::default()).await
}

async fn revoke_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    let flash = Flash::of(
        s.account.revoke_session(&p, &id).await,
        "The session has ended.",
    );
    account_page(&s, &headers, &p, flash).await
}

async fn delete_passkey(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    let flash = Flash::of(
        s.account.delete_passkey(&p, &id).await,
        "The passkey was removed.",
    );
    account_page(&s, &headers, &p, flash).await
}

async fn regenerate_codes(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    p: Principal,
    Checked(f): Checked<ReauthForm>,
) -> Response {
    let mut p = p;
    if let Err(e) = s
        .identity
        .reauthenticate(&mut p, f.password, SecondFactor::typed(f.code), &ctx)
        .await
    {
        return account_page(&s, &headers, &p, Flash::error(&e)).await;
    }
    match s.account.regenerate_recovery_codes(&p).await {
        Ok(codes) => {
            let c = csrf_of(&headers);
            render(
                StatusCode::OK,
                RecoveryPage {
                    csrf: c.token,
                    who: who(&p),
                    error: String::new(),
                    notice: "New recovery codes; the old ones no longer work.".into(),
                    codes: codes.iter().map(|x| x.expose().clone()).collect(),
                    home: "/app".into(),
                },
                &[],
            )
        }
        Err(e) => account_page(&s, &headers, &p, Flash::error(&e)).await,
    }
}

async fn issue_sip_credentials(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    p: Principal,
    Checked(f): Checked<ReauthForm>,
) -> Response {
    let mut p = p;
    if let Err(e) = s
        .identity
        .reauthenticate(&mut p, f.password, SecondFactor::typed(f.code), &ctx)
        .await
    {
        return account_page(&s, &headers, &p, Flash::error(&e)).await;
    }
    match s.softphones.issue_own(&p).await {
        Ok(c) => {
            let c2 = csrf_of(&headers);
            let mut resp = render(
                StatusCode::OK,
                SipIssuedPage {
                    csrf: c2.token,
                    who: who(&p),
                    error: String::new(),
                    notice: "New SIP credentials; any earlier password no longer works.".into(),
                    realm: c
                        .server
                        .as_ref()
                        .map(|v| v.realm.clone())
                        .unwrap_or_default(),
                    server: c.server.map(|v| v.address).unwrap_or_default(),
                    sip_username: c.sip_username,
                    password: c.password.expose().clone(),
                },
                &[],
            );
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => account_page(&s, &headers, &p, Flash::error(&e)).await,
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/app", Signed(OwnAccount), get(home)),
        ("/account", Signed(OwnAccount), get(account)),
        (
            "/account/sessions/{id}/revoke",
            Signed(OwnAccount),
            post(revoke_session),
        ),
        (
            "/account/recovery-codes",
            Signed(OwnAccount),
            post(regenerate_codes),
        ),
        (
            "/account/sip-credentials",
            Signed(OwnAccount),
            post(issue_sip_credentials),
        ),
        (
            "/account/passkeys/{id}/delete",
            Signed(OwnAccount),
            post(delete_passkey),
        ),
    ]
}
