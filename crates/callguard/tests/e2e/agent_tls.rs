//! Agents' softphones over TLS with SRTP (issue #13 item 3), end to end inside `unshare -n`:
//! baresip registers over TLS and answers an ACD call with SDES-keyed SRTP while tcpdump
//! watches `lo`; no SIP crosses it in the clear and no RTP payload on the agent's leg equals
//! a plain payload of the call, yet the agent hears the caller. With the require settings a
//! softphone with plain RTP only gets no call audio and a plain REGISTER is refused.

use crate::harness::{Backend, Deployment, Server};
use crate::telephony::{agent_with_sip, metrics, queued_call, wait_registered, CALLER_HZ};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The edge's SIP-over-TLS port in the namespace.
const TLS_PORT: u16 = 5061;

use crate::telephony::in_private_network;

/// The real binary with SIP over TLS, both require settings on, and a short ring timeout.
async fn start_requiring_tls_and_srtp(backend: Backend) -> Server {
    let tls = format!("127.0.0.1:{TLS_PORT}");
    Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
            ("CALLGUARD_SIP_TLS_LISTEN", tls.as_str()),
            ("CALLGUARD_SIP_AGENTS_REQUIRE_TLS", "true"),
            ("CALLGUARD_SIP_AGENTS_REQUIRE_SRTP", "true"),
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

/// tcpdump on `lo`, writing every UDP and TCP packet to `path` as it comes.
fn capture_all(path: &Path) -> Child {
    use std::io::BufRead;
    let mut child = Command::new("tcpdump")
        .args(["-i", "lo", "-n", "-U", "-w"])
        .arg(path)
        .args(["udp", "or", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump is installed");
    let mut line = String::new();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "tcpdump: {line}");
    child
}

/// One captured IPv4 packet: TCP or UDP, its ports and payload.
struct Packet {
    tcp: bool,
    from: u16,
    to: u16,
    payload: Vec<u8>,
}

/// The UDP and TCP packets of a tcpdump capture of `lo` (Ethernet framing), in order.
fn packets(capture: &Path) -> Vec<Packet> {
    let data = std::fs::read(capture).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..(at + 16 + caplen).min(data.len())];
        at += 16 + caplen;
        if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let l4 = &ip[ihl..total];
        let (tcp, head) = match ip[9] {
            6 if l4.len() >= 20 => (true, usize::from(l4[12] >> 4) * 4),
            17 if l4.len() >= 8 => (false, 8),
            _ => continue,
        };
        out.push(Packet {
            tcp,
            from: u16::from_be_bytes([l4[0], l4[1]]),
            to: u16::from_be_bytes([l4[2], l4[3]]),
            payload: l4[head.min(l4.len())..].to_vec(),
        });
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Ann's softphone registers over TLS and requires SRTP; Carol's registers over TLS but knows
/// only plain RTP, and is ready first. A queued call is offered to Carol with SRTP only, which
/// her softphone refuses, then to Ann: she hears the caller's tone through SRTP. On `lo` meanwhile:
/// the TLS port carries no SIP text, no agent sends anything to the plain SIP port, and no RTP
/// payload to or from Ann's softphone equals a plain payload the caller sent or heard. Last,
/// a softphone registering over plain UDP is refused.
async fn an_agent_over_tls_hears_the_caller_through_srtp_and_loopback_shows_no_plain_sip_or_audio(
    backend: Backend,
) {
    let server = start_requiring_tls_and_srtp(backend).await;
    let cafile = server.data_dir.join("tls").join("cert.pem");
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("lo.pcap");
    let mut tcpdump = capture_all(&cap);

    let carol = agent_with_sip(&server, "carol").await;
    let carol_phone = crate::baresip::Softphone::start_tls(
        &dir.path().join(&carol.username),
        &carol.username,
        &carol.sip_password,
        5300,
        1000.0,
        (TLS_PORT, &cafile),
        false,
    );
    wait_registered(&server, 1, &carol_phone).await;
    let ann = agent_with_sip(&server, "ann").await;
    let ann_phone = crate::baresip::Softphone::start_tls(
        &dir.path().join(&ann.username),
        &ann.username,
        &ann.sip_password,
        5100,
        1000.0,
        (TLS_PORT, &cafile),
        true,
    );
    wait_registered(&server, 2, &ann_phone).await;
    carol
        .set_state(&server, serde_json::json!({"state": "ready"}))
        .await;
    ann.set_state(&server, serde_json::json!({"state": "ready"}))
        .await;

    let (ok, out) = queued_call(dir.path());
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    assert!(ok, "the call completes\n{out}\n{}", server.logs());

    // Ann hears the caller (the edge decrypted nothing wrongly, baresip decrypted our SRTP).
    let heard = ann_phone.heard();
    let tone = crate::baresip::seconds_of_tone(&heard, CALLER_HZ);
    assert!(
        tone >= 5,
        "ann hears the caller's tone through SRTP ({tone} s of {} s)\n{}\n{}",
        heard.len() / 8000,
        server.logs(),
        ann_phone.log()
    );
    // Carol's softphone, offered SRTP only, refused the call itself (488): she never gets the
    // caller's audio, and the call went on to Ann.
    assert!(
        carol_phone.log().contains("rejected"),
        "carol's phone refused the SRTP-only offer\n{}",
        carol_phone.log()
    );
    assert_eq!(
        crate::baresip::seconds_of_tone(&carol_phone.heard(), CALLER_HZ),
        0,
        "a softphone without SRTP never gets the caller's audio\n{}",
        carol_phone.log()
    );
    let m = metrics(&server).await;
    assert!(
        m.contains("callguard_sip_calls_total{outcome=\"bridged\"} 1"),
        "{m}"
    );

    // The SRTP keys travel in SDP only: never in the server's log.
    let logs = server.logs();
    assert!(
        !logs.contains("inline:") && !logs.contains("a=crypto"),
        "SRTP keys in the server's log\n{logs}"
    );

    // What crossed the loopback.
    let all = packets(&cap);
    let tls: Vec<&Packet> = all
        .iter()
        .filter(|p| p.tcp && (p.from == TLS_PORT || p.to == TLS_PORT) && !p.payload.is_empty())
        .collect();
    assert!(
        tls.iter().any(|p| p.to == TLS_PORT) && tls.iter().any(|p| p.from == TLS_PORT),
        "the softphones talk to the TLS port"
    );
    for p in &tls {
        for clear in [
            &b"SIP/2.0"[..],
            b"REGISTER",
            b"INVITE",
            b"a=crypto",
            ann.username.as_bytes(),
        ] {
            assert!(
                !contains(&p.payload, clear),
                "{:?} in the clear on the TLS port",
                String::from_utf8_lossy(clear)
            );
        }
    }
    let to_plain_sip: HashSet<u16> = all
        .iter()
        .filter(|p| p.to == 5060 && !p.payload.is_empty())
        .map(|p| p.from)
        .collect();
    assert_eq!(
        to_plain_sip,
        HashSet::from([5070]),
        "only the carrier (sipp) sends to the plain SIP port"
    );
    // RTP payloads (after the 12-byte header) of the caller's leg, both ways, in the clear.
    let rtp_payload = |p: &Packet| p.payload.get(12..).map(<[u8]>::to_vec);
    let plain: HashSet<Vec<u8>> = all
        .iter()
        .filter(|p| !p.tcp && (p.from == 7000 || p.to == 7000))
        .filter_map(rtp_payload)
        .collect();
    assert!(
        plain.iter().filter(|b| b.len() == 160).count() > 100,
        "the caller's leg carried audio"
    );
    let ann_rtp = 5110..=5130;
    // RTP only: baresip also sends RTCP (a 16-byte "PINGPONG" APP packet, no media) to the
    // port above ours, where the edge does not listen.
    let is_rtcp = |p: &Packet| p.payload.get(1).is_some_and(|b| (192..=223).contains(b));
    let agent_leg: Vec<&Packet> = all
        .iter()
        .filter(|p| !p.tcp && (ann_rtp.contains(&p.to) || ann_rtp.contains(&p.from)))
        .filter(|p| !is_rtcp(p))
        .collect();
    assert!(
        agent_leg.iter().filter(|p| ann_rtp.contains(&p.to)).count() > 250
            && agent_leg
                .iter()
                .filter(|p| ann_rtp.contains(&p.from))
                .count()
                > 250,
        "both directions of ann's leg carried media"
    );
    for p in &agent_leg {
        let body = p
            .payload
            .len()
            .checked_sub(12 + 10)
            .map(|n| &p.payload[12..12 + n]);
        assert!(
            body.is_some_and(|b| b.len() == 160 || b.len() == 4),
            "SRTP: header, 20 ms of G.711 or a telephone event, 80-bit tag ({} -> {}: {} bytes)",
            p.from,
            p.to,
            p.payload.len()
        );
        assert!(
            !plain.contains(body.unwrap_or_default()),
            "a payload on the agent's leg equals a plain payload of the caller's leg"
        );
    }

    // A softphone over plain UDP is refused before any challenge.
    let bob = agent_with_sip(&server, "bob").await;
    let bob_phone = crate::baresip::Softphone::start(
        &dir.path().join(&bob.username),
        &bob.username,
        &bob.sip_password,
        5200,
        true,
        1000.0,
    );
    let mut refused = false;
    for _ in 0..100 {
        if metrics(&server)
            .await
            .contains("callguard_sip_refused_total{reason=\"plain_sip\"}")
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "a REGISTER over UDP is refused\n{}\n{}",
        server.logs(),
        bob_phone.log()
    );
    assert!(
        metrics(&server)
            .await
            .contains("callguard_sip_registrations 2\n"),
        "the plain softphone did not register"
    );
    assert!(
        bob_phone.log().contains("403"),
        "baresip was told 403\n{}",
        bob_phone.log()
    );
}

/// Registers `user` over UDP from 127.0.0.1:5402 (digest MD5 after the 401), with a Contact at
/// `contact_port` where another program answers calls.
fn register_udp(user: &str, password: &str, contact_port: u16) {
    use callguard_telephony::sip::digest::{ha1, Algorithm};
    let sock = std::net::UdpSocket::bind("127.0.0.1:5402").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let send = |cseq: u32, authorization: &str| {
        let msg = format!(
            "REGISTER sip:callguard.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5402;branch=z9hG4bK-{cseq}-srtp\r\nFrom: <sip:{user}@callguard.test>;tag=s1\r\nTo: <sip:{user}@callguard.test>\r\nCall-ID: reg-srtp@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{contact_port}>\r\nExpires: 600\r\nMax-Forwards: 70\r\n{authorization}Content-Length: 0\r\n\r\n"
        );
        sock.send_to(msg.as_bytes(), "127.0.0.1:5060").unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let challenge = send(1, "");
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let h1 = ha1(Algorithm::Md5, user, "callguard.test", password);
    let h2 = Algorithm::Md5.hex("REGISTER:sip:callguard.test");
    let response = Algorithm::Md5.hex(&format!("{h1}:{nonce}:00000001:abc:auth:{h2}"));
    let ok = send(
        2,
        &format!("Authorization: Digest username=\"{user}\", realm=\"callguard.test\", nonce=\"{nonce}\", uri=\"sip:callguard.test\", response=\"{response}\", algorithm=MD5, cnonce=\"abc\", qop=auth, nc=00000001\r\n"),
    );
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
}

/// A softphone (sipp) that checks the INVITE offers SRTP only, answers it with plain RTP,
/// and expects the edge's ACK and BYE.
const PLAIN_ANSWERING_AGENT: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent answering plain RTP">
  <recv request="INVITE">
    <action>
      <ereg regexp="m=audio [0-9]+ RTP/SAVP 8 0 101" search_in="body" check_it="true" assign_to="savp"/>
      <ereg regexp="a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" search_in="body" check_it="true" assign_to="crypto"/>
    </action>
  </recv>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]A[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

v=0
o=agent 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendrecv

  ]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <Reference variables="savp,crypto"/>
</scenario>
"#;

/// With `sip.agents_require_srtp`, the INVITE to an agent offers SRTP only; a softphone that
/// answers it with plain RTP is acknowledged and hung up at once, never bridged, and the
/// refusal is counted.
async fn a_softphone_answering_plain_rtp_is_hung_up_when_srtp_is_required(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
            ("CALLGUARD_SIP_AGENTS_REQUIRE_SRTP", "true"),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
            ("CALLGUARD_SIP_RTP_PORTS", "20000-20999"),
            ("CALLGUARD_QUEUES_RING_SECONDS", "4"),
            ("CALLGUARD_SIP_DIGEST_ALGORITHMS", "MD5"),
            ("CALLGUARD_LOG_LEVEL", "info"),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dan = agent_with_sip(&server, "dan").await;
    register_udp(&dan.username, &dan.sip_password, 5401);
    dan.set_state(&server, serde_json::json!({"state": "ready"}))
        .await;
    let scenario = dir.path().join("agent.xml");
    std::fs::write(&scenario, PLAIN_ANSWERING_AGENT).unwrap();
    let agent_out = std::fs::File::create(dir.path().join("agent.out")).unwrap();
    let mut agent = Command::new("sipp")
        .current_dir(dir.path())
        .arg("-sf")
        .arg(&scenario)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            "5401",
            "-mi",
            "127.0.0.1",
            "-mp",
            "7400",
        ])
        .args(["-m", "1", "-nostdin", "-timeout", "60"])
        .stdout(agent_out.try_clone().unwrap())
        .stderr(agent_out)
        .spawn()
        .expect("sipp (Debian sip-tester) is installed");
    let (ok, out) = queued_call(dir.path());
    assert!(ok, "the call completes\n{out}\n{}", server.logs());
    let status = agent.wait().unwrap();
    assert!(
        status.success(),
        "the agent's softphone was offered SRTP only, then got ACK and BYE\n{}\n{}",
        std::fs::read_to_string(dir.path().join("agent.out")).unwrap_or_default(),
        server.logs()
    );
    let m = metrics(&server).await;
    assert!(
        m.contains("callguard_sip_refused_total{reason=\"plain_rtp\"} 1"),
        "{m}"
    );
    assert!(
        !m.contains("outcome=\"bridged\""),
        "the plain leg was never bridged\n{m}"
    );
}

in_private_network!(
    an_agent_over_tls_hears_the_caller_through_srtp_and_loopback_shows_no_plain_sip_or_audio,
    a_softphone_answering_plain_rtp_is_hung_up_when_srtp_is_required,
);
