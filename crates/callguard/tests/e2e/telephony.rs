//! The telephony edge end to end: the real binary with SIP on, `sipp` as the carrier, each test
//! inside a private network namespace (`unshare -n`, only `lo`), so no packet can leave the
//! machine whatever the pcaps say. A test re-runs its own test binary under `unshare -n` with
//! [`INSIDE`] set; inside, PostgreSQL is reached by its Unix socket (its TCP port is in the
//! host's namespace). Needs root and `sipp`, `tcpdump`, `unshare`, `ip`.

use crate::harness::{Backend, Deployment, Server};
use callguard_telephony::media::g711::Law;
use callguard_telephony::media::prompts::{Prompt, PromptSet};
use callguard_telephony::media::rfc4733::EventSender;
use callguard_telephony::media::rtp::RtpHeader;
use callguard_telephony::media::{Key, FRAME_SAMPLES};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
                if super::enter(module_path!(), "sqlite") {
                    super::$test(Backend::Sqlite).await;
                }
            }

            #[tokio::test]
            async fn postgres() {
                if super::enter(module_path!(), "postgres") {
                    super::$test(Backend::Postgres).await;
                }
            }
        }
    )+};
}

/// Inside the namespace: brings `lo` up and answers true (run the body). Outside: re-runs this
/// one test inside `unshare -n`, asserts it passed, and answers false.
fn enter(module: &str, backend: &str) -> bool {
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

// ---- caller audio: project code writes the pcap sipp plays ----------------------------------

/// What the caller sends, in order.
enum Part {
    /// This many milliseconds of a quiet 440 Hz tone (so the caller's leg is never silent).
    Audio(u32),
    /// Keys as RFC 4733 events (PT 101, 160 ms each, 300 ms of tone after each).
    Keys(String),
    /// Keys as in-band DTMF in the audio: 100 ms of the key's two tones, 100 ms of quiet.
    Tones(String),
}

/// 20 ms A-law frames of the DTMF tones of `keys` (each 100 ms, then 100 ms of quiet).
fn dtmf_frames(keys: &str) -> Vec<Vec<u8>> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const PAD: &str = "123A456B789C*0#D";
    let mut samples: Vec<i16> = Vec::new();
    for c in keys.chars() {
        let k = PAD.find(c).unwrap();
        let (lo, hi) = (ROWS[k / 4], COLS[k % 4]);
        for n in 0..800 {
            let t = f64::from(n) / 8000.0;
            let v = 0.35 * (2.0 * std::f64::consts::PI * lo * t).sin()
                + 0.35 * (2.0 * std::f64::consts::PI * hi * t).sin();
            samples.push((v * 16000.0) as i16);
        }
        samples.extend(std::iter::repeat_n(0, 800));
    }
    samples
        .chunks(FRAME_SAMPLES)
        .map(|c| c.iter().map(|&v| Law::Alaw.encode(v)).collect())
        .collect()
}

/// Writes `parts` as a pcap of RTP (PCMA 20 ms, RFC 4733 on PT 101, one SSRC) for sipp's
/// `play_pcap_audio` (which replaces the addresses and ports).
fn write_caller_pcap(path: &Path, parts: &[Part]) {
    let mut packets: Vec<(u64, Vec<u8>)> = Vec::new();
    let (mut t_us, mut seq, mut ts, ssrc) = (0u64, 1000u16, 5000u32, 0x1234_5678u32);
    let mut phase = 0f64;
    let mut audio =
        |ms: u32, t_us: &mut u64, seq: &mut u16, ts: &mut u32, out: &mut Vec<(u64, Vec<u8>)>| {
            for _ in 0..ms / 20 {
                let mut frame = Vec::with_capacity(FRAME_SAMPLES);
                for _ in 0..FRAME_SAMPLES {
                    phase += 2.0 * std::f64::consts::PI * 440.0 / 8000.0;
                    frame.push(Law::Alaw.encode((phase.sin() * 3000.0) as i16));
                }
                let h = RtpHeader {
                    marker: false,
                    payload_type: 8,
                    sequence: *seq,
                    timestamp: *ts,
                    ssrc,
                };
                out.push((*t_us, h.to_packet(&frame).unwrap()));
                *seq = seq.wrapping_add(1);
                *ts = ts.wrapping_add(FRAME_SAMPLES as u32);
                *t_us += 20_000;
            }
        };
    for part in parts {
        match part {
            Part::Audio(ms) => audio(*ms, &mut t_us, &mut seq, &mut ts, &mut packets),
            Part::Keys(keys) => {
                let sender = EventSender {
                    payload_type: 101,
                    ssrc,
                    volume: 10,
                };
                for c in keys.chars() {
                    let key = Key::from_char(c).unwrap();
                    for p in sender.press(key, ts, 1280, 160, &mut seq).unwrap() {
                        packets.push((t_us, p));
                        t_us += 20_000;
                    }
                    ts = ts.wrapping_add(1280);
                    audio(300, &mut t_us, &mut seq, &mut ts, &mut packets);
                }
            }
            Part::Tones(keys) => {
                for frame in dtmf_frames(keys) {
                    let h = RtpHeader {
                        marker: false,
                        payload_type: 8,
                        sequence: seq,
                        timestamp: ts,
                        ssrc,
                    };
                    packets.push((t_us, h.to_packet(&frame).unwrap()));
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(FRAME_SAMPLES as u32);
                    t_us += 20_000;
                }
            }
        }
    }
    let mut f = std::fs::File::create(path).unwrap();
    // pcap global header: magic, v2.4, no zone, sigfigs 0, snaplen, Ethernet.
    let mut head = Vec::new();
    head.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&4u16.to_le_bytes());
    head.extend_from_slice(&[0; 8]);
    head.extend_from_slice(&65535u32.to_le_bytes());
    head.extend_from_slice(&1u32.to_le_bytes());
    f.write_all(&head).unwrap();
    for (t, rtp) in packets {
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ]);
        frame.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&20000u16.to_be_bytes());
        frame.extend_from_slice(&30000u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&rtp);
        let mut rec = Vec::new();
        rec.extend_from_slice(&((1_000_000 + t / 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.write_all(&rec).unwrap();
        f.write_all(&frame).unwrap();
    }
}

/// The RTP payloads (after the 12-byte header) of UDP packets to `port` in a tcpdump capture
/// of `lo` (Ethernet framing), in order.
fn rtp_payloads_to(capture: &Path, port: u16) -> Vec<Vec<u8>> {
    let data = std::fs::read(capture).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..(at + 16 + caplen).min(data.len())];
        at += 16 + caplen;
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 17 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let udp = &frame[14 + ihl..];
        if udp.len() < 8 + 12 || u16::from_be_bytes([udp[2], udp[3]]) != port {
            continue;
        }
        out.push(udp[8 + 12..].to_vec());
    }
    out
}

/// tcpdump on `lo`, writing every UDP packet to `path` as it comes (`-U`).
fn capture(path: &Path) -> Child {
    let mut child = Command::new("tcpdump")
        .args(["-i", "lo", "-n", "-U", "-w"])
        .arg(path)
        .arg("udp")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump is installed");
    let mut line = String::new();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    // "listening on lo ..." once the capture runs.
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "tcpdump: {line}");
    child
}

/// Runs sipp with `scenario` (written to `dir`) against the edge; its output and exit status.
fn sipp(dir: &Path, scenario: &str, args: &[&str]) -> (bool, String) {
    let file = dir.join("scenario.xml");
    std::fs::write(&file, scenario).unwrap();
    let out = Command::new("sipp")
        .current_dir(dir)
        .arg("-sf")
        .arg(&file)
        .args(args)
        .args(["-m", "1", "-nostdin", "-timeout", "60"])
        .output()
        .expect("sipp (Debian sip-tester) is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const SDP_OFFER: &str = "v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
";

/// A caller from `from` who plays `pcap`, waits `hold_ms`, and hangs up.
fn caller_scenario(from: &str, pcap: &str, hold_ms: u64) -> String {
    let dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from}@[local_ip]:[local_port]>;tag=[pid]CG[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier call">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from}@[local_ip]:[local_port]>;tag=[pid]CG[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{SDP_OFFER}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      {ack}
  ]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
      {bye}
  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"#,
        ack = dialog("ACK", 1),
        bye = dialog("BYE", 2),
    )
}

/// Every audit entry so far, read by a compliance officer.
async fn audit_entries(server: &Server) -> Vec<Value> {
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

async fn metrics(server: &Server) -> String {
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
    let (ok, out) = sipp(
        dir.path(),
        &scenario,
        &[
            "127.0.0.1:5060",
            "-s",
            "callguard",
            "-i",
            "127.0.0.1",
            "-p",
            "5070",
            "-mi",
            "127.0.0.1",
            "-mp",
            "7000",
        ],
    );
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
    let (audio_ms, audible_ms) = (number(" ms of audio"), number(" ms, complete"));
    assert!(
        audio_ms > 15_000,
        "the caller's leg from the notice to the hang-up: {line}"
    );
    assert!(
        audible_ms > audio_ms / 2,
        "the caller's tone is in the recording: {line}"
    );
}

/// An INVITE (with `sdp` as its body, if any) that expects a final `code` and ACKs it.
fn refused_scenario(code: u16, sdp: Option<&str>) -> String {
    let (ctype, body) = match sdp {
        Some(b) => ("Content-Type: application/sdp\n      ", b),
        None => ("", ""),
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="refused">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+48601234567@[local_ip]:[local_port]>;tag=[pid]X[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:x@[local_ip]:[local_port]>
      Max-Forwards: 70
      {ctype}Content-Length: [len]

{body}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="{code}"/>
  <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+48601234567@[local_ip]:[local_port]>;tag=[pid]X[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
</scenario>
"#
    )
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

in_private_network!(
    a_caller_verifies_by_keypad_after_the_recording_notice,
    a_call_from_an_unknown_address_is_refused_with_403,
    a_softphone_registers_only_with_its_agents_live_credentials,
);
