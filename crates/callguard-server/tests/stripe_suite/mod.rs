//! The Stripe client's test suite, run against any server that speaks Stripe's API: the local
//! test peer (`gateway_stripe.rs`) and localstripe (`gateway_localstripe.rs`). Each case is a
//! function over a [`Target`]; each file names the cases it runs and, for localstripe, the ones
//! it skips and why.

#![allow(dead_code)]

use callguard_core::payments::{CardBrand, CardDetails, Currency, Money};
use callguard_server::features::payments::gateway::{
    ChargeOutcome, ChargeRequest, DeclineReason, Gateway, GatewayError, RefundRequest,
    StripeGateway, StripeSettings,
};
use callguard_testkit::StripePeer;
use std::time::Duration;

/// A server speaking Stripe's API, and the peer's hooks when it is the local peer.
pub struct Target {
    pub base_url: url::Url,
    pub secret_key: String,
    pub peer: Option<StripePeer>,
    /// The charge's description; empty leaves the parameter out (localstripe refuses it).
    pub description: &'static str,
}

impl Target {
    pub fn gateway(&self) -> StripeGateway {
        self.gateway_with(&self.secret_key, Duration::from_secs(10))
    }

    pub fn gateway_with(&self, key: &str, timeout: Duration) -> StripeGateway {
        StripeGateway::new(&StripeSettings {
            base_url: self.base_url.clone(),
            secret_key: key.to_owned().into(),
            timeout,
        })
        .unwrap()
    }

    fn peer(&self) -> &StripePeer {
        self.peer
            .as_ref()
            .expect("this case needs the local peer's hooks")
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn card(number: &str) -> CardDetails {
    let cvc = if number.len() == 15 { "1234" } else { "123" };
    CardDetails::parse(number, "12", "2031", cvc, Some("94107"), now()).unwrap()
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::from_code("EUR").unwrap()).unwrap()
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn return_url() -> url::Url {
    url::Url::parse("https://callguard.example/pay/return").unwrap()
}

pub async fn charge_as(
    t: &Target,
    gw: &StripeGateway,
    key: &str,
    card: &CardDetails,
    amount: Money,
    moto: bool,
) -> Result<ChargeOutcome, GatewayError> {
    let back = return_url();
    gw.charge(&ChargeRequest {
        idempotency_key: key,
        amount,
        card,
        description: t.description,
        reference: "pay_test_1",
        moto,
        return_url: (!moto).then_some(&back),
    })
    .await
}

fn authorised(outcome: ChargeOutcome) -> (String, String, callguard_core::payments::CardSummary) {
    match outcome {
        ChargeOutcome::Authorised {
            reference,
            token,
            card,
        } => (reference, token, card),
        other => panic!("expected an authorised charge, got {other:?}"),
    }
}

async fn authorised_with(t: &Target, number: &str, brand: CardBrand, moto: bool) {
    let out = charge_as(t, &t.gateway(), &new_key(), &card(number), eur(1999), moto).await;
    let (reference, token, summary) = authorised(out.unwrap());
    assert!(reference.starts_with("pi_"), "{reference}");
    assert!(token.starts_with("pm_"), "{token}");
    assert_eq!(summary.brand, brand);
    assert_eq!(summary.last4, number[number.len() - 4..]);
    assert_eq!((summary.exp_month, summary.exp_year), (12, 2031));
}

pub async fn a_visa_is_authorised_with_brand_last_four_and_token(t: &Target) {
    authorised_with(t, "4242424242424242", CardBrand::Visa, true).await;
}

pub async fn a_mastercard_is_authorised_with_brand_last_four_and_token(t: &Target) {
    authorised_with(t, "5555555555554444", CardBrand::Mastercard, true).await;
}

pub async fn an_amex_with_a_four_digit_code_is_authorised(t: &Target) {
    authorised_with(t, "378282246310005", CardBrand::Amex, true).await;
}

async fn declined_with(t: &Target, number: &str, reason: DeclineReason) {
    let out = charge_as(t, &t.gateway(), &new_key(), &card(number), eur(1999), true).await;
    match out {
        Ok(ChargeOutcome::Declined {
            reason: got,
            reference,
        }) => {
            assert_eq!(got, reason, "{number}");
            assert!(reference.is_some_and(|r| r.starts_with("pi_")));
        }
        other => panic!("{number}: expected a decline, got {other:?}"),
    }
}

pub async fn the_generic_decline_card_is_declined(t: &Target) {
    declined_with(t, "4000000000000002", DeclineReason::Generic).await;
}

pub async fn the_insufficient_funds_card_is_declined_for_funds(t: &Target) {
    declined_with(t, "4000000000009995", DeclineReason::InsufficientFunds).await;
}

pub async fn the_expired_card_is_declined_as_expired(t: &Target) {
    declined_with(t, "4000000000000069", DeclineReason::ExpiredCard).await;
}

pub async fn the_incorrect_cvc_card_is_declined_for_its_code(t: &Target) {
    declined_with(t, "4000000000000127", DeclineReason::IncorrectCvc).await;
}

pub async fn the_processing_error_card_is_a_processing_error(t: &Target) {
    declined_with(t, "4000000000000119", DeclineReason::ProcessingError).await;
}

pub async fn the_stolen_card_is_declined_as_fraud(t: &Target) {
    declined_with(t, "4000000000009979", DeclineReason::Fraud).await;
}

pub async fn a_card_that_tokenises_but_fails_to_charge_is_declined(t: &Target) {
    declined_with(t, "4000000000000341", DeclineReason::Generic).await;
}

pub async fn three_d_secure_on_a_link_payment_requires_action(t: &Target) {
    let out = charge_as(
        t,
        &t.gateway(),
        &new_key(),
        &card("4000002500003155"),
        eur(1999),
        false,
    )
    .await;
    match out {
        Ok(ChargeOutcome::RequiresAction {
            reference,
            redirect_url,
        }) => {
            assert!(reference.starts_with("pi_"));
            assert!(matches!(redirect_url.scheme(), "http" | "https"));
        }
        other => panic!("expected 3-D Secure, got {other:?}"),
    }
}

pub async fn a_link_payment_is_authorised_after_the_card_holder_passes_3ds(t: &Target) {
    let gw = t.gateway();
    let out = charge_as(
        t,
        &gw,
        &new_key(),
        &card("4000002500003155"),
        eur(1999),
        false,
    )
    .await;
    let Ok(ChargeOutcome::RequiresAction { reference, .. }) = out else {
        panic!("expected 3-D Secure, got {out:?}");
    };
    assert!(t.peer().finish_3ds(&reference, true));
    let (again, token, summary) = authorised(gw.charge_status(&reference).await.unwrap());
    assert_eq!(again, reference);
    assert!(token.starts_with("pm_"));
    assert_eq!(
        (summary.brand, summary.last4.as_str()),
        (CardBrand::Visa, "3155")
    );
}

pub async fn a_link_payment_failing_3ds_is_declined_as_not_authenticated(t: &Target) {
    let gw = t.gateway();
    let out = charge_as(
        t,
        &gw,
        &new_key(),
        &card("4000002500003155"),
        eur(1999),
        false,
    )
    .await;
    let Ok(ChargeOutcome::RequiresAction { reference, .. }) = out else {
        panic!("expected 3-D Secure, got {out:?}");
    };
    assert!(t.peer().finish_3ds(&reference, false));
    assert_eq!(
        gw.charge_status(&reference).await.unwrap(),
        ChargeOutcome::Declined {
            reason: DeclineReason::AuthenticationFailed,
            reference: Some(reference),
        }
    );
}

pub async fn a_moto_charge_on_a_3ds_card_is_authorised_without_a_challenge(t: &Target) {
    authorised_with(t, "4000002500003155", CardBrand::Visa, true).await;
}

pub async fn a_wrong_secret_key_is_unauthorised(t: &Target) {
    let gw = t.gateway_with("sk_test_not0the0right0key", Duration::from_secs(10));
    let out = charge_as(
        t,
        &gw,
        &new_key(),
        &card("4242424242424242"),
        eur(1999),
        true,
    )
    .await;
    assert_eq!(out, Err(GatewayError::Unauthorised));
}

pub async fn the_same_key_with_other_parameters_is_an_idempotency_conflict(t: &Target) {
    let gw = t.gateway();
    let key = new_key();
    let visa = card("4242424242424242");
    authorised(
        charge_as(t, &gw, &key, &visa, eur(1999), true)
            .await
            .unwrap(),
    );
    let out = charge_as(t, &gw, &key, &visa, eur(2999), true).await;
    assert_eq!(out, Err(GatewayError::IdempotencyConflict));
}

pub async fn a_retry_with_the_same_key_returns_the_same_charge(t: &Target) {
    let gw = t.gateway();
    let key = new_key();
    let visa = card("4242424242424242");
    let first = authorised(
        charge_as(t, &gw, &key, &visa, eur(1999), true)
            .await
            .unwrap(),
    );
    let second = authorised(
        charge_as(t, &gw, &key, &visa, eur(1999), true)
            .await
            .unwrap(),
    );
    assert_eq!(first, second);
}

pub async fn a_timeout_then_a_retry_with_the_same_key_charges_exactly_once(t: &Target) {
    let peer = t.peer();
    let gw = t.gateway_with(&t.secret_key, Duration::from_millis(500));
    let key = new_key();
    let visa = card("4242424242424242");
    peer.delay_next_on("/v1/payment_intents", 1, Duration::from_secs(3));
    let first = charge_as(t, &gw, &key, &visa, eur(1999), true).await;
    assert_eq!(first, Err(GatewayError::Unreachable));
    assert_eq!(
        peer.charges_with_key(&format!("{key}-pi")),
        1,
        "the charge was made"
    );
    let retried = charge_as(t, &gw, &key, &visa, eur(1999), true).await;
    authorised(retried.unwrap());
    assert_eq!(
        peer.charges_with_key(&format!("{key}-pi")),
        1,
        "and only once"
    );
}

pub async fn refunds_full_and_partial_and_an_over_refund_is_refused(t: &Target) {
    let gw = t.gateway();
    let (reference, _, _) = authorised(
        charge_as(
            t,
            &gw,
            &new_key(),
            &card("4242424242424242"),
            eur(5000),
            true,
        )
        .await
        .unwrap(),
    );
    let refund = |key: String, minor| {
        let gw = &gw;
        let reference = reference.clone();
        async move {
            gw.refund(&RefundRequest {
                idempotency_key: &key,
                charge_reference: &reference,
                amount: eur(minor),
            })
            .await
        }
    };
    let part = refund(new_key(), 2000).await.unwrap();
    assert!(part.reference.starts_with("re_"));
    assert_eq!(part.amount, eur(2000));
    assert!(matches!(
        refund(new_key(), 3001).await,
        Err(GatewayError::Rejected(_))
    ));
    refund(new_key(), 3000).await.unwrap();
    assert!(matches!(
        refund(new_key(), 1).await,
        Err(GatewayError::Rejected(_))
    ));
    if let Some(peer) = &t.peer {
        assert_eq!(peer.refunded(&reference), Some(5000));
    }
}

pub async fn a_full_refund_of_an_authorised_charge_succeeds(t: &Target) {
    let gw = t.gateway();
    let (reference, _, _) = authorised(
        charge_as(
            t,
            &gw,
            &new_key(),
            &card("4242424242424242"),
            eur(5000),
            true,
        )
        .await
        .unwrap(),
    );
    let key = new_key();
    let done = gw
        .refund(&RefundRequest {
            idempotency_key: &key,
            charge_reference: &reference,
            amount: eur(5000),
        })
        .await
        .unwrap();
    assert_eq!(done.amount, eur(5000));
}

pub async fn the_status_of_an_authorised_charge_reads_back(t: &Target) {
    let gw = t.gateway();
    let out = charge_as(
        t,
        &gw,
        &new_key(),
        &card("5555555555554444"),
        eur(1999),
        true,
    )
    .await;
    let (reference, token, _) = authorised(out.unwrap());
    let (again, token_again, summary) = authorised(gw.charge_status(&reference).await.unwrap());
    assert_eq!((again, token_again), (reference, token));
    assert_eq!(summary.last4, "4444");
}

pub async fn no_card_number_appears_in_any_outcome_or_error(t: &Target) {
    let mut shown = Vec::new();
    for number in [
        "4000000000000002",
        "4000000000009995",
        "4000000000000127",
        "4242424242424242",
    ] {
        let out = charge_as(t, &t.gateway(), &new_key(), &card(number), eur(1999), true).await;
        shown.push(format!("{out:?}"));
        if let Err(e) = out {
            shown.push(e.to_string());
        }
    }
    // Refused by the gateway (or, where a server accepts any key, whatever it answered).
    let wrong = t.gateway_with("sk_test_not0the0right0key", Duration::from_secs(10));
    let out = charge_as(
        t,
        &wrong,
        &new_key(),
        &card("4242424242424242"),
        eur(1999),
        true,
    )
    .await;
    shown.push(format!("{out:?}"));
    let key = new_key();
    let gw = t.gateway();
    let _ = charge_as(t, &gw, &key, &card("4242424242424242"), eur(1999), true).await;
    let e = charge_as(t, &gw, &key, &card("5555555555554444"), eur(1999), true).await;
    shown.push(format!("{e:?}"));
    for s in &shown {
        assert!(!holds_a_card_number(s), "{s}");
        for pan in ["4000000000000002", "4242424242424242", "5555555555554444"] {
            assert!(!s.contains(pan), "{s}");
        }
        assert!(
            !s.contains("security code is incorrect"),
            "a gateway message leaked: {s}"
        );
    }
}

/// Whether `text` holds a run of 13 to 19 digits that passes the Luhn check.
pub fn holds_a_card_number(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| (13..=19).contains(&run.len()))
        .any(|run| {
            let sum: u32 = run
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let d = u32::from(b - b'0');
                    if i % 2 == 1 {
                        if d * 2 > 9 {
                            d * 2 - 9
                        } else {
                            d * 2
                        }
                    } else {
                        d
                    }
                })
                .sum();
            sum.is_multiple_of(10)
        })
}
