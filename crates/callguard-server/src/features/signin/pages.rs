//! Sign-in pages for both audiences: staff at `/login` and `/setup`, customers at `/portal/login`
//! and `/portal/setup`. One handler set and one set of templates (`templates/signin/`); the
//! audience, a type parameter, decides which accounts are admitted, where each form posts, where
//! a signed-in person goes next and what the page says.

use super::service::SecondFactor;
use crate::error::Error;
use crate::http::access::{cookie, safe_return_path, Access, SESSION_COOKIE};
use crate::http::problem::status_of;
use crate::principal::{Audience, AudienceKind, PortalSide, Principal, RequestContext, StaffSide};
use crate::state::AppState;
use crate::web::{
    cleared_session_cookie, csrf_of, error_page, render, session_cookie, who, with_cookies,
    Checked, CsrfOnly, PageRoute, RecoveryPage, Who,
};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use callguard_core::{Permission, Role, Secret};
use serde::Deserialize;

/// What the sign-in pages of one audience say and where they lead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    pub(crate) portal: bool,
    /// Path prefix of the forms (`""` or `"/portal"`).
    pub(crate) prefix: &'static str,
    /// Prefix of the forms' `data-testid`s.
    pub(crate) testid: &'static str,
    /// Prefix of the page titles.
    pub(crate) title: &'static str,
    /// Where a signed-in person goes.
    pub(crate) home: &'static str,
}

impl Side {
    const fn of(audience: Audience) -> Self {
        match audience {
            Audience::Staff => Side {
                portal: false,
                prefix: "",
                testid: "",
                title: "",
                home: "/app",
            },
            Audience::Portal => Side {
                portal: true,
                prefix: "/portal",
                testid: "portal-",
                title: "Customer portal · ",
                home: "/portal",
            },
        }
    }

    fn sign_in_path(self) -> String {
        format!("{}/login", self.prefix)
    }
}

#[derive(Template)]
#[template(path = "signin/login.html")]
struct LoginPage {
    side: Side,
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    username: String,
    /// Where to go after signing in (a path on this server), or empty.
    next: String,
}

#[derive(Template)]
#[template(path = "signin/mfa.html")]
struct MfaPage {
    side: Side,
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    challenge: String,
    has_webauthn: bool,
    has_recovery: bool,
    webauthn_json: String,
    next: String,
}

#[derive(Template)]
#[template(path = "signin/setup.html")]
struct SetupPage {
    side: Side,
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    token: String,
}

#[derive(Template)]
#[template(path = "signin/enrol.html")]
struct EnrolPage {
    side: Side,
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

/// Only a path on this server is kept as the place to go after signing in.
fn next_of(text: &str) -> String {
    safe_return_path(text).unwrap_or_default().to_owned()
}

/// The sign-in form, empty or with the reason the last try failed.
fn login_form(
    side: Side,
    headers: &HeaderMap,
    error: Option<&Error>,
    username: String,
    next: String,
) -> Response {
    let c = csrf_of(headers);
    render(
        error.map_or(StatusCode::OK, status_of),
        LoginPage {
            side,
            csrf: c.token,
            who: None,
            error: error.map(ToString::to_string).unwrap_or_default(),
            notice: String::new(),
            username,
            next,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

async fn login_page<A: AudienceKind>(
    headers: HeaderMap,
    q: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = q.map(|Query(q)| next_of(&q.next)).unwrap_or_default();
    login_form(Side::of(A::AUDIENCE), &headers, None, String::new(), next)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    /// A staff username, or a customer number on the portal.
    #[serde(default, alias = "customer_id")]
    username: String,
    #[serde(default)]
    password: Secret<String>,
    #[serde(default)]
    next: String,
}

async fn login_submit<A: AudienceKind>(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<LoginForm>,
) -> Response {
    let side = Side::of(A::AUDIENCE);
    let username = f.username.trim().to_owned();
    let started = match s
        .identity
        .begin_sign_in_as(A::AUDIENCE, &username, f.password, &ctx)
        .await
    {
        Ok(started) => started,
        Err(e) => return login_form(side, &headers, Some(&e), username, next_of(&f.next)),
    };
    let json = started
        .webauthn_options
        .as_ref()
        .map(|v| v.to_string().replace('<', "\\u003c"))
        .unwrap_or_default();
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        MfaPage {
            side,
            csrf: c.token,
            who: None,
            error: String::new(),
            notice: String::new(),
            challenge: started.challenge.expose().clone(),
            has_webauthn: started.methods.contains(&"webauthn"),
            has_recovery: side.portal || started.methods.contains(&"recovery"),
            webauthn_json: json,
            next: next_of(&f.next),
        },
        &[],
    )
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
    #[serde(default)]
    next: String,
}

async fn mfa_submit<A: AudienceKind>(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<MfaForm>,
) -> Response {
    let side = Side::of(A::AUDIENCE);
    let factor = match (f.method.as_str(), side.portal) {
        ("totp", _) => SecondFactor::Totp(Secret::new(f.code)),
        ("recovery", _) => SecondFactor::Recovery(Secret::new(f.code)),
        ("webauthn", false) => SecondFactor::WebAuthn(Secret::new(f.code)),
        _ => {
            return error_page(
                &headers,
                &Error::BadRequest("unknown second-factor method".into()),
                None,
            )
        }
    };
    match s
        .identity
        .finish_sign_in_as(A::AUDIENCE, &f.challenge, factor, &ctx)
        .await
    {
        // Back where the person was going: a path on this server only, never another site.
        Ok(signed) => with_cookies(
            Redirect::to(safe_return_path(&f.next).unwrap_or(side.home)).into_response(),
            &[session_cookie(&signed.token)],
        ),
        Err(e @ (Error::SecondFactorRejected | Error::TotpLocked(_))) => {
            let c = csrf_of(&headers);
            render(
                status_of(&e),
                MfaPage {
                    side,
                    csrf: c.token,
                    who: None,
                    error: e.to_string(),
                    notice: String::new(),
                    challenge: f.challenge.expose().clone(),
                    has_webauthn: false,
                    has_recovery: true,
                    webauthn_json: String::new(),
                    next: next_of(&f.next),
                },
                &[],
            )
        }
        Err(e) => login_form(side, &headers, Some(&e), String::new(), next_of(&f.next)),
    }
}

async fn logout<A: AudienceKind>(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    _: Checked<CsrfOnly>,
) -> Response {
    if let Err(e) = s.identity.sign_out(&p).await {
        return error_page(&headers, &e, who(&p));
    }
    with_cookies(
        Redirect::to(&Side::of(A::AUDIENCE).sign_in_path()).into_response(),
        &[cleared_session_cookie()],
    )
}

fn setup_form(side: Side, headers: &HeaderMap, error: Option<String>, token: String) -> Response {
    let c = csrf_of(headers);
    render(
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        SetupPage {
            side,
            csrf: c.token,
            who: None,
            error: error.unwrap_or_default(),
            notice: String::new(),
            token,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// The same as [`setup_form`] with the status of the error.
fn setup_failed(side: Side, headers: &HeaderMap, e: &Error, text: String) -> Response {
    let mut resp = setup_form(side, headers, Some(text), String::new());
    *resp.status_mut() = status_of(e);
    resp
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The setup form, with the token filled in when the link carried it.
async fn setup_page<A: AudienceKind>(
    headers: HeaderMap,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = q.map(|Query(q)| q.token).unwrap_or_default();
    // Only token-shaped text is put back into the page.
    let token = if token.len() <= 200
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        token
    } else {
        String::new()
    };
    setup_form(Side::of(A::AUDIENCE), &headers, None, token)
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

async fn setup_submit<A: AudienceKind>(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<SetupForm>,
) -> Response {
    let side = Side::of(A::AUDIENCE);
    if f.password.expose() != f.password_again.expose() {
        let e = Error::Validation("the two passwords differ; type the same password twice".into());
        return setup_failed(side, &headers, &e, e.to_string());
    }
    let token = Secret::new(f.token.expose().trim().to_owned());
    let started = match s
        .identity
        .begin_setup_as(A::AUDIENCE, &token, f.password, &ctx)
        .await
    {
        Ok(started) => started,
        Err(e) => return setup_failed(side, &headers, &e, e.to_string()),
    };
    let greeting = if side.portal { "Customer" } else { "Hello" };
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        EnrolPage {
            side,
            csrf: c.token,
            who: None,
            error: String::new(),
            notice: format!("{greeting} {}: one step left.", started.username),
            challenge: started.challenge.expose().clone(),
            totp_secret: started.totp_secret.expose().clone(),
            qr_svg_base64: qr_base64(started.otpauth_uri.expose()),
        },
        &[],
    )
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

async fn setup_confirm<A: AudienceKind>(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Checked(f): Checked<ConfirmForm>,
) -> Response {
    let side = Side::of(A::AUDIENCE);
    let signed = match s
        .identity
        .confirm_setup_as(A::AUDIENCE, &f.challenge, &f.code, &ctx)
        .await
    {
        Ok(signed) => signed,
        // The challenge keeps its secret sealed; a wrong code means starting setup again shows
        // a new QR code, so we send the person back with the reason.
        Err(e) => {
            let again = if side.portal {
                "start the setup again with your invite token"
            } else {
                "start the setup again"
            };
            return setup_failed(side, &headers, &e, format!("{e} ({again})"));
        }
    };
    let principal = s
        .identity
        .authenticate(signed.token.expose(), ctx.source)
        .await
        .ok();
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        RecoveryPage {
            csrf: c.token,
            who: principal.as_ref().and_then(who),
            error: String::new(),
            notice: if side.portal {
                "Your portal account is ready and you are signed in.".into()
            } else {
                "Your account is ready and you are signed in.".into()
            },
            codes: signed
                .recovery_codes
                .iter()
                .map(|x| x.expose().clone())
                .collect(),
            home: side.home.into(),
        },
        &[session_cookie(&signed.token)],
    )
}

/// The sign-in pages of both audiences, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::{Public, Signed};
    use Permission::{OwnAccount, Portal};
    vec![
        ("/", Public, get(root)),
        (
            "/login",
            Public,
            get(login_page::<StaffSide>).post(login_submit::<StaffSide>),
        ),
        ("/login/mfa", Public, post(mfa_submit::<StaffSide>)),
        (
            "/setup",
            Public,
            get(setup_page::<StaffSide>).post(setup_submit::<StaffSide>),
        ),
        ("/setup/confirm", Public, post(setup_confirm::<StaffSide>)),
        ("/logout", Signed(OwnAccount), post(logout::<StaffSide>)),
        (
            "/portal/login",
            Public,
            get(login_page::<PortalSide>).post(login_submit::<PortalSide>),
        ),
        ("/portal/login/mfa", Public, post(mfa_submit::<PortalSide>)),
        (
            "/portal/setup",
            Public,
            get(setup_page::<PortalSide>).post(setup_submit::<PortalSide>),
        ),
        (
            "/portal/setup/confirm",
            Public,
            post(setup_confirm::<PortalSide>),
        ),
        ("/portal/logout", Signed(Portal), post(logout::<PortalSide>)),
    ]
}

crate::web::csrf_forms!(ConfirmForm, LoginForm, MfaForm, SetupForm);
