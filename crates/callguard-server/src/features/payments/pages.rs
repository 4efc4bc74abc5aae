//! The hosted payment page `/pay/{token}` (no session: the link's token is its authority). It
//! is a payment page in PCI DSS's sense, so it is held to more than the other pages:
//! - its own Content-Security-Policy (no inline script, `script-src 'self'`, `connect-src
//!   'none'`, `form-action 'self'`, `frame-ancestors 'none'`);
//! - every script it loads is listed in [`SCRIPT_INVENTORY`] with the reason it is there, and
//!   carries a Subresource Integrity hash computed from the very bytes served (PCI DSS 6.4.3);
//! - `callguard payments page-check` compares its headers and content with a signed baseline
//!   (PCI DSS 11.6.1).

use super::link::{CardForm, LinkState, PayResult};
use crate::error::Error;
use crate::http::access::Access;
use crate::principal::RequestContext;
use crate::state::AppState;
use crate::web::{csrf_forms, csrf_of, Checked, PageRoute};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use callguard_core::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha384};

/// The payment page's Content-Security-Policy.
pub const PAY_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The payment page's Content-Security-Policy when the gateway may send the card holder to
/// `authentication_origin` for 3-D Secure: its form may lead there, nowhere else.
#[must_use]
pub fn pay_csp(authentication_origin: Option<&str>) -> String {
    match authentication_origin {
        Some(o) => PAY_CSP.replace("form-action 'self'", &format!("form-action 'self' {o}")),
        None => PAY_CSP.to_owned(),
    }
}

/// One script the payment page loads, and why (PCI DSS 6.4.3: inventory and justification).
pub struct ScriptEntry {
    pub src: &'static str,
    pub body: &'static str,
    pub reason: &'static str,
}

/// Every script the payment page loads. A script not in this list cannot be on the page: the
/// template renders exactly these, each with its integrity hash, and the CSP admits our own
/// origin only.
pub const SCRIPT_INVENTORY: &[ScriptEntry] = &[ScriptEntry {
    src: "/pay/assets/pay.js",
    body: include_str!("../../../static/payments/pay.js"),
    reason: "groups the card number in fours while it is typed and stops a second submit; sends nothing itself",
}];

const PAY_CSS: &str = include_str!("../../../static/payments/pay.css");

/// `sha384-…` of `body`, as a Subresource Integrity value.
#[must_use]
pub fn sri(body: &str) -> String {
    format!(
        "sha384-{}",
        data_encoding::BASE64.encode(&Sha384::digest(body.as_bytes()))
    )
}

#[derive(Clone)]
pub struct ScriptTag {
    pub src: &'static str,
    pub integrity: String,
}

/// The page's script tags and the stylesheet's integrity, hashed once per process.
fn integrity() -> &'static (Vec<ScriptTag>, String) {
    static HASHED: std::sync::OnceLock<(Vec<ScriptTag>, String)> = std::sync::OnceLock::new();
    HASHED.get_or_init(|| {
        (
            SCRIPT_INVENTORY
                .iter()
                .map(|s| ScriptTag {
                    src: s.src,
                    integrity: sri(s.body),
                })
                .collect(),
            sri(PAY_CSS),
        )
    })
}

#[derive(Template)]
#[template(path = "payments/pay.html")]
struct PayPage {
    csrf: String,
    token: String,
    merchant: String,
    amount: String,
    description: String,
    payable: bool,
    postal_code: bool,
    minutes_left: i64,
    headline: String,
    headline_class: &'static str,
    error: String,
    scripts: Vec<ScriptTag>,
    css_sri: String,
    /// The Content-Security-Policy it is sent with (not rendered).
    csp: String,
}

impl PayPage {
    fn new(
        settings: &super::service::PaymentSettings,
        merchant: &str,
        token: &str,
        csrf: String,
    ) -> Self {
        Self {
            csp: pay_csp(settings.authentication_origin.as_deref()),
            csrf,
            token: token.to_owned(),
            merchant: merchant.to_owned(),
            amount: String::new(),
            description: String::new(),
            payable: false,
            postal_code: false,
            minutes_left: 0,
            headline: String::new(),
            headline_class: "notice",
            error: String::new(),
            scripts: integrity().0.clone(),
            css_sri: integrity().1.clone(),
        }
    }

    fn with_state(mut self, state: &LinkState) -> (StatusCode, Self) {
        let (status, headline) = match state {
            LinkState::Payable {
                amount,
                description,
                merchant,
                seconds_left,
                postal_code,
            } => {
                self.payable = true;
                self.amount.clone_from(amount);
                self.description.clone_from(description);
                self.merchant.clone_from(merchant);
                self.minutes_left = (seconds_left + 59) / 60;
                self.postal_code = *postal_code;
                return (StatusCode::OK, self);
            }
            LinkState::Paid => (
                StatusCode::GONE,
                "This payment has been made already. You can close this page.",
            ),
            LinkState::Used => (
                StatusCode::GONE,
                "This payment link has been used. Ask for a new one if you still need to pay.",
            ),
            LinkState::Expired => (
                StatusCode::GONE,
                "This payment link has expired. Ask for a new one if you still need to pay.",
            ),
            LinkState::Cancelled => (
                StatusCode::GONE,
                "This payment was cancelled. Ask for a new link if you still need to pay.",
            ),
        };
        self.headline = headline.into();
        self.headline_class = "error";
        (status, self)
    }
}

/// Renders with the payment page's own headers.
fn page(status: StatusCode, p: PayPage, cookie: Option<String>) -> Response {
    let body = match p.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "payment page template failed");
            return Error::Internal.into_response();
        }
    };
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&p.csp).unwrap_or(HeaderValue::from_static(PAY_CSP)),
    );
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

fn not_a_link(s: &AppState, merchant: &str, csrf: String) -> Response {
    let mut p = PayPage::new(s.payments.settings(), merchant, "", csrf);
    p.headline =
        "This payment link is not valid. Check that you opened the whole link from the message."
            .into();
    p.headline_class = "error";
    page(StatusCode::NOT_FOUND, p, None)
}

async fn pay_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let merchant = s.payments.settings().merchant_name.clone();
    if token == super::tamper::PREVIEW {
        return preview(&s, &merchant);
    }
    let c = csrf_of(&headers);
    match s.payments.link_state(&token).await {
        Ok(state) => {
            let (status, p) =
                PayPage::new(s.payments.settings(), &merchant, &token, c.token).with_state(&state);
            page(status, p, c.new_cookie)
        }
        Err(Error::NotFound) => not_a_link(&s, &merchant, c.token),
        Err(e) => crate::web::page_error(&headers, &e, None),
    }
}

/// The form with fixed sample values and no cookie, so that two fetches of an unchanged page
/// are the same bytes (what the tamper check compares). It takes no payment: its token is not
/// a link.
fn preview(s: &AppState, merchant: &str) -> Response {
    let state = LinkState::Payable {
        amount: "0.00 EUR".into(),
        description: "Preview of the payment form; it takes no payment.".into(),
        merchant: merchant.to_owned(),
        seconds_left: 15 * 60,
        postal_code: s.payments.settings().postal_code,
    };
    let (status, p) = PayPage::new(
        s.payments.settings(),
        merchant,
        super::tamper::PREVIEW,
        "preview".into(),
    )
    .with_state(&state);
    page(status, p, None)
}

#[derive(Deserialize)]
struct PayForm {
    csrf: String,
    number: Secret<String>,
    exp_month: Secret<String>,
    exp_year: Secret<String>,
    cvc: Secret<String>,
    postal_code: Option<Secret<String>>,
}
csrf_forms!(PayForm);

async fn pay(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Path(token): Path<String>,
    Checked(f): Checked<PayForm>,
) -> Response {
    let c = csrf_of(&headers);
    let merchant = s.payments.settings().merchant_name.clone();
    let form = CardForm {
        number: f.number,
        exp_month: f.exp_month,
        exp_year: f.exp_year,
        cvc: f.cvc,
        postal_code: f.postal_code,
    };
    let base = PayPage::new(s.payments.settings(), &merchant, &token, c.token.clone());
    let result = s
        .payments
        .pay_link(&token, form, &ctx.source.to_string())
        .await;
    result_page(&s, &headers, &token, base, &merchant, c.token, result).await
}

/// The card holder is back from the bank's 3-D Secure check: the gateway says how it went.
async fn pay_return(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
    Path(token): Path<String>,
) -> Response {
    let c = csrf_of(&headers);
    let merchant = s.payments.settings().merchant_name.clone();
    let base = PayPage::new(s.payments.settings(), &merchant, &token, c.token.clone());
    let result = s
        .payments
        .finish_authentication(&token, &ctx.source.to_string())
        .await;
    result_page(&s, &headers, &token, base, &merchant, c.token, result).await
}

/// The page that says what came of a payment (or sends the card holder to the bank's check).
async fn result_page(
    s: &AppState,
    headers: &HeaderMap,
    token: &str,
    base: PayPage,
    merchant: &str,
    csrf: String,
    result: Result<PayResult, Error>,
) -> Response {
    match result {
        Ok(PayResult::Authenticate(url)) => {
            let mut resp = axum::response::Redirect::to(url.as_str()).into_response();
            if let Ok(v) = HeaderValue::from_str(&base.csp) {
                resp.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            resp
        }
        Ok(PayResult::Pending) => {
            let mut p = base;
            p.headline = "Your bank's check is finished, but its result could not be fetched yet. Reload this page in a moment.".into();
            page(StatusCode::ACCEPTED, p, None)
        }
        Ok(PayResult::Authorised { amount, last4 }) => {
            let mut p = base;
            p.headline = format!(
                "Thank you: {amount} paid with the card ending {last4}. You can close this page."
            );
            page(StatusCode::OK, p, None)
        }
        Ok(PayResult::Declined { message }) => {
            let mut p = base;
            p.headline = format!("The payment did not go through: {message} This link cannot be used again; ask for a new one.");
            p.headline_class = "error";
            page(StatusCode::PAYMENT_REQUIRED, p, None)
        }
        Ok(PayResult::Failed) => {
            let mut p = base;
            p.headline =
                "The payment could not be completed and nothing was charged. Ask for a new link."
                    .into();
            p.headline_class = "error";
            page(StatusCode::BAD_GATEWAY, p, None)
        }
        Ok(PayResult::Refused(state)) => {
            let (status, p) = base.with_state(&state);
            page(status, p, None)
        }
        Err(Error::InvalidFields(problems)) => again(s, token, base, &problems).await,
        Err(Error::NotFound) => not_a_link(s, merchant, csrf),
        Err(Error::NotConfigured(_)) => {
            let mut p = base;
            p.headline =
                "Card payments are not available right now. Please try again later.".into();
            p.headline_class = "error";
            page(StatusCode::NOT_IMPLEMENTED, p, None)
        }
        Err(e) => crate::web::page_error(headers, &e, None),
    }
}

/// The form again, empty, with what was wrong (never what was typed).
async fn again(
    s: &AppState,
    token: &str,
    base: PayPage,
    problems: &[crate::error::FieldProblem],
) -> Response {
    let Ok(state) = s.payments.link_state(token).await else {
        return Error::Internal.into_response();
    };
    let (_, mut p) = base.with_state(&state);
    p.error = problems
        .iter()
        .map(|x| format!("{}: {}", label(&x.field), x.detail))
        .collect::<Vec<_>>()
        .join(" ");
    page(StatusCode::UNPROCESSABLE_ENTITY, p, None)
}

fn label(field: &str) -> &'static str {
    match field {
        "number" => "Card number",
        "exp_month" => "Month",
        "exp_year" => "Year",
        "cvc" => "Security code",
        _ => "Postal code",
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "pay.css" => (PAY_CSS, "text/css; charset=utf-8"),
        // The agent's call screen (not the payment page): live payment status.
        "desk.js" => (
            include_str!("../../../static/payments/desk.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => match SCRIPT_INVENTORY
            .iter()
            .find(|s| s.src.ends_with(&format!("/{file}")))
        {
            Some(s) => (s.body, "text/javascript; charset=utf-8"),
            None => return Error::NotFound.into_response(),
        },
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

#[derive(Deserialize)]
struct AskForm {
    csrf: String,
    amount: String,
    currency: String,
    description: String,
    how: String,
}
csrf_forms!(AskForm);

/// The agent asks for a payment from the call screen; the screen shows it live.
async fn ask(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
    Path(id): Path<String>,
    Checked(f): Checked<AskForm>,
) -> Response {
    use super::model::{Method, NewPayment};
    // An amount that is not one (or a currency that is not one) reaches the service as 0 and is
    // refused there, with the service's own message.
    let amount_minor = callguard_core::payments::Currency::from_code(f.currency.trim())
        .ok()
        .and_then(|c| c.minor_units(&f.amount))
        .unwrap_or(0);
    let (method, send_to) = match f.how.as_str() {
        "email" => (Method::Link, Some(crate::notify::Channel::Email)),
        "keypad" => (Method::Keypad, None),
        _ => (Method::Link, Some(crate::notify::Channel::Sms)),
    };
    let request = NewPayment {
        interaction_id: id.clone(),
        amount_minor,
        currency: f.currency.trim().to_owned(),
        method,
        description: Some(f.description),
        send_to,
    };
    // Back to the call screen, whose payment panel shows the new payment live; a refusal is a
    // page that says why, with a way back.
    match s.payments.start(&p, request).await {
        Ok(_) => axum::response::Redirect::to(&format!("/desk/interactions/{id}#payments"))
            .into_response(),
        Err(e) => crate::web::error_page(&headers, &e, crate::web::who(&p)),
    }
}

struct ListRow {
    created_at: String,
    amount: String,
    description: String,
    method: &'static str,
    status: &'static str,
    card: String,
    refunded: String,
}

#[derive(Template)]
#[template(path = "payments/list.html")]
struct ListPage {
    csrf: String,
    who: Option<crate::web::Who>,
    error: String,
    notice: String,
    heading: &'static str,
    rows: Vec<ListRow>,
}

fn list_page(
    headers: &HeaderMap,
    p: &crate::principal::Principal,
    heading: &'static str,
    list: Result<super::model::PaymentList, Error>,
) -> Response {
    let list = match list {
        Ok(l) => l,
        Err(e) => return crate::web::error_page(headers, &e, crate::web::who(p)),
    };
    let c = csrf_of(headers);
    let rows = list
        .payments
        .into_iter()
        .map(|v| ListRow {
            created_at: v.created_at.clone(),
            card: match (&v.brand, &v.last4) {
                (Some(b), Some(l)) => format!("{b} •••• {l}"),
                _ => String::new(),
            },
            refunded: if v.refunded_minor > 0 {
                format!("{} minor units", v.refunded_minor)
            } else {
                String::new()
            },
            amount: v.amount,
            description: v.description,
            method: v.method.as_str(),
            status: v.status.as_str(),
        })
        .collect();
    crate::web::render(
        StatusCode::OK,
        ListPage {
            csrf: c.token,
            who: crate::web::who(p),
            error: String::new(),
            notice: String::new(),
            heading,
            rows,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// Payments for staff: an agent's own, everyone's for a supervisor.
async fn staff_list(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
) -> Response {
    list_page(&headers, &p, "Payments", s.payments.recent(&p).await)
}

/// The customer's own payments in the portal.
async fn portal_list(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: crate::principal::Principal,
) -> Response {
    let list = match crate::principal::customer_of(&p) {
        Ok(c) => s.payments.of_customer(&c).await,
        Err(e) => Err(e),
    };
    list_page(&headers, &p, "My payments", list)
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use callguard_core::Permission::{PaymentsRead, PaymentsStart, Portal};
    use Access::{Public, Signed};
    vec![
        ("/payments", Signed(PaymentsRead), get(staff_list)),
        ("/portal/payments", Signed(Portal), get(portal_list)),
        (
            "/desk/interactions/{id}/payments",
            Signed(PaymentsStart),
            axum::routing::post(ask),
        ),
        ("/pay/{token}", Public, get(pay_page).post(pay)),
        ("/pay/{token}/return", Public, get(pay_return)),
        ("/pay/assets/{file}", Public, get(asset)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_on_the_payment_page_is_in_the_inventory_with_its_integrity() {
        let p = PayPage::new(&Default::default(), "Acme", "t", "c".into());
        let html = p.render().unwrap();
        let tags = html.matches("<script").count();
        assert_eq!(tags, SCRIPT_INVENTORY.len());
        for s in SCRIPT_INVENTORY {
            assert!(html.contains(&format!("src=\"{}\" integrity=\"{}\"", s.src, sri(s.body))));
            assert!(!s.reason.is_empty());
        }
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!PAY_CSP.contains("unsafe"));
    }

    #[test]
    fn an_integrity_hash_is_sha384_in_standard_base64() {
        // The SRI spec's own example input.
        assert_eq!(
            sri("alert('Hello, world.');"),
            "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO"
        );
    }
}
