//! The peer's own behaviour over raw HTTP, where the client under test would hide it.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    head: String,
    body: Value,
}

async fn call(
    peer: &StripePeer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(peer.addr()).await.unwrap();
    let mut extra = String::new();
    for (k, v) in headers {
        extra.push_str(&format!("{k}: {v}\r\n"));
    }
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        peer.addr(),
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    stream.read_to_string(&mut resp).await.unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body,
    }
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const AUTH: (&str, &str) = (
    "Authorization",
    "Bearer sk_test_callguard0peer0key0000000000",
);
const CARD: &str =
    "type=card&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2031&card[cvc]=123";

#[tokio::test]
async fn json_bodies_and_unknown_parameters_are_refused_like_stripe_does() {
    let peer = StripePeer::start().await;
    let json_body = r#"{"type":"card"}"#;
    let r = call(
        &peer,
        "POST",
        "/v1/payment_methods",
        &[AUTH, ("Content-Type", "application/json")],
        json_body,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    let r = call(
        &peer,
        "POST",
        "/v1/payment_methods",
        &[AUTH, FORM],
        &format!("{CARD}&card[pin]=1"),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("parameter_unknown"))
    );
    assert_eq!(r.body["error"]["param"], "card[pin]");
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_stripes_401() {
    let peer = StripePeer::start().await;
    let r = call(&peer, "POST", "/v1/payment_methods", &[FORM], CARD).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You did not provide an API key"));
    let r = call(
        &peer,
        "GET",
        "/v1/payment_intents/pi_x",
        &[("Authorization", "Bearer sk_test_wrongwrong")],
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["error"]["message"],
        "Invalid API Key provided: sk_test_****rong"
    );
    let basic = format!(
        "Basic {}",
        data_encoding::BASE64.encode(b"sk_test_callguard0peer0key0000000000:")
    );
    let r = call(
        &peer,
        "POST",
        "/v1/payment_methods",
        &[("Authorization", &basic), FORM],
        CARD,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_number_failing_luhn_is_an_incorrect_number_at_tokenisation() {
    let peer = StripePeer::start().await;
    let body = CARD.replace("4242424242424242", "4242424242424241");
    let r = call(&peer, "POST", "/v1/payment_methods", &[AUTH, FORM], &body).await;
    assert_eq!(r.status, 402);
    assert_eq!(r.body["error"]["type"], "card_error");
    assert_eq!(r.body["error"]["code"], "incorrect_number");
    assert!(!r.body.to_string().contains("424242424242"));
}

#[tokio::test]
async fn the_same_key_replays_the_first_answer_and_other_parameters_are_refused() {
    let peer = StripePeer::start().await;
    let key = ("Idempotency-Key", "k-1");
    let first = call(
        &peer,
        "POST",
        "/v1/payment_methods",
        &[AUTH, FORM, key],
        CARD,
    )
    .await;
    let again = call(
        &peer,
        "POST",
        "/v1/payment_methods",
        &[AUTH, FORM, key],
        CARD,
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, again.body);
    assert!(again.head.contains("idempotent-replayed: true"));
    let other = CARD.replace("2031", "2032");
    let r = call(
        &peer,
        "POST",
        "/v1/payment_methods",
        &[AUTH, FORM, key],
        &other,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );
}

#[tokio::test]
async fn a_card_is_charged_once_per_key_and_refunds_stop_at_the_amount() {
    let peer = StripePeer::start().await;
    let pm = call(&peer, "POST", "/v1/payment_methods", &[AUTH, FORM], CARD).await;
    let pm_id = pm.body["id"].as_str().unwrap().to_owned();
    assert_eq!(pm.body["card"]["last4"], "4242");
    assert!(!pm.body.to_string().contains("4242424242424242"));
    let pi = format!(
        "amount=1000&currency=eur&payment_method={pm_id}&confirm=true&payment_method_types[0]=card"
    );
    let key = ("Idempotency-Key", "charge-1");
    let r = call(
        &peer,
        "POST",
        "/v1/payment_intents",
        &[AUTH, FORM, key],
        &pi,
    )
    .await;
    call(
        &peer,
        "POST",
        "/v1/payment_intents",
        &[AUTH, FORM, key],
        &pi,
    )
    .await;
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(peer.charges_with_key("charge-1"), 1);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let got = call(
        &peer,
        "GET",
        &format!("/v1/payment_intents/{id}"),
        &[AUTH],
        "",
    )
    .await;
    assert_eq!(got.body["status"], "succeeded");
    let refund = |amount: &str| format!("payment_intent={id}&amount={amount}");
    let r = call(&peer, "POST", "/v1/refunds", &[AUTH, FORM], &refund("400")).await;
    assert_eq!((r.status, r.body["amount"].as_i64()), (200, Some(400)));
    let r = call(&peer, "POST", "/v1/refunds", &[AUTH, FORM], &refund("700")).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("amount_too_large"))
    );
    let r = call(&peer, "POST", "/v1/refunds", &[AUTH, FORM], &refund("600")).await;
    assert_eq!(r.status, 200);
    assert_eq!(peer.refunded(&id), Some(1000));
}

#[tokio::test]
async fn a_confirmed_charge_without_return_url_or_card_only_types_is_refused() {
    let peer = StripePeer::start().await;
    let pm = call(&peer, "POST", "/v1/payment_methods", &[AUTH, FORM], CARD).await;
    let pm_id = pm.body["id"].as_str().unwrap();
    let pi = format!("amount=1000&currency=eur&payment_method={pm_id}&confirm=true");
    let r = call(&peer, "POST", "/v1/payment_intents", &[AUTH, FORM], &pi).await;
    assert_eq!(r.status, 400);
    assert_eq!(peer.charges(), 0);
}
