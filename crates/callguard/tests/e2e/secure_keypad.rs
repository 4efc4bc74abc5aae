//! A keypad payment inside a live call (issue 13 item 1), end to end in a private network
//! namespace: sipp is the caller, baresip the agent's softphone, the real binary bridges them and
//! charges the local Stripe peer. The agent takes the payment on the call; the caller types the
//! card as in-band tones (card number, with a `*` restart; security code) and as RFC 4733 events
//! (expiry). The payment is authorised with that card; the agent's softphone gets no telephone
//! event and no detectable digit; the recording pauses for the capture and resumes by itself and
//! holds no digit; no card digit run is anywhere under the data directory, in the logs or the
//! audit log. After the capture a key of each kind does reach the agent and the recording, which
//! proves each check can fail. A supervisor listens in from before the capture: her softphone
//! gets no telephone event of the card and no detectable digit either.

use crate::harness::{Backend, Server};
use crate::sipp::*;
use crate::telephony::{agent_with_sip, audit_entries, checked_recording, wait_registered, Agent};
use callguard_telephony::media::g711::Law;
use callguard_telephony::media::goertzel::{ToneDetector, ToneEvent};
use callguard_testkit::StripePeer;
use serde_json::{json, Value};
use std::time::Duration;

use crate::telephony::in_private_network;

in_private_network!(
    a_card_keyed_in_a_live_call_is_authorised_while_the_agent_and_the_recording_get_no_digit,
    the_agent_cancels_a_capture_from_the_desk_and_the_call_leaves_secure_mode_by_itself,
);

/// The test card and what the caller keys.
const CARD: &str = "4242424242424242";
const NUMBER_KEYS: &str = "42*4242424242424242#";
const EXPIRY_KEYS: &str = "1230#";
const CODE_KEYS: &str = "123#";

/// The keys Goertzel finds in `samples` (16-bit linear, 8 kHz), in order.
pub(crate) fn keys_in(samples: &[i16]) -> String {
    let mut d = ToneDetector::new();
    let mut ev = Vec::new();
    d.push(samples, &mut ev);
    d.finish(&mut ev);
    ev.iter()
        .filter_map(|e| match *e {
            ToneEvent::Started { key, .. } => Some(key.as_char()),
            ToneEvent::Ended { .. } => None,
        })
        .collect()
}

/// The real binary with SIP and the local Stripe peer; `supervisor` (a user name), if any,
/// monitors the billing queue.
pub(crate) async fn start(
    backend: Backend,
    peer: &StripePeer,
    supervisor: Option<&str>,
) -> (Server, crate::harness::Api) {
    let url = peer.base_url().to_string();
    let supervisors = supervisor.map(|s| format!("billing={s}"));
    let mut env = vec![
        ("CALLGUARD_PAYMENTS_GATEWAY", "stripe"),
        ("CALLGUARD_PAYMENTS_STRIPE_URL", url.as_str()),
        ("CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY", peer.secret_key()),
        ("CALLGUARD_VERIFICATION_LEVEL_PAYMENT", "1"),
        ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
        ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
        ("CALLGUARD_SIP_REALM", "callguard.test"),
        ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
        ("CALLGUARD_SIP_DTMF_MASK", "tone"),
        ("CALLGUARD_QUEUES_RING_SECONDS", "4"),
        ("CALLGUARD_QUEUES_WRAP_UP_SECONDS", "1"),
        ("CALLGUARD_SIP_DIGEST_ALGORITHMS", "MD5"),
        ("CALLGUARD_LOG_LEVEL", "info"),
    ];
    if let Some(s) = &supervisors {
        env.push(("CALLGUARD_QUEUES_SUPERVISORS", s.as_str()));
    }
    let (server, _sms, _smtp) = crate::payments::start_for_payments(backend, &env).await;
    let api = server.api();
    (server, api)
}

/// The caller: picks queue 1, skips self-verification, talks while the agent answers and takes
/// the payment, keys the card, then one RFC 4733 key (`5`) and one tone (`9`) after the capture.
fn caller_parts() -> Vec<Part> {
    vec![
        Part::Audio(5000),
        Part::Keys("1".into()),
        Part::Audio(1000),
        Part::Keys("#".into()),
        Part::Audio(14_000),
        Part::Tones(NUMBER_KEYS.into()),
        Part::Audio(3000),
        Part::Keys(EXPIRY_KEYS.into()),
        Part::Audio(3000),
        Part::Tones(CODE_KEYS.into()),
        // The charge, the closing prompt and the line running clear before secure mode ends.
        Part::Audio(9000),
        Part::Keys("5".into()),
        Part::Tones("9".into()),
        Part::Audio(3000),
    ]
}

pub(crate) async fn payment(api: &crate::harness::Api, agent: &Agent, id: &str) -> Value {
    api.get(&format!("/api/v1/payments/{id}"), Some(&agent.token))
        .await
        .expect(200)
        .json()
}

/// A keypad payment of 12.50 EUR in `call`: its id.
pub(crate) async fn keypad_payment(api: &crate::harness::Api, agent: &Agent, call: &str) -> String {
    api.post(
        "/api/v1/payments",
        Some(&agent.token),
        json!({"interaction_id": call, "amount_minor": 1250, "currency": "EUR",
               "method": "keypad", "description": "Invoice 2026/12"}),
    )
    .await
    .expect(201)
    .str("id")
}

/// Verifies the caller of `call` by the demo customer's national identifier (level 1).
pub(crate) async fn verify_by_national_id(api: &crate::harness::Api, agent: &Agent, call: &str) {
    api.post(
        &format!("/api/v1/interactions/{call}/verify"),
        Some(&agent.token),
        crate::calls::by_national_id(crate::vault::PESEL),
    )
    .await
    .expect(200);
}

pub(crate) fn take_path(id: &str) -> String {
    format!("/api/v1/payments/{id}/keypad/in-call")
}

/// The telephone events baresip logged: (call time in seconds, key), from lines such as
/// `[0:00:37] audio=63978/68243 (bit/s)    received event: '5' (end=1)`.
pub(crate) fn received_events(log: &str) -> Vec<(u64, char)> {
    let mut out = Vec::new();
    for (at, _) in log.match_indices("received event: '") {
        let key = log[at + 17..].chars().next().unwrap_or('?');
        let before = &log[..at];
        let seconds = before
            .rfind('[')
            .and_then(|open| {
                let stamp = &before[open + 1..];
                let stamp = &stamp[..stamp.find(']')?];
                let mut parts = stamp.split(':').map(|p| p.parse::<u64>().ok());
                let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
                Some(h * 3600 + m * 60 + s)
            })
            .unwrap_or(0);
        out.push((seconds, key));
    }
    out
}

/// The interaction of the call once it reaches `agent`'s desk.
pub(crate) async fn call_reaching(server: &Server, agent: &Agent) -> String {
    for _ in 0..300 {
        if let Some(i) = agent.state(server).await["agent"]["interaction_id"].as_str() {
            return i.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the call never reached the agent\n{}", server.logs());
}

/// The keys of the telephone events `log` (baresip's) shows after the call's first two
/// seconds (the tail of the IVR's `#` may reach the phone as it answers), each press once.
pub(crate) fn later_events(log: &str) -> String {
    let mut later: Vec<char> = received_events(log)
        .iter()
        .filter(|(seconds, _)| *seconds >= 2)
        .map(|(_, key)| *key)
        .collect();
    // Each press is logged at its start and at its end.
    later.dedup();
    later.into_iter().collect()
}

/// Follows the capture of payment `id` on the desk (as `agent`) until it is no longer
/// capturing: whether the card number's progress showed, and every view seen.
pub(crate) async fn follow_capture(
    api: &crate::harness::Api,
    agent: &Agent,
    id: &str,
) -> (bool, String) {
    let mut seen_number_progress = false;
    let mut views = String::new();
    for _ in 0..1200 {
        let p = payment(api, agent, id).await;
        if p["keypad"]["field"] == "card number" && p["keypad"]["of"] == 16 {
            seen_number_progress = true;
        }
        views.push_str(&p.to_string());
        if p["status"] != "capturing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (seen_number_progress, views)
}

/// Asserts that no run of eight of the card's digits (`run`) is in `texts` (what, text) or in
/// any file under the server's data directory.
pub(crate) fn assert_no_card_digits(server: &Server, run: &str, texts: &[(&str, &str)]) {
    for (what, text) in texts {
        assert!(
            !text.contains(run),
            "{what} holds a run of the card's digits"
        );
    }
    let mut files = Vec::new();
    files_under(&server.data_dir, &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(run.len()).any(|w| w == run.as_bytes()),
            "{} holds a run of the card's digits",
            f.display()
        );
    }
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

async fn a_card_keyed_in_a_live_call_is_authorised_while_the_agent_and_the_recording_get_no_digit(
    backend: Backend,
) {
    let peer = StripePeer::start().await;
    let sue_name = format!("sue{}", crate::harness::suffix());
    let (server, api) = start(backend, &peer, Some(&sue_name)).await;
    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    let other = agent_with_sip(&server, "oli").await;
    let supervisor = server.new_account(&sue_name, "supervisor").await;
    api.post(
        "/api/v1/customers",
        Some(&ann.token),
        crate::vault::customer_body(),
    )
    .await
    .expect(201);

    // A keypad payment of a call that is not on a phone line here cannot be taken by keypad.
    let desk_call = api
        .post(
            "/api/v1/interactions",
            Some(&other.token),
            json!({"channel": "phone", "direction": "inbound", "from": crate::vault::PHONE}),
        )
        .await
        .expect(201)
        .str("id");
    verify_by_national_id(&api, &other, &desk_call).await;
    let off_line = keypad_payment(&api, &other, &desk_call).await;
    api.post(&take_path(&off_line), Some(&other.token), json!({}))
        .await
        .expect_problem(409, "wrong-state");
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 1, &ann_phone).await;
    // Sue, the billing queue's supervisor, has her softphone on too.
    let sue_phone = crate::monitor::supervisor_phone(&server, dir.path(), &supervisor, 2).await;
    ann.set_state(&server, json!({"state": "ready"})).await;

    write_caller_pcap(&dir.path().join("caller.pcap"), &caller_parts());
    let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", 50_000);
    let sipp_dir = dir.path().to_owned();
    let caller = tokio::task::spawn_blocking(move || call_edge(&sipp_dir, &scenario));

    // Ann's desk gets the call; she verifies the caller and asks for a keypad payment.
    let call = call_reaching(&server, &ann).await;
    // Sue listens in before the payment (her softphone answers the edge's call).
    let joined = crate::monitor::start(&server, &supervisor.token, &call, "listen").await;
    assert_eq!(
        joined.status.as_u16(),
        201,
        "{}\n{}",
        joined.text,
        server.logs()
    );
    // The edge handed the call over: it is ann's on her desk.
    api.get(&format!("/api/v1/interactions/{call}"), Some(&ann.token))
        .await
        .expect(200);
    verify_by_national_id(&api, &ann, &call).await;
    let id = keypad_payment(&api, &ann, &call).await;

    // Denials: a supervisor (no such action), another agent (not theirs).
    api.post(&take_path(&id), Some(&supervisor.token), json!({}))
        .await
        .expect(403);
    api.post(&take_path(&id), Some(&other.token), json!({}))
        .await
        .expect(404);
    // Ann presses "Take card payment by keypad" on the call screen (the desk's form).
    let csrf = "d".repeat(43);
    let taken = api
        .send_raw(
            "POST /desk/payments/{id}/keypad".into(),
            api.client
                .post(api.url(&format!("/desk/payments/{id}/keypad")))
                .bearer_auth(&ann.token)
                .header("cookie", format!("__Host-callguard_csrf={csrf}"))
                .form(&[("csrf", csrf.as_str()), ("interaction", call.as_str())]),
        )
        .await
        .expect(303);
    assert_eq!(
        taken.header("location"),
        Some(format!("/desk/interactions/{call}#payments").as_str())
    );
    assert_eq!(payment(&api, &ann, &id).await["status"], "capturing");
    // A second take while the capture runs is refused, through the API as well.
    api.post(&take_path(&id), Some(&ann.token), json!({}))
        .await
        .expect_problem(409, "wrong-state");

    // The desk follows the capture by counts only.
    let (seen_number_progress, views) = follow_capture(&api, &ann, &id).await;
    let (ok, out) = caller.await.unwrap();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());

    let paid = payment(&api, &ann, &id).await;
    assert_eq!(paid["status"], "authorised", "{paid}\n{}", server.logs());
    assert_eq!(paid["last4"], "4242");
    assert_eq!(peer.charges(), 1, "one charge at the gateway");
    assert!(
        seen_number_progress,
        "the desk showed the card number's progress: {views}"
    );
    assert!(
        !views.contains("42424242"),
        "the desk never sees the digits"
    );

    // The agent's softphone: no telephone event during the capture (the `5` after it, yes),
    // and no digit in its audio but the `9` keyed after the capture.
    // baresip prints "[0:00:37] audio=… received event: '5'": the call time, then the key. The
    // tail of the IVR's `#` may reach the phone as it answers (call time 0:00:00), long before
    // the capture; after that only the `5` keyed after the capture may arrive.
    let log = ann_phone.log();
    let events = received_events(&log);
    assert!(!events.is_empty(), "baresip logs telephone events\n{log}");
    assert_eq!(
        later_events(&log),
        "5",
        "only the key after the capture reached the agent as an event: {events:?}\n{log}"
    );
    let heard = ann_phone.heard();
    assert!(heard.len() > 8000 * 20, "ann heard the call");
    assert_eq!(
        keys_in(&heard),
        "9",
        "no digit of the card in the agent's audio"
    );

    // Sue, listening all along: no telephone event of the card on her softphone, and no card
    // digit in what it received (the `9` keyed after the capture may be heard).
    let sue_log = sue_phone.log();
    let sue_events = received_events(&sue_log);
    assert!(
        sue_events.iter().all(|(_, key)| *key == '5'),
        "no card key reached sue as an event: {sue_events:?}"
    );
    let sue_heard = sue_phone.heard();
    assert!(
        sue_heard.len() > 8000 * 20,
        "sue heard the call through the capture ({} s)\n{sue_log}",
        sue_heard.len() / 8000
    );
    let sue_keys = keys_in(&sue_heard);
    assert!(
        sue_keys.chars().all(|c| c == '9'),
        "no digit of the card in the supervisor's audio: {sue_keys:?}"
    );

    // The caller's own pcap holds every in-band key (the detector finds them).
    let sent: Vec<i16> = rtp_payloads_to(&dir.path().join("caller.pcap"), 30000)
        .into_iter()
        .filter(|p| p.len() == 160)
        .flat_map(|p| p.into_iter().map(|c| Law::Alaw.decode(c)))
        .collect();
    assert_eq!(
        keys_in(&sent),
        format!("{NUMBER_KEYS}{CODE_KEYS}9"),
        "the caller's audio holds the card's tones"
    );

    // The recording paused for the payment and resumed by itself; it holds no card digit.
    let line = checked_recording(&server, 1).await;
    assert!(
        line.contains("; paused for payment from") && !line.contains("to the end"),
        "{line}"
    );
    let list = api
        .get("/api/v1/recordings", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let rec = list["recordings"][0]["id"].as_str().unwrap().to_owned();
    let ticket = api
        .post(
            &format!("/api/v1/recordings/{rec}/playback"),
            Some(&supervisor.token),
            json!({"reason": "complaint", "note": ""}),
        )
        .await
        .expect(201)
        .json();
    let wav = api
        .client
        .get(api.url(ticket["url"].as_str().unwrap()))
        .bearer_auth(&supervisor.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let caller_channel: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let agent_channel: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(
        keys_in(&caller_channel),
        "9",
        "the recording holds no card digit"
    );
    assert_eq!(keys_in(&agent_channel), "");

    // No run of the card's digits anywhere.
    let audit = serde_json::to_string(&audit_entries(&server).await).unwrap();
    assert!(audit.contains("payment.keypad.start"));
    assert_no_card_digits(
        &server,
        &CARD[..8],
        &[
            ("the server's logs", &server.logs()),
            ("the audit log", &audit),
            ("ann's baresip log", &log),
            ("sue's baresip log", &sue_log),
        ],
    );
}

/// The agent cancels while the caller is keying the card number: the payment is cancelled
/// (`keypad_cancelled`), the call leaves secure mode by itself (the recording resumes, a key
/// pressed afterwards reaches the agent again), and the digits keyed before the cancel reached
/// neither the agent nor the recording.
async fn the_agent_cancels_a_capture_from_the_desk_and_the_call_leaves_secure_mode_by_itself(
    backend: Backend,
) {
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
    write_caller_pcap(
        &dir.path().join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys("#".into()),
            Part::Audio(14_000),
            Part::Tones("4242".into()),
            // The agent cancels meanwhile; the closing prompt plays.
            Part::Audio(9000),
            Part::Tones("9".into()),
            Part::Audio(2000),
        ],
    );
    let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", 33_000);
    let sipp_dir = dir.path().to_owned();
    let caller = tokio::task::spawn_blocking(move || call_edge(&sipp_dir, &scenario));
    let call = call_reaching(&server, &ann).await;
    verify_by_national_id(&api, &ann, &call).await;
    let id = keypad_payment(&api, &ann, &call).await;
    api.post(&take_path(&id), Some(&ann.token), json!({}))
        .await
        .expect(201);
    // Once the desk shows four digits keyed, ann cancels with the desk's form.
    let mut digits = 0;
    for _ in 0..600 {
        digits = payment(&api, &ann, &id).await["keypad"]["digit"]
            .as_u64()
            .unwrap_or(0);
        if digits >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(digits, 4, "the desk counted the digits\n{}", server.logs());
    let csrf = "d".repeat(43);
    api.send_raw(
        "POST /desk/payments/{id}/keypad/cancel".into(),
        api.client
            .post(api.url(&format!("/desk/payments/{id}/keypad/cancel")))
            .bearer_auth(&ann.token)
            .header("cookie", format!("__Host-callguard_csrf={csrf}"))
            .form(&[("csrf", csrf.as_str()), ("interaction", call.as_str())]),
    )
    .await
    .expect(303);
    let cancelled = payment(&api, &ann, &id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["decline_reason"], "keypad_cancelled",
        "{cancelled}"
    );
    // Nothing left to cancel.
    api.post(
        &format!("/api/v1/payments/{id}/keypad/in-call/cancel"),
        Some(&ann.token),
        json!({}),
    )
    .await
    .expect(409);

    let (ok, out) = caller.await.unwrap();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    assert_eq!(peer.charges(), 0);
    assert_eq!(
        keys_in(&ann_phone.heard()),
        "9",
        "the digits before the cancel stayed masked; the key after it passes"
    );
    let line = checked_recording(&server, 1).await;
    assert!(
        line.contains("; paused for payment from") && !line.contains("to the end"),
        "the recording resumed by itself: {line}"
    );
}
