//! Sign-in pages for both audiences: staff at `/login` and `/setup`, customers at `/portal/login`
//! and `/portal/setup`. One handler set and one set of templates; the audience decides which
//! accounts are admitted, where to go afterwards and what the page says.

use super::service::SecondFactor;
use crate::error::Error;
use crate::http::access::Access;
use crate::http::access::{cookie, SESSION_COOKIE};
use crate::principal::{Principal, RequestContext};
use crate::state::AppState;
use crate::web::{
    cleared_session_cookie, csrf_of, error_page, render, session_cookie, who, with_cookies,
    Checked, CsrfOnly, PageRoute, RecoveryPage, Who,
};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use callguard_core::{Permission, Role, Secret};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    username: String,
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    challenge: String,
    has_webauthn: bool,
    has_recovery: bool,
    webauthn_json: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    challenge: String,
    totp_secret: String,
    qr_svg_base64: String,
}

async fn root(State(s): State<AppState>, headers: HeaderMap, ctx: RequestContext) -> Redirect {
    let signed = match cookie(&headers, SESSION_COOKIE) {
        Some(t) => s.identity.authenticate(t, ctx.source).await.ok(),
        None => None,
    };
    match signed {
        Some(p) if p.user.role == Role::Customer => Redirect::to("/portal"),
        Some(_) => Redirect::to("/app"),
        None => Redirect::to("/login"),
    }
}

async fn login_page(headers: HeaderMap) -> Response {
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        LoginPage {
            csrf: c.token,
            who: None,
            error: String::new(),
            notice: String::new(),
            username: String::new(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: Secret<String>,
}

async fn login_submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<LoginForm>,
) -> Response {
    let c = csrf_of(&headers);
    match s
        .identity
        .begin_sign_in(f.username.trim(), f.password, &ctx)
        .await
    {
        Ok(started) => {
            let json = started
                .webauthn_options
                .as_ref()
                .map(|v| v.to_string().replace('<', "\\u003c"))
                .unwrap_or_default();
            render(
                StatusCode::OK,
                MfaPage {
                    csrf: c.token,
                    who: None,
                    error: String::new(),
                    notice: String::new(),
                    challenge: started.challenge.expose().clone(),
                    has_webauthn: started.methods.contains(&"webauthn"),
                    has_recovery: started.methods.contains(&"recovery"),
                    webauthn_json: json,
                },
                &[],
            )
        }
        Err(e) => render(
            crate::http::problem::status_of(&e),
            LoginPage {
                csrf: c.token,
                who: None,
                error: e.to_string(),
                notice: String::new(),
                username: f.username,
            },
            &[],
        ),
    }
}

#[derive(Deserialize)]
struct MfaForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge: Secret<String>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
}

async fn mfa_submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<MfaForm>,
) -> Response {
    let factor = match f.method.as_str() {
        "totp" => SecondFactor::Totp(Secret::new(f.code)),
        "recovery" => SecondFactor::Recovery(Secret::new(f.code)),
        "webauthn" => SecondFactor::WebAuthn(Secret::new(f.code)),
        _ => {
            return error_page(
                &headers,
                &Error::BadRequest("unknown second-factor method".into()),
                None,
            )
        }
    };
    let c = csrf_of(&headers);
    match s.identity.finish_sign_in(&f.challenge, factor, &ctx).await {
        Ok(signed) => with_cookies(
            Redirect::to("/app").into_response(),
            &[session_cookie(&signed.token)],
        ),
        Err(e @ (Error::SecondFactorRejected | Error::TotpLocked(_))) => render(
            crate::http::problem::status_of(&e),
            MfaPage {
                csrf: c.token,
                who: None,
                error: e.to_string(),
                notice: String::new(),
                challenge: f.challenge.expose().clone(),
                has_webauthn: false,
                has_recovery: true,
                webauthn_json: String::new(),
            },
            &[],
        ),
        Err(e) => render(
            crate::http::problem::status_of(&e),
            LoginPage {
                csrf: c.token,
                who: None,
                error: e.to_string(),
                notice: String::new(),
                username: String::new(),
            },
            &[],
        ),
    }
}

async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    _: Checked<CsrfOnly>,
) -> Response {
    if let Err(e) = s.identity.sign_out(&p).await {
        return error_page(&headers, &e, who(&p));
    }
    with_cookies(
        Redirect::to("/login").into_response(),
        &[cleared_session_cookie()],
    )
}

async fn setup_page(headers: HeaderMap) -> Response {
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        SetupPage {
            csrf: c.token,
            who: None,
            error: String::new(),
            notice: String::new(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: Secret<String>,
    #[serde(default)]
    password: Secret<String>,
    #[serde(default)]
    password_again: Secret<String>,
}

pub(crate) fn qr_base64(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .build();
            data_encoding::BASE64.encode(svg.as_bytes())
        }
        Err(_) => String::new(),
    }
}

async fn setup_submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<SetupForm>,
) -> Response {
    let c = csrf_of(&headers);
    let fail = |e: Error, token: String| {
        render(
            crate::http::problem::status_of(&e),
            SetupPage {
                csrf: token,
                who: None,
                error: e.to_string(),
                notice: String::new(),
            },
            &[],
        )
    };
    if f.password.expose() != f.password_again.expose() {
        return fail(
            Error::Validation("the two passwords differ; type the same password twice".into()),
            c.token,
        );
    }
    match s
        .identity
        .begin_setup(
            &Secret::new(f.token.expose().trim().to_owned()),
            f.password,
            &ctx,
        )
        .await
    {
        Ok(started) => render(
            StatusCode::OK,
            EnrolPage {
                csrf: c.token,
                who: None,
                error: String::new(),
                notice: format!("Hello {}: one step left.", started.username),
                challenge: started.challenge.expose().clone(),
                totp_secret: started.totp_secret.expose().clone(),
                qr_svg_base64: qr_base64(started.otpauth_uri.expose()),
            },
            &[],
        ),
        Err(e) => fail(e, c.token),
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge: Secret<String>,
    #[serde(default)]
    code: Secret<String>,
}

async fn setup_confirm(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<ConfirmForm>,
) -> Response {
    let c = csrf_of(&headers);
    match s.identity.confirm_setup(&f.challenge, &f.code, &ctx).await {
        Ok(signed) => {
            let principal = s
                .identity
                .authenticate(signed.token.expose(), ctx.source)
                .await
                .ok();
            render(
                StatusCode::OK,
                RecoveryPage {
                    csrf: c.token,
                    who: principal.as_ref().and_then(who),
                    error: String::new(),
                    notice: "Your account is ready and you are signed in.".into(),
                    codes: signed
                        .recovery_codes
                        .iter()
                        .map(|x| x.expose().clone())
                        .collect(),
                },
                &[session_cookie(&signed.token)],
            )
        }
        // The challenge keeps its secret sealed; a wrong code means starting setup again shows
        // a new QR code, so we send the person back with the reason.
        Err(e) => render(
            crate::http::problem::status_of(&e),
            SetupPage {
                csrf: c.token,
                who: None,
                error: format!("{e} (start the setup again)"),
                notice: String::new(),
            },
            &[],
        ),
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::{Public, Signed};
    use Permission::*;
    vec![
        ("/", Public, get(root)),
        ("/login", Public, get(login_page).post(login_submit)),
        ("/login/mfa", Public, post(mfa_submit)),
        ("/setup", Public, get(setup_page).post(setup_submit)),
        ("/setup/confirm", Public, post(setup_confirm)),
        ("/logout", Signed(OwnAccount), post(logout)),
    ]
}

crate::web::csrf_forms!(ConfirmForm, LoginForm, MfaForm, SetupForm);
