//! Media plane benchmark (issue #12): what one second of call audio costs in CPU.
//!
//! All in this process, one thread, CPU time of the thread from `/proc/thread-self/schedstat`
//! (nanoseconds), on audio made of the committed test fixtures (espeak-ng speech with in-band
//! DTMF between, raw A-law):
//! 1. G.711 A-law decoding alone, 20 ms frames;
//! 2. decoding plus the in-band DTMF detector (`ToneDetector::push_g711`), the per-leg cost of
//!    listening for keys;
//! 3. the RFC 4733 receiver, per packet;
//! 4. the recording writer (stereo, both legs, one-second chunks) into memory, and the reader
//!    decrypting it back;
//! 5. the bridge's RTP relay (parse, re-stamp into the other leg, write), per packet, with the
//!    payload passed through and transcoded A-law → µ-law (building the input packet included).
//! 6. secure mode's relay toward the agent (issue #13): the same relay with the caller's audio run
//!    through the masking delay line and its DTMF detector first (`sip::secure::SecureMedia`),
//!    per packet and as a ratio to the plain relay; the run fails unless no key is detectable in
//!    the masked audio.
//!
//! Each figure is the median of `--rounds` rounds of `--seconds` seconds of audio.
#![forbid(unsafe_code)]

use callguard_core::kek::KeyEncryptionKey;
use callguard_core::recording::{KeyShare, RecordingReader, RecordingWriter};
use callguard_telephony::media::g711::{decode_alaw, Law};
use callguard_telephony::media::goertzel::{ToneDetector, ToneEvent};
use callguard_telephony::media::rfc4733::{EventReceiver, EventSender};
use callguard_telephony::media::rtp::RtpPacket;
use callguard_telephony::media::{Key, FRAME_SAMPLES};
use std::hint::black_box;

const USAGE: &str = "\
callguard-bench-media: CPU per second of call audio for the media plane (issue #12)

usage: callguard-bench-media [--seconds S] [--rounds N]
  --seconds S   seconds of audio per round (default 600)
  --rounds N    rounds per figure; the median is reported (default 5)
";

const SPEECH: &[u8] =
    include_bytes!("../../../crates/callguard-telephony/tests/fixtures/speech.al");
const INBAND: &[u8] =
    include_bytes!("../../../crates/callguard-telephony/tests/fixtures/inband.al");

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// CPU time of this thread, in nanoseconds.
fn cpu_ns() -> Res<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    Ok(text
        .split_whitespace()
        .next()
        .ok_or("empty schedstat")?
        .parse()?)
}

/// At least `seconds` of caller audio: the speech fixture then the 16 in-band keys, repeated
/// whole; returns it with the number of repetitions.
fn caller_audio(seconds: usize) -> (Vec<u8>, usize) {
    let mut base = SPEECH.to_vec();
    base.extend_from_slice(INBAND);
    let cycles = (seconds * 8000).div_ceil(base.len()).max(1);
    (base.repeat(cycles), cycles)
}

/// The CPU clock ticks in steps of a few milliseconds, so each round repeats `f` until it has
/// used at least this much.
const MIN_ROUND_NS: u64 = 300_000_000;

/// Runs rounds of `f`; returns the median CPU nanoseconds per call and the last result.
fn measure<T>(rounds: usize, mut f: impl FnMut() -> T) -> Res<(f64, T)> {
    let mut times = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds {
        let start = cpu_ns()?;
        let mut calls = 0u32;
        let used = loop {
            last = Some(f());
            calls += 1;
            let used = cpu_ns()? - start;
            if used >= MIN_ROUND_NS {
                break used;
            }
        };
        times.push(used as f64 / f64::from(calls));
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last.ok_or("no rounds")?))
}

fn per_second(ns: f64, seconds: f64) -> f64 {
    ns / 1000.0 / seconds
}

fn main() -> Res<()> {
    let mut seconds = 600usize;
    let mut rounds = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().ok_or("--seconds needs a value")?.parse()?,
            "--rounds" => rounds = args.next().ok_or("--rounds needs a value")?.parse()?,
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option {other}; try --help").into()),
        }
    }
    let rounds = rounds.max(1);
    let seconds = seconds.max(1);
    let (audio, cycles) = caller_audio(seconds);
    let seconds = audio.len() as f64 / 8000.0;
    println!("media plane, {seconds:.1} s of audio per call, rounds of at least 0.3 s CPU, median of {rounds} rounds, one thread\n");

    let (decode_ns, _) = measure(rounds, || {
        let mut pcm = Vec::with_capacity(FRAME_SAMPLES);
        let mut sum = 0i64;
        for frame in audio.chunks(FRAME_SAMPLES) {
            decode_alaw(black_box(frame), &mut pcm);
            sum += i64::from(pcm[0]);
        }
        black_box(sum)
    })?;
    let (detect_ns, keys) = measure(rounds, || {
        let mut d = ToneDetector::new();
        let mut events = Vec::new();
        for frame in audio.chunks(FRAME_SAMPLES) {
            d.push_g711(Law::Alaw, black_box(frame), &mut events);
        }
        d.finish(&mut events);
        events
            .iter()
            .filter(|e| matches!(e, ToneEvent::Started { .. }))
            .count()
    })?;
    println!(
        "G.711 A-law decode              {:>8.1} µs CPU per second of audio",
        per_second(decode_ns, seconds)
    );
    if keys != cycles * 16 {
        return Err(format!(
            "the detector found {keys} keys where the audio holds {}",
            cycles * 16
        )
        .into());
    }
    println!(
        "decode + in-band DTMF detector  {:>8.1} µs CPU per second of audio (found all {keys} keys, no other)",
        per_second(detect_ns, seconds)
    );
    println!(
        "  one core listens to           {:>8.0} legs at once",
        1e6 / per_second(detect_ns, seconds)
    );

    let rfc = rfc4733(rounds, seconds as usize)?;
    println!(
        "RFC 4733 receiver               {:>8.3} µs CPU per packet",
        rfc
    );

    let kek = KeyEncryptionKey::generate();
    let agent: Vec<u8> = audio.iter().rev().copied().collect();
    let (write_ns, (file, share)) = measure(rounds, || write_recording(&kek, &audio, &agent))?;
    let file = file?;
    let (read_ns, read_ok) = measure(rounds, || read_recording(&kek, &share, &file))?;
    println!(
        "recording writer (stereo)       {:>8.1} µs CPU per call-second ({:.0} bytes per second of call)",
        per_second(write_ns, seconds),
        file.len() as f64 / seconds
    );
    println!("recording reader (decrypt)      {:>8.1} µs CPU per call-second (read back intact: {read_ok})", per_second(read_ns, seconds));
    let (same_ns, relayed) = measure(rounds, || relay(&audio, 8))?;
    let (transcode_ns, _) = measure(rounds, || relay(&audio, 0))?;
    println!(
        "bridge relay, same law          {:>8.3} µs CPU per packet (parse, re-stamp, write; {relayed} packets)",
        same_ns / relayed as f64 / 1000.0
    );
    println!(
        "bridge relay, A-law → µ-law     {:>8.3} µs CPU per packet",
        transcode_ns / relayed as f64 / 1000.0
    );
    let (secure_ns, _) = measure(rounds, || secure_relay(&audio, false))?;
    let (masked_n, leaked) = secure_relay(&audio, true);
    if masked_n != relayed || leaked != 0 {
        return Err(format!(
            "secure relay: {masked_n} of {relayed} packets relayed, {leaked} keys detectable after masking"
        )
        .into());
    }
    println!(
        "secure relay (mask + relay)     {:>8.3} µs CPU per packet; {:.1} µs per call-second (50 packets); {:.1}× the plain relay",
        secure_ns / relayed as f64 / 1000.0,
        50.0 * secure_ns / relayed as f64 / 1000.0,
        secure_ns / same_ns
    );
    println!(
        "\nper bridged, recorded call-second with both legs listened to and relayed both ways: {:.1} µs CPU (no sockets)",
        2.0 * per_second(detect_ns, seconds)
            + per_second(write_ns, seconds)
            + 2.0 * 50.0 * same_ns / relayed as f64 / 1000.0
    );
    Ok(())
}

/// The bridge's relay (`sip::bridge::Relay`) over the caller's audio as 20 ms RTP packets, to a
/// leg of payload type `to_codec`; the number of packets relayed.
fn relay(audio: &[u8], to_codec: u8) -> usize {
    use callguard_telephony::media::rtp::RtpHeader;
    use callguard_telephony::sip::bridge::{LegFormat, Relay, Restamp};
    let from = LegFormat {
        codec: 8,
        telephone_event: Some(101),
    };
    let to = LegFormat {
        codec: to_codec,
        telephone_event: Some(96),
    };
    let mut r = Relay::new(from, to, Restamp::new(7, 0, 0));
    let (mut input, mut out, mut n) = (Vec::with_capacity(200), Vec::with_capacity(200), 0);
    for (i, frame) in audio.chunks_exact(FRAME_SAMPLES).enumerate() {
        input.clear();
        let h = RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: i as u16,
            timestamp: (i * FRAME_SAMPLES) as u32,
            ssrc: 0x1234,
        };
        if h.write(frame, &mut input).is_err() {
            continue;
        }
        let Ok(p) = RtpPacket::parse(black_box(&input)) else {
            continue;
        };
        if r.relay(&p, &mut out) {
            n += 1;
        }
        black_box(&out);
    }
    n
}

/// Secure mode's relay toward the agent over the caller's audio (speech and in-band keys): each
/// packet masked (`SecureMedia::caller_packet`: delay line + detector) then relayed; the number
/// of packets relayed and, with `check_output`, the keys still detectable in what came out (must
/// be 0).
fn secure_relay(audio: &[u8], check_output: bool) -> (usize, usize) {
    use callguard_telephony::media::mask::MaskStyle;
    use callguard_telephony::media::rtp::RtpHeader;
    use callguard_telephony::sip::bridge::{LegFormat, Relay, Restamp};
    use callguard_telephony::sip::secure::SecureMedia;
    let leg = LegFormat {
        codec: 8,
        telephone_event: Some(101),
    };
    let mut r = Relay::new(leg, leg, Restamp::new(7, 0, 0));
    let mut secure = SecureMedia::new(MaskStyle::Tone);
    let mut check = ToneDetector::new();
    let mut events = Vec::new();
    let (mut input, mut out, mut n) = (Vec::with_capacity(200), Vec::with_capacity(200), 0);
    for (i, frame) in audio.chunks_exact(FRAME_SAMPLES).enumerate() {
        input.clear();
        let h = RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: i as u16,
            timestamp: (i * FRAME_SAMPLES) as u32,
            ssrc: 0x1234,
        };
        if h.write(frame, &mut input).is_err() {
            continue;
        }
        let Ok(p) = RtpPacket::parse(black_box(&input)) else {
            continue;
        };
        let relayed = secure
            .caller_packet(&p, 8)
            .is_some_and(|m| r.relay(&m, &mut out));
        if relayed {
            n += 1;
            // A separate, unmeasured pass checks the output.
            if check_output {
                if let Ok(o) = RtpPacket::parse(&out) {
                    check.push_g711(Law::Alaw, o.payload, &mut events);
                }
            }
        }
        black_box(&out);
    }
    let leaked = events
        .iter()
        .filter(|e| matches!(e, ToneEvent::Started { .. }))
        .count();
    (n, leaked)
}

/// CPU per RFC 4733 packet: parse plus receiver, on a stream of presses.
fn rfc4733(rounds: usize, seconds: usize) -> Res<f64> {
    let sender = EventSender {
        payload_type: 101,
        ssrc: 0x5eed,
        volume: 10,
    };
    let mut packets = Vec::new();
    let (mut seq, mut ts) = (0u16, 0u32);
    for n in 0..seconds * 2 {
        let key = Key::all().nth(n % 16).ok_or("no key")?;
        packets.extend(sender.press(key, ts, 800, 160, &mut seq)?);
        ts = ts.wrapping_add(4000);
    }
    let (ns, presses) = measure(rounds, || {
        let mut r = EventReceiver::new(101);
        let mut presses = 0;
        for (i, p) in packets.iter().enumerate() {
            if let Ok(packet) = RtpPacket::parse(black_box(p)) {
                if let Ok(Some(_)) = r.push(&packet, i as u64 * 20) {
                    presses += 1;
                }
            }
        }
        presses
    })?;
    if presses != seconds * 2 {
        return Err(format!(
            "receiver counted {presses} presses, expected {}",
            seconds * 2
        )
        .into());
    }
    Ok(ns / 1000.0 / packets.len() as f64)
}

fn write_recording(
    kek: &KeyEncryptionKey,
    caller: &[u8],
    agent: &[u8],
) -> (Res<Vec<u8>>, KeyShare) {
    let id = uuid::Uuid::from_bytes([1; 16]);
    let (mut w, share) =
        match RecordingWriter::create(Vec::with_capacity(caller.len() * 2 + 65_536), kek, id) {
            Ok(x) => x,
            Err(e) => return (Err(e.into()), KeyShare(Vec::new())),
        };
    for (c, a) in caller
        .chunks(FRAME_SAMPLES)
        .zip(agent.chunks(FRAME_SAMPLES))
    {
        if let Err(e) = w.push(c, a) {
            return (Err(e.into()), share);
        }
    }
    (w.finish().map_err(Into::into), share)
}

fn read_recording(kek: &KeyEncryptionKey, share: &KeyShare, file: &[u8]) -> bool {
    let Ok(mut r) = RecordingReader::open(file, kek, share) else {
        return false;
    };
    let mut bytes = 0usize;
    loop {
        match r.next_chunk() {
            Ok(Some(callguard_core::recording::Chunk::Audio { stereo, .. })) => {
                bytes += stereo.len()
            }
            Ok(Some(_)) => {}
            Ok(None) => return black_box(bytes) > 0,
            Err(_) => return false,
        }
    }
}
