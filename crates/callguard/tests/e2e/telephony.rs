//! The telephony edge end to end: the real binary with SIP on, `sipp` as the carrier, each test
//! inside a private network namespace (`unshare -n`, only `lo`), so no packet can leave the
//! machine whatever the pcaps say. A test re-runs its own test binary under `unshare -n` with
//! [`INSIDE`] set; inside, PostgreSQL is reached by its Unix socket (its TCP port is in the
//! host's namespace). Needs root and `sipp`, `tcpdump`, `unshare`, `ip`.

use crate::harness::{Backend, Deployment, Server};
use crate::sipp::*;
use callguard_telephony::media::prompts::{Prompt, PromptSet};
use callguard_telephony::media::FRAME_SAMPLES;
use serde_json::Value;
use std::process::Command;

/// Set in the environment of the test binary re-run inside the namespace.
const INSIDE: &str = "CALLGUARD_TEST_INSIDE_NETNS";
/// PostgreSQL through its Unix socket: the TCP host is tried first and refused inside.
const PG_SOCKET_URL: &str = "postgres://postgres@localhost/postgres?host=/var/run/postgresql";

/// `in_private_network!(name)`: the tests `name::sqlite` and `name::postgres`, each re-run
/// inside `unshare -n`.
macro_rules! in_private_network {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            use crate::harness::Backend;

            #[tokio::test]
            async fn sqlite() {
                if crate::telephony::enter(module_path!(), "sqlite") {
                    super::$test(Backend::Sqlite).await;
                }
            }

            #[tokio::test]
            async fn postgres() {
                if crate::telephony::enter(module_path!(), "postgres") {
                    super::$test(Backend::Postgres).await;
                }
            }
        }
    )+};
}
pub(crate) use in_private_network;

/// Inside the namespace: brings `lo` up and answers true (run the body). Outside: re-runs this
/// one test inside `unshare -n`, asserts it passed, and answers false.
pub(crate) fn enter(module: &str, backend: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(up.is_ok_and(|s| s.success()), "ip link set lo up failed");
        return true;
    }
    let name = format!("{}::{backend}", module.trim_start_matches("e2e::"));
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .env("CALLGUARD_TEST_POSTGRES_URL", PG_SOCKET_URL)
        .output()
        .expect("unshare (util-linux) runs; the telephony tests need root");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} inside unshare -n: {}\n{text}",
        out.status
    );
    false
}

/// The real binary with SIP on `port`, taking calls from 127.0.0.1 only.
async fn start_with_sip(backend: Backend, port: u16) -> Server {
    let listen = format!("127.0.0.1:{port}");
    Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", listen.as_str()),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
            ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
            ("CALLGUARD_LOG_LEVEL", "info"),
        ],
    )
    .await
}

/// Every audit entry so far, read by a compliance officer.
pub(crate) async fn audit_entries(server: &Server) -> Vec<Value> {
    let officer = server
        .new_account(
            &format!("officer-{}", crate::harness::suffix()),
            "compliance",
        )
        .await;
    let page = server
        .api()
        .get("/api/v1/audit?start=0&limit=1000", Some(&officer.token))
        .await
        .expect(200)
        .json();
    page["entries"].as_array().unwrap().clone()
}

pub(crate) async fn metrics(server: &Server) -> String {
    server.api().get("/metrics", None).await.expect(200).text
}

// ---- the tests -------------------------------------------------------------------------------

/// A carrier's caller hears the recording notice and the IVR menu, chooses a queue, keys in
/// their PESEL and `#` (level 1, RFC 4733 events), then their portal code and `#` (level 2,
/// in-band tones); the
/// edge's interaction reaches level 2 through the same verification service as the desk, and
/// the caller ID only links the record.
async fn a_caller_verifies_by_keypad_after_the_recording_notice(backend: Backend) {
    let server = start_with_sip(backend, 5060).await;
    let api = server.api();
    let agent = server
        .new_account(&format!("agent-{}", crate::harness::suffix()), "agent")
        .await;
    let customer = crate::calls::register_demo_customer(&api, &agent).await;
    let invite = server.cli(&["customer", "invite", &customer]);
    let portal = crate::portal::portal_set_up(&api, invite.stdout.trim(), &customer).await;
    let code = crate::calls::issue_portal_code(&api, &portal).await;
    let keypad = callguard_server::features::interactions::service::keypad_form(&code);

    let dir = tempfile::tempdir().unwrap();
    write_caller_pcap(
        &dir.path().join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys(format!("{}#", crate::vault::PESEL)),
            Part::Audio(1500),
            // The portal code as in-band tones: the Goertzel path of the same merge.
            Part::Tones(format!("{keypad}#")),
            Part::Audio(6000),
        ],
    );
    let cap = dir.path().join("lo.pcap");
    let mut tcpdump = capture(&cap);
    let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", 24_000);
    let (ok, out) = call_edge(dir.path(), &scenario);
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());

    // What the caller heard: the notice from its first frame to its last, then the menu.
    let heard = rtp_payloads_to(&cap, 7000);
    let prompts = PromptSet::builtin();
    let notice: Vec<&[u8]> = prompts
        .audio(Prompt::RecordingNotice)
        .chunks(FRAME_SAMPLES)
        .collect();
    let menu: Vec<&[u8]> = prompts
        .audio(Prompt::IvrMenu)
        .chunks(FRAME_SAMPLES)
        .take(40)
        .collect();
    // Silence goes out while the call's interaction is opened; the notice follows within 1 s.
    let first = heard
        .iter()
        .take(50)
        .position(|f| f[..] == *notice[0])
        .expect("the recording notice starts within the first second");
    let heard = &heard[first..];
    assert!(
        heard.len() > notice.len() + menu.len(),
        "{} packets heard",
        heard.len()
    );
    for (i, want) in notice.iter().chain(&menu).enumerate() {
        assert_eq!(
            &heard[i][..want.len()],
            *want,
            "frame {i} to the caller is the notice, then the menu"
        );
    }

    let log = audit_entries(&server).await;
    let edge: Vec<&Value> = log
        .iter()
        .filter(|e| e["actor"] == "user:telephony-edge")
        .collect();
    let start = edge
        .iter()
        .find(|e| e["action"] == "interaction.start")
        .expect("the edge opened the call");
    assert_eq!(start["details"]["channel"], "phone");
    assert_eq!(
        start["details"]["linked"], true,
        "the caller id popped up the record: {start}"
    );
    let steps: Vec<&Value> = edge
        .iter()
        .copied()
        .filter(|e| e["action"] == "interaction.verify" && e["outcome"] == "success")
        .collect();
    let methods: Vec<&str> = steps
        .iter()
        .map(|e| e["details"]["method"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        methods,
        ["national_id", "portal_code"],
        "level 1 then level 2 by keypad: {edge:?}"
    );
    assert!(
        edge.iter().all(|e| e["source"] == "127.0.0.1"),
        "the carrier's address is the source"
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains(crate::vault::PESEL) && !text.contains(&keypad),
        "no keyed digits in the audit log"
    );
    assert!(metrics(&server)
        .await
        .contains("callguard_sip_calls_total{outcome=\"answered\"} 1"));

    // The caller's leg was recorded from the end of the notice, under a key whose share is in
    // the database: the file decrypts chunk by chunk, and the caller's tone is in it.
    let interaction = start["interaction"].as_str().unwrap().to_owned();
    let mut ended = false;
    for _ in 0..100 {
        let log = audit_entries(&server).await;
        if log
            .iter()
            .any(|e| e["action"] == "recording.end" && e["interaction"] == interaction.as_str())
        {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        ended,
        "the recording is sealed after the caller hangs up\n{}",
        server.logs()
    );
    let files: Vec<_> = std::fs::read_dir(server.data_dir.join("recordings"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "one file for the call");
    let checked = server.cli(&["recording", "check", &interaction]);
    assert!(
        checked.status.success(),
        "{}{}",
        checked.stdout,
        checked.stderr
    );
    let line = checked.stdout.trim();
    assert!(line.ends_with("complete"), "{line}");
    let number = |after: &str| -> u64 {
        line.split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (audio_ms, audible_ms) = (number(" ms of audio"), number(" ms, agent audible"));
    assert!(
        audio_ms > 15_000,
        "the caller's leg from the notice to the hang-up: {line}"
    );
    assert!(
        audible_ms > audio_ms / 2,
        "the caller's tone is in the recording: {line}"
    );
}

/// An INVITE from an address outside `sip.trunks` (sipp bound to 127.0.0.2) gets 403, opens no
/// interaction, and is counted in `/metrics`; a carrier's offer without G.711 gets 488.
async fn a_call_from_an_unknown_address_is_refused_with_403(backend: Backend) {
    let server = start_with_sip(backend, 5060).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = &refused_scenario(403, None);
    for transport in ["u1", "t1"] {
        let (ok, out) = sipp(
            dir.path(),
            scenario,
            &[
                "127.0.0.1:5060",
                "-s",
                "callguard",
                "-i",
                "127.0.0.2",
                "-p",
                "5071",
                "-t",
                transport,
            ],
        );
        assert!(ok, "403 over {transport}\n{out}");
    }
    // A carrier offering no G.711 (G.722 only) gets 488.
    let g722 = SDP_OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 9");
    let (ok, out) = sipp(
        dir.path(),
        &refused_scenario(488, Some(&g722)),
        &[
            "127.0.0.1:5060",
            "-s",
            "callguard",
            "-i",
            "127.0.0.1",
            "-p",
            "5072",
        ],
    );
    assert!(ok, "488 for an offer without G.711\n{out}");
    let m = metrics(&server).await;
    assert!(
        m.contains("callguard_sip_refused_total{reason=\"codec\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("callguard_sip_refused_total{reason=\"not_trunk\"} 2"),
        "{m}"
    );
    let log = audit_entries(&server).await;
    assert!(
        !log.iter().any(|e| e["action"] == "interaction.start"),
        "no interaction for a refused call"
    );
}

/// A softphone's REGISTER over UDP, as a softphone sends it, answering a challenge when given.
struct Softphone {
    sock: std::net::UdpSocket,
    cseq: u32,
}

impl Softphone {
    fn new() -> Self {
        let sock = std::net::UdpSocket::bind("127.0.0.1:5090").unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        Self { sock, cseq: 0 }
    }

    /// Sends a REGISTER for `user` (with `authorization` when given); the answer.
    fn register(&mut self, user: &str, authorization: &str) -> String {
        self.cseq += 1;
        let msg = format!(
            "REGISTER sip:callguard.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-{c}-cg\r\nFrom: <sip:{user}@callguard.test>;tag=a1\r\nTo: <sip:{user}@callguard.test>\r\nCall-ID: reg-1@127.0.0.1\r\nCSeq: {c} REGISTER\r\nContact: <sip:{user}@127.0.0.1:5090>\r\nExpires: 60\r\nMax-Forwards: 70\r\n{authorization}Content-Length: 0\r\n\r\n",
            c = self.cseq
        );
        self.sock.send_to(msg.as_bytes(), "127.0.0.1:5060").unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = self.sock.recv_from(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Gets a challenge, and the Authorization header answering its `alg` one with `password`.
    fn answer(&mut self, user: &str, password: &str, alg: &str) -> String {
        use callguard_telephony::sip::digest::{ha1, Algorithm};
        let challenge = self.register(user, "");
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        assert!(
            challenge.contains("algorithm=SHA-256") && challenge.contains("algorithm=MD5"),
            "{challenge}"
        );
        let line = challenge
            .lines()
            .find(|l| {
                l.to_ascii_lowercase().starts_with("www-authenticate")
                    && l.contains(&format!("algorithm={alg},"))
            })
            .unwrap();
        let nonce = line
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let a = if alg == "MD5" {
            Algorithm::Md5
        } else {
            Algorithm::Sha256
        };
        let h1 = ha1(a, user, "callguard.test", password);
        let h2 = a.hex("REGISTER:sip:callguard.test");
        let response = a.hex(&format!("{h1}:{nonce}:00000001:abc:auth:{h2}"));
        format!(
            "Authorization: Digest username=\"{user}\", realm=\"callguard.test\", nonce=\"{nonce}\", uri=\"sip:callguard.test\", response=\"{response}\", algorithm={alg}, cnonce=\"abc\", qop=auth, nc=00000001\r\n"
        )
    }
}

/// An agent's softphone registers with the SIP credentials issued to the agent (digest,
/// SHA-256 or MD5, after a 401 challenge); a wrong password, a replayed REGISTER, and the right
/// password once the account is disabled each get 403 and register nothing.
async fn a_softphone_registers_only_with_its_agents_live_credentials(backend: Backend) {
    let server = start_with_sip(backend, 5060).await;
    let api = server.api();
    let agent = server
        .new_account(&format!("agent{}", crate::harness::suffix()), "agent")
        .await;
    let issued = server.cli(&["user", "sip-credentials", &agent.username]);
    assert!(issued.status.success(), "{}", issued.stderr);
    let password = issued
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SIP password:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let user = agent.username.as_str();
    let mut phone = Softphone::new();
    let admin = server.admin_session().await;
    let refused = server.cli(&["user", "sip-credentials", &admin.username]);
    assert!(
        !refused.status.success(),
        "only agents and supervisors get SIP credentials"
    );
    assert!(
        refused.stderr.contains("agents and supervisors"),
        "{}",
        refused.stderr
    );

    let wrong = phone.answer(user, "not-the-password", "MD5");
    assert!(phone.register(user, &wrong).starts_with("SIP/2.0 403"));
    let m = metrics(&server).await;
    assert!(m.contains("callguard_sip_registrations 0"), "{m}");

    let right = phone.answer(user, &password, "SHA-256");
    let ok = phone.register(user, &right);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("expires=60"), "{ok}");
    assert!(metrics(&server)
        .await
        .contains("callguard_sip_registrations 1"));
    let replay = phone.register(user, &right);
    assert!(
        replay.starts_with("SIP/2.0 403"),
        "a replayed nonce-count: {replay}"
    );

    api.post(
        &format!("/api/v1/users/{}/disable", agent.id),
        Some(&admin.token),
        serde_json::json!({}),
    )
    .await
    .expect(200);
    let after = phone.answer(user, &password, "MD5");
    assert!(
        phone.register(user, &after).starts_with("SIP/2.0 403"),
        "a disabled agent's softphone is refused"
    );
    let m = metrics(&server).await;
    assert!(
        m.contains("callguard_sip_refused_total{reason=\"auth\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("callguard_sip_refused_total{reason=\"replay\"} 1"),
        "{m}"
    );
    let log = audit_entries(&server).await;
    assert!(log.iter().any(|e| e["action"] == "sip.credentials.issue"
        && e["target"] == format!("user:{}", agent.id).as_str()));
    assert!(!serde_json::to_string(&log).unwrap().contains(&password));
}

// ---- queues, agents' softphones and the bridge ------------------------------------------------

/// The caller's tone (the pcap's audio) and the agents' (their softphones' voice file).
pub(crate) const CALLER_HZ: f32 = 440.0;
pub(crate) const AGENT_HZ: f32 = 1000.0;

/// A test agent: their username, SIP password and desk session.
pub(crate) struct Agent {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) sip_password: String,
    pub(crate) token: String,
}

impl Agent {
    /// Sets the agent's state on the desk (`ready`, or `not_ready` with a reason).
    pub(crate) async fn set_state(&self, server: &Server, state: serde_json::Value) {
        server
            .api()
            .call(
                reqwest::Method::PUT,
                "/api/v1/agents/me/state",
                Some(&self.token),
                Some(&state),
            )
            .await
            .expect(200);
    }

    pub(crate) async fn state(&self, server: &Server) -> Value {
        server
            .api()
            .get("/api/v1/agents/me/state", Some(&self.token))
            .await
            .expect(200)
            .json()
    }

    pub(crate) fn phone(
        &self,
        dir: &std::path::Path,
        port: u16,
        answers: bool,
    ) -> crate::baresip::Softphone {
        crate::baresip::Softphone::start(
            &dir.join(&self.username),
            &self.username,
            &self.sip_password,
            port,
            answers,
            f64::from(AGENT_HZ),
        )
    }
}

/// Issues SIP credentials to `username` (an agent or a supervisor) from the CLI: the password.
pub(crate) fn sip_password(server: &Server, username: &str) -> String {
    let issued = server.cli(&["user", "sip-credentials", username]);
    assert!(issued.status.success(), "{}", issued.stderr);
    issued
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SIP password:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Issues SIP credentials to a new agent.
pub(crate) async fn agent_with_sip(server: &Server, name: &str) -> Agent {
    let agent = server
        .new_account(&format!("{name}{}", crate::harness::suffix()), "agent")
        .await;
    let password = sip_password(server, &agent.username);
    Agent {
        id: agent.id,
        username: agent.username,
        sip_password: password,
        token: agent.token,
    }
}

/// Waits until `n` softphones are registered (baresip registers as it starts).
pub(crate) async fn wait_registered(server: &Server, n: usize, phone: &crate::baresip::Softphone) {
    let want = format!("callguard_sip_registrations {n}\n");
    for _ in 0..100 {
        if metrics(server).await.contains(&want) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{n} softphones did not register\n{}\n{}",
        server.logs(),
        phone.log()
    );
}

/// A caller who picks queue 1, skips self-verification (`#`), then talks (the 440 Hz tone)
/// for 16 s and hangs up. Returns sipp's verdict and output.
pub(crate) fn queued_call(dir: &std::path::Path) -> (bool, String) {
    write_caller_pcap(
        &dir.join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys("#".into()),
            Part::Audio(16_000),
        ],
    );
    let scenario = caller_scenario(crate::vault::PHONE, "caller.pcap", 24_000);
    call_edge(dir, &scenario)
}

/// The recording check line of the call's interaction (the last one the edge opened), once
/// the recording is sealed.
pub(crate) async fn checked_recording(server: &Server, calls: usize) -> String {
    for _ in 0..100 {
        let log = audit_entries(server).await;
        let ended = log
            .iter()
            .filter(|e| e["action"] == "recording.end")
            .count();
        if ended >= calls {
            let interaction = log
                .iter()
                .rfind(|e| e["action"] == "recording.end")
                .unwrap()["interaction"]
                .as_str()
                .unwrap()
                .to_owned();
            let checked = server.cli(&["recording", "check", &interaction]);
            assert!(
                checked.status.success(),
                "{}{}",
                checked.stdout,
                checked.stderr
            );
            return checked.stdout.trim().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the recording was not sealed\n{}", server.logs());
}

/// The number before `after` in a recording check line.
pub(crate) fn number_before(line: &str, after: &str) -> u64 {
    line.split(after)
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The real binary with SIP on and a short ring timeout.
async fn start_with_queues(backend: Backend) -> Server {
    Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
            ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
            ("CALLGUARD_QUEUES_RING_SECONDS", "4"),
            ("CALLGUARD_QUEUES_WRAP_UP_SECONDS", "1"),
            // baresip 1.0 gives up on a challenge list that names SHA-256.
            ("CALLGUARD_SIP_DIGEST_ALGORITHMS", "MD5"),
            ("CALLGUARD_LOG_LEVEL", "info"),
        ],
    )
    .await
}

/// A queued call rings the ready agent idle for the longest (ann, ready first), whose
/// softphone answers: ann hears the caller's tone (found by frequency), and the call's
/// recording decrypts to both legs, the caller in one channel and the agent in the other. The
/// next call goes to bob (ann has just had one). Carol's softphone is registered but she is
/// not ready: it never rings.
async fn a_queued_call_is_bridged_to_the_longest_idle_agent_and_recorded_in_stereo(
    backend: Backend,
) {
    let server = start_with_queues(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let carol = agent_with_sip(&server, "carol").await;
    let carol_phone = carol.phone(dir.path(), 5300, true);
    wait_registered(&server, 1, &carol_phone).await;
    carol
        .set_state(
            &server,
            serde_json::json!({"state": "not_ready", "reason": "break"}),
        )
        .await;
    let ann = agent_with_sip(&server, "ann").await;
    let bob = agent_with_sip(&server, "bob").await;
    let ann_phone = ann.phone(dir.path(), 5100, true);
    wait_registered(&server, 2, &ann_phone).await;
    let bob_phone = bob.phone(dir.path(), 5200, true);
    wait_registered(&server, 3, &bob_phone).await;
    ann.set_state(&server, serde_json::json!({"state": "ready"}))
        .await;
    bob.set_state(&server, serde_json::json!({"state": "ready"}))
        .await;

    let (ok, out) = queued_call(dir.path());
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    let heard = ann_phone.heard();
    let tone = crate::baresip::seconds_of_tone(&heard, CALLER_HZ);
    assert!(
        tone >= 5,
        "ann, idle the longest, hears the caller's tone ({tone} s of {} s)\n{}\n{}",
        heard.len() / 8000,
        server.logs(),
        ann_phone.log()
    );
    assert!(bob_phone.heard().is_empty(), "bob's phone did not ring");
    let line = checked_recording(&server, 1).await;
    assert!(line.ends_with("complete"), "{line}");
    let (caller_ms, agent_ms) = (
        number_before(&line, " ms, agent audible"),
        number_before(&line, " ms, complete"),
    );
    assert!(
        caller_ms > 15_000,
        "the caller's channel from the notice on: {line}"
    );
    assert!(agent_ms > 5_000, "the agent's channel once bridged: {line}");
    assert!(
        agent_ms < caller_ms,
        "the agent's channel is silent before the bridge: {line}"
    );
    assert!(metrics(&server)
        .await
        .contains("callguard_sip_calls_total{outcome=\"bridged\"} 1"));
    let log = audit_entries(&server).await;
    assert!(
        log.iter().any(|e| e["action"] == "interaction.hand_over"
            && e["target"] == format!("user:{}", ann.id).as_str()),
        "the answered call was handed to ann's desk"
    );

    // Ann has just had a call (wrap-up, then ready again): bob, idle for longer, gets the next.
    let (ok, out) = queued_call(dir.path());
    assert!(ok, "the second call completes\n{out}\n{}", server.logs());
    let tone = crate::baresip::seconds_of_tone(&bob_phone.heard(), CALLER_HZ);
    assert!(
        tone >= 5,
        "bob hears the second caller ({tone} s)\n{}",
        bob_phone.log()
    );
    let line = checked_recording(&server, 2).await;
    assert!(number_before(&line, " ms, complete") > 5_000, "{line}");
    assert!(
        !carol_phone
            .log()
            .to_ascii_lowercase()
            .contains("incoming call"),
        "a registered agent who is not ready is never rung\n{}",
        carol_phone.log()
    );
    assert!(carol_phone.heard().is_empty());

    // The recordings list names the queue each call waited in (the edge sets it once the
    // call is over), so supervisors can find a queue's calls.
    let listener = server
        .new_account(
            &format!("listener-{}", crate::harness::suffix()),
            "supervisor",
        )
        .await;
    let mut named = Vec::new();
    for _ in 0..100 {
        let list = server
            .api()
            .get("/api/v1/recordings", Some(&listener.token))
            .await
            .expect(200)
            .json();
        named = list["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["queue"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        if named.len() == 2 && named.iter().all(|q| !q.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        named.len() == 2 && named.iter().all(|q| !q.is_empty()),
        "both recordings name their queue: {named:?}"
    );
}

/// An agent whose softphone rings out (it never answers) is cancelled after
/// `queues.ring_seconds` and set not ready (missed call); the call goes to the next ready
/// agent, who answers and hears the caller.
async fn a_call_that_rings_out_is_offered_to_the_next_agent(backend: Backend) {
    let server = start_with_queues(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ann = agent_with_sip(&server, "ann").await;
    let bob = agent_with_sip(&server, "bob").await;
    let ann_phone = ann.phone(dir.path(), 5100, false);
    wait_registered(&server, 1, &ann_phone).await;
    let bob_phone = bob.phone(dir.path(), 5200, true);
    wait_registered(&server, 2, &bob_phone).await;
    ann.set_state(&server, serde_json::json!({"state": "ready"}))
        .await;
    bob.set_state(&server, serde_json::json!({"state": "ready"}))
        .await;
    let (ok, out) = queued_call(dir.path());
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    assert!(
        ann_phone
            .log()
            .to_ascii_lowercase()
            .contains("incoming call"),
        "ann's phone rang first\n{}",
        ann_phone.log()
    );
    assert!(ann_phone.heard().is_empty(), "ann never answered");
    let tone = crate::baresip::seconds_of_tone(&bob_phone.heard(), CALLER_HZ);
    assert!(
        tone >= 3,
        "bob took the call after ann's ring timeout ({tone} s)\n{}\n{}",
        server.logs(),
        bob_phone.log()
    );
    let state = ann.state(&server).await;
    assert_eq!(
        (&state["agent"]["state"], &state["agent"]["reason"]),
        (&Value::from("not_ready"), &Value::from("missed_call")),
        "an agent who let the call ring out is not ready: {state}"
    );
}

/// A caller who waits in a queue past `queues.max_wait_seconds` (no agent is ready, the queue
/// has no overflow) hears the goodbye prompt from its first frame to its last, and only then
/// does the edge hang up: sipp gets the BYE.
async fn a_caller_past_the_maximum_wait_hears_goodbye_before_the_edge_hangs_up(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
            ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
            ("CALLGUARD_QUEUES_MAX_WAIT_SECONDS", "10"),
            ("CALLGUARD_LOG_LEVEL", "info"),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_caller_pcap(
        &dir.path().join("caller.pcap"),
        &[
            Part::Audio(5000),
            Part::Keys("1".into()),
            Part::Audio(1000),
            Part::Keys("#".into()),
            Part::Audio(50_000),
        ],
    );
    let cap = dir.path().join("lo.pcap");
    let mut tcpdump = capture(&cap);
    let scenario = hung_up_on_scenario(crate::vault::PHONE, "caller.pcap", 50_000);
    let (ok, out) = call_edge(dir.path(), &scenario);
    // tcpdump may lag behind on a busy machine: the capture is stopped (gently, so it writes
    // out what it read) once it has stopped growing.
    let (mut seen, mut unchanged) = (0, 0);
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let n = rtp_payloads_to(&cap, 7000).len();
        unchanged = if n == seen { unchanged + 1 } else { 0 };
        seen = n;
        if unchanged >= 3 {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &tcpdump.id().to_string()])
        .status();
    let _ = tcpdump.wait();
    assert!(
        ok,
        "the edge hangs up on the caller\n{out}\n{}",
        server.logs()
    );

    let heard = rtp_packets_to(&cap, 7000);
    let prompts = PromptSet::builtin();
    let goodbye: Vec<&[u8]> = prompts
        .audio(Prompt::Goodbye)
        .chunks(FRAME_SAMPLES)
        .collect();
    let first = heard
        .iter()
        .position(|(_, f)| f[..] == *goodbye[0])
        .unwrap_or_else(|| panic!("the goodbye prompt is played\n{}", server.logs()));
    // Each packet after it is placed in the prompt by its RTP sequence number, so a packet
    // the capture missed on a busy machine is told apart from a frame the edge never sent.
    let start = heard[first].0;
    let (mut matched, mut after) = (0, 0);
    for (seq, frame) in &heard[first..] {
        let i = usize::from(seq.wrapping_sub(start));
        match goodbye.get(i) {
            Some(want) => {
                assert_eq!(
                    &frame[..want.len()],
                    *want,
                    "frame {i} of the goodbye prompt"
                );
                matched += 1;
            }
            None => after += 1,
        }
    }
    let last = heard
        .iter()
        .map(|(seq, _)| usize::from(seq.wrapping_sub(start)))
        .filter(|&i| i < goodbye.len())
        .max()
        .unwrap_or(0);
    assert!(
        matched + 5 >= goodbye.len() && last + 3 >= goodbye.len(),
        "the goodbye prompt is played to its end: {matched} of {} frames captured, the last at {last}",
        goodbye.len()
    );
    // The caller waited the maximum (10 s) before it: the IVR took about 7 s.
    assert!(
        first > 15 * 50,
        "the goodbye comes after the maximum wait, not at frame {first}"
    );
    // The BYE follows the prompt: less than a second of anything after it.
    assert!(
        after < 50,
        "{after} frames after the goodbye before the BYE"
    );
}

/// Listens on `port` (a softphone's media address) until the returned flag is set: the RTP
/// sequence number of each packet that arrives, in order.
fn listen_rtp(
    port: u16,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Vec<u16>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let socket = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 1500];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(n) = socket.recv(&mut buf) {
                if n >= 12 {
                    arrivals.push(u16::from_be_bytes([buf[2], buf[3]]));
                }
            }
        }
        arrivals
    });
    (stop, handle)
}

/// An agent's softphone (sipp, registered by digest with the agent's own credentials) answers
/// with its media at one port, then moves it to another with a re-INVITE: the relay follows,
/// so the caller's audio reaches the new port and no longer the old one.
async fn an_agents_re_invite_to_a_new_media_port_moves_the_relay_there(backend: Backend) {
    let server = start_with_queues(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with_sip(&server, "mia").await;
    let (ok, out) = sipp(
        dir.path(),
        &register_scenario(&agent.username, &agent.sip_password),
        &["127.0.0.1:5060", "-i", "127.0.0.1", "-p", "5400"],
    );
    assert!(
        ok,
        "the softphone registers by digest\n{out}\n{}",
        server.logs()
    );
    agent
        .set_state(&server, serde_json::json!({"state": "ready"}))
        .await;
    let (stop_old, old) = listen_rtp(7200);
    let (stop_new, new) = listen_rtp(7300);
    let phone_dir = dir.path().join("phone");
    std::fs::create_dir_all(&phone_dir).unwrap();
    std::fs::write(
        phone_dir.join("agent.xml"),
        moving_agent_scenario(7200, 7300, 4000),
    )
    .unwrap();
    let phone = Command::new("sipp")
        .current_dir(&phone_dir)
        .args([
            "-sf",
            "agent.xml",
            "-i",
            "127.0.0.1",
            "-p",
            "5400",
            "-mp",
            "7500",
        ])
        .args(["-m", "1", "-nostdin", "-timeout", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sipp (Debian sip-tester) is installed");
    let (ok, out) = queued_call(dir.path());
    let phone = phone.wait_with_output().unwrap();
    let phone_out = format!(
        "{}{}",
        String::from_utf8_lossy(&phone.stdout),
        String::from_utf8_lossy(&phone.stderr)
    );
    stop_old.store(true, std::sync::atomic::Ordering::Relaxed);
    stop_new.store(true, std::sync::atomic::Ordering::Relaxed);
    let (old, new) = (old.join().unwrap(), new.join().unwrap());
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    assert!(
        phone.status.success(),
        "the softphone answered, moved and was hung up on\n{phone_out}\n{}",
        server.logs()
    );
    assert!(
        old.len() > 50,
        "the caller's audio reached the first address ({} packets)\n{}",
        old.len(),
        server.logs()
    );
    assert!(
        new.len() > 200,
        "after the re-INVITE it reaches the new one ({} packets)\n{}",
        new.len(),
        server.logs()
    );
    // The relay's stream to the agent numbers its packets in order: counted from the first
    // packet sent, every packet to the old address comes before every one to the new.
    let base = old[0];
    let last_old = old.iter().map(|s| s.wrapping_sub(base)).max().unwrap();
    let first_new = new.iter().map(|s| s.wrapping_sub(base)).min().unwrap();
    assert!(
        last_old < first_new,
        "nothing goes to the old address once the relay has moved ({last_old} then {first_new})"
    );
    assert!(metrics(&server)
        .await
        .contains("callguard_sip_calls_total{outcome=\"bridged\"} 1"));
}

in_private_network!(
    a_queued_call_is_bridged_to_the_longest_idle_agent_and_recorded_in_stereo,
    a_call_that_rings_out_is_offered_to_the_next_agent,
    a_caller_verifies_by_keypad_after_the_recording_notice,
    a_call_from_an_unknown_address_is_refused_with_403,
    a_softphone_registers_only_with_its_agents_live_credentials,
    a_caller_past_the_maximum_wait_hears_goodbye_before_the_edge_hangs_up,
    an_agents_re_invite_to_a_new_media_port_moves_the_relay_there,
);
