//! Call transfers end to end (issue #13 item 4), inside `unshare -n`: sipp as the caller, who
//! reaches level 2 by keypad, baresip as agent ann, who answers, and a second baresip as agent
//! bob, to whom ann's desk transfers the call (blind; attended, cancelled then completed).
//! Which tone reached whom is found by frequency (Goertzel), never by bytes.

use crate::harness::{Backend, Deployment, Server};
use crate::presence::{open_stream, read_until};
use crate::sipp::*;
use crate::telephony::{
    agent_with_sip, audit_entries, in_private_network, wait_registered, Agent, CALLER_HZ,
};
use serde_json::{json, Value};
use std::time::Duration;

/// The interaction of `agent`'s call once they are on it.
async fn on_call(server: &Server, agent: &Agent) -> String {
    for _ in 0..400 {
        let me = agent.state(server).await;
        if me["agent"]["state"] == "on_call" {
            if let Some(id) = me["agent"]["interaction_id"].as_str() {
                return id.to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never got the call\n{}", agent.username, server.logs());
}

/// The real binary with SIP on, short ring and wrap-up times.
async fn start(backend: Backend) -> Server {
    Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
            ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
            ("CALLGUARD_QUEUES_RING_SECONDS", "6"),
            ("CALLGUARD_QUEUES_WRAP_UP_SECONDS", "1"),
            ("CALLGUARD_SIP_DIGEST_ALGORITHMS", "MD5"),
            ("CALLGUARD_LOG_LEVEL", "info"),
        ],
    )
    .await
}

async fn transfer(
    server: &Server,
    token: &str,
    interaction: &str,
    body: Value,
) -> crate::harness::Answer {
    server
        .api()
        .post(
            &format!("/api/v1/interactions/{interaction}/transfer"),
            Some(token),
            body,
        )
        .await
}

/// A sipp caller who picks billing and skips identification (`#`), then sends `talk_ms` of
/// audio; the call lasts `call_ms`. Answers how the call went.
fn billing_caller(
    dir: &std::path::Path,
    talk_ms: u32,
    call_ms: u64,
) -> tokio::task::JoinHandle<(bool, String)> {
    write_caller_pcap(
        &dir.join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys("#".into()),
            Part::Audio(talk_ms),
        ],
    );
    let call_dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", call_ms);
        call_edge(&call_dir, &scenario)
    })
}

/// The caller transferred by ann (blind) to bob: bob's phone rings and answers, bob's desk is
/// offered the call (level 2, the screen-pop masked) and then has the interaction at level 2,
/// ann's leg got a BYE and ann's desk no longer has the call, bob hears the caller's tone, and
/// the audit log has the request and the completion (no personal data). Refused: bob
/// transferring ann's call, a target agent who is not ready, ann herself, an unknown queue.
async fn a_blind_transfer_hands_the_call_and_its_level_to_the_next_agent(backend: Backend) {
    let server = start(backend).await;
    let api = server.api();
    // The caller: the demo customer, with a portal code to key in (level 2).
    let clerk = server
        .new_account(&format!("clerk{}", crate::harness::suffix()), "agent")
        .await;
    let customer = crate::calls::register_demo_customer(&api, &clerk).await;
    let invite = server.cli(&["customer", "invite", &customer]);
    let portal = crate::portal::portal_set_up(&api, invite.stdout.trim(), &customer).await;
    let code = crate::calls::issue_portal_code(&api, &portal).await;
    let keypad = callguard_server::features::interactions::service::keypad_form(&code);

    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    let bob = agent_with_sip(&server, "bob").await;
    let carol = agent_with_sip(&server, "carol").await;
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 1, &ann_phone).await;
    let bob_phone = bob.phone(dir.path(), 5200, true);
    wait_registered(&server, 2, &bob_phone).await;
    ann.set_state(&server, json!({"state": "ready"})).await;

    write_caller_pcap(
        &dir.path().join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys(format!("{}#", crate::vault::PESEL)),
            Part::Audio(1500),
            Part::Tones(format!("{keypad}#")),
            Part::Audio(30_000),
        ],
    );
    let call_dir = dir.path().to_owned();
    let caller = tokio::task::spawn_blocking(move || {
        let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", 46_000);
        call_edge(&call_dir, &scenario)
    });
    let interaction = on_call(&server, &ann).await;
    let at_ann = api
        .get(
            &format!("/api/v1/interactions/{interaction}"),
            Some(&ann.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        at_ann["verification_level"], 2,
        "level 2 by keypad: {at_ann}"
    );
    // Ann hears the caller for a while before she transfers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    bob.set_state(&server, json!({"state": "ready"})).await;
    let mut desk = open_stream(&api, "/api/v1/agents/me/stream", &bob.token).await;
    let mut seen = String::new();
    read_until(&mut desk, &mut seen, |s| s.contains("\"ready\"")).await;

    // Refused: someone else's call, a target who is not ready, herself, an unknown queue.
    let blind_to = |to: Value| json!({"to": to, "mode": "blind"});
    let a = transfer(
        &server,
        &bob.token,
        &interaction,
        blind_to(json!({"agent": carol.username})),
    )
    .await;
    assert_eq!(a.status.as_u16(), 404, "not bob's call: {}", a.text);
    let a = transfer(
        &server,
        &ann.token,
        &interaction,
        blind_to(json!({"agent": carol.username})),
    )
    .await;
    assert_eq!(a.status.as_u16(), 409, "carol is not ready: {}", a.text);
    let a = transfer(
        &server,
        &ann.token,
        &interaction,
        blind_to(json!({"agent": ann.username})),
    )
    .await;
    assert_eq!(
        a.status.as_u16(),
        422,
        "the call is ann's already: {}",
        a.text
    );
    let a = transfer(
        &server,
        &ann.token,
        &interaction,
        blind_to(json!({"queue": "no-such-queue"})),
    )
    .await;
    assert_eq!(a.status.as_u16(), 422, "no such queue: {}", a.text);
    let a = transfer(
        &server,
        &ann.token,
        "no-such-call",
        blind_to(json!({"agent": bob.username})),
    )
    .await;
    assert_eq!(a.status.as_u16(), 404, "{}", a.text);

    // Ann transfers the call to bob, with eight simultaneous requests (a double click, a
    // retrying client): exactly one transfer starts; the others are refused as under way or bob
    // as no longer ready (409), or, arriving after bob answered, as no longer ann's call (404).
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (api, token, id) = (server.api(), ann.token.clone(), interaction.clone());
        let body = blind_to(json!({"agent": bob.username}));
        burst.spawn(async move {
            api.post(
                &format!("/api/v1/interactions/{id}/transfer"),
                Some(&token),
                body,
            )
            .await
        });
    }
    let answers = burst.join_all().await;
    let started: Vec<_> = answers
        .iter()
        .filter(|a| a.status.as_u16() == 202)
        .collect();
    let refused = answers
        .iter()
        .filter(|a| matches!(a.status.as_u16(), 409 | 404))
        .count();
    assert_eq!(
        (started.len(), refused),
        (1, 7),
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    let done = started[0].json();
    assert_eq!(
        (&done["target_kind"], &done["mode"]),
        (&json!("agent"), &json!("blind"))
    );
    // Bob's desk pops with the call as it rings: the same offer as a queued call, level 2, the
    // customer's name masked.
    read_until(&mut desk, &mut seen, |s| s.contains("event: offer")).await;
    let offer_line = seen
        .lines()
        .skip_while(|l| *l != "event: offer")
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap()
        .trim()
        .to_owned();
    let offer: Value = serde_json::from_str(&offer_line).unwrap();
    assert_eq!(offer["interaction_id"], interaction.as_str());
    assert_eq!(offer["level"], 2, "{offer}");
    let pop = offer["screen_pop"].as_str().unwrap_or_default();
    assert!(
        !pop.is_empty() && pop.contains('*'),
        "masked screen-pop: {offer}"
    );
    assert_eq!(on_call(&server, &bob).await, interaction);
    let at_bob = api
        .get(
            &format!("/api/v1/interactions/{interaction}"),
            Some(&bob.token),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        at_bob["verification_level"], 2,
        "the level goes along: {at_bob}"
    );
    let a = api
        .get(
            &format!("/api/v1/interactions/{interaction}"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(a.status.as_u16(), 404, "the call is no longer ann's");
    let a = transfer(
        &server,
        &ann.token,
        &interaction,
        blind_to(json!({"agent": bob.username})),
    )
    .await;
    assert_eq!(
        a.status.as_u16(),
        404,
        "ann can no longer transfer it: {}",
        a.text
    );

    let (ok, out) = caller.await.unwrap();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    let tone = crate::baresip::seconds_of_tone(&bob_phone.heard(), CALLER_HZ);
    assert!(
        tone >= 5,
        "bob hears the caller's tone ({tone} s)\n{}\n{}",
        server.logs(),
        bob_phone.log()
    );
    let ann_log = ann_phone.log().to_ascii_lowercase();
    assert!(
        ann_log.contains("terminated") || ann_log.contains("closed"),
        "ann's leg got a BYE\n{ann_log}"
    );

    let log = audit_entries(&server).await;
    let of = |action: &str| -> Vec<Value> {
        log.iter()
            .filter(|e| e["action"] == action && e["interaction"] == interaction.as_str())
            .cloned()
            .collect()
    };
    let requested = of("call.transfer.requested");
    assert!(
        requested.iter().any(|e| e["outcome"] == "success"
            && e["actor"] == format!("user:{}", ann.id).as_str()
            && e["target"] == format!("user:{}", bob.id).as_str()
            && e["details"]["mode"] == "blind"),
        "{requested:?}"
    );
    assert_eq!(
        requested
            .iter()
            .filter(|e| e["outcome"] == "success")
            .count(),
        1,
        "one transfer started of the burst: {requested:?}"
    );
    let refused: Vec<&str> = requested
        .iter()
        .filter(|e| e["outcome"] != "success")
        .filter_map(|e| e["details"]["reason"].as_str())
        .collect();
    for reason in ["target_not_ready", "same_agent", "unknown_queue"] {
        assert!(refused.contains(&reason), "{reason} audited: {refused:?}");
    }
    let completed = of("call.transfer.completed");
    assert!(
        completed
            .iter()
            .any(|e| e["details"]["to_agent"] == format!("user:{}", bob.id).as_str()),
        "{completed:?}\n{}",
        server.logs()
    );
    assert!(
        of("interaction.hand_over")
            .iter()
            .any(|e| e["target"] == format!("user:{}", bob.id).as_str()),
        "the interaction was handed on to bob"
    );
    let text = serde_json::to_string(&[requested, completed]).unwrap();
    assert!(
        !text.contains(crate::vault::PESEL) && !text.contains(crate::vault::PHONE),
        "no personal data in the transfer's audit entries"
    );
    assert!(
        log.iter().any(|e| e["action"] == "agent.state_changed"
            && e["target"] == format!("user:{}", ann.id).as_str()
            && e["details"]["to"] == "wrap_up"),
        "ann went to wrap-up"
    );
}

/// Bob's softphone's tone, told apart from ann's.
const BOB_HZ: f32 = 1600.0;

/// `POST /api/v1/interactions/{id}/transfer/{word}` (complete, cancel) as `token`.
async fn consult(server: &Server, token: &str, interaction: &str, word: &str) -> u16 {
    server
        .api()
        .post(
            &format!("/api/v1/interactions/{interaction}/transfer/{word}"),
            Some(token),
            json!({}),
        )
        .await
        .status
        .as_u16()
}

/// Waits until `agent` is in `state`.
async fn wait_state(server: &Server, agent: &Agent, state: &str) {
    for _ in 0..200 {
        if agent.state(server).await["agent"]["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never went {state}\n{}", agent.username, server.logs());
}

/// Ann consults bob (attended): bob's phone rings and answers, ann and bob hear each other, and
/// ann cancels: bob's leg is hung up and the call is still ann's. Ann consults again and
/// completes: the call and its interaction are bob's, bob hears the caller, ann's leg is hung
/// up. Complete and cancel are refused when no consultation is under way and to another agent;
/// each end is audited (cancelled with its reason, completed).
async fn an_attended_transfer_is_cancelled_then_completed(backend: Backend) {
    let server = start(backend).await;
    let api = server.api();
    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    let bob = agent_with_sip(&server, "bob").await;
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 1, &ann_phone).await;
    let bob_phone = crate::baresip::Softphone::start(
        &dir.path().join("bob"),
        &bob.username,
        &bob.sip_password,
        5200,
        true,
        f64::from(BOB_HZ),
    );
    wait_registered(&server, 2, &bob_phone).await;
    ann.set_state(&server, json!({"state": "ready"})).await;
    let caller = billing_caller(dir.path(), 40_000, 48_000);
    let interaction = on_call(&server, &ann).await;
    bob.set_state(&server, json!({"state": "ready"})).await;
    assert_eq!(
        consult(&server, &ann.token, &interaction, "complete").await,
        409,
        "no consultation under way yet"
    );
    let attended_to_bob = json!({"to": {"agent": bob.username}, "mode": "attended"});
    let started = transfer(&server, &ann.token, &interaction, attended_to_bob.clone())
        .await
        .expect(202)
        .json();
    assert_eq!(started["mode"], "attended");
    assert_eq!(
        on_call(&server, &bob).await,
        interaction,
        "bob is consulted"
    );
    // Ann and bob talk for a while.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        consult(&server, &bob.token, &interaction, "cancel").await,
        404,
        "not bob's call to cancel"
    );
    assert_eq!(
        consult(&server, &ann.token, &interaction, "cancel").await,
        204
    );
    // Bob's leg is hung up (wrap-up, then ready by himself); the call stays ann's.
    wait_state(&server, &bob, "ready").await;
    assert_eq!(ann.state(&server).await["agent"]["state"], "on_call");
    api.get(
        &format!("/api/v1/interactions/{interaction}"),
        Some(&ann.token),
    )
    .await
    .expect(200);

    // Again, and this time ann completes.
    let mut started = None;
    for _ in 0..50 {
        let a = transfer(&server, &ann.token, &interaction, attended_to_bob.clone()).await;
        if a.status.as_u16() == 202 {
            started = Some(a);
            break;
        }
        // The cancelled consultation's end may still be on its way.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.is_some(), "the second consultation starts");
    assert_eq!(on_call(&server, &bob).await, interaction);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        consult(&server, &ann.token, &interaction, "complete").await,
        204
    );
    for _ in 0..100 {
        let a = api
            .get(
                &format!("/api/v1/interactions/{interaction}"),
                Some(&bob.token),
            )
            .await;
        if a.status.as_u16() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.get(
        &format!("/api/v1/interactions/{interaction}"),
        Some(&bob.token),
    )
    .await
    .expect(200);
    let a = api
        .get(
            &format!("/api/v1/interactions/{interaction}"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(a.status.as_u16(), 404, "the call is bob's now");

    let (ok, out) = caller.await.unwrap();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    let ann_heard = ann_phone.heard();
    let ann_heard_bob = crate::baresip::seconds_of_tone(&ann_heard, BOB_HZ);
    eprintln!("ann heard {ann_heard_bob} s of bob's tone while consulting");
    assert!(
        ann_heard_bob >= 2,
        "ann heard bob while consulting (only {ann_heard_bob} s)\n{}",
        server.logs()
    );
    let bob_heard = bob_phone.heard();
    assert!(
        crate::baresip::seconds_of_tone(&bob_heard, crate::telephony::AGENT_HZ) >= 2,
        "bob heard ann while consulted"
    );
    assert!(
        crate::baresip::seconds_of_tone(&bob_heard, CALLER_HZ) >= 5,
        "bob hears the caller once the transfer completed\n{}",
        server.logs()
    );

    let log = audit_entries(&server).await;
    let of = |action: &str| -> Vec<Value> {
        log.iter()
            .filter(|e| e["action"] == action && e["interaction"] == interaction.as_str())
            .cloned()
            .collect()
    };
    let cancelled = of("call.transfer.cancelled");
    assert!(
        cancelled
            .iter()
            .any(|e| e["details"]["reason"] == "agent_cancelled"
                && e["details"]["mode"] == "attended"),
        "{cancelled:?}"
    );
    let completed = of("call.transfer.completed");
    assert!(
        completed.iter().any(|e| e["details"]["mode"] == "attended"
            && e["details"]["to_agent"] == format!("user:{}", bob.id).as_str()),
        "{completed:?}"
    );
}

/// Ann transfers the call to bob, whose softphone never answers: after the ring timeout the
/// call goes back to its queue (billing), where the ACD gives it to ann again (the only ready
/// agent), and the failure is audited. Ann then transfers it to the billing queue, where carol,
/// ready meanwhile, takes it and hears the caller.
async fn a_missed_transfer_goes_back_to_the_queue_and_a_queue_transfer_waits_there(
    backend: Backend,
) {
    let server = start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    let bob = agent_with_sip(&server, "bob").await;
    let carol = agent_with_sip(&server, "carol").await;
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 1, &ann_phone).await;
    let bob_phone = bob.phone(dir.path(), 5200, false);
    wait_registered(&server, 2, &bob_phone).await;
    let carol_phone = carol.phone(dir.path(), 5300, true);
    wait_registered(&server, 3, &carol_phone).await;
    ann.set_state(&server, json!({"state": "ready"})).await;
    let caller = billing_caller(dir.path(), 45_000, 53_000);
    let interaction = on_call(&server, &ann).await;
    bob.set_state(&server, json!({"state": "ready"})).await;
    transfer(
        &server,
        &ann.token,
        &interaction,
        json!({"to": {"agent": bob.username}, "mode": "blind"}),
    )
    .await
    .expect(202);
    // Bob's phone rings out: he is set not ready (missed call), the call is back in billing
    // and ann, ready again after her wrap-up, takes it.
    wait_state(&server, &bob, "not_ready").await;
    assert_eq!(on_call(&server, &ann).await, interaction);
    carol.set_state(&server, json!({"state": "ready"})).await;
    let to_queue = transfer(
        &server,
        &ann.token,
        &interaction,
        json!({"to": {"queue": "billing"}, "mode": "blind"}),
    )
    .await
    .expect(202)
    .json();
    assert_eq!(to_queue["target_kind"], "queue");
    assert_eq!(on_call(&server, &carol).await, interaction);

    let (ok, out) = caller.await.unwrap();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    assert!(
        crate::baresip::seconds_of_tone(&carol_phone.heard(), CALLER_HZ) >= 5,
        "carol hears the caller\n{}",
        server.logs()
    );
    let log = audit_entries(&server).await;
    let failed: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["action"] == "call.transfer.failed" && e["interaction"] == interaction.as_str()
        })
        .collect();
    assert!(
        failed
            .iter()
            .any(|e| e["details"]["reason"] == "not_answered"
                && e["target"] == format!("user:{}", bob.id).as_str()),
        "{failed:?}"
    );
    assert!(
        log.iter().any(|e| e["action"] == "call.transfer.completed"
            && e["details"]["queue"] == "billing"
            && e["details"]["to_agent"] == format!("user:{}", carol.id).as_str()),
        "the queue transfer completed with carol"
    );
}

in_private_network!(
    a_blind_transfer_hands_the_call_and_its_level_to_the_next_agent,
    an_attended_transfer_is_cancelled_then_completed,
    a_missed_transfer_goes_back_to_the_queue_and_a_queue_transfer_waits_there
);
