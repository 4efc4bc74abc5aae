//! RTP packets (RFC 3550 §5.1): parsing without copying, and building. Malformed input is
//! refused with an error that names what is wrong; nothing here panics on hostile bytes.

use std::fmt;

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed 12-byte header, its CSRC list or its extension need.
    #[error("RTP packet too short: {needed} bytes needed, {got} received")]
    TooShort {
        /// Bytes the header claims.
        needed: usize,
        /// Bytes received.
        got: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0} is not supported (only version 2)")]
    BadVersion(u8),
    /// The padding count is zero or longer than the payload.
    #[error("RTP padding of {0} bytes does not fit the packet")]
    BadPadding(usize),
    /// A payload longer than a single UDP datagram may carry.
    #[error("RTP payload of {0} bytes is too long to send")]
    TooLong(usize),
}

/// A parsed RTP packet borrowing the datagram it came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (the first packet of a talkspurt or of a telephone event).
    pub marker: bool,
    /// The payload type (7 bits).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp (8 kHz clock for G.711 and telephone events).
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    csrc: &'a [u8],
    /// The header extension: profile-defined 16 bits and its data (a multiple of 4 bytes).
    pub extension: Option<(u16, &'a [u8])>,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

impl fmt::Debug for RtpPacket<'_> {
    // The payload is call audio or a keypad event: it stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtpPacket")
            .field("marker", &self.marker)
            .field("payload_type", &self.payload_type)
            .field("sequence", &self.sequence)
            .field("timestamp", &self.timestamp)
            .field("ssrc", &format_args!("{:#010x}", self.ssrc))
            .field("csrc_count", &(self.csrc.len() / 4))
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        if data.len() < 12 {
            return Err(RtpError::TooShort {
                needed: 12,
                got: data.len(),
            });
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let padding = data[0] & 0x20 != 0;
        let has_extension = data[0] & 0x10 != 0;
        let csrc_count = usize::from(data[0] & 0x0F);
        let mut offset = 12 + 4 * csrc_count;
        if data.len() < offset {
            return Err(RtpError::TooShort {
                needed: offset,
                got: data.len(),
            });
        }
        let csrc = &data[12..offset];
        let extension = if has_extension {
            if data.len() < offset + 4 {
                return Err(RtpError::TooShort {
                    needed: offset + 4,
                    got: data.len(),
                });
            }
            let profile = u16::from_be_bytes([data[offset], data[offset + 1]]);
            let words = usize::from(u16::from_be_bytes([data[offset + 2], data[offset + 3]]));
            let end = offset + 4 + 4 * words;
            if data.len() < end {
                return Err(RtpError::TooShort {
                    needed: end,
                    got: data.len(),
                });
            }
            let ext = &data[offset + 4..end];
            offset = end;
            Some((profile, ext))
        } else {
            None
        };
        let mut end = data.len();
        if padding {
            let count = usize::from(data[end - 1]);
            if count == 0 || count > end - offset {
                return Err(RtpError::BadPadding(count));
            }
            end -= count;
        }
        Ok(RtpPacket {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7F,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            csrc,
            extension,
            payload: &data[offset..end],
        })
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// The header fields of a packet to send (no CSRC, no extension, no padding: what an edge
/// that terminates media sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The marker bit.
    pub marker: bool,
    /// The payload type.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
}

/// The largest payload [`RtpHeader::write`] accepts (a UDP datagram less the header).
pub const MAX_PAYLOAD: usize = 65_507 - 12;

impl RtpHeader {
    /// Appends the header and `payload` to `out` (not cleared, so a caller can reuse a buffer).
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(RtpError::TooLong(payload.len()));
        }
        out.reserve(12 + payload.len());
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        Ok(())
    }

    /// The header and `payload` as a new datagram.
    pub fn to_packet(&self, payload: &[u8]) -> Result<Vec<u8>, RtpError> {
        let mut out = Vec::with_capacity(12 + payload.len());
        self.write(payload, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_packet_parses_back_to_the_same_fields() {
        let header = RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xFFFF,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
        };
        let bytes = header.to_packet(&[0xD5; 160]).unwrap();
        assert_eq!(bytes.len(), 172);
        let p = RtpPacket::parse(&bytes).unwrap();
        assert!(p.marker);
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (8, 0xFFFF, 0xDEAD_BEEF, 0x0102_0304)
        );
        assert_eq!(p.payload, &[0xD5; 160][..]);
        assert_eq!(p.csrcs().count(), 0);
        assert!(p.extension.is_none());
    }

    #[test]
    fn csrc_extension_and_padding_are_taken_off_the_payload() {
        let mut b = vec![0xB2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]; // V=2 P X CC=2
        b.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 11]); // CSRCs
        b.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension, one word
        b.extend_from_slice(&[9, 9, 9]); // payload
        b.extend_from_slice(&[0, 0, 3]); // padding of 3
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(p.extension, Some((0xBEDE, &[1, 2, 3, 4][..])));
        assert_eq!(p.payload, &[9, 9, 9]);
    }

    #[test]
    fn malformed_packets_are_refused_with_the_reason() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort {
                needed: 12,
                got: 11
            })
        );
        let mut b = vec![0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadVersion(1)));
        b[0] = 0x81; // one CSRC announced, none present
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::TooShort {
                needed: 16,
                got: 12
            })
        );
        b[0] = 0x90; // extension announced, none present
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::TooShort {
                needed: 16,
                got: 12
            })
        );
        b[0] = 0x90;
        b.extend_from_slice(&[0, 0, 0, 2, 1, 1, 1, 1]); // extension claims 2 words, has 1
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::TooShort {
                needed: 24,
                got: 20
            })
        );
        let mut p = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0];
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding(0)));
        *p.last_mut().unwrap() = 4; // padding longer than the 3 bytes after the header
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding(4)));
        assert!(RtpPacket::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn every_truncation_of_a_packet_is_refused_or_parsed_without_panicking() {
        let mut b = vec![0xB1, 0x65, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7];
        b.extend_from_slice(&[0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 2]);
        for len in 0..=b.len() {
            let _ = RtpPacket::parse(&b[..len]);
        }
        for byte in 0..=255u8 {
            let mut c = b.clone();
            c[0] = byte;
            let _ = RtpPacket::parse(&c);
        }
    }

    #[test]
    fn debug_output_leaves_the_payload_out() {
        let bytes = RtpHeader {
            marker: false,
            payload_type: 101,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        }
        .to_packet(&[0x07, 0x8A, 0x06, 0x40])
        .unwrap();
        let text = format!("{:?}", RtpPacket::parse(&bytes).unwrap());
        assert!(text.contains("payload_len: 4"), "{text}");
        assert!(!text.contains("payload:"), "{text}");
    }
}
