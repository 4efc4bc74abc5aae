//! Test support for Callguard: local servers that speak the real protocols of the providers
//! Callguard talks to, so tests exercise the real clients end to end without leaving the machine.
//! Every server binds 127.0.0.1 on a free port and stops when dropped.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adyen;
mod sms;
mod smtp;
mod stripe;

pub use adyen::{AdyenPeer, ADYEN_TEST_KEY, ADYEN_TEST_MERCHANT};
pub use sms::{SmsApiSink, SmsMessage};
pub use smtp::{SmtpMessage, SmtpSink};
pub use stripe::{StripePeer, STRIPE_TEST_KEY};

use std::time::Duration;
use tokio::sync::watch;

/// Waits until `received` holds at least `n` items and returns them all; panics after `timeout`
/// with a message that names the sink, so a failing test says what did not arrive.
async fn wait_for<T: Clone>(
    received: &watch::Sender<Vec<T>>,
    n: usize,
    timeout: Duration,
    what: &str,
) -> Vec<T> {
    let mut rx = received.subscribe();
    let arrived = tokio::time::timeout(timeout, rx.wait_for(|v| v.len() >= n)).await;
    match arrived {
        Ok(Ok(v)) => v.clone(),
        _ => panic!(
            "{what}: expected {n} message(s) within {timeout:?}, got {}",
            received.borrow().len()
        ),
    }
}
