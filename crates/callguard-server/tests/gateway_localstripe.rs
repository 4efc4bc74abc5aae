//! The same Stripe client suite as `gateway_stripe.rs`, run against localstripe (PyPI 1.15.10,
//! a stateful Stripe fake in Python) as a cross-check that the local peer and the client agree
//! with someone else's reading of Stripe's API. Cases where localstripe behaves differently from
//! Stripe are skipped by name, each with its reason (also listed in the README's payments
//! section). localstripe must be installed (`python3 -m pip install localstripe==1.15.10`);
//! without it every case fails saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod stripe_suite;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use stripe_suite::Target;

pub const LOCALSTRIPE_VERSION: &str = "1.15.10";

/// Runs localstripe's aiohttp app on 127.0.0.1 (its own entry point binds every address) and
/// exits when the test process closes its stdin, so no server outlives the tests. localstripe
/// pickles its whole store (test card numbers included) to /tmp/localstripe.pickle after every
/// change and reloads it at start: that is switched off, so nothing reaches the disk and runs
/// do not share state.
const LAUNCH: &str = r#"
import os, sys, threading
import localstripe.resources as resources
resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None
import localstripe.server as server
from aiohttp import web
def watch():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
web.run_app(server.app, host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)
"#;

/// Cases where localstripe differs from Stripe, and how. Each was seen failing against
/// localstripe 1.15.10 for exactly this reason.
const DIFFERS: &[(&str, &str)] = &[
    (
        "an_amex_with_a_four_digit_code_is_authorised",
        "localstripe takes only 16-digit numbers with 3-digit codes: a 15-digit Amex with its 4-digit code is refused at tokenisation as 400 Bad request",
    ),
    (
        "the_generic_decline_card_is_declined",
        "localstripe authorises Stripe's decline test card …0002 (generic_decline) on a PaymentIntent: it declines only 4000000000000341 (and some cards only when attached to a customer)",
    ),
    (
        "the_insufficient_funds_card_is_declined_for_funds",
        "localstripe authorises Stripe's decline test card …9995 (insufficient_funds) on a PaymentIntent: it declines only 4000000000000341 (and some cards only when attached to a customer)",
    ),
    (
        "the_expired_card_is_declined_as_expired",
        "localstripe authorises Stripe's decline test card …0069 (expired_card) on a PaymentIntent: it declines only 4000000000000341 (and some cards only when attached to a customer)",
    ),
    (
        "the_incorrect_cvc_card_is_declined_for_its_code",
        "localstripe authorises Stripe's decline test card …0127 (incorrect_cvc) on a PaymentIntent: it declines only 4000000000000341 (and some cards only when attached to a customer)",
    ),
    (
        "the_processing_error_card_is_a_processing_error",
        "localstripe authorises Stripe's decline test card …0119 (processing_error) on a PaymentIntent: it declines only 4000000000000341 (and some cards only when attached to a customer)",
    ),
    (
        "the_stolen_card_is_declined_as_fraud",
        "localstripe authorises Stripe's decline test card …9979 (stolen_card) on a PaymentIntent: it declines only 4000000000000341 (and some cards only when attached to a customer)",
    ),
    (
        "a_card_that_tokenises_but_fails_to_charge_is_declined",
        "localstripe declines …0341 with HTTP 402 but type invalid_request_error and no payment_intent in the error, so the decline has no reference; a_0341_charge_is_still_read_as_a_decline checks what the client makes of that shape",
    ),
    (
        "three_d_secure_on_a_link_payment_requires_action",
        "localstripe refuses return_url on a PaymentIntent (400 \"Unexpected return_url\"), so no pay-by-link charge can be made",
    ),
    (
        "a_link_payment_is_authorised_after_the_card_holder_passes_3ds",
        "localstripe refuses return_url on a PaymentIntent, and the bank's page is the local peer's",
    ),
    (
        "a_link_payment_failing_3ds_is_declined_as_not_authenticated",
        "localstripe refuses return_url on a PaymentIntent, and the bank's page is the local peer's",
    ),
    (
        "a_moto_charge_on_a_3ds_card_is_authorised_without_a_challenge",
        "localstripe ignores payment_method_options[card][moto]: a 3-D Secure card still gets requires_action, which a MOTO charge reads as a failed authentication",
    ),
    (
        "a_wrong_secret_key_is_unauthorised",
        "localstripe accepts any key that starts with sk_ (it refuses only a missing or non-sk_ key)",
    ),
    (
        "the_same_key_with_other_parameters_is_an_idempotency_conflict",
        "localstripe ignores Idempotency-Key: the same key with other parameters makes a new charge",
    ),
    (
        "a_retry_with_the_same_key_returns_the_same_charge",
        "localstripe ignores Idempotency-Key: a retry with the same key makes a second charge",
    ),
    (
        "a_timeout_then_a_retry_with_the_same_key_charges_exactly_once",
        "needs the local peer's fault switch and charge counter, and localstripe ignores Idempotency-Key",
    ),
    (
        "refunds_full_and_partial_and_an_over_refund_is_refused",
        "localstripe accepts a refund larger than what is left of the charge",
    ),
];

static SERVER: OnceLock<Result<(url::Url, Mutex<Child>), String>> = OnceLock::new();

fn launch() -> Result<(url::Url, Mutex<Child>), String> {
    let installed = Command::new("python3")
        .args(["-c", "import localstripe.server, aiohttp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return Err(format!(
            "localstripe is not installed: run `python3 -m pip install localstripe=={LOCALSTRIPE_VERSION}` \
             (or with --user --break-system-packages on Debian's python3), as scripts/test-all does"
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut child = Command::new("python3")
        .args(["-c", LAUNCH, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 could not be started: {e}"))?;
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let base = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
            return Ok((base, Mutex::new(child)));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!(
                "localstripe exited ({status}) before listening: {err}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("localstripe did not listen within 30 seconds".into())
}

fn start() -> Target {
    match SERVER.get_or_init(launch) {
        Ok((base_url, _)) => Target {
            base_url: base_url.clone(),
            // localstripe takes any key that starts with sk_.
            secret_key: "sk_test_localstripe".into(),
            peer: None,
            // localstripe refuses `description` on a PaymentIntent.
            description: "",
        },
        Err(why) => panic!("{why}"),
    }
}

fn differs(case: &str) -> Option<&'static str> {
    DIFFERS
        .iter()
        .find(|(c, _)| *c == case)
        .map(|(_, why)| *why)
}

macro_rules! against_localstripe {
    ($($case:ident),* $(,)?) => {
        const CASES: &[&str] = &[$(stringify!($case)),*];
        $(
            #[tokio::test]
            async fn $case() {
                let target = start();
                if let Some(why) = differs(stringify!($case)) {
                    eprintln!("skipped against localstripe: {why}");
                    return;
                }
                stripe_suite::$case(&target).await;
            }
        )*
    };
}

against_localstripe!(
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

#[test]
fn every_skip_names_a_case_of_the_suite_and_gives_a_reason() {
    for (case, why) in DIFFERS {
        assert!(CASES.contains(case), "{case} is not a case of the suite");
        assert!(why.len() > 20, "{case}: say why it is skipped");
    }
}

#[tokio::test]
async fn a_0341_charge_is_still_read_as_a_decline() {
    use callguard_server::features::payments::gateway::{ChargeOutcome, DeclineReason};
    let target = start();
    let out = stripe_suite::charge_as(
        &target,
        &target.gateway(),
        &stripe_suite::new_key(),
        &stripe_suite::card("4000000000000341"),
        stripe_suite::eur(1999),
        true,
    )
    .await;
    assert!(
        matches!(
            out,
            Ok(ChargeOutcome::Declined {
                reason: DeclineReason::Generic,
                ..
            })
        ),
        "{out:?}"
    );
}
