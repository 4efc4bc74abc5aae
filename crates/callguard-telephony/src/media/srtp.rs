//! SRTP (RFC 3711) for the agent's leg: AES-CM-128 encryption and HMAC-SHA1-80 authentication
//! of RTP packets, keyed by the 30-byte master key and salt each side sends in its SDP
//! (SDES, RFC 4568: `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:…`). Pure functions over
//! bytes; the edge calls [`Protect`] before sending to the agent and [`Unprotect`] on what the
//! agent sends. The edge sends no RTCP on either leg, so only RTP is protected.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// The only crypto suite offered and accepted.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
const KEY_LEN: usize = 16;
const SALT_LEN: usize = 14;
const AUTH_KEY_LEN: usize = 20;
const TAG_LEN: usize = 10;
/// Packets up to this far behind the newest one are still accepted (once each).
const REPLAY_WINDOW: u64 = 64;

/// Why a packet was not protected or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("the packet is too short for its RTP header and SRTP tag")]
    TooShort,
    #[error("the SRTP authentication tag does not match")]
    BadTag,
    #[error("the SRTP packet was already received or is too old")]
    Replayed,
}

/// Why an SDES `a=crypto` attribute cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("the crypto attribute is malformed")]
    Malformed,
    #[error("the crypto suite is not {SUITE}")]
    Suite,
    #[error("the key parameter is not 30 bytes of base64")]
    KeyLength,
    #[error("master key identifiers (MKI) are not supported")]
    Mki,
}

/// One side's master key and salt (30 bytes). `Debug` prints nothing of it; it is wiped when
/// dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// A fresh random key and salt (one per call leg and direction).
    #[must_use]
    pub fn random() -> Self {
        let mut m = MasterKey {
            key: [0; KEY_LEN],
            salt: [0; SALT_LEN],
        };
        rand::rngs::OsRng.fill_bytes(&mut m.key);
        rand::rngs::OsRng.fill_bytes(&mut m.salt);
        m
    }

    /// The key and salt from their 30 bytes (key first).
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN + SALT_LEN {
            return None;
        }
        let mut m = MasterKey {
            key: [0; KEY_LEN],
            salt: [0; SALT_LEN],
        };
        m.key.copy_from_slice(&bytes[..KEY_LEN]);
        m.salt.copy_from_slice(&bytes[KEY_LEN..]);
        Some(m)
    }

    /// The SDP attribute value offering this key: `1 AES_CM_128_HMAC_SHA1_80 inline:…`.
    #[must_use]
    pub fn crypto_attribute(&self, tag: u32) -> String {
        let mut bytes = [0u8; KEY_LEN + SALT_LEN];
        bytes[..KEY_LEN].copy_from_slice(&self.key);
        bytes[KEY_LEN..].copy_from_slice(&self.salt);
        let text = format!(
            "{tag} {SUITE} inline:{}",
            data_encoding::BASE64.encode(&bytes)
        );
        bytes.zeroize();
        text
    }

    /// Reads the value of an `a=crypto:` attribute (`tag suite inline:key[|lifetime]`):
    /// its tag and key. Only [`SUITE`] without MKI is accepted.
    pub fn from_crypto_attribute(value: &str) -> Result<(u32, MasterKey), SdesError> {
        let mut parts = value.split_whitespace();
        let tag = parts
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or(SdesError::Malformed)?;
        if parts.next() != Some(SUITE) {
            return Err(SdesError::Suite);
        }
        let params = parts.next().ok_or(SdesError::Malformed)?;
        // One key: `inline:<base64>` then optional `|lifetime` and `|MKI:length`.
        let inline = params
            .split(';')
            .next()
            .and_then(|p| p.strip_prefix("inline:"))
            .ok_or(SdesError::Malformed)?;
        let mut fields = inline.split('|');
        let b64 = fields.next().ok_or(SdesError::Malformed)?;
        if fields.any(|f| f.contains(':')) {
            return Err(SdesError::Mki);
        }
        let mut bytes = data_encoding::BASE64
            .decode(b64.as_bytes())
            .or_else(|_| data_encoding::BASE64_NOPAD.decode(b64.as_bytes()))
            .map_err(|_| SdesError::KeyLength)?;
        let key = MasterKey::from_bytes(&bytes).ok_or(SdesError::KeyLength);
        bytes.zeroize();
        Ok((tag, key?))
    }
}

/// The session keys of one SRTP stream, derived from a master key (RFC 3711 §4.3, key
/// derivation rate 0).
#[derive(Zeroize, ZeroizeOnDrop)]
struct SessionKeys {
    cipher: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
    auth: [u8; AUTH_KEY_LEN],
}

/// The AES-CM pseudo-random function of RFC 3711 §4.3.1 for `label`, filling `out`.
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(&master.salt);
    // key_id = label || r (r = 0) sits at the right of the 112-bit salt.
    iv[7] ^= label;
    out.fill(0);
    Aes128Ctr::new(&master.key.into(), &iv.into()).apply_keystream(out);
}

impl SessionKeys {
    fn rtp(master: &MasterKey) -> Self {
        let mut k = SessionKeys {
            cipher: [0; KEY_LEN],
            salt: [0; SALT_LEN],
            auth: [0; AUTH_KEY_LEN],
        };
        derive(master, 0, &mut k.cipher);
        derive(master, 1, &mut k.auth);
        derive(master, 2, &mut k.salt);
        k
    }

    /// XORs the AES-CM keystream of packet `index` of `ssrc` into `data` (§4.1.1).
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        Aes128Ctr::new(&self.cipher.into(), &iv.into()).apply_keystream(data);
    }

    fn mac(&self, authenticated: &[u8], roc: u32) -> HmacSha1 {
        // HMAC pads a key shorter than its 64-byte block with zeros: padding it here gives the
        // same MAC through the infallible constructor.
        let mut block = [0u8; 64];
        block[..AUTH_KEY_LEN].copy_from_slice(&self.auth);
        let mut mac = <HmacSha1 as hmac::digest::KeyInit>::new(&block.into());
        block.zeroize();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        mac
    }
}

/// Bytes of the RTP header (fixed part, CSRCs, extension) of `packet`.
fn header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return Err(SrtpError::TooShort);
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4).ok_or(SrtpError::TooShort)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if packet.len() < len {
        return Err(SrtpError::TooShort);
    }
    Ok(len)
}

fn sequence_and_ssrc(packet: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([packet[2], packet[3]]),
        u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    )
}

/// The rollover counter (ROC) and highest sequence number seen (RFC 3711 §3.3.1, appendix A).
#[derive(Debug, Default, Clone, Copy)]
struct Rollover {
    roc: u32,
    highest: Option<u16>,
}

impl Rollover {
    /// The ROC a packet with sequence number `seq` most likely belongs to.
    fn guess(&self, seq: u16) -> u32 {
        let Some(s_l) = self.highest else {
            return self.roc;
        };
        if s_l < 0x8000 {
            if i32::from(seq) - i32::from(s_l) > 0x8000 {
                return self.roc.wrapping_sub(1);
            }
        } else if i32::from(s_l) - 0x8000 > i32::from(seq) {
            return self.roc.wrapping_add(1);
        }
        self.roc
    }

    fn index(roc: u32, seq: u16) -> u64 {
        (u64::from(roc) << 16) | u64::from(seq)
    }

    fn highest_index(&self) -> Option<u64> {
        self.highest.map(|s| Self::index(self.roc, s))
    }

    /// Moves on to packet (`roc`, `seq`) when it is the newest so far.
    fn update(&mut self, roc: u32, seq: u16) {
        let newer = match self.highest_index() {
            None => true,
            Some(h) => Self::index(roc, seq) > h,
        };
        if newer {
            self.roc = roc;
            self.highest = Some(seq);
        }
    }
}

/// Protects the RTP stream we send (one master key, one sender).
pub struct Protect {
    keys: SessionKeys,
    rollover: Rollover,
}

impl fmt::Debug for Protect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protect(redacted)")
    }
}

impl Protect {
    #[must_use]
    pub fn new(master: &MasterKey) -> Self {
        Self {
            keys: SessionKeys::rtp(master),
            rollover: Rollover::default(),
        }
    }

    /// Turns the RTP packet in `packet` into its SRTP packet, in place (the payload is
    /// encrypted and the 10-byte tag appended).
    pub fn protect(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header = header_len(packet)?;
        let (seq, ssrc) = sequence_and_ssrc(packet);
        let roc = self.rollover.guess(seq);
        self.rollover.update(roc, seq);
        self.keys
            .crypt(ssrc, Rollover::index(roc, seq), &mut packet[header..]);
        let tag = self.keys.mac(packet, roc).finalize().into_bytes();
        packet.extend_from_slice(&tag[..TAG_LEN]);
        Ok(())
    }
}

/// Checks and decrypts the RTP stream a peer sends (one master key, the peer's).
pub struct Unprotect {
    keys: SessionKeys,
    /// Rollover and replay state per synchronisation source, the most recent last.
    sources: Vec<Source>,
}

/// Sources tracked at once; a softphone uses one, maybe a new one after a re-INVITE.
const MAX_SOURCES: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    rollover: Rollover,
    /// Bit n set: the packet n behind the highest index was received.
    seen: u64,
}

impl fmt::Debug for Unprotect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unprotect(redacted)")
    }
}

impl Unprotect {
    #[must_use]
    pub fn new(master: &MasterKey) -> Self {
        Self {
            keys: SessionKeys::rtp(master),
            sources: Vec::with_capacity(MAX_SOURCES),
        }
    }

    /// Turns the SRTP packet in `packet` back into RTP, in place; returns the RTP packet's
    /// length (the tag is cut off). A packet whose tag does not match, or one already
    /// received, is refused and changes nothing.
    pub fn unprotect(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let header = header_len(packet)?;
        if packet.len() < header + TAG_LEN {
            return Err(SrtpError::TooShort);
        }
        let len = packet.len() - TAG_LEN;
        let (body, tag) = packet.split_at_mut(len);
        let (seq, ssrc) = sequence_and_ssrc(body);
        let at = self.sources.iter().position(|s| s.ssrc == ssrc);
        let mut source = at.map_or(
            Source {
                ssrc,
                rollover: Rollover::default(),
                seen: 0,
            },
            |i| self.sources[i],
        );
        let roc = source.rollover.guess(seq);
        let index = Rollover::index(roc, seq);
        let behind = source
            .rollover
            .highest_index()
            .map(|h| h.wrapping_sub(index));
        if let Some(b) = behind.filter(|&b| b < (1 << 63)) {
            if b >= REPLAY_WINDOW || source.seen & (1 << b) != 0 {
                return Err(SrtpError::Replayed);
            }
        }
        self.keys
            .mac(body, roc)
            .verify_truncated_left(tag)
            .map_err(|_| SrtpError::BadTag)?;
        match behind {
            Some(b) if b < (1 << 63) => source.seen |= 1 << b,
            Some(b) => {
                let ahead = b.wrapping_neg();
                source.seen = if ahead >= REPLAY_WINDOW {
                    1
                } else {
                    (source.seen << ahead) | 1
                };
            }
            None => source.seen = 1,
        }
        source.rollover.update(roc, seq);
        // Only an authentic packet makes its source tracked (or the most recent one).
        if let Some(i) = at {
            self.sources.remove(i);
        } else if self.sources.len() >= MAX_SOURCES {
            self.sources.remove(0);
        }
        self.sources.push(source);
        self.keys.crypt(ssrc, index, &mut body[header..]);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.replace(' ', "").as_bytes())
            .unwrap()
    }

    /// RFC 3711 appendix B.3's master key and salt.
    fn rfc_master() -> MasterKey {
        let mut bytes = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        bytes.extend(hex("0EC675AD498AFEEBB6960B3AABE6"));
        MasterKey::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn session_keys_are_derived_as_in_rfc_3711_appendix_b3() {
        let keys = SessionKeys::rtp(&rfc_master());
        assert_eq!(
            keys.cipher.to_vec(),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            keys.auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    #[test]
    fn the_aes_cm_keystream_matches_rfc_3711_appendix_b2() {
        let keys = SessionKeys {
            cipher: hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap(),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            auth: [0; AUTH_KEY_LEN],
        };
        let mut stream = vec![0u8; 16 * 3];
        keys.crypt(0, 0, &mut stream);
        assert_eq!(
            stream,
            hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
        );
        // Blocks 0xFEFF..0xFF01 of the same stream.
        let mut far = vec![0u8; 16 * 0xFF02];
        keys.crypt(0, 0, &mut far);
        assert_eq!(
            far[16 * 0xFEFF..].to_vec(),
            hex("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44")
        );
    }

    #[test]
    fn a_packet_is_protected_as_libsrtp_does_and_unprotected_back() {
        // libsrtp's own AES_CM_128_HMAC_SHA1_80 test packet (srtp_driver.c), keyed with the
        // RFC 3711 master key and salt.
        let plain = hex("800f1234decafbadcafebabe abababababababababababababababab");
        let mut out = plain.clone();
        Protect::new(&rfc_master()).protect(&mut out).unwrap();
        assert_eq!(
            out,
            hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb")
        );
        let n = Unprotect::new(&rfc_master()).unprotect(&mut out).unwrap();
        assert_eq!(&out[..n], &plain[..]);
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        crate::media::rtp::RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0x1234_5678,
        }
        .to_packet(payload)
        .unwrap()
    }

    #[test]
    fn a_flipped_bit_or_the_wrong_key_is_refused_and_a_replay_is_refused() {
        let key = MasterKey::random();
        let (mut tx, mut rx) = (Protect::new(&key), Unprotect::new(&key));
        let mut srtp = rtp(7, &[0x55; 160]);
        tx.protect(&mut srtp).unwrap();
        assert_ne!(&srtp[12..172], &[0x55; 160][..], "the payload is encrypted");
        let mut flipped = srtp.clone();
        flipped[40] ^= 1;
        assert_eq!(rx.unprotect(&mut flipped), Err(SrtpError::BadTag));
        let other = MasterKey::random();
        assert_eq!(
            Unprotect::new(&other).unprotect(&mut srtp.clone()),
            Err(SrtpError::BadTag)
        );
        let mut got = srtp.clone();
        let n = rx.unprotect(&mut got).unwrap();
        assert_eq!(&got[..n], &rtp(7, &[0x55; 160])[..]);
        assert_eq!(rx.unprotect(&mut srtp), Err(SrtpError::Replayed));
        assert_eq!(rx.unprotect(&mut [0x80; 15]), Err(SrtpError::TooShort));
    }

    #[test]
    fn the_stream_survives_a_sequence_wrap_reordering_and_loss() {
        let key = MasterKey::random();
        let (mut tx, mut rx) = (Protect::new(&key), Unprotect::new(&key));
        let mut sent = Vec::new();
        for seq in (65_500u16..=65_535).chain(0..40) {
            let mut p = rtp(seq, &[seq as u8; 20]);
            tx.protect(&mut p).unwrap();
            sent.push((seq, p));
        }
        // Every third packet lost, neighbours swapped.
        let mut order: Vec<usize> = (0..sent.len()).filter(|i| i % 3 != 0).collect();
        for pair in order.chunks_mut(2) {
            pair.reverse();
        }
        for i in order {
            let (seq, mut p) = sent[i].clone();
            let n = rx.unprotect(&mut p).unwrap();
            assert_eq!(&p[..n], &rtp(seq, &[seq as u8; 20])[..], "packet {seq}");
        }
        // A packet far older than the replay window is refused.
        assert_eq!(
            rx.unprotect(&mut sent[1].1.clone()),
            Err(SrtpError::Replayed)
        );
    }

    #[test]
    fn a_new_source_from_the_same_peer_starts_its_own_stream_and_replay_window() {
        let key = MasterKey::random();
        let mut rx = Unprotect::new(&key);
        let packet = |ssrc: u32, seq: u16| {
            let mut p = crate::media::rtp::RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: seq,
                timestamp: 0,
                ssrc,
            }
            .to_packet(&[0x55; 20])
            .unwrap();
            Protect::new(&key).protect(&mut p).unwrap();
            p
        };
        for seq in 40_000..40_100 {
            rx.unprotect(&mut packet(1, seq)).unwrap();
        }
        // A new SSRC restarting low is a new stream, not a packet far in the past.
        rx.unprotect(&mut packet(2, 7)).unwrap();
        rx.unprotect(&mut packet(2, 8)).unwrap();
        assert_eq!(rx.unprotect(&mut packet(2, 7)), Err(SrtpError::Replayed));
        // The first source keeps its own window.
        rx.unprotect(&mut packet(1, 40_100)).unwrap();
        assert_eq!(
            rx.unprotect(&mut packet(1, 40_099)),
            Err(SrtpError::Replayed)
        );
    }

    #[test]
    fn sdes_attributes_carry_the_key_and_refuse_other_suites_and_mki() {
        let key = MasterKey::random();
        let attr = key.crypto_attribute(1);
        assert!(attr.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert_eq!(
            MasterKey::from_crypto_attribute(&attr),
            Ok((1, key.clone()))
        );
        let with_lifetime = format!("{attr}|2^31");
        assert_eq!(
            MasterKey::from_crypto_attribute(&with_lifetime).map(|k| k.0),
            Ok(1)
        );
        assert_eq!(
            MasterKey::from_crypto_attribute(&format!("{attr}|2^20|1:4")),
            Err(SdesError::Mki)
        );
        assert_eq!(
            MasterKey::from_crypto_attribute(&attr.replace("_80", "_32")),
            Err(SdesError::Suite)
        );
        assert_eq!(
            MasterKey::from_crypto_attribute("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"),
            Err(SdesError::KeyLength)
        );
        assert!(!format!("{key:?}").contains(&attr[33..]));
    }
}
