//! Key presses sent as SIP INFO (RFC 2976) end to end, in a private network namespace: sipp is
//! a caller whose phone sends every key as an INFO in its dialog (`application/dtmf-relay` and
//! `application/dtmf` bodies), baresip the agent's softphone. The caller picks the queue and
//! verifies by keypad in the IVR, then keys the card into a keypad payment the agent takes on
//! the call: the payment is authorised with exactly that card, the agent's softphone logs no
//! telephone event and hears no digit, and no run of the card's digits is anywhere. A malformed
//! DTMF body is refused with 400 and a body of another type with 415.

use crate::harness::Backend;
use crate::secure_keypad::{
    assert_no_card_digits, call_reaching, follow_capture, keypad_payment, keys_in, payment,
    received_events, start, take_path,
};
use crate::sipp::*;
use crate::telephony::{agent_with_sip, audit_entries, in_private_network, wait_registered};
use callguard_testkit::StripePeer;
use serde_json::{json, Value};

in_private_network!(a_card_keyed_as_sip_info_is_authorised_and_the_agent_gets_no_digit,);

/// Stripe's Visa debit test card: every digit but the last four differs from the brand's.
const CARD: &str = "4000056655665556";
/// The card number with a `*` restart.
const NUMBER_KEYS: &str = "40*4000056655665556#";
const EXPIRY_KEYS: &str = "1230#";
const CODE_KEYS: &str = "123#";

/// INFOs keying `keys` as `application/dtmf` bodies (the key alone), `gap_ms` apart.
fn dtmf_bodies(keys: &str, gap_ms: u64) -> Vec<Step> {
    keys.chars()
        .flat_map(|c| {
            [
                Step::Info {
                    content_type: "application/dtmf",
                    body: format!("{c}\n"),
                    expect: 200,
                },
                Step::Pause(gap_ms),
            ]
        })
        .collect()
}

/// The caller's script: two refused INFOs; the IVR by INFO (queue 1, the national identifier
/// and `#` for level 1, `#` to skip level 2); while the agent takes the payment, the card
/// number (`dtmf-relay`, with a `*` restart), the expiry (`dtmf`) and the security code
/// (`dtmf-relay`, `#` written as event code 11); then the charge and the closing prompt.
fn caller_steps() -> Vec<Step> {
    let mut steps = vec![
        Step::Pause(1000),
        Step::Info {
            content_type: "application/dtmf-relay",
            body: "Signal=X\nDuration=160\n".into(),
            expect: 400,
        },
        Step::Info {
            content_type: "text/plain",
            body: "5\n".into(),
            expect: 415,
        },
        Step::Pause(4000),
    ];
    steps.extend(dtmf_bodies("1", 1000));
    steps.extend(info_keys(&format!("{}#", crate::vault::PESEL), 300));
    steps.push(Step::Pause(1000));
    steps.extend(info_keys("#", 10_000));
    steps.extend(info_keys(NUMBER_KEYS, 300));
    steps.push(Step::Pause(3000));
    steps.extend(dtmf_bodies(EXPIRY_KEYS, 300));
    steps.push(Step::Pause(3000));
    steps.extend(info_keys(CODE_KEYS.trim_end_matches('#'), 300));
    steps.push(Step::Info {
        content_type: "application/dtmf-relay",
        body: "Signal=11\nDuration=160\n".into(),
        expect: 200,
    });
    steps.push(Step::Pause(9000));
    steps
}

async fn a_card_keyed_as_sip_info_is_authorised_and_the_agent_gets_no_digit(backend: Backend) {
    let peer = StripePeer::start().await;
    let (server, api) = start(backend, &peer, None).await;
    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    api.post(
        "/api/v1/customers",
        Some(&ann.token),
        crate::vault::customer_body(),
    )
    .await
    .expect(201);
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 1, &ann_phone).await;
    ann.set_state(&server, json!({"state": "ready"})).await;

    // The caller's audio is the quiet tone only: every key goes by INFO.
    write_caller_pcap(&dir.path().join("caller.pcap"), &[Part::Audio(52_000)]);
    let scenario = scripted_caller_scenario(crate::vault::PHONE, "caller.pcap", &caller_steps());
    let sipp_dir = dir.path().to_owned();
    let caller = tokio::task::spawn_blocking(move || call_edge(&sipp_dir, &scenario));

    // The caller reached level 1 in the IVR by INFO: ann takes the payment without verifying.
    let call = call_reaching(&server, &ann).await;
    let id = keypad_payment(&api, &ann, &call).await;
    api.post(&take_path(&id), Some(&ann.token), json!({}))
        .await
        .expect(201);
    let (seen_number_progress, views) = follow_capture(&api, &ann, &id).await;
    let (ok, out) = caller.await.unwrap();
    assert!(
        ok,
        "the call completes; each INFO is answered as expected\n{out}\n{}",
        server.logs()
    );

    let paid = payment(&api, &ann, &id).await;
    assert_eq!(paid["status"], "authorised", "{paid}\n{}", server.logs());
    assert_eq!(paid["last4"], &CARD[12..]);
    assert_eq!(peer.charges(), 1, "one charge at the gateway");
    assert!(
        seen_number_progress,
        "the desk showed the card number's progress: {views}"
    );

    let audit = audit_entries(&server).await;
    let by_keypad: Vec<&Value> = audit
        .iter()
        .filter(|e| {
            e["actor"] == "user:telephony-edge"
                && e["action"] == "interaction.verify"
                && e["outcome"] == "success"
        })
        .collect();
    assert_eq!(
        by_keypad.len(),
        1,
        "the caller verified by INFO keys in the IVR: {by_keypad:?}"
    );
    assert_eq!(by_keypad[0]["details"]["method"], "national_id");

    // Nothing of the keys reached the agent: no telephone event, no tone.
    let log = ann_phone.log();
    let events = received_events(&log);
    assert!(
        events.is_empty(),
        "no key reached ann as an event: {events:?}"
    );
    let heard = ann_phone.heard();
    assert!(heard.len() > 8000 * 20, "ann heard the call");
    assert_eq!(keys_in(&heard), "", "no digit in the agent's audio");

    let audit = serde_json::to_string(&audit).unwrap();
    assert_no_card_digits(
        &server,
        &CARD[..8],
        &[
            ("the server's logs", &server.logs()),
            ("the audit log", &audit),
            ("ann's baresip log", &log),
            ("the desk's views", &views),
        ],
    );
}
