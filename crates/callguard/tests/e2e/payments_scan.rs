//! No card number anywhere (PCI DSS 3.3.1, 3.4.1, 3.5.1): after a payment story with every kind
//! of card outcome, run at debug log level, every byte under the server's root (data directory
//! with database, WAL, key store, witness; the server's stdout and stderr; CLI output), every
//! row of every PostgreSQL table, and the audit log as the API serves it hold no Luhn-valid
//! 13–19 digit run and none of the card numbers or security codes typed.

use crate::harness::Backend;
use crate::payments::verified_call;
use crate::payments_gateway::{new_link, pay, start_with_peer};
use crate::storage::{contains, files_under};
use callguard_core::pan_scan::inside_an_identifier;
use callguard_core::payments::card::luhn_valid;
use callguard_testkit::StripePeer;

both_backends!(no_card_number_reaches_a_file_a_row_a_log_or_the_audit_log);

/// Cards the story types, with their security codes.
const TYPED: &[(&str, &str)] = &[
    ("4242424242424242", "123"),
    ("4000000000009995", "123"),
    ("4000000000000127", "123"),
    ("378282246310005", "7391"),
    ("4242424242424241", "123"),
];

/// Every maximal run of 13 to 19 ASCII digits (spaces and dashes between groups allowed), not
/// inside a word, that starts like a card (2–6) and passes the Luhn check: the scan's findings.
/// A run holding one of `customer_ids` (12 random digits each) is that id with a byte of the
/// database page beside it that happens to be an ASCII digit (a row id, a record header), not a
/// card: a raw SQLite page stores the id's text next to binary integers.
pub fn card_like_runs(bytes: &[u8], customer_ids: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = String::new();
        while i < bytes.len()
            && (bytes[i].is_ascii_digit()
                || ((bytes[i] == b' ' || bytes[i] == b'-')
                    && i + 1 < bytes.len()
                    && bytes[i + 1].is_ascii_digit()
                    && !digits.is_empty()))
        {
            if bytes[i].is_ascii_digit() {
                digits.push(bytes[i] as char);
            }
            i += 1;
        }
        // A run inside a word (a hex hash, a base64 value) is part of that value, not a number.
        // Nor is the fraction of a decimal number (`ms=3.5879389…` in a request log).
        let fraction = start >= 2 && bytes[start - 1] == b'.' && bytes[start - 2].is_ascii_digit();
        // Nor is a run of a random identifier (a UUID glued to a base64 value in a database
        // page, `…BhoA==30466291-2345-4678-a…`): the compliance scan's own rule.
        let alone = !fraction
            && (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
            && bytes.get(i).is_none_or(|b| !b.is_ascii_alphanumeric())
            && !inside_an_identifier(bytes, start, i)
            && !customer_ids.iter().any(|id| digits.contains(id.as_str()));
        if alone
            && (13..=19).contains(&digits.len())
            && matches!(digits.as_bytes()[0], b'2'..=b'6')
            && luhn_valid(&digits)
        {
            // The first six digits and what precedes them: enough to find the writer.
            let before = String::from_utf8_lossy(&bytes[start.saturating_sub(48)..start]);
            found.push(format!("{before:?} then {}… at byte {start}", &digits[..6]));
        }
    }
    found
}

async fn no_card_number_reaches_a_file_a_row_a_log_or_the_audit_log(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, sms) = start_with_peer(
        backend,
        &peer,
        &[
            ("CALLGUARD_LOG_LEVEL", "trace"),
            ("CALLGUARD_PAYMENTS_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let api = server.api();
    let agent = server.new_account("sia-agent", "agent").await;
    let call = verified_call(&api, &agent, &sms, 2).await;
    let customer_ids: Vec<String> = api
        .get("/api/v1/customers?phone=%2B48601234567", Some(&agent.token))
        .await
        .expect(200)
        .json()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!customer_ids.is_empty());
    // A typing mistake, a decline by funds, a wrong CVC, an Amex paid after a late answer.
    let (_, t) = new_link(&api, &agent, &call).await;
    pay(&api, &t, "4242424242424241", "123").await.expect(422);
    pay(&api, &t, "4000000000009995", "123").await.expect(402);
    let (_, t) = new_link(&api, &agent, &call).await;
    pay(&api, &t, "4000000000000127", "123").await.expect(402);
    let (_, t) = new_link(&api, &agent, &call).await;
    peer.delay_next_on("/v1/payment_intents", 1, std::time::Duration::from_secs(3));
    pay(&api, &t, "3782 822463 10005", "7391").await.expect(200);
    let (_, t) = new_link(&api, &agent, &call).await;
    pay(&api, &t, "4242-4242-4242-4242", "123")
        .await
        .expect(200);
    assert_eq!(peer.charges(), 4);

    let compliance = server.new_account("cid-compliance", "compliance").await;
    let audit = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .text;
    assert!(audit.contains("\"payment.authorise\""));
    let mut places: Vec<(String, Vec<u8>)> = vec![("the audit log".into(), audit.into_bytes())];

    let pg_rows = match &server.pg {
        Some(pg) => {
            let c = pg.connect().await;
            let tables = c
                .query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
                    &[],
                )
                .await
                .unwrap();
            let mut rows = Vec::new();
            for t in tables {
                let name: String = t.get(0);
                for r in c
                    .query(&format!("SELECT t::text FROM \"{name}\" t"), &[])
                    .await
                    .unwrap()
                {
                    rows.push((
                        format!("a row of {name}"),
                        r.get::<_, String>(0).into_bytes(),
                    ));
                }
            }
            assert!(rows.iter().any(|(p, _)| p == "a row of payments"));
            rows
        }
        None => Vec::new(),
    };
    places.extend(pg_rows);
    let deployment = server.stop_keeping_data();
    for file in files_under(deployment.root()) {
        let bytes = std::fs::read(&file).unwrap();
        places.push((file.display().to_string(), bytes));
    }
    assert!(places.iter().any(|(p, _)| p.ends_with("server.stderr.log")));

    for (place, bytes) in &places {
        let runs = card_like_runs(bytes, &customer_ids);
        assert!(runs.is_empty(), "{place} holds card-like numbers: {runs:?}");
        for (number, cvc) in TYPED {
            assert!(
                !contains(bytes, number.as_bytes()),
                "{place} holds a typed card number"
            );
            // A security code beside a number: `number…cvc` within a short window.
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(&format!("\"cvc\":\"{cvc}\""))
                    && !text.contains(&format!("cvc={cvc}")),
                "{place} holds a security code field"
            );
        }
    }
}

#[test]
fn the_scan_finds_card_numbers_however_they_are_grouped() {
    for text in [
        "x=4242424242424242;",
        "4242 4242 4242 4242",
        "pan=4242-4242-4242-4242&",
        "378282246310005",
    ] {
        assert_eq!(card_like_runs(text.as_bytes(), &[]).len(), 1, "{text}");
    }
    for text in [
        "4242424242424241",
        "1796428800000",
        "12345",
        "2026-12-05 22:00",
        "9cd6-977e7e0d01ab,1494791ebfdebe594b",
        "ab4242424242424242cd",
        "status=200 ms=3.5879389451234567",
        "BhoA==30466291-2345-4676-a123-456789abcdef",
    ] {
        assert!(card_like_runs(text.as_bytes(), &[]).is_empty(), "{text}");
    }
    // A customer id in a database page, with the next byte (a row id of 57) read as a digit.
    let page = b"=%serviceHQv+sO0Krk6CLGQDK+Yrrw==374366123456\x39\x01";
    assert_eq!(card_like_runs(page, &[]).len(), 1);
    assert!(card_like_runs(page, &["374366123456".to_owned()]).is_empty());
}
