//! Server-rendered pages (the start of SPEC C10): sign-in, second factor, first-time setup with
//! a QR code, recovery codes, my account (sessions, passkeys, recovery codes) and staff
//! administration. Every form carries an anti-forgery token; every page is covered by the same
//! access table and security headers as the API; the only script is our own `webauthn.js`.

use crate::access::{cookie, Access, CSRF_COOKIE, SESSION_COOKIE};
use crate::api::{session_view, user_view, SessionView};
use crate::error::{ApiError, PROBLEM_TYPES};
use crate::identity::{Principal, RequestContext, SecondFactor};
use crate::{csrf, AppState};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Form;
use callguard_core::{rfc3339, Permission, Role, Secret};
use serde::Deserialize;

/// Every page route with its access rule.
pub fn routes() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
    use Access::{Public, Signed};
    use Permission::*;
    vec![
        ("/", Public, get(root)),
        ("/login", Public, get(login_page).post(login_submit)),
        ("/login/mfa", Public, post(mfa_submit)),
        ("/setup", Public, get(setup_page).post(setup_submit)),
        ("/setup/confirm", Public, post(setup_confirm)),
        ("/logout", Signed(OwnAccount), post(logout)),
        ("/reauth", Signed(OwnAccount), post(reauth)),
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
            "/account/passkeys/{id}/delete",
            Signed(OwnAccount),
            post(delete_passkey),
        ),
        (
            "/admin/users",
            Signed(UsersRead),
            get(users_page).post(create_user),
        ),
        (
            "/admin/users/{id}/unlock",
            Signed(UsersManage),
            post(unlock_user),
        ),
        ("/alerts", Signed(AlertsRead), get(alerts_page)),
        (
            "/alerts/{id}/handle",
            Signed(AlertsManage),
            post(handle_alert),
        ),
        ("/audit", Signed(AuditRead), get(audit_page)),
        ("/dnc", Signed(DncStatus), get(dnc_page)),
        ("/dnc/internal", Signed(DncListManage), post(add_opt_out)),
        (
            "/dnc/consents/{id}/revoke",
            Signed(ConsentManage),
            post(revoke_consent),
        ),
        ("/problems/{slug}", Public, get(problem_page)),
        ("/static/{file}", Public, get(static_file)),
    ]
    .into_iter()
    .chain(crate::desk::routes())
    .chain(crate::portal_pages::routes())
    .collect()
}

// ---- shared pieces ----------------------------------------------------------------------

/// The signed-in person as the layout shows them.
pub struct Who {
    pub username: String,
    pub role: String,
    pub is_admin: bool,
    pub sees_alerts: bool,
    pub sees_audit: bool,
    pub sees_dnc: bool,
    pub sees_desk: bool,
    /// A portal customer: sees the portal's navigation, never the staff's.
    pub is_customer: bool,
}

pub(crate) fn who(p: &Principal) -> Option<Who> {
    Some(Who {
        username: p.user.username.clone(),
        role: p.user.role.to_string(),
        is_admin: p.user.role == Role::Admin,
        sees_alerts: p.user.role.allows(Permission::AlertsRead),
        sees_audit: p.user.role.allows(Permission::AuditRead),
        sees_dnc: p.user.role.allows(Permission::DncStatus),
        sees_desk: p.user.role.allows(Permission::InteractionsHandle),
        is_customer: p.user.role == Role::Customer,
    })
}

const COOKIE_ATTRS: &str = "Path=/; Secure; HttpOnly; SameSite=Strict";

/// The anti-forgery token for this browser, and the cookie to set when it is new.
pub(crate) struct Csrf {
    pub(crate) token: String,
    pub(crate) new_cookie: Option<String>,
}

pub(crate) fn csrf_of(headers: &HeaderMap) -> Csrf {
    match cookie(headers, CSRF_COOKIE) {
        Some(t) if t.len() >= 32 => Csrf {
            token: t.to_owned(),
            new_cookie: None,
        },
        _ => {
            let token = csrf::new_token();
            Csrf {
                new_cookie: Some(format!("{CSRF_COOKIE}={token}; {COOKIE_ATTRS}")),
                token,
            }
        }
    }
}

fn check_csrf(headers: &HeaderMap, sent: &str) -> Result<(), ApiError> {
    if csrf::tokens_match(Some(sent), cookie(headers, CSRF_COOKIE)) {
        Ok(())
    } else {
        Err(ApiError::Csrf)
    }
}

/// A form whose anti-forgery token has been checked: every state-changing page handler takes
/// its form through this extractor, so none can forget the check.
pub(crate) struct Checked<T>(pub(crate) T);

/// Forms carry their anti-forgery token in a `csrf` field.
pub(crate) trait CsrfField {
    fn csrf(&self) -> &str;
}

macro_rules! csrf_forms {
    ($($form:ty),+ $(,)?) => {$(
        impl CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )+};
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned + CsrfField> axum::extract::FromRequest<S>
    for Checked<T>
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let Form(form) = Form::<T>::from_request(req, state).await.map_err(|_| {
            error_page(
                &headers,
                &ApiError::BadRequest("the form could not be read".into()),
                None,
            )
        })?;
        check_csrf(&headers, form.csrf()).map_err(|e| error_page(&headers, &e, None))?;
        Ok(Checked(form))
    }
}

pub(crate) fn render(status: StatusCode, page: impl Template, cookies: &[String]) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            return ApiError::Internal.into_response();
        }
    };
    let mut resp = (status, Html(body)).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(crate) fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(crate) fn session_cookie(token: &Secret<String>) -> String {
    format!("{SESSION_COOKIE}={}; {COOKIE_ATTRS}", token.expose())
}

pub(crate) fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; {COOKIE_ATTRS}; Max-Age=0")
}

pub(crate) fn error_page(headers: &HeaderMap, e: &ApiError, who: Option<Who>) -> Response {
    let c = csrf_of(headers);
    let p = e.problem();
    let about = PROBLEM_TYPES
        .iter()
        .find(|(s, _, _)| *s == e.slug())
        .map_or("", |(_, _, a)| a);
    render(
        e.status(),
        ProblemPage {
            csrf: c.token,
            who,
            error: p.detail,
            notice: String::new(),
            title: p.title,
            slug: e.slug().into(),
            about: about.into(),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

fn second_factor(code: String) -> SecondFactor {
    let code = Secret::new(code);
    if code.expose().trim().len() == callguard_core::totp::DIGITS as usize {
        SecondFactor::Totp(code)
    } else {
        SecondFactor::Recovery(code)
    }
}

csrf_forms!(
    ConfirmForm,
    CreateUserForm,
    CsrfOnly,
    HandleAlertForm,
    LoginForm,
    OptOutForm,
    MfaForm,
    ReauthForm,
    SetupForm
);

// ---- templates ----------------------------------------------------------------------------

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

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
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
#[template(path = "account.html")]
struct AccountPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    sessions: Vec<SessionView>,
    passkeys: Vec<PasskeyRow>,
    recovery_left: i64,
}

struct UserRow {
    id: String,
    username: String,
    role: String,
    status: String,
    locked: bool,
    failed_sign_ins: i64,
    last_sign_in: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    users: Vec<UserRow>,
    setup_token: String,
    created_username: String,
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    title: String,
    slug: String,
    about: String,
}

// ---- sign-in ------------------------------------------------------------------------------

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
            e.status(),
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
                &ApiError::BadRequest("unknown second-factor method".into()),
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
        Err(e @ (ApiError::SecondFactorRejected | ApiError::TotpLocked(_))) => render(
            e.status(),
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
            e.status(),
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

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

// ---- first-time setup ---------------------------------------------------------------------

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
    let fail = |e: ApiError, token: String| {
        render(
            e.status(),
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
            ApiError::Validation("the two passwords differ; type the same password twice".into()),
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
            e.status(),
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

// ---- signed-in pages ----------------------------------------------------------------------

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

async fn account_page(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    error: String,
    notice: String,
) -> Response {
    let c = csrf_of(headers);
    let sessions = match s.identity.sessions(p).await {
        Ok(x) => x,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let passkeys = match s.identity.passkey_list(p).await {
        Ok(x) => x,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let recovery_left = s.identity.unused_recovery_codes(p).await.unwrap_or(0);
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
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn account(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    account_page(&s, &headers, &p, String::new(), String::new()).await
}

async fn revoke_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.identity.revoke_session(&p, &id).await {
        Ok(()) => {
            account_page(
                &s,
                &headers,
                &p,
                String::new(),
                "The session has ended.".into(),
            )
            .await
        }
        Err(e) => account_page(&s, &headers, &p, e.to_string(), String::new()).await,
    }
}

async fn delete_passkey(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.identity.delete_passkey(&p, &id).await {
        Ok(()) => {
            account_page(
                &s,
                &headers,
                &p,
                String::new(),
                "The passkey was removed.".into(),
            )
            .await
        }
        Err(e) => account_page(&s, &headers, &p, e.to_string(), String::new()).await,
    }
}

#[derive(Deserialize)]
struct ReauthForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: Secret<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
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
        .reauthenticate(&mut p, f.password, second_factor(f.code), &ctx)
        .await
    {
        return account_page(&s, &headers, &p, e.to_string(), String::new()).await;
    }
    match s.identity.regenerate_recovery_codes(&p).await {
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
                },
                &[],
            )
        }
        Err(e) => account_page(&s, &headers, &p, e.to_string(), String::new()).await,
    }
}

async fn reauth(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    mut p: Principal,
    Checked(f): Checked<ReauthForm>,
) -> Response {
    // Only our own paths: never an open redirect.
    let next = if f.next.starts_with('/') && !f.next.starts_with("//") && !f.next.contains('\\') {
        f.next.clone()
    } else {
        "/app".into()
    };
    match s
        .identity
        .reauthenticate(&mut p, f.password, second_factor(f.code), &ctx)
        .await
    {
        Ok(()) => Redirect::to(&next).into_response(),
        Err(e) if next == "/admin/users" => {
            users_view(&s, &headers, &p, e.to_string(), String::new(), None).await
        }
        Err(e) => error_page(&headers, &e, who(&p)),
    }
}

// ---- staff administration -----------------------------------------------------------------

async fn users_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    error: String,
    notice: String,
    created: Option<(String, Secret<String>)>,
) -> Response {
    let c = csrf_of(headers);
    let users = match s.identity.list_users().await {
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
                .map(|u| {
                    let v = user_view(u);
                    UserRow {
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
    users_view(&s, &headers, &p, String::new(), String::new(), None).await
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
    // The page route only needs UsersRead to show the list; creating needs UsersManage.
    if !p.user.role.allows(Permission::UsersManage) {
        return error_page(&headers, &ApiError::Forbidden, who(&p));
    }
    let role: Role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => return users_view(&s, &headers, &p, e.to_string(), String::new(), None).await,
    };
    let username = f.username.trim().to_owned();
    match s.identity.admin_create_user(&p, &username, role).await {
        Ok((_, token)) => {
            users_view(
                &s,
                &headers,
                &p,
                String::new(),
                format!("Account {username} created."),
                Some((username, token)),
            )
            .await
        }
        Err(e) => users_view(&s, &headers, &p, e.to_string(), String::new(), None).await,
    }
}

async fn unlock_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.identity.admin_unlock(&p, &id).await {
        Ok(u) => {
            users_view(
                &s,
                &headers,
                &p,
                String::new(),
                format!("{} is unlocked.", u.username),
                None,
            )
            .await
        }
        Err(e) => users_view(&s, &headers, &p, e.to_string(), String::new(), None).await,
    }
}

// ---- alerts and audit ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    alerts: Vec<crate::alerts::AlertView>,
}

async fn alerts_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    error: String,
    notice: String,
) -> Response {
    let c = csrf_of(headers);
    let mut alerts = match s.alerts.list(Some("open"), 200).await {
        Ok(a) => a,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    alerts.extend(
        s.alerts
            .list(Some("acknowledged"), 200)
            .await
            .unwrap_or_default(),
    );
    alerts.sort_by_key(|a| std::cmp::Reverse(a.seq));
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        AlertsPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            alerts,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn alerts_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    alerts_view(&s, &headers, &p, String::new(), String::new()).await
}

#[derive(Deserialize)]
struct HandleAlertForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    to: String,
}

async fn handle_alert(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<HandleAlertForm>,
) -> Response {
    let resolve = match f.to.as_str() {
        "resolved" => true,
        "acknowledged" => false,
        _ => {
            return alerts_view(
                &s,
                &headers,
                &p,
                "choose acknowledge or resolve".into(),
                String::new(),
            )
            .await
        }
    };
    match s.alerts.transition(&p, &id, resolve, &f.comment).await {
        Ok(a) => {
            alerts_view(
                &s,
                &headers,
                &p,
                String::new(),
                format!("Alert {} is {}.", a.rule, a.status),
            )
            .await
        }
        Err(e) => alerts_view(&s, &headers, &p, e.to_string(), String::new()).await,
    }
}

struct AuditRow {
    index: u64,
    time: String,
    actor: String,
    actor_label: String,
    target_label: String,
    action: String,
    target: String,
    outcome: String,
    source: String,
    details: String,
    proof: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditBrowser {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    tree_size: u64,
    checkpoint: String,
    verifier_key: String,
    entries: Vec<AuditRow>,
    f_actor: String,
    f_action: String,
    f_from: String,
    f_to: String,
    older: String,
}

async fn audit_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let c = csrf_of(&headers);
    let field = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let filter = callguard_store::AuditFilter {
        actor: field("actor"),
        action: field("action"),
        target: field("target"),
        from: field("from"),
        to: field("to"),
        before: field("before").and_then(|b| b.parse().ok()),
        limit: 50,
    };
    // Browsing the log is itself recorded (PCI DSS 10.2.1.3).
    let mut read = p
        .actor()
        .record("audit.read")
        .detail("page", "audit browser");
    // Only identifier-shaped filter values go into the log: free text typed into a filter box
    // could be a name, and the log holds no personal data.
    for (k, v) in [("actor", &filter.actor), ("action", &filter.action)] {
        if let Some(v) = v {
            let value = if looks_like_identifier(v) {
                v.clone()
            } else {
                "(free text, not recorded)".into()
            };
            read = read.detail(k, value);
        }
    }
    if let Err(e) = s.audit.record(read).await {
        return error_page(&headers, &e, who(&p));
    }
    let rows = match s.identity.store().search_audit(&filter).await {
        Ok(r) => r,
        Err(e) => return error_page(&headers, &e.into(), who(&p)),
    };
    let tree_size = s
        .identity
        .store()
        .audit_head()
        .await
        .map(|h| h.size)
        .unwrap_or(0);
    let latest = s.identity.store().latest_checkpoint().await.ok().flatten();
    // People read names; the log keeps ids. Show both.
    let names: std::collections::HashMap<String, String> = s
        .identity
        .list_users()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|u| (callguard_core::audit::record::user(&u.id), u.username))
        .collect();
    let label = |id: &str| match names.get(id) {
        Some(name) => format!("{name} ({})", id.chars().take(13).collect::<String>()),
        None => id.to_owned(),
    };
    let mut entries = Vec::with_capacity(rows.len());
    for e in &rows {
        let v: serde_json::Value = serde_json::from_str(&e.text).unwrap_or_default();
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        entries.push(AuditRow {
            index: e.index,
            time: text("time"),
            actor_label: label(&text("actor")),
            target_label: label(&text("target")),
            actor: text("actor"),
            action: text("action"),
            target: text("target"),
            outcome: text("outcome"),
            source: text("source"),
            // One `key: value` per line reads better than JSON.
            details: v
                .get("details")
                .and_then(|d| d.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            format!(
                                "{k}: {}",
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            proof: s
                .audit
                .proof_status(e.index, &e.text, latest.as_ref())
                .await,
        });
    }
    let older = match rows.last() {
        Some(last) if rows.len() as u64 == filter.limit && last.index > 0 => {
            let mut params: Vec<(String, String)> = Vec::new();
            for (k, v) in [
                ("actor", &filter.actor),
                ("action", &filter.action),
                ("from", &filter.from),
                ("to", &filter.to),
            ] {
                if let Some(v) = v {
                    params.push((k.to_owned(), v.clone()));
                }
            }
            params.push(("before".into(), last.index.to_string()));
            let query: Vec<String> = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                    )
                })
                .collect();
            format!("/audit?{}", query.join("&"))
        }
        _ => String::new(),
    };
    let checkpoint = latest.as_ref().map_or("none yet".to_owned(), |cp| {
        format!("{} entries, signed {}", cp.size, rfc3339(cp.created_at))
    });
    render(
        StatusCode::OK,
        AuditBrowser {
            csrf: c.token,
            who: who(&p),
            error: String::new(),
            notice: String::new(),
            tree_size,
            checkpoint,
            verifier_key: s.audit.verifier_key(),
            entries,
            f_actor: filter.actor.unwrap_or_default(),
            f_action: filter.action.unwrap_or_default(),
            f_from: filter.from.unwrap_or_default(),
            f_to: filter.to.unwrap_or_default(),
            older,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// `user:<uuid>`, `cli`, `system`, `anonymous`, or a dotted action name like `auth.sign_in`.
fn looks_like_identifier(v: &str) -> bool {
    let uuid_ref = v.split_once(':').is_some_and(|(kind, id)| {
        matches!(kind, "user" | "customer" | "alert" | "session")
            && uuid::Uuid::parse_str(id).is_ok()
    });
    let word = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
    uuid_ref || word
}

// ---- Do-Not-Call ---------------------------------------------------------------------------

/// One opt-out as the page shows it.
struct OptOutRow {
    id: String,
    number: String,
    source: String,
    added_by: String,
    added_at: String,
}

/// One consent as the page shows it.
struct ConsentRow {
    id: String,
    number: String,
    purpose: String,
    channel: String,
    source: String,
    granted_at: String,
    revoked_at: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "dnc.html")]
struct DncPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    has_registry: bool,
    stale: bool,
    numbers: u64,
    source: String,
    imported_at: String,
    age_days: i64,
    sha256: String,
    bytes: u64,
    bytes_per_number: String,
    sees_lists: bool,
    sees_consents: bool,
    can_revoke: bool,
    opt_out_sources: &'static [&'static str],
    opt_outs: Vec<OptOutRow>,
    consents: Vec<ConsentRow>,
}

async fn dnc_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    dnc_view(&s, &headers, &p, String::new(), String::new()).await
}

/// `user:<id>` as the username, `cli` as the operator; anything else as it is.
fn actor_label(actor: &str, names: &std::collections::HashMap<String, String>) -> String {
    match actor.strip_prefix("user:") {
        Some(id) => names.get(id).cloned().unwrap_or_else(|| actor.to_owned()),
        None if actor == "cli" => "operator (CLI)".into(),
        None => actor.to_owned(),
    }
}

async fn dnc_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    mut error: String,
    notice: String,
) -> Response {
    let c = csrf_of(headers);
    let registry = s.dnc.current();
    let age = registry
        .as_ref()
        .map_or(0, |r| callguard_core::now() - r.info.imported_at);
    let role = p.user.role;
    let sees_lists = role.allows(Permission::DncListRead);
    let sees_consents = role.allows(Permission::ConsentRead);
    let names: std::collections::HashMap<String, String> = match s.identity.list_users().await {
        Ok(users) => users.into_iter().map(|u| (u.id, u.username)).collect(),
        Err(_) => std::collections::HashMap::new(),
    };
    let mut opt_outs = Vec::new();
    if sees_lists {
        match s.dnc_lists.internal_list(100).await {
            Ok(list) => {
                opt_outs = list
                    .into_iter()
                    .map(|e| OptOutRow {
                        added_by: actor_label(&e.added_by, &names),
                        id: e.id,
                        number: e.number,
                        source: e.source,
                        added_at: e.added_at,
                    })
                    .collect();
            }
            Err(e) => error = e.to_string(),
        }
    }
    let mut consents = Vec::new();
    if sees_consents {
        match s.dnc_lists.consents(None, 100).await {
            Ok(list) => {
                consents = list
                    .into_iter()
                    .map(|k| ConsentRow {
                        id: k.id,
                        number: k.number,
                        purpose: k.purpose,
                        channel: k.channel,
                        source: k.source,
                        granted_at: k.granted_at,
                        revoked_at: k.revoked_at.unwrap_or_default(),
                        active: k.active,
                    })
                    .collect();
            }
            Err(e) => error = e.to_string(),
        }
    }
    let mut page = DncPage {
        csrf: c.token,
        who: who(p),
        error,
        notice,
        has_registry: false,
        stale: true,
        numbers: 0,
        source: String::new(),
        imported_at: String::new(),
        age_days: 0,
        sha256: String::new(),
        bytes: 0,
        bytes_per_number: String::new(),
        sees_lists,
        sees_consents,
        can_revoke: role.allows(Permission::ConsentManage),
        opt_out_sources: crate::dnc_lists::OPT_OUT_SOURCES,
        opt_outs,
        consents,
    };
    if let Some(r) = &registry {
        page.has_registry = true;
        page.stale = age > crate::dnc::MAX_AGE_SECONDS;
        page.numbers = r.info.numbers;
        page.source = r.info.source.clone();
        page.imported_at = rfc3339(r.info.imported_at);
        page.age_days = age / 86_400;
        page.sha256 = r.info.sha256.clone();
        page.bytes = r.set.size_in_bytes();
        page.bytes_per_number = format!(
            "{:.3}",
            r.set.size_in_bytes() as f64 / r.info.numbers.max(1) as f64
        );
    }
    render(
        StatusCode::OK,
        page,
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
struct OptOutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    source: String,
}

async fn add_opt_out(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<OptOutForm>,
) -> Response {
    match s.dnc_lists.opt_out(&p.actor(), &f.number, &f.source).await {
        Ok((e, true)) => {
            let notice = format!(
                "{} is on the internal Do-Not-Call list from now on.",
                e.number
            );
            dnc_view(&s, &headers, &p, String::new(), notice).await
        }
        Ok((e, false)) => {
            let notice = format!("{} was on the internal list already.", e.number);
            dnc_view(&s, &headers, &p, String::new(), notice).await
        }
        Err(e) => dnc_view(&s, &headers, &p, e.to_string(), String::new()).await,
    }
}

async fn revoke_consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    match s.dnc_lists.revoke_consent(&p.actor(), &id).await {
        Ok(k) => {
            let notice = format!(
                "Consent for {} ({} by {}) is revoked from now on.",
                k.number, k.purpose, k.channel
            );
            dnc_view(&s, &headers, &p, String::new(), notice).await
        }
        Err(e) => dnc_view(&s, &headers, &p, e.to_string(), String::new()).await,
    }
}

// ---- reference pages and assets -----------------------------------------------------------

async fn problem_page(headers: HeaderMap, Path(slug): Path<String>) -> Response {
    let c = csrf_of(&headers);
    match PROBLEM_TYPES.iter().find(|(s, _, _)| *s == slug) {
        Some((s, title, about)) => render(
            StatusCode::OK,
            ProblemPage {
                csrf: c.token,
                who: None,
                error: String::new(),
                notice: String::new(),
                title: (*title).into(),
                slug: (*s).into(),
                about: (*about).into(),
            },
            &[],
        ),
        None => ApiError::NotFound.into_response(),
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("../static/app.css"), "text/css; charset=utf-8"),
        "webauthn.js" => (
            include_str!("../static/webauthn.js"),
            "text/javascript; charset=utf-8",
        ),
        "alerts.js" => (
            include_str!("../static/alerts.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return ApiError::NotFound.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::looks_like_identifier;

    #[test]
    fn only_identifier_shaped_filters_are_recorded_in_the_log() {
        assert!(looks_like_identifier(
            "user:0f8fad5b-d9cb-469f-a165-70867728950e"
        ));
        assert!(looks_like_identifier("auth.sign_in"));
        assert!(looks_like_identifier("cli"));
        assert!(!looks_like_identifier("Jan Kowalski"));
        assert!(!looks_like_identifier("user:jan.kowalski"));
        assert!(!looks_like_identifier("+48 601 234 567"));
    }
}
