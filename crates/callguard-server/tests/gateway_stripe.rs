//! The Stripe client against the local Stripe test peer, over real HTTP: every case of the
//! shared suite, plus what only a local server can show (a broken connection).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod stripe_suite;

use callguard_server::features::payments::gateway::GatewayError;
use callguard_testkit::StripePeer;
use stripe_suite::*;

async fn start() -> Target {
    let peer = StripePeer::start().await;
    Target {
        base_url: peer.base_url(),
        secret_key: peer.secret_key().to_owned(),
        peer: Some(peer),
        description: "Invoice 1207",
    }
}

macro_rules! against_the_peer {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                stripe_suite::$case(&start().await).await;
            }
        )*
    };
}

against_the_peer!(
    a_visa_is_authorised_with_brand_last_four_and_token,
    a_mastercard_is_authorised_with_brand_last_four_and_token,
    an_amex_with_a_four_digit_code_is_authorised,
    the_generic_decline_card_is_declined,
    the_insufficient_funds_card_is_declined_for_funds,
    the_expired_card_is_declined_as_expired,
    the_incorrect_cvc_card_is_declined_for_its_code,
    the_processing_error_card_is_a_processing_error,
    the_stolen_card_is_declined_as_fraud,
    a_card_that_tokenises_but_fails_to_charge_is_declined,
    three_d_secure_on_a_link_payment_requires_action,
    a_link_payment_is_authorised_after_the_card_holder_passes_3ds,
    a_link_payment_failing_3ds_is_declined_as_not_authenticated,
    a_moto_charge_on_a_3ds_card_is_authorised_without_a_challenge,
    a_wrong_secret_key_is_unauthorised,
    the_same_key_with_other_parameters_is_an_idempotency_conflict,
    a_retry_with_the_same_key_returns_the_same_charge,
    a_timeout_then_a_retry_with_the_same_key_charges_exactly_once,
    refunds_full_and_partial_and_an_over_refund_is_refused,
    a_full_refund_of_an_authorised_charge_succeeds,
    the_status_of_an_authorised_charge_reads_back,
    no_card_number_appears_in_any_outcome_or_error,
);

#[tokio::test]
async fn a_gateway_that_is_not_listening_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = url::Url::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
    drop(closed);
    let target = Target {
        base_url,
        secret_key: callguard_testkit::STRIPE_TEST_KEY.into(),
        peer: None,
        description: "Invoice 1207",
    };
    let out = charge_as(
        &target,
        &target.gateway(),
        &new_key(),
        &card("4242424242424242"),
        eur(100),
        true,
    )
    .await;
    assert_eq!(out, Err(GatewayError::Unreachable));
}

#[tokio::test]
async fn the_card_number_goes_out_once_to_tokenise_and_the_charge_carries_only_the_token() {
    let target = start().await;
    let peer = target.peer.as_ref().unwrap();
    let before = peer.requests();
    charge_as(
        &target,
        &target.gateway(),
        &new_key(),
        &card("4242424242424242"),
        eur(100),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        peer.requests() - before,
        2,
        "one PaymentMethod, one PaymentIntent"
    );
    assert_eq!(peer.charges(), 1);
}

#[tokio::test]
async fn a_burst_of_the_same_charge_under_one_key_charges_once() {
    let target = start().await;
    let gw = std::sync::Arc::new(target.gateway());
    let key = new_key();
    let visa = std::sync::Arc::new(card("4242424242424242"));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (gw, key, visa) = (gw.clone(), key.clone(), visa.clone());
        let description = target.description;
        tasks.push(tokio::spawn(async move {
            use callguard_server::features::payments::gateway::{ChargeRequest, Gateway};
            gw.charge(&ChargeRequest {
                idempotency_key: &key,
                amount: eur(1999),
                card: &visa,
                description,
                reference: "pay_burst",
                moto: true,
                return_url: None,
            })
            .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().unwrap());
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:?}");
    let peer = target.peer.as_ref().unwrap();
    assert_eq!(peer.charges_with_key(&format!("{key}-pi")), 1);
    assert_eq!(peer.charges(), 1);
}
