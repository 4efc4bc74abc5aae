//! The RTP relay between a caller's leg and an agent's leg: each packet that arrives on one leg
//! is sent on the other at once (no buffering: the relay adds no frame of delay), re-stamped
//! into the outgoing leg's own SSRC, sequence and timestamp space. G.711 passes through when
//! both legs use the same law and is transcoded A-law ↔ µ-law otherwise; RFC 4733 events are
//! carried over to the other leg's negotiated payload type (dropped if that leg has none).

use crate::media::g711::Law;
use crate::media::rtp::{RtpHeader, RtpPacket};
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// What a leg negotiated: its G.711 payload type and its telephone-event type, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegFormat {
    pub codec: u8,
    pub telephone_event: Option<u8>,
}

impl LegFormat {
    fn law(self) -> Law {
        Law::from_payload_type(self.codec).unwrap_or(Law::Alaw)
    }
}

/// The agent's leg handed to the caller's media once the agent answered.
#[derive(Debug)]
pub struct AgentLeg {
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    pub format: LegFormat,
    /// SRTP keys when the leg negotiated them (`None`: plain RTP).
    pub srtp: Option<super::srtp_leg::SrtpLeg>,
    /// The stream already sent on this leg, when it moves from one relay to another (a
    /// transfer's hold and consultation): the next relay goes on with its SSRC, sequence and
    /// timestamp, so the softphone hears one continuous stream (a new talkspurt), not a new
    /// source. `None` for a leg nothing was sent on yet.
    pub sent: Option<Restamp>,
}

/// Re-stamps one direction of the relay: packets from any source come out as one continuous
/// stream of ours. A new source (SSRC) starts a new talkspurt (marker set) right after the last
/// packet sent; within a source, gaps and order are kept as they arrived.
#[derive(Debug, Clone)]
pub struct Restamp {
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    source: Option<Offsets>,
}

#[derive(Debug, Clone, Copy)]
struct Offsets {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Restamp {
    /// A stream of ours that continues at `sequence` and `timestamp` on `ssrc`.
    #[must_use]
    pub fn new(ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            next_sequence: sequence,
            next_timestamp: timestamp,
            source: None,
        }
    }

    /// A new stream of ours: random SSRC, sequence and timestamp (RFC 3550 §5.1).
    #[must_use]
    pub fn fresh() -> Self {
        Self::new(rand::random(), rand::random(), rand::random())
    }

    /// This stream going on after its last packet, whatever source comes next.
    #[must_use]
    pub fn continued(&self) -> Self {
        Self::new(self.ssrc, self.next_sequence, self.next_timestamp)
    }

    /// The header to send `packet` with, as payload type `payload_type`; `samples` is the
    /// media time the packet covers (0 for a telephone event, whose packets share a timestamp).
    pub fn stamp(&mut self, packet: &RtpPacket<'_>, payload_type: u8, samples: u32) -> RtpHeader {
        let mut marker = packet.marker;
        let off = match self.source {
            Some(o) if o.ssrc == packet.ssrc => o,
            _ => {
                marker = true;
                let o = Offsets {
                    ssrc: packet.ssrc,
                    sequence: self.next_sequence.wrapping_sub(packet.sequence),
                    timestamp: self.next_timestamp.wrapping_sub(packet.timestamp),
                };
                self.source = Some(o);
                o
            }
        };
        let sequence = packet.sequence.wrapping_add(off.sequence);
        let timestamp = packet.timestamp.wrapping_add(off.timestamp);
        // Only a packet ahead of the stream moves it on (a late one keeps its place).
        if sequence.wrapping_sub(self.next_sequence) < 0x8000 {
            self.next_sequence = sequence.wrapping_add(1);
            self.next_timestamp = timestamp.wrapping_add(samples);
        }
        RtpHeader {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc: self.ssrc,
        }
    }
}

/// One direction of the relay: from a leg of format `from` to a leg of format `to`.
#[derive(Debug, Clone)]
pub struct Relay {
    from: LegFormat,
    to: LegFormat,
    stamp: Restamp,
    payload: Vec<u8>,
}

impl Relay {
    #[must_use]
    pub fn new(from: LegFormat, to: LegFormat, stamp: Restamp) -> Self {
        Self {
            from,
            to,
            stamp,
            payload: Vec::with_capacity(160),
        }
    }

    /// The stream this relay sends, to be continued by the next relay on the same leg.
    #[must_use]
    pub fn stream(&self) -> Restamp {
        self.stamp.continued()
    }

    /// The sequence number and timestamp the next packet of this stream would carry.
    #[must_use]
    pub fn next(&self) -> (u16, u32) {
        (self.stamp.next_sequence, self.stamp.next_timestamp)
    }

    /// The datagram to send for `packet` (written into `out`, cleared first); false when the
    /// packet is not carried (a payload type the other leg did not negotiate).
    pub fn relay(&mut self, packet: &RtpPacket<'_>, out: &mut Vec<u8>) -> bool {
        out.clear();
        if packet.payload_type == self.from.codec {
            let header = self
                .stamp
                .stamp(packet, self.to.codec, packet.payload.len() as u32);
            let (from, to) = (self.from.law(), self.to.law());
            if from == to {
                return header.write(packet.payload, out).is_ok();
            }
            self.payload.clear();
            self.payload
                .extend(packet.payload.iter().map(|&c| from.transcode_to(to, c)));
            return header.write(&self.payload, out).is_ok();
        }
        match (self.from.telephone_event, self.to.telephone_event) {
            (Some(a), Some(b)) if a == packet.payload_type => {
                let header = self.stamp.stamp(packet, b, 0);
                header.write(packet.payload, out).is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc,
        }
        .to_packet(payload)
        .unwrap()
    }

    const ALAW: LegFormat = LegFormat {
        codec: 8,
        telephone_event: Some(101),
    };
    const ULAW: LegFormat = LegFormat {
        codec: 0,
        telephone_event: Some(96),
    };
    const ULAW_NO_EVENTS: LegFormat = LegFormat {
        codec: 0,
        telephone_event: None,
    };

    #[test]
    fn packets_are_restamped_into_the_outgoing_legs_stream_and_pass_through_unchanged() {
        let mut r = Relay::new(ALAW, ALAW, Restamp::new(0xAAAA, 500, 90_000));
        let mut out = Vec::new();
        let audio = [0x55u8; 160];
        for (i, seq) in [65_535u16, 0, 1].into_iter().enumerate() {
            let p = packet(8, seq, 1_000 + 160 * i as u32, 7, &audio);
            assert!(r.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
            let got = RtpPacket::parse(&out).unwrap();
            assert_eq!(got.ssrc, 0xAAAA);
            assert_eq!(got.sequence, 500 + i as u16);
            assert_eq!(got.timestamp, 90_000 + 160 * i as u32);
            assert_eq!(got.marker, i == 0, "a new source starts a talkspurt");
            assert_eq!(
                got.payload,
                &audio[..],
                "same law: the payload passes through"
            );
        }
        // The source changes (another SSRC): the stream goes on from where it was.
        let p = packet(8, 9, 77, 8, &audio);
        assert!(r.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
        let got = RtpPacket::parse(&out).unwrap();
        assert_eq!(
            (got.sequence, got.timestamp, got.marker),
            (503, 90_480, true)
        );
        // A late packet of the same source keeps its place and does not move the stream back.
        let p = packet(8, 8, 77u32.wrapping_sub(160), 8, &audio);
        assert!(r.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
        assert_eq!(RtpPacket::parse(&out).unwrap().sequence, 502);
        let p = packet(8, 10, 77 + 160, 8, &audio);
        assert!(r.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
        assert_eq!(RtpPacket::parse(&out).unwrap().sequence, 504);
    }

    #[test]
    fn alaw_is_transcoded_to_ulaw_and_events_take_the_other_legs_payload_type() {
        let mut r = Relay::new(ALAW, ULAW, Restamp::new(1, 0, 0));
        let mut out = Vec::new();
        let audio: Vec<u8> = (0..160u16).map(|i| (i % 256) as u8).collect();
        let p = packet(8, 1, 0, 7, &audio);
        assert!(r.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
        let got = RtpPacket::parse(&out).unwrap();
        assert_eq!(got.payload_type, 0);
        for (&a, &u) in audio.iter().zip(got.payload) {
            assert_eq!(u, Law::Alaw.transcode_to(Law::Ulaw, a));
        }
        let ev = packet(101, 2, 160, 7, &[5, 0x8A, 0x05, 0x00]);
        assert!(r.relay(&RtpPacket::parse(&ev).unwrap(), &mut out));
        let got = RtpPacket::parse(&out).unwrap();
        assert_eq!(got.payload_type, 96);
        assert_eq!(got.payload, &[5, 0x8A, 0x05, 0x00]);
        // A leg without telephone-events gets none; unknown payload types are not carried.
        let mut r = Relay::new(ALAW, ULAW_NO_EVENTS, Restamp::new(1, 0, 0));
        assert!(!r.relay(&RtpPacket::parse(&ev).unwrap(), &mut out));
        let comfort_noise = packet(13, 3, 320, 7, &[40]);
        assert!(!r.relay(&RtpPacket::parse(&comfort_noise).unwrap(), &mut out));
    }

    /// A leg moved to another relay (a transfer's consultation, back to the caller) goes on
    /// hearing one stream: the next relay continues the last one's SSRC, sequence and
    /// timestamp, starting a talkspurt, whoever the new source is.
    #[test]
    fn a_relay_that_continues_a_legs_stream_keeps_its_source_and_numbering() {
        let mut before = Relay::new(ALAW, ALAW, Restamp::new(0xBEEF, 10, 4_000));
        let mut out = Vec::new();
        let audio = [0x55u8; 160];
        for i in 0..3u16 {
            let p = packet(8, 100 + i, 160 * u32::from(i), 7, &audio);
            assert!(before.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
        }
        let mut after = Relay::new(ULAW, ALAW, before.stream());
        let p = packet(0, 5_000, 123_456, 99, &audio);
        assert!(after.relay(&RtpPacket::parse(&p).unwrap(), &mut out));
        let got = RtpPacket::parse(&out).unwrap();
        assert_eq!(
            (got.ssrc, got.sequence, got.timestamp, got.marker),
            (0xBEEF, 13, 4_480, true)
        );
        assert_ne!(
            Restamp::fresh().ssrc,
            0xBEEF,
            "a fresh stream is another source"
        );
    }
}
