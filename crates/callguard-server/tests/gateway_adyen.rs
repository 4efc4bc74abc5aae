//! The Adyen client against the local Adyen test peer, over real HTTP: a refusal arrives as
//! HTTP 200 with `resultCode: Refused`, and still becomes a decline with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callguard_core::payments::{CardBrand, CardDetails, Currency, Money};
use callguard_server::features::payments::gateway::{
    AdyenGateway, AdyenSettings, ChargeOutcome, ChargeRequest, DeclineReason, Gateway,
    GatewayError, RefundRequest,
};
use callguard_testkit::{AdyenPeer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT};
use std::time::Duration;

fn gateway(peer: &AdyenPeer, key: &str, merchant: &str) -> AdyenGateway {
    AdyenGateway::new(&AdyenSettings {
        base_url: peer.base_url(),
        api_key: key.into(),
        merchant_account: merchant.into(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn card(number: &str) -> CardDetails {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cvc = if number.len() == 15 { "1234" } else { "737" };
    CardDetails::parse(number, "03", "2030", cvc, None, now).unwrap()
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::from_code("EUR").unwrap()).unwrap()
}

fn key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn charge(
    gw: &AdyenGateway,
    key: &str,
    number: &str,
    moto: bool,
) -> Result<ChargeOutcome, GatewayError> {
    let card = card(number);
    let back = url::Url::parse("https://callguard.example/pay/return").unwrap();
    gw.charge(&ChargeRequest {
        idempotency_key: key,
        amount: eur(2500),
        card: &card,
        description: "Invoice 1207",
        reference: "pay_test_1",
        moto,
        return_url: (!moto).then_some(&back),
    })
    .await
}

#[tokio::test]
async fn visa_mastercard_and_amex_are_authorised_with_brand_last_four_and_reference() {
    let peer = AdyenPeer::start().await;
    let gw = gateway(&peer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT);
    for (number, brand) in [
        ("4111111111111111", CardBrand::Visa),
        ("5555555555554444", CardBrand::Mastercard),
        ("378282246310005", CardBrand::Amex),
    ] {
        match charge(&gw, &key(), number, true).await.unwrap() {
            ChargeOutcome::Authorised {
                reference,
                token,
                card,
            } => {
                assert!(reference.starts_with("PEER"));
                assert_eq!(
                    token, reference,
                    "no stored card: the token is the pspReference"
                );
                assert_eq!(card.brand, brand);
                assert_eq!(card.last4, number[number.len() - 4..]);
                assert_eq!((card.exp_month, card.exp_year), (3, 2030));
            }
            other => panic!("{number}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_refusal_sent_as_http_200_is_a_decline_with_its_reason() {
    let peer = AdyenPeer::start().await;
    let gw = gateway(&peer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT);
    for (number, reason) in [
        ("4000000000000002", DeclineReason::Generic),
        ("4000000000009995", DeclineReason::InsufficientFunds),
        ("4000000000000069", DeclineReason::ExpiredCard),
        ("4000000000000127", DeclineReason::IncorrectCvc),
        ("4000000000000119", DeclineReason::ProcessingError),
        ("4000000000009979", DeclineReason::Fraud),
    ] {
        match charge(&gw, &key(), number, true).await.unwrap() {
            ChargeOutcome::Declined {
                reason: got,
                reference,
            } => {
                assert_eq!(got, reason, "{number}");
                assert!(reference.is_some());
            }
            other => panic!("{number}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn three_d_secure_redirects_a_link_payment_and_not_a_moto_one() {
    let peer = AdyenPeer::start().await;
    let gw = gateway(&peer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT);
    match charge(&gw, &key(), "4000002500003155", false)
        .await
        .unwrap()
    {
        ChargeOutcome::RequiresAction { redirect_url, .. } => {
            assert!(redirect_url.path().starts_with("/3ds/"));
        }
        other => panic!("expected RedirectShopper, got {other:?}"),
    }
    assert!(matches!(
        charge(&gw, &key(), "4000002500003155", true).await.unwrap(),
        ChargeOutcome::Authorised { .. }
    ));
}

#[tokio::test]
async fn a_wrong_api_key_or_merchant_account_is_unauthorised() {
    let peer = AdyenPeer::start().await;
    let wrong_key = gateway(&peer, "AQEnotthekey", ADYEN_TEST_MERCHANT);
    let out = charge(&wrong_key, &key(), "4111111111111111", true).await;
    assert_eq!(out, Err(GatewayError::Unauthorised));
    let wrong_merchant = gateway(&peer, ADYEN_TEST_KEY, "SomeoneElse");
    let out = charge(&wrong_merchant, &key(), "4111111111111111", true).await;
    assert_eq!(out, Err(GatewayError::Unauthorised));
}

#[tokio::test]
async fn a_retry_with_the_same_key_is_answered_without_a_second_payment() {
    let peer = AdyenPeer::start().await;
    let gw = gateway(&peer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT);
    let k = key();
    let first = charge(&gw, &k, "4111111111111111", true).await.unwrap();
    let second = charge(&gw, &k, "4111111111111111", true).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(peer.payments_with_key(&k), 1);
}

#[tokio::test]
async fn refunds_full_and_partial_reach_the_payment_and_an_unknown_one_is_rejected() {
    let peer = AdyenPeer::start().await;
    let gw = gateway(&peer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT);
    let ChargeOutcome::Authorised { reference, .. } =
        charge(&gw, &key(), "4111111111111111", true).await.unwrap()
    else {
        panic!("not authorised");
    };
    for minor in [1000, 1500] {
        let k = key();
        let done = gw
            .refund(&RefundRequest {
                idempotency_key: &k,
                charge_reference: &reference,
                amount: eur(minor),
            })
            .await
            .unwrap();
        assert!(done.reference.starts_with("PEER"));
    }
    assert_eq!(peer.refunded(&reference), Some(2500));
    let k = key();
    let unknown = gw
        .refund(&RefundRequest {
            idempotency_key: &k,
            charge_reference: "PEER999999999999",
            amount: eur(100),
        })
        .await;
    assert!(matches!(unknown, Err(GatewayError::Rejected(ref m)) if m.contains("167")));
}

#[tokio::test]
async fn no_card_number_appears_in_any_outcome_or_error() {
    let peer = AdyenPeer::start().await;
    let gw = gateway(&peer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT);
    let wrong = gateway(&peer, "AQEwrong", ADYEN_TEST_MERCHANT);
    let mut shown = Vec::new();
    for number in ["4000000000000002", "4111111111111111"] {
        shown.push(format!("{:?}", charge(&gw, &key(), number, true).await));
        shown.push(format!("{:?}", charge(&wrong, &key(), number, true).await));
    }
    for s in shown {
        assert!(
            !s.contains("4000000000000002") && !s.contains("4111111111111111"),
            "{s}"
        );
    }
}
