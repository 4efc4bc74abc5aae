//! **A test peer, not Adyen.** A local HTTP server that answers like Adyen's Checkout API v71 for
//! the calls Callguard makes: `POST /v71/payments` with raw `scheme` card fields and
//! `POST /v71/payments/{pspReference}/refunds`. JSON only, `X-API-Key` required (401 with
//! Adyen's error body otherwise), the merchant account checked (403), card fields validated
//! with Adyen's error codes (422), and a refusal answered as HTTP 200 with
//! `resultCode: Refused` and a `refusalReasonCode`, chosen by Adyen's test holder names
//! (`DECLINED`, `CARD_EXPIRED`, `NOT_ENOUGH_BALANCE`, …) or by Stripe's test-card numbers.
//! 3-D Secure cards on an `Ecommerce` payment get `RedirectShopper`; `Moto` skips it. An
//! `Idempotency-Key` seen before replays the first answer. Card numbers are never kept or printed.

use crate::stripe::cards::{self, Behaviour};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The API key and merchant account [`AdyenPeer::start`] accepts.
pub const ADYEN_TEST_KEY: &str = "AQEtestcallguardpeerkey0000";
pub const ADYEN_TEST_MERCHANT: &str = "CallguardTestMerchant";

/// A local stand-in for Adyen's Checkout API; stops when dropped.
pub struct AdyenPeer {
    addr: SocketAddr,
    state: Arc<Peer>,
    task: JoinHandle<()>,
}

struct Peer {
    origin: String,
    ledger: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    next: u64,
    saved: HashMap<String, (StatusCode, Value)>,
    /// Authorised payments: pspReference -> (amount, refunds received).
    authorised: HashMap<String, (i64, i64)>,
    payments_by_key: HashMap<String, usize>,
    requests: usize,
}

impl AdyenPeer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Peer {
            origin: format!("http://{addr}"),
            ledger: Mutex::new(Ledger::default()),
        });
        let app = Router::new()
            .route("/v71/payments", post(payments))
            .route("/v71/payments/{psp}/refunds", post(refunds))
            .fallback(|| async {
                adyen_error(StatusCode::NOT_FOUND, "000", "Not found", "validation")
            })
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// The base URL in place of `https://checkout-test.adyen.com`.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&self.state.origin).expect("a valid URL")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Payments processed (not replayed) under this `Idempotency-Key`.
    pub fn payments_with_key(&self, key: &str) -> usize {
        let ledger = self.state.ledger.lock().unwrap();
        ledger.payments_by_key.get(key).copied().unwrap_or(0)
    }

    pub fn requests(&self) -> usize {
        self.state.ledger.lock().unwrap().requests
    }

    /// The amount refunded so far of a payment.
    pub fn refunded(&self, psp_reference: &str) -> Option<i64> {
        let ledger = self.state.ledger.lock().unwrap();
        ledger.authorised.get(psp_reference).map(|(_, r)| *r)
    }
}

impl Drop for AdyenPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn adyen_error(status: StatusCode, code: &str, message: &str, kind: &str) -> Response {
    let body = json!({
        "status": status.as_u16(),
        "errorCode": code,
        "message": message,
        "errorType": kind,
    });
    (status, Json(body)).into_response()
}

type Answer = (StatusCode, Value);

fn error_answer(status: StatusCode, code: &str, message: &str, kind: &str) -> Answer {
    (
        status,
        json!({ "status": status.as_u16(), "errorCode": code, "message": message, "errorType": kind }),
    )
}

/// Checks the key, the content type and the JSON; `Err` is the response to send.
fn admit(peer: &Peer, headers: &HeaderMap, body: &[u8]) -> Result<Value, Answer> {
    peer.ledger.lock().unwrap().requests += 1;
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if key != Some(ADYEN_TEST_KEY) {
        return Err(error_answer(
            StatusCode::UNAUTHORIZED,
            "000",
            "HTTP Status Response - Unauthorized",
            "security",
        ));
    }
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|_| json_type);
    let Some(value) = parsed.filter(Value::is_object) else {
        return Err(error_answer(
            StatusCode::BAD_REQUEST,
            "702",
            "Structure of PaymentRequest contains the following unknown fields or is not JSON",
            "validation",
        ));
    };
    if value["merchantAccount"].as_str() != Some(ADYEN_TEST_MERCHANT) {
        return Err(error_answer(
            StatusCode::FORBIDDEN,
            "901",
            "Invalid Merchant Account",
            "security",
        ));
    }
    Ok(value)
}

/// Replays the first answer under `key`, or computes, saves and returns a new one.
fn idempotent(
    peer: &Peer,
    headers: &HeaderMap,
    run: impl FnOnce(&mut Ledger, Option<&str>) -> Answer,
) -> Response {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let mut ledger = peer.ledger.lock().unwrap();
    if let Some(saved) = key.and_then(|k| ledger.saved.get(k)) {
        return (saved.0, Json(saved.1.clone())).into_response();
    }
    let (status, body) = run(&mut ledger, key);
    if let Some(k) = key {
        ledger.saved.insert(k.to_owned(), (status, body.clone()));
    }
    (status, Json(body)).into_response()
}

async fn payments(State(peer): State<Arc<Peer>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match admit(&peer, &headers, &body) {
        Ok(v) => v,
        Err((status, body)) => return (status, Json(body)).into_response(),
    };
    let origin = peer.origin.clone();
    idempotent(&peer, &headers, |ledger, key| {
        let answer = pay(ledger, &origin, &request);
        if answer.0 == StatusCode::OK {
            if let Some(k) = key {
                *ledger.payments_by_key.entry(k.to_owned()).or_default() += 1;
            }
        }
        answer
    })
}

fn pay(ledger: &mut Ledger, origin: &str, request: &Value) -> Answer {
    let invalid = |code, message| {
        error_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message,
            "validation",
        )
    };
    let (Some(value), Some(currency)) = (
        request["amount"]["value"].as_i64(),
        request["amount"]["currency"].as_str(),
    ) else {
        return invalid("100", "Required field 'amount' is not provided.");
    };
    if value < 0 || currency.len() != 3 {
        return invalid("137", "Invalid amount specified");
    }
    let Some(reference) = request["reference"].as_str().filter(|r| !r.is_empty()) else {
        return invalid("130", "Required field 'reference' is not provided.");
    };
    let method = &request["paymentMethod"];
    if method["type"].as_str() != Some("scheme") {
        return invalid("100", "This test peer takes scheme (card) payments only.");
    }
    let number = method["number"].as_str().unwrap_or("");
    let (month, year) = (
        method["expiryMonth"].as_str().unwrap_or(""),
        method["expiryYear"].as_str().unwrap_or(""),
    );
    let cvc = method["cvc"].as_str();
    if let Err((code, _)) = cards::check(number, month, year, cvc, crate::stripe::this_year()) {
        return match code {
            "invalid_cvc" => invalid("103", "CVC is not the right length"),
            "invalid_expiry_month" | "invalid_expiry_year" => invalid("129", "Expiry Date Invalid"),
            _ => invalid("101", "Invalid card number"),
        };
    }
    let moto = match request["shopperInteraction"].as_str() {
        Some("Moto") => true,
        Some("Ecommerce") | None => false,
        Some(_) => return invalid("100", "Invalid shopperInteraction"),
    };
    ledger.next += 1;
    let psp = format!("PEER{:012}", ledger.next);
    let brand = match cards::brand(number) {
        "mastercard" => "mc",
        other => other,
    };
    let refusal = holder_refusal(method["holderName"].as_str().unwrap_or(""))
        .or_else(|| card_refusal(cards::behaviour(number)));
    let mut answer = json!({
        "pspReference": psp,
        "merchantReference": reference,
        "amount": request["amount"],
        "paymentMethod": { "brand": brand, "type": "scheme" },
    });
    match (refusal, cards::behaviour(number)) {
        (Some((code, reason)), _) => {
            answer["resultCode"] = json!("Refused");
            answer["refusalReason"] = json!(reason);
            answer["refusalReasonCode"] = json!(code);
        }
        (None, Behaviour::RequiresAuthentication) if !moto => {
            if request["returnUrl"].as_str().is_none() {
                return invalid("14_0417", "Required field 'returnUrl' is not provided.");
            }
            answer["resultCode"] = json!("RedirectShopper");
            answer["action"] = json!({
                "type": "redirect",
                "method": "GET",
                "paymentMethodType": "scheme",
                "url": format!("{origin}/3ds/{psp}"),
            });
        }
        (None, _) => {
            answer["resultCode"] = json!("Authorised");
            answer["additionalData"] = json!({
                "cardSummary": &number[number.len() - 4..],
                "expiryDate": format!("{}/{}", month.trim_start_matches('0'), year),
                "paymentMethod": brand,
            });
            ledger.authorised.insert(psp, (value, 0));
        }
    }
    (StatusCode::OK, answer)
}

/// Adyen's test holder names that force a refusal.
fn holder_refusal(holder: &str) -> Option<(&'static str, &'static str)> {
    Some(match holder {
        "DECLINED" => ("2", "Refused"),
        "BLOCK_CARD" => ("5", "Blocked Card"),
        "CARD_EXPIRED" => ("6", "Expired Card"),
        "ISSUER_UNAVAILABLE" => ("9", "Issuer Unavailable"),
        "NOT_ENOUGH_BALANCE" => ("12", "Not enough balance"),
        "FRAUD" => ("20", "FRAUD"),
        "CVC_DECLINED" => ("24", "CVC Declined"),
        _ => return None,
    })
}

/// Stripe's decline test cards, refused with Adyen's matching reason.
fn card_refusal(behaviour: Behaviour) -> Option<(&'static str, &'static str)> {
    let Behaviour::Declines { code, decline_code } = behaviour else {
        return None;
    };
    Some(match decline_code.unwrap_or(code) {
        "insufficient_funds" => ("12", "Not enough balance"),
        "expired_card" => ("6", "Expired Card"),
        "incorrect_cvc" => ("24", "CVC Declined"),
        "processing_error" => ("9", "Issuer Unavailable"),
        "stolen_card" | "lost_card" => ("5", "Blocked Card"),
        "fraudulent" => ("20", "FRAUD"),
        _ => ("2", "Refused"),
    })
}

async fn refunds(
    State(peer): State<Arc<Peer>>,
    Path(psp): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match admit(&peer, &headers, &body) {
        Ok(v) => v,
        Err((status, body)) => return (status, Json(body)).into_response(),
    };
    idempotent(&peer, &headers, |ledger, _| {
        let Some(amount) = request["amount"]["value"].as_i64().filter(|v| *v > 0) else {
            return error_answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                "137",
                "Invalid amount specified",
                "validation",
            );
        };
        ledger.next += 1;
        let refund_psp = format!("PEER{:012}", ledger.next);
        let Some((_, refunded)) = ledger.authorised.get_mut(&psp) else {
            return error_answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                "167",
                "Original pspReference required for this operation",
                "validation",
            );
        };
        // Adyen accepts a refund for processing and reports a refused one later by webhook.
        *refunded += amount;
        (
            StatusCode::CREATED,
            json!({
                "merchantAccount": ADYEN_TEST_MERCHANT,
                "paymentPspReference": psp,
                "pspReference": refund_psp,
                "status": "received",
                "amount": request["amount"],
            }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn post(peer: &AdyenPeer, content_type: &str, key: &str, body: &str) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(peer.addr()).await.unwrap();
        let req = format!(
            "POST /v71/payments HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nX-API-Key: {key}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            peer.addr(),
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        stream.read_to_string(&mut resp).await.unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        (
            head[9..12].parse().unwrap(),
            serde_json::from_str(body).unwrap(),
        )
    }

    fn payment(holder: &str) -> String {
        json!({
            "amount": { "currency": "EUR", "value": 1000 },
            "merchantAccount": ADYEN_TEST_MERCHANT,
            "reference": "r1",
            "shopperInteraction": "Moto",
            "paymentMethod": {
                "type": "scheme", "number": "4111111111111111", "expiryMonth": "03",
                "expiryYear": "2030", "cvc": "737", "holderName": holder,
            },
        })
        .to_string()
    }

    #[tokio::test]
    async fn test_holder_names_are_refused_with_http_200_and_a_reason_code() {
        let peer = AdyenPeer::start().await;
        for (holder, code) in [
            ("DECLINED", "2"),
            ("CARD_EXPIRED", "6"),
            ("NOT_ENOUGH_BALANCE", "12"),
        ] {
            let (status, body) =
                post(&peer, "application/json", ADYEN_TEST_KEY, &payment(holder)).await;
            assert_eq!(status, 200);
            assert_eq!(body["resultCode"], "Refused");
            assert_eq!(body["refusalReasonCode"], code);
        }
        let (_, body) = post(
            &peer,
            "application/json",
            ADYEN_TEST_KEY,
            &payment("J. Smith"),
        )
        .await;
        assert_eq!(body["resultCode"], "Authorised");
        assert_eq!(body["additionalData"]["cardSummary"], "1111");
        assert!(!body.to_string().contains("4111111111111111"));
    }

    #[tokio::test]
    async fn form_bodies_wrong_keys_and_bad_cards_get_adyens_errors() {
        let peer = AdyenPeer::start().await;
        let form = "amount=1000";
        let (status, body) = post(
            &peer,
            "application/x-www-form-urlencoded",
            ADYEN_TEST_KEY,
            form,
        )
        .await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("validation"))
        );
        let (status, body) = post(&peer, "application/json", "nope", &payment("x")).await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (401, Some("security"))
        );
        let bad = payment("x").replace("4111111111111111", "4111111111111112");
        let (status, body) = post(&peer, "application/json", ADYEN_TEST_KEY, &bad).await;
        assert_eq!((status, body["errorCode"].as_str()), (422, Some("101")));
        assert_eq!(peer.requests(), 3);
    }
}
