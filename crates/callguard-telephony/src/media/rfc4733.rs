//! RFC 4733 telephone events ("RFC 2833 DTMF"): the 4-byte payload, a receiver that turns a
//! packet stream into key presses, and a sender that produces a correct event stream.
//!
//! A sender repeats an event's packets while the key is held (same RTP timestamp, growing
//! duration, marker on the first) and sends the end packet three times. Sequence numbers
//! differ between senders, so a press is identified by (SSRC, RTP timestamp, event) and counted
//! once, whether its first packets, its end packets or all of them arrive, or arrive twice.

use super::rtp::{RtpError, RtpHeader, RtpPacket};
use super::Key;

/// A telephone-event payload that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rfc4733Error {
    /// Fewer than the 4 bytes of one event.
    #[error("telephone-event payload of {0} bytes is shorter than the 4 bytes of an event")]
    TooShort(usize),
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code: 0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash, others.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// The power level in −dBm0 (0–63).
    pub volume: u8,
    /// The duration so far, in timestamp units (samples at 8 kHz).
    pub duration: u16,
}

impl std::fmt::Debug for TelephoneEvent {
    // The event is a keypad digit, card data during a payment: it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelephoneEvent")
            .field("end", &self.end)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl TelephoneEvent {
    /// Decodes the first event of a payload. The reserved bit is ignored, as the RFC asks
    /// (sipp's `play_dtmf` sets it).
    pub fn decode(payload: &[u8]) -> Result<Self, Rfc4733Error> {
        if payload.len() < 4 {
            return Err(Rfc4733Error::TooShort(payload.len()));
        }
        Ok(TelephoneEvent {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3F,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// Encodes the payload (reserved bit clear).
    pub fn encode(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A key press, reported once however many of its packets arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPress {
    /// The key.
    pub key: Key,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The RTP timestamp of the event's start.
    pub timestamp: u32,
}

type EventId = (u32, u32, u8);

#[derive(Debug, Clone, Copy)]
struct Held {
    id: EventId,
    key: Key,
    last_packet_ms: u64,
}

/// How many finished presses the receiver remembers to drop late or repeated packets.
const REMEMBERED: usize = 16;

/// Turns one leg's telephone-event packets into key presses. Time is given by the caller
/// (milliseconds on any monotonic clock), so the receiver is deterministic.
#[derive(Debug)]
pub struct EventReceiver {
    payload_type: u8,
    timeout_ms: u64,
    held: Option<Held>,
    seen: [Option<EventId>; REMEMBERED],
    next_seen: usize,
}

/// A key whose end packets never came is released this long after its last packet.
pub const DEFAULT_TIMEOUT_MS: u64 = 300;

impl EventReceiver {
    /// A receiver for the telephone-event payload type negotiated on this leg (often 101).
    pub fn new(payload_type: u8) -> Self {
        EventReceiver {
            payload_type,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            held: None,
            seen: [None; REMEMBERED],
            next_seen: 0,
        }
    }

    /// The negotiated payload type.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Takes one RTP packet received at `now_ms`. Returns the key press it starts, if it is the
    /// first packet seen of a new press. Packets of another payload type are not ours and give
    /// `Ok(None)`; so do events that are not keys (flash, tones).
    pub fn push(
        &mut self,
        packet: &RtpPacket<'_>,
        now_ms: u64,
    ) -> Result<Option<KeyPress>, Rfc4733Error> {
        if packet.payload_type != self.payload_type {
            return Ok(None);
        }
        let event = TelephoneEvent::decode(packet.payload)?;
        self.poll(now_ms);
        let Some(key) = Key::from_event(event.event) else {
            return Ok(None);
        };
        let id = (packet.ssrc, packet.timestamp, event.event);
        let known = self.seen.contains(&Some(id));
        if !known {
            self.seen[self.next_seen] = Some(id);
            self.next_seen = (self.next_seen + 1) % REMEMBERED;
        }
        let same_as_held = self.held.is_some_and(|h| h.id == id);
        if event.end {
            if same_as_held || !known {
                self.held = None;
            }
        } else if same_as_held || !known {
            self.held = Some(Held {
                id,
                key,
                last_packet_ms: now_ms,
            });
        }
        Ok((!known).then_some(KeyPress {
            key,
            ssrc: packet.ssrc,
            timestamp: packet.timestamp,
        }))
    }

    /// Releases a held key whose packets stopped (all its end packets lost). Returns it.
    pub fn poll(&mut self, now_ms: u64) -> Option<Key> {
        let held = self.held?;
        if now_ms.saturating_sub(held.last_packet_ms) >= self.timeout_ms {
            self.held = None;
            return Some(held.key);
        }
        None
    }

    /// The key currently held down, if any.
    pub fn held(&self) -> Option<Key> {
        self.held.map(|h| h.key)
    }
}

/// Produces the packets of key presses on one leg: the sender owns the SSRC and takes the
/// leg's sequence numbers, shared with its audio packets.
#[derive(Debug, Clone, Copy)]
pub struct EventSender {
    /// The negotiated telephone-event payload type.
    pub payload_type: u8,
    /// The leg's SSRC.
    pub ssrc: u32,
    /// The power level to announce, in −dBm0.
    pub volume: u8,
}

impl EventSender {
    /// The packets of one press starting at `timestamp` and lasting `duration` samples, one
    /// every `step` samples (160 for 20 ms), the end packet three times. `sequence` is advanced
    /// past the packets made. The caller sends them `step` apart and advances its audio
    /// timestamp by `duration`.
    pub fn press(
        &self,
        key: Key,
        timestamp: u32,
        duration: u16,
        step: u16,
        sequence: &mut u16,
    ) -> Result<Vec<Vec<u8>>, RtpError> {
        let step = step.max(1);
        let mut durations: Vec<u16> = (1..)
            .map(|k: u32| k * u32::from(step))
            .take_while(|&d| d < u32::from(duration))
            .map(|d| d as u16)
            .collect();
        let updates = durations.len();
        durations.extend([duration; 3]);
        durations
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let event = TelephoneEvent {
                    event: key.event(),
                    end: i >= updates,
                    volume: self.volume,
                    duration: d,
                };
                let header = RtpHeader {
                    marker: i == 0,
                    payload_type: self.payload_type,
                    sequence: *sequence,
                    timestamp,
                    ssrc: self.ssrc,
                };
                *sequence = sequence.wrapping_add(1);
                header.to_packet(&event.encode())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::read_pcap;
    use super::*;

    fn keys_of(receiver: &mut EventReceiver, packets: &[(u64, Vec<u8>)]) -> String {
        let mut out = String::new();
        for (ms, bytes) in packets {
            let Ok(p) = RtpPacket::parse(bytes) else {
                continue;
            };
            if let Some(press) = receiver.push(&p, *ms).unwrap() {
                out.push(press.key.as_char());
            }
        }
        out
    }

    fn sent(keys: &str, pt: u8) -> Vec<(u64, Vec<u8>)> {
        let sender = EventSender {
            payload_type: pt,
            ssrc: 0x1234_5678,
            volume: 10,
        };
        let (mut seq, mut ts, mut ms, mut out) = (65_530u16, 4_294_960_000u32, 0u64, Vec::new());
        for c in keys.chars() {
            for p in sender
                .press(Key::from_char(c).unwrap(), ts, 1280, 160, &mut seq)
                .unwrap()
            {
                out.push((ms, p));
                ms += 20;
            }
            ts = ts.wrapping_add(1280 + 2400);
            ms += 300;
        }
        out
    }

    #[test]
    fn payload_encodes_and_decodes() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1280,
        };
        assert_eq!(e.encode(), [11, 0x8A, 0x05, 0x00]);
        assert_eq!(TelephoneEvent::decode(&e.encode()), Ok(e));
        assert_eq!(
            TelephoneEvent::decode(&[1, 2, 3]),
            Err(Rfc4733Error::TooShort(3))
        );
        // The reserved bit (sipp sets it) does not change the volume or the end flag.
        let r = TelephoneEvent::decode(&[2, 0xCA, 6, 0x40]).unwrap();
        assert_eq!((r.end, r.volume, r.duration), (true, 10, 1600));
    }

    #[test]
    fn a_sent_stream_gives_each_key_once_across_sequence_wraparound() {
        let packets = sent("0123456789*#ABCD", 101);
        assert_eq!(packets.len(), 16 * (7 + 3));
        assert_eq!(
            keys_of(&mut EventReceiver::new(101), &packets),
            "0123456789*#ABCD"
        );
    }

    #[test]
    fn the_same_key_twice_counts_twice_and_repeated_end_packets_once() {
        let packets = sent("11", 101);
        let mut r = EventReceiver::new(101);
        assert_eq!(keys_of(&mut r, &packets), "11");
        assert_eq!(r.held(), None, "the end packets released the key");
    }

    #[test]
    fn duplicated_and_reordered_packets_count_once() {
        let mut packets = sent("42", 101);
        let copy = packets.clone();
        packets.extend(copy.into_iter().map(|(ms, p)| (ms + 5_000, p)));
        packets.swap(1, 3);
        assert_eq!(keys_of(&mut EventReceiver::new(101), &packets), "42");
    }

    #[test]
    fn a_press_whose_end_packets_are_all_lost_ends_by_timeout() {
        let packets: Vec<_> = sent("5", 101)
            .into_iter()
            .filter(|(_, p)| p[13] & 0x80 == 0)
            .collect();
        let last_ms = packets.last().unwrap().0;
        let mut r = EventReceiver::new(101);
        assert_eq!(keys_of(&mut r, &packets), "5");
        assert!(r.held().is_some());
        assert_eq!(r.poll(last_ms + DEFAULT_TIMEOUT_MS - 1), None);
        assert_eq!(
            r.poll(last_ms + DEFAULT_TIMEOUT_MS).map(Key::as_char),
            Some('5')
        );
        assert_eq!(r.held(), None);
    }

    #[test]
    fn a_press_seen_only_by_its_end_packets_counts_once() {
        let packets: Vec<_> = sent("7", 101)
            .into_iter()
            .filter(|(_, p)| p[13] & 0x80 != 0)
            .collect();
        assert_eq!(packets.len(), 3);
        let mut r = EventReceiver::new(101);
        assert_eq!(keys_of(&mut r, &packets), "7");
        assert_eq!(r.held(), None);
    }

    #[test]
    fn flash_other_payload_types_and_short_payloads_give_no_key() {
        let mut r = EventReceiver::new(101);
        let flash = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 1,
            timestamp: 1,
            ssrc: 1,
        }
        .to_packet(
            &TelephoneEvent {
                event: 16,
                end: false,
                volume: 10,
                duration: 160,
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(r.push(&RtpPacket::parse(&flash).unwrap(), 0), Ok(None));
        assert_eq!(
            keys_of(&mut r, &sent("1", 96)),
            "",
            "payload type 96 is not the negotiated 101"
        );
        let short = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 2,
            timestamp: 2,
            ssrc: 1,
        }
        .to_packet(&[1, 2])
        .unwrap();
        assert_eq!(
            r.push(&RtpPacket::parse(&short).unwrap(), 0),
            Err(Rfc4733Error::TooShort(2))
        );
    }

    #[test]
    fn each_bundled_sipp_pcap_gives_its_one_key() {
        for (name, key) in [
            ("0", '0'),
            ("1", '1'),
            ("2", '2'),
            ("3", '3'),
            ("4", '4'),
            ("5", '5'),
            ("6", '6'),
            ("7", '7'),
            ("8", '8'),
            ("9", '9'),
            ("star", '*'),
            ("pound", '#'),
        ] {
            let path = format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap");
            let packets: Vec<_> = read_pcap(&path)
                .into_iter()
                .map(|d| (d.time_us / 1000, d.payload))
                .collect();
            assert_eq!(packets.len(), 10, "{path}");
            let mut r = EventReceiver::new(101);
            assert_eq!(keys_of(&mut r, &packets), key.to_string(), "{path}");
            assert_eq!(r.held(), None, "{path}: the end packets released the key");
        }
    }

    #[test]
    fn sipp_play_dtmf_on_payload_type_96_with_filler_97_gives_its_keys() {
        // Captured from sipp 3.6.1 `play_dtmf="12"`: PT 97 filler first (sequence step 2),
        // PT 96 events with the reserved bit set on some packets.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sipp_play_dtmf_12.pcap"
        );
        let packets: Vec<_> = read_pcap(path)
            .into_iter()
            .filter(|d| d.dst_port == 6000)
            .map(|d| (d.time_us / 1000, d.payload))
            .collect();
        assert_eq!(keys_of(&mut EventReceiver::new(96), &packets), "12");
        assert_eq!(
            keys_of(&mut EventReceiver::new(101), &packets),
            "",
            "a leg that negotiated 101 ignores it"
        );
    }
}
