//! The local test peers as one process, for tests written outside Rust (the browser tests): a
//! Stripe test peer and an SMS provider sink on 127.0.0.1. Prints one JSON line with their
//! addresses and credentials, then one JSON line per SMS accepted (`{"sms": {to, body}}`), and
//! runs until its standard input closes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callguard_testkit::{SmsApiSink, StripePeer};
use std::io::Write;
use std::time::Duration;

const SID: &str = "AC_test_peers";
const TOKEN: &str = "sms-token-for-test-peers";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let stripe = StripePeer::start().await;
    let sms = SmsApiSink::start(SID, TOKEN).await;
    let hello = serde_json::json!({
        "stripe_url": stripe.base_url().to_string(),
        "stripe_key": stripe.secret_key(),
        "sms_url": sms.base_url().to_string(),
        "sms_sid": SID,
        "sms_token": TOKEN,
    });
    println!("{hello}");
    std::io::stdout().flush().unwrap();
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    tokio::pin!(stdin_closed);
    let mut printed = 0;
    loop {
        tokio::select! {
            _ = &mut stdin_closed => break,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                let messages = sms.messages();
                for m in &messages[printed..] {
                    println!("{}", serde_json::json!({"sms": {"to": m.to, "body": m.body}}));
                }
                printed = messages.len();
                std::io::stdout().flush().unwrap();
            }
        }
    }
}
