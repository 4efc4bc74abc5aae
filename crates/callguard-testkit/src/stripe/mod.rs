//! **A test peer, not Stripe.** A local HTTP server that speaks Stripe's wire format for the
//! calls Callguard makes, with Stripe's semantics where a client can tell the difference:
//!
//! - form-encoded bodies only (a JSON body is a 400 `invalid_request_error`, as on Stripe),
//!   unknown parameters refused, a secret `sk_test_` key required as Bearer or Basic (401 with
//!   Stripe's error body otherwise);
//! - an idempotency store: a POST with an `Idempotency-Key` seen before is answered with the
//!   first status and body (`Idempotent-Replayed: true`), and the same key with other
//!   parameters is refused with `idempotency_error`; validation and auth failures are not saved;
//! - PaymentMethods (`type=card`, tokenised with Stripe's checks: Luhn, length by brand, 4-digit
//!   CVC on Amex, expiry), PaymentIntents created and confirmed in one call (`confirm=true`,
//!   MOTO via `payment_method_options[card][moto]`), retrieved by id; refunds, full and partial,
//!   an over-refund refused;
//! - Stripe's published test-card table for declines and 3-D Secure (a local page at
//!   `/3ds/{id}` plays the bank's check and sends the card holder back to `return_url`).
//!
//! Test hooks: [`StripePeer::delay_next`] answers the next requests only after a pause but
//! processes them first, so a client times out after the charge was made; counters of charges
//! per idempotency key. Card numbers are held only while a request is handled: a PaymentMethod
//! keeps brand, last four, expiry, a fingerprint and the card's test behaviour. Nothing is
//! printed.

pub(crate) mod cards;
mod objects;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use objects::{Ledger, Saved};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The secret key [`StripePeer::start`] accepts.
pub const STRIPE_TEST_KEY: &str = "sk_test_callguard0peer0key0000000000";

/// A local stand-in for Stripe's API; stops when dropped.
pub struct StripePeer {
    addr: SocketAddr,
    state: Arc<Peer>,
    task: JoinHandle<()>,
}

struct Peer {
    secret_key: String,
    origin: String,
    salt: [u8; 16],
    ledger: Mutex<Ledger>,
    delay: Mutex<Delay>,
}

/// The next `requests` answers (to `path` only, when set) wait `pause` after the request was
/// processed.
#[derive(Default)]
struct Delay {
    requests: usize,
    pause: Duration,
    path: Option<String>,
}

/// One answer, before it is sent.
pub(crate) struct Answer {
    status: StatusCode,
    body: Value,
    /// Whether the idempotency store keeps it: not for failures before the request executed.
    saved: bool,
    replayed: bool,
}

impl Answer {
    pub(crate) fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            saved: true,
            replayed: false,
        }
    }

    /// A Stripe error object; `saved` when the request executed (a card error).
    pub(crate) fn error(status: StatusCode, error: Value, saved: bool) -> Self {
        Self {
            status,
            body: json!({ "error": error }),
            saved,
            replayed: false,
        }
    }

    /// `invalid_request_error` before anything was done.
    pub(crate) fn invalid(
        status: StatusCode,
        code: Option<&str>,
        param: Option<&str>,
        message: &str,
    ) -> Self {
        Self::error(
            status,
            json!({
                "type": "invalid_request_error",
                "code": code,
                "param": param,
                "message": message,
                "doc_url": code.map(|c| format!("https://stripe.com/docs/error-codes/{}", c.replace('_', "-"))),
            }),
            false,
        )
    }
}

impl StripePeer {
    /// Starts a peer that accepts [`STRIPE_TEST_KEY`].
    pub async fn start() -> Self {
        Self::start_with_key(STRIPE_TEST_KEY).await
    }

    /// Starts a peer that accepts `secret_key`, which must be an `sk_test_` key.
    pub async fn start_with_key(secret_key: &str) -> Self {
        assert!(
            secret_key.starts_with("sk_test_"),
            "the peer runs in test mode"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Peer {
            secret_key: secret_key.to_owned(),
            origin: format!("http://{addr}"),
            salt: rand_salt(addr.port()),
            ledger: Mutex::new(Ledger::default()),
            delay: Mutex::new(Delay::default()),
        });
        let app = Router::new()
            .route("/3ds/{id}", get(three_ds_page).post(three_ds_finish))
            .fallback(api)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// The base URL in place of `https://api.stripe.com`.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&self.state.origin).expect("a valid URL")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn secret_key(&self) -> &str {
        &self.state.secret_key
    }

    /// Process each of the next `requests` requests at once but answer it only after `pause`:
    /// a client that times out has already had its charge made.
    pub fn delay_next(&self, requests: usize, pause: Duration) {
        *self.state.delay.lock().unwrap() = Delay {
            requests,
            pause,
            path: None,
        };
    }

    /// Like [`Self::delay_next`], for requests to `path` only (e.g. `/v1/payment_intents`, so
    /// the card is tokenised at once and the charge is made but answered late).
    pub fn delay_next_on(&self, path: &str, requests: usize, pause: Duration) {
        *self.state.delay.lock().unwrap() = Delay {
            requests,
            pause,
            path: Some(path.to_owned()),
        };
    }

    /// PaymentIntents confirmed (charges attempted, authorised or declined) under this
    /// `Idempotency-Key`; a replayed answer is not a charge.
    pub fn charges_with_key(&self, idempotency_key: &str) -> usize {
        let ledger = self.state.ledger.lock().unwrap();
        ledger
            .charges_by_key
            .get(idempotency_key)
            .copied()
            .unwrap_or(0)
    }

    /// Every charge attempted so far.
    pub fn charges(&self) -> usize {
        self.state.ledger.lock().unwrap().charges
    }

    /// Requests received so far, answered or not.
    pub fn requests(&self) -> usize {
        self.state.ledger.lock().unwrap().requests
    }

    /// The amount refunded so far of a PaymentIntent.
    pub fn refunded(&self, payment_intent: &str) -> Option<i64> {
        let ledger = self.state.ledger.lock().unwrap();
        ledger.intents.get(payment_intent).map(|i| i.refunded)
    }

    /// Forgets every object and idempotency key (counters stay): a benchmark calls it between
    /// rounds so the peer's maps do not grow without end.
    pub fn forget(&self) {
        let mut ledger = self.state.ledger.lock().unwrap();
        let (requests, charges) = (ledger.requests, ledger.charges);
        *ledger = Ledger::default();
        ledger.requests = requests;
        ledger.charges = charges;
    }

    /// Plays the card holder at the bank's 3-D Secure page: passes or fails the check.
    pub fn finish_3ds(&self, payment_intent: &str, passed: bool) -> bool {
        let mut ledger = self.state.ledger.lock().unwrap();
        ledger.finish_3ds(payment_intent, passed).is_some()
    }
}

impl Drop for StripePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rand_salt(port: u16) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(nanos.to_le_bytes())
        .chain_update(port.to_le_bytes())
        .finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&digest[..16]);
    salt
}

/// Every API call goes through here: auth, body format, idempotency, then the endpoint.
async fn api(
    State(peer): State<Arc<Peer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answer = peer.answer(&method, &uri, &headers, &body, key.as_deref());
    let pause = {
        let mut delay = peer.delay.lock().unwrap();
        let applies = delay.path.as_deref().is_none_or(|p| p == uri.path());
        if delay.requests > 0 && applies {
            delay.requests -= 1;
            Some(delay.pause)
        } else {
            None
        }
    };
    if let Some(pause) = pause {
        tokio::time::sleep(pause).await;
    }
    let mut response = (answer.status, Json(answer.body)).into_response();
    let h = response.headers_mut();
    h.insert("stripe-version", HeaderValue::from_static("2024-06-20"));
    if let Some(k) = key.and_then(|k| HeaderValue::from_str(&k).ok()) {
        h.insert("idempotency-key", k);
    }
    if answer.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

impl Peer {
    fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        key: Option<&str>,
    ) -> Answer {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.requests += 1;
        if let Err(refused) = self.authenticate(headers) {
            return refused;
        }
        let params = match params(method, uri, headers, body) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let Some(key) = key.filter(|_| method == Method::POST) else {
            return ledger.route(self, method, uri.path(), &params, None);
        };
        if key.len() > 255 {
            return Answer::invalid(
                StatusCode::BAD_REQUEST,
                None,
                None,
                "Invalid Idempotency-Key: the key must be 255 characters or fewer.",
            );
        }
        let signature = signature(method, uri.path(), &params);
        if let Some(saved) = ledger.saved.get(key) {
            if saved.signature != signature {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "type": "idempotency_error",
                        "message": format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
                    }),
                    false,
                );
            }
            return Answer {
                status: saved.status,
                body: saved.body.clone(),
                saved: true,
                replayed: true,
            };
        }
        let answer = ledger.route(self, method, uri.path(), &params, Some(key));
        if answer.saved {
            ledger.saved.insert(
                key.to_owned(),
                Saved {
                    signature,
                    status: answer.status,
                    body: answer.body.clone(),
                },
            );
        }
        answer
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Answer> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(api_key);
        match given {
            Some(k) if k == self.secret_key => Ok(()),
            Some(k) => {
                let tail: String = k.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
                let prefix = k.split('_').take(2).collect::<Vec<_>>().join("_");
                Err(unauthorised(&format!("Invalid API Key provided: {prefix}_****{tail}")))
            }
            None => Err(unauthorised(
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )),
        }
    }
}

fn unauthorised(message: &str) -> Answer {
    Answer::error(
        StatusCode::UNAUTHORIZED,
        json!({ "type": "invalid_request_error", "message": message }),
        false,
    )
}

/// The key of `Authorization: Bearer sk_…` or `Basic base64(sk_…:)`.
fn api_key(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = data_encoding::BASE64.decode(rest.trim().as_bytes()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return Some(text.split(':').next()?.to_owned());
    }
    None
}

/// The request's parameters: the query string of a GET, the form body of a POST.
pub(crate) type Params = Vec<(String, String)>;

fn params(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Params, Answer> {
    if method != Method::POST {
        let query = uri.query().unwrap_or("");
        return Ok(url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    if !body.is_empty() && !form {
        return Err(Answer::invalid(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "Invalid request (check that your POST content type is application/x-www-form-urlencoded). If you have any questions, we can help at https://support.stripe.com/.",
        ));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

/// What identifies a request for the idempotency store: a hash, so no card number is kept.
fn signature(method: &Method, path: &str, params: &Params) -> [u8; 32] {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort();
    let mut h = Sha256::new()
        .chain_update(method.as_str())
        .chain_update([0])
        .chain_update(path);
    for (k, v) in sorted {
        h = h
            .chain_update([0])
            .chain_update(k)
            .chain_update([1])
            .chain_update(v);
    }
    h.finalize().into()
}

async fn three_ds_page(State(peer): State<Arc<Peer>>, Path(id): Path<String>) -> Response {
    let known = peer.ledger.lock().unwrap().intents.contains_key(&id);
    if !known {
        return (StatusCode::NOT_FOUND, "no such payment").into_response();
    }
    Html(format!(
        "<!doctype html><title>3-D Secure test page</title><h1>Test bank check</h1>\
         <form method=post action=\"/3ds/{id}?result=pass\"><button>Complete authentication</button></form>\
         <form method=post action=\"/3ds/{id}?result=fail\"><button>Fail authentication</button></form>"
    ))
    .into_response()
}

async fn three_ds_finish(
    State(peer): State<Arc<Peer>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let passed = q.get("result").is_some_and(|r| r == "pass");
    let back = peer.ledger.lock().unwrap().finish_3ds(&id, passed);
    match back {
        Some(Some(mut url)) => {
            url.query_pairs_mut()
                .append_pair("payment_intent", &id)
                .append_pair(
                    "redirect_status",
                    if passed { "succeeded" } else { "failed" },
                );
            Redirect::to(url.as_str()).into_response()
        }
        Some(None) => (StatusCode::OK, "authentication finished").into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no such payment awaiting authentication",
        )
            .into_response(),
    }
}

/// The current calendar year, near enough for expiry checks.
pub(crate) fn this_year() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    1970 + u32::try_from(secs / 31_556_952).unwrap_or(0)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
