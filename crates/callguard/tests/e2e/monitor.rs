//! Supervisor listen / whisper / barge end to end (issue #13 item 2), inside `unshare -n`: sipp
//! as the caller (tone A), baresip as the agent, a second baresip as the supervisor sending
//! tone B. Which tones reached whom is found by frequency (Goertzel), never by bytes.

use crate::harness::{Backend, Deployment, Server};
use crate::sipp::*;
use crate::telephony::{
    agent_with_sip, audit_entries, in_private_network, sip_password, wait_registered, Agent,
    AGENT_HZ, CALLER_HZ,
};
use callguard_telephony::media::g711::Law;
use callguard_telephony::media::goertzel::tone_share;
use serde_json::{json, Value};
use std::time::Duration;

/// The supervisor's softphone's tone.
const SUPERVISOR_HZ: f32 = 1600.0;

/// One-second blocks of `samples` in which `hz` carries at least `share` of the energy.
fn seconds_holding(samples: &[i16], hz: f32, share: f32) -> usize {
    samples
        .chunks_exact(8000)
        .filter(|b| tone_share(b, hz) > share)
        .count()
}

/// A caller who picks queue 1 (billing), skips self-verification, then talks (440 Hz) for 30 s.
fn long_call(dir: &std::path::Path) -> (bool, String) {
    write_caller_pcap(
        &dir.join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys("#".into()),
            Part::Audio(30_000),
        ],
    );
    let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", 38_000);
    call_edge(dir, &scenario)
}

/// `supervisor`'s softphone (registered from `dir`, answering by itself, sending the
/// supervisor's tone), once the edge counts `registered` softphones.
pub(crate) async fn supervisor_phone(
    server: &Server,
    dir: &std::path::Path,
    supervisor: &crate::harness::Account,
    registered: usize,
) -> crate::baresip::Softphone {
    let phone = crate::baresip::Softphone::start(
        &dir.join(&supervisor.username),
        &supervisor.username,
        &sip_password(server, &supervisor.username),
        5400,
        true,
        f64::from(SUPERVISOR_HZ),
    );
    wait_registered(server, registered, &phone).await;
    phone
}

/// The interaction of `agent`'s call once they are on it (as the wallboard sees it).
pub(crate) async fn call_of(server: &Server, supervisor: &str, agent: &Agent) -> String {
    for _ in 0..300 {
        let agents = server
            .api()
            .get("/api/v1/agents", Some(supervisor))
            .await
            .expect(200)
            .json();
        if let Some(id) = agents["agents"].as_array().unwrap().iter().find_map(|a| {
            (a["user_id"] == agent.id.as_str() && a["state"] == "on_call")
                .then(|| a["interaction_id"].as_str().map(str::to_owned))
                .flatten()
        }) {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the agent never got the call\n{}", server.logs());
}

/// Asks for `mode` on `interaction`'s call as the holder of `token` (the monitor API).
pub(crate) async fn start(
    server: &Server,
    token: &str,
    interaction: &str,
    mode: &str,
) -> crate::harness::Answer {
    server
        .api()
        .call(
            reqwest::Method::POST,
            "/api/v1/monitor",
            Some(token),
            Some(&json!({"interaction_id": interaction, "mode": mode})),
        )
        .await
}

/// Waits until nobody is on `interaction`'s call (a stopped leg has hung up).
async fn wait_unmonitored(server: &Server, token: &str) {
    for _ in 0..100 {
        let list = server
            .api()
            .get("/api/v1/monitor", Some(token))
            .await
            .expect(200)
            .json();
        if list["monitors"].as_array().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the supervisor's leg did not end\n{}", server.logs());
}

/// While a supervisor whispers (sending tone B), the agent hears tone B over the caller's
/// tone A and the caller never does; on listen the supervisor hears the caller's tone A.
/// A supervisor on listen switches to whisper and back without leaving the call (audited). Another
/// supervisor not listed for the queue, the agent, an admin and a compliance officer
/// are each refused; each start and stop is audited with the mode and the call, no personal
/// data; the agent's desk says a supervisor is on the call.
async fn a_whispering_supervisor_is_heard_by_the_agent_and_never_by_the_caller(backend: Backend) {
    let suffix = crate::harness::suffix();
    let sue_name = format!("sue{suffix}");
    let supervisors = format!("billing={sue_name}");
    let server = Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
            ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
            ("CALLGUARD_QUEUES_RING_SECONDS", "4"),
            ("CALLGUARD_QUEUES_WRAP_UP_SECONDS", "1"),
            ("CALLGUARD_SIP_DIGEST_ALGORITHMS", "MD5"),
            ("CALLGUARD_QUEUES_SUPERVISORS", supervisors.as_str()),
            ("CALLGUARD_LOG_LEVEL", "info"),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 1, &ann_phone).await;
    let sue = server.new_account(&sue_name, "supervisor").await;
    let sue_phone = supervisor_phone(&server, dir.path(), &sue, 2).await;
    let tom = server
        .new_account(&format!("tom{suffix}"), "supervisor")
        .await;
    let admin = server.new_account(&format!("adm{suffix}"), "admin").await;
    let officer = server
        .new_account(&format!("off{suffix}"), "compliance")
        .await;
    ann.set_state(&server, json!({"state": "ready"})).await;

    let cap = dir.path().join("lo.pcap");
    let mut tcpdump = capture(&cap);
    let call_dir = dir.path().to_owned();
    let caller = tokio::task::spawn_blocking(move || long_call(&call_dir));
    let interaction = call_of(&server, &sue.token, &ann).await;

    // Refused: a supervisor not listed for billing, the agent, an admin, compliance.
    for (who, token) in [
        ("a supervisor of other queues", &tom.token),
        ("the agent", &ann.token),
        ("an admin", &admin.token),
        ("a compliance officer", &officer.token),
    ] {
        let a = start(&server, token, &interaction, "listen").await;
        assert_eq!(a.status.as_u16(), 403, "{who} may not monitor: {}", a.text);
    }
    let board = server
        .api()
        .get("/wallboard", Some(&sue.token))
        .await
        .expect(200)
        .text;
    assert!(
        board.contains(&format!("value=\"{interaction}\"")) && board.contains("monitor-whisper"),
        "the wallboard offers Listen / Whisper / Barge on ann's call"
    );
    let board = server
        .api()
        .get("/wallboard", Some(&tom.token))
        .await
        .expect(200)
        .text;
    assert!(
        !board.contains("monitor-whisper"),
        "but not to a supervisor of other queues"
    );
    let a = start(&server, &sue.token, "no-such-call", "listen").await;
    assert_eq!(a.status.as_u16(), 404, "{}", a.text);

    // Whisper, asked eight times at once: one supervisor per call, so exactly one start joins
    // (sue's softphone rings, answers, and sends tone B to ann only) and seven are refused.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (api, token, id) = (server.api(), sue.token.clone(), interaction.clone());
        burst.spawn(async move {
            api.call(
                reqwest::Method::POST,
                "/api/v1/monitor",
                Some(&token),
                Some(&json!({"interaction_id": id, "mode": "whisper"})),
            )
            .await
        });
    }
    let answers = burst.join_all().await;
    let joined: Vec<_> = answers
        .iter()
        .filter(|a| a.status.as_u16() == 201)
        .collect();
    let refused = answers.iter().filter(|a| a.status.as_u16() == 409).count();
    assert_eq!(
        (joined.len(), refused),
        (1, 7),
        "{:?}\n{}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>(),
        server.logs()
    );
    assert_eq!(joined[0].json()["mode"], "whisper");
    let again = start(&server, &sue.token, &interaction, "barge").await;
    assert_eq!(again.status.as_u16(), 409, "one supervisor per call");
    let desk = server
        .api()
        .get("/api/v1/agents/me/monitor", Some(&ann.token))
        .await
        .expect(200)
        .json();
    assert_eq!(
        (&desk["supervisor_on_call"], &desk["mode"]),
        (&Value::from(true), &Value::from("whisper")),
        "ann's desk shows the supervisor: {desk}"
    );
    let desk = server
        .api()
        .get("/desk", Some(&ann.token))
        .await
        .expect(200)
        .text;
    assert!(
        desk.contains("supervisor-on-call"),
        "ann's desk page says so too"
    );
    let board = server
        .api()
        .get("/wallboard", Some(&sue.token))
        .await
        .expect(200)
        .text;
    assert!(
        board.contains("monitor-leave")
            && board.contains("monitor-switch-listen")
            && board.contains("monitor-switch-barge")
            && !board.contains("monitor-switch-whisper"),
        "sue's wallboard offers the other modes beside Leave"
    );
    let board = server
        .api()
        .get("/wallboard", Some(&tom.token))
        .await
        .expect(200)
        .text;
    assert!(
        board.contains("A supervisor: whisper") && !board.contains("monitor-leave"),
        "another supervisor sees the call taken, with no button to leave it"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    server
        .api()
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/monitor/{interaction}"),
            Some(&tom.token),
            None,
        )
        .await
        .expect(404);
    server
        .api()
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/monitor/{interaction}"),
            Some(&sue.token),
            None,
        )
        .await
        .expect(204);
    wait_unmonitored(&server, &sue.token).await;

    // Listen: sue hears the caller.
    let a = start(&server, &sue.token, &interaction, "listen").await;
    assert_eq!(a.status.as_u16(), 201, "{}\n{}", a.text, server.logs());
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Then she switches to whisper and back without leaving the call (another supervisor cannot switch
    // her leg; a mode that is none is refused).
    let mode_path = format!("/api/v1/monitor/{interaction}/mode");
    let switch = |token: String, mode: &'static str| {
        let (api, path) = (server.api(), mode_path.clone());
        async move {
            api.call(
                reqwest::Method::POST,
                &path,
                Some(&token),
                Some(&json!({ "mode": mode })),
            )
            .await
        }
    };
    let refused = switch(tom.token.clone(), "whisper").await;
    assert_eq!(refused.status.as_u16(), 404, "{}", refused.text);
    let refused = switch(sue.token.clone(), "shout").await;
    assert_eq!(refused.status.as_u16(), 400, "{}", refused.text);
    let switched = switch(sue.token.clone(), "whisper").await;
    assert_eq!(
        switched.status.as_u16(),
        200,
        "{}\n{}",
        switched.text,
        server.logs()
    );
    assert_eq!(switched.json()["mode"], "whisper");
    let desk = server
        .api()
        .get("/api/v1/agents/me/monitor", Some(&ann.token))
        .await
        .expect(200)
        .json();
    assert_eq!(
        desk["mode"], "whisper",
        "ann's desk follows the switch: {desk}"
    );
    // And back to listen (ann's audio must keep the caller's tone clear).
    let switched = switch(sue.token.clone(), "listen").await;
    assert_eq!(switched.status.as_u16(), 200, "{}", switched.text);
    assert_eq!(switched.json()["mode"], "listen");

    let (ok, out) = caller.await.unwrap();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    wait_unmonitored(&server, &sue.token).await;
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();

    let heard = ann_phone.heard();
    let whispered = seconds_holding(&heard, SUPERVISOR_HZ, 0.2);
    assert!(
        whispered >= 3,
        "ann heard sue's tone while she whispered ({whispered} s of {} s)\n{}",
        heard.len() / 8000,
        server.logs()
    );
    assert!(
        seconds_holding(&heard, CALLER_HZ, 0.5) >= 10,
        "ann heard the caller before and after the whisper"
    );
    let to_caller: Vec<i16> = rtp_payloads_to(&cap, 7000)
        .iter()
        .flat_map(|p| p.iter().map(|&c| Law::Alaw.decode(c)).collect::<Vec<_>>())
        .collect();
    assert!(
        seconds_holding(&to_caller, AGENT_HZ, 0.5) >= 5,
        "the capture holds what the caller heard: ann ({} s captured)",
        to_caller.len() / 8000
    );
    let leaked = seconds_holding(&to_caller, SUPERVISOR_HZ, 0.05);
    assert_eq!(leaked, 0, "the caller never heard sue's tone");
    let sue_heard = sue_phone.heard();
    // The caller's tone is quieter than the agent's (3000 against 9000 peak): about a tenth
    // of what sue hears.
    let listened = seconds_holding(&sue_heard, CALLER_HZ, 0.03);
    assert!(
        listened >= 5,
        "sue heard the caller's tone ({listened} s of {} s)\n{}",
        sue_heard.len() / 8000,
        sue_phone.log()
    );
    assert_eq!(
        seconds_holding(&sue_heard, SUPERVISOR_HZ, 0.05),
        0,
        "sue never hears herself"
    );

    // Audited: two starts and two stops by sue, with mode and call; the refusal of tom; no
    // personal data.
    let log = audit_entries(&server).await;
    let monitor: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("supervisor.monitor_"))
        })
        .collect();
    let ours = |action: &str, mode: &str| {
        monitor
            .iter()
            .filter(|e| {
                e["action"] == action
                    && e["outcome"] == "success"
                    && e["details"]["mode"] == mode
                    && e["interaction"] == interaction.as_str()
                    && e["actor"] == format!("user:{}", sue.id).as_str()
                    && e["target"] == format!("user:{}", ann.id).as_str()
            })
            .count()
    };
    assert_eq!(
        ours("supervisor.monitor_started", "whisper"),
        1,
        "{monitor:?}"
    );
    assert_eq!(
        ours("supervisor.monitor_stopped", "whisper"),
        1,
        "{monitor:?}"
    );
    for mode in ["whisper", "listen"] {
        assert_eq!(
            ours("supervisor.monitor_mode_changed", mode),
            1,
            "switched to {mode}: {monitor:?}"
        );
    }
    assert_eq!(
        ours("supervisor.monitor_started", "listen"),
        1,
        "{monitor:?}"
    );
    assert_eq!(
        ours("supervisor.monitor_stopped", "listen"),
        1,
        "{monitor:?}"
    );
    assert!(
        monitor
            .iter()
            .any(|e| e["action"] == "supervisor.monitor_started"
                && e["outcome"] == "failure"
                && e["actor"] == format!("user:{}", tom.id).as_str()),
        "tom's refusal is audited: {monitor:?}"
    );
    let text = serde_json::to_string(&monitor).unwrap();
    assert!(
        !text.contains(crate::vault::PHONE),
        "no caller data in the monitoring audit: {text}"
    );
}

in_private_network!(a_whispering_supervisor_is_heard_by_the_agent_and_never_by_the_caller);
