//! sipp as the carrier for the telephony tests: caller pcaps written with the project's own
//! G.711, RTP and RFC 4733 code (and in-band DTMF tones), sipp scenarios, and reading what the
//! edge sent back from a tcpdump capture of `lo`.

use callguard_telephony::media::g711::Law;
use callguard_telephony::media::rfc4733::EventSender;
use callguard_telephony::media::rtp::RtpHeader;
use callguard_telephony::media::{Key, FRAME_SAMPLES};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

// ---- caller audio: project code writes the pcap sipp plays ----------------------------------

/// What the caller sends, in order.
pub enum Part {
    /// This many milliseconds of a quiet 440 Hz tone (so the caller's leg is never silent).
    Audio(u32),
    /// Keys as RFC 4733 events (PT 101, 160 ms each, 300 ms of tone after each).
    Keys(String),
    /// Keys as in-band DTMF in the audio: 100 ms of the key's two tones, 100 ms of quiet.
    Tones(String),
}

/// 20 ms A-law frames of the DTMF tones of `keys` (each 100 ms, then 100 ms of quiet).
pub fn dtmf_frames(keys: &str) -> Vec<Vec<u8>> {
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
pub fn write_caller_pcap(path: &Path, parts: &[Part]) {
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
pub fn rtp_payloads_to(capture: &Path, port: u16) -> Vec<Vec<u8>> {
    rtp_packets_to(capture, port)
        .into_iter()
        .map(|(_, payload)| payload)
        .collect()
}

/// The RTP sequence number and payload of each UDP packet to `port` in a tcpdump capture of
/// `lo` (Ethernet framing), in order.
pub fn rtp_packets_to(capture: &Path, port: u16) -> Vec<(u16, Vec<u8>)> {
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
        out.push((
            u16::from_be_bytes([udp[10], udp[11]]),
            udp[8 + 12..].to_vec(),
        ));
    }
    out
}

/// tcpdump on `lo`, writing every UDP packet to `path` as it comes (`-U`).
pub fn capture(path: &Path) -> Child {
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
pub fn sipp(dir: &Path, scenario: &str, args: &[&str]) -> (bool, String) {
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

/// Runs sipp as the carrier's caller (SIP 127.0.0.1:5070, RTP 127.0.0.1:7000) with `scenario`
/// against the edge on 127.0.0.1:5060.
pub fn call_edge(dir: &Path, scenario: &str) -> (bool, String) {
    sipp(
        dir,
        scenario,
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
    )
}

pub const SDP_OFFER: &str = "v=0
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
pub fn caller_scenario(from: &str, pcap: &str, hold_ms: u64) -> String {
    scripted_caller_scenario(from, pcap, &[Step::Pause(hold_ms)])
}

/// What a scripted caller does in the call while its pcap plays.
pub enum Step {
    /// Waits this many milliseconds.
    Pause(u64),
    /// Sends an INFO in the dialog with this body type and body, and expects this final status.
    Info {
        content_type: &'static str,
        body: String,
        expect: u16,
    },
}

/// INFOs keying `keys` as `application/dtmf-relay` (160 ms presses), each followed by `gap_ms`
/// of quiet.
pub fn info_keys(keys: &str, gap_ms: u64) -> Vec<Step> {
    keys.chars()
        .flat_map(|c| {
            [
                Step::Info {
                    content_type: "application/dtmf-relay",
                    body: format!("Signal={c}\nDuration=160\n"),
                    expect: 200,
                },
                Step::Pause(gap_ms),
            ]
        })
        .collect()
}

/// A caller from `from` who plays `pcap` and meanwhile takes `steps` (INFO requests in the
/// dialog, pauses), then hangs up.
pub fn scripted_caller_scenario(from: &str, pcap: &str, steps: &[Step]) -> String {
    let dialog = |method: &str, cseq: usize, body: Option<(&str, &str)>| {
        let (ctype, length, body) = match body {
            Some((t, b)) => (format!("Content-Type: {t}\n      "), "[len]", b),
            None => (String::new(), "0", ""),
        };
        format!(
            "{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from}@[local_ip]:[local_port]>;tag=[pid]CG[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      {ctype}Content-Length: {length}

{body}"
        )
    };
    let mut cseq = 1;
    let mut script = String::new();
    for step in steps {
        match step {
            Step::Pause(ms) => script.push_str(&format!("  <pause milliseconds=\"{ms}\"/>\n")),
            Step::Info {
                content_type,
                body,
                expect,
            } => {
                cseq += 1;
                let info = dialog("INFO", cseq, Some((content_type, body)));
                script.push_str(&format!(
                    "  <send retrans=\"500\"><![CDATA[\n      {info}\n  ]]></send>\n  <recv response=\"{expect}\"/>\n"
                ));
            }
        }
    }
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
{script}  <send retrans="500"><![CDATA[
      {bye}
  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"#,
        ack = dialog("ACK", 1, None),
        bye = dialog("BYE", cseq + 1, None),
    )
}

/// An INVITE (with `sdp` as its body, if any) that expects a final `code` and ACKs it.
pub fn refused_scenario(code: u16, sdp: Option<&str>) -> String {
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

/// A caller from `from` who plays `pcap` and holds until the edge hangs up (BYE, answered with
/// 200) within `wait_ms`.
pub fn hung_up_on_scenario(from: &str, pcap: &str, wait_ms: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier call the edge hangs up">
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
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from}@[local_ip]:[local_port]>;tag=[pid]CG[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE" timeout="{wait_ms}"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

  ]]></send>
</scenario>
"#
    )
}

/// A softphone's REGISTER for `user` (Contact at sipp's own address), answering the digest
/// challenge with `password`.
pub fn register_scenario(user: &str, password: &str) -> String {
    let register = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[remote_ip]>;tag=[pid]R[call_number]
      To: <sip:{user}@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      Expires: 300
      Max-Forwards: 70
      {auth}Content-Length: 0

"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="softphone registers">
  <send retrans="500"><![CDATA[
      {first}
  ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
      {second}
  ]]></send>
  <recv response="200"/>
</scenario>
"#,
        first = register(1, ""),
        second = register(
            2,
            &format!("[authentication username={user} password={password}]\n      ")
        ),
    )
}

/// An agent's softphone that answers the edge's INVITE with its media at `first_port`, after
/// `after_ms` moves it to `second_port` with a re-INVITE of its own, and answers the BYE.
pub fn moving_agent_scenario(first_port: u16, second_port: u16, after_ms: u64) -> String {
    let sdp = |port: u16, version: u32| {
        format!(
            "v=0
o=agent 1 {version} IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {port} RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent moves its media">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="edge"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="me"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="target"/>
    </action>
  </recv>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]A[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

  ]]></send>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]A[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

{first}
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="{after_ms}"/>
  <send retrans="500"><![CDATA[
      INVITE [$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$me];tag=[pid]A[call_number]
      To: [$edge]
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{second}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
  <send><![CDATA[
      ACK [$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$me];tag=[pid]A[call_number]
      To: [$edge]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv request="BYE" timeout="60000"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
</scenario>
"#,
        first = sdp(first_port, 1),
        second = sdp(second_port, 2),
    )
}
