//! SDES (RFC 4568) on the agent's leg: the offer to the softphone as `RTP/SAVP` with our
//! `a=crypto` key, and the softphone's answer read back for its key. The keys travel inside
//! SIP, so they are only worth as much as the signalling's encryption (`sips`/TLS).

use super::sdp;
use crate::media::srtp::{MasterKey, SdesError};
use std::net::SocketAddr;

/// How the softphone's answer protects its media.
#[derive(Debug, PartialEq, Eq)]
pub enum MediaSecurity {
    /// `RTP/AVP`: plain RTP.
    Plain,
    /// `RTP/SAVP` with this key for what the softphone sends.
    Srtp(MasterKey),
}

/// The offer to an agent's softphone ([`sdp::offer`]) as SRTP keyed with `ours`.
#[must_use]
pub fn offer(local: SocketAddr, session: u64, ours: &MasterKey) -> String {
    let plain = sdp::offer(local, session);
    let mut text = plain.replacen(" RTP/AVP ", " RTP/SAVP ", 1);
    text.push_str(&format!("a=crypto:{}\r\n", ours.crypto_attribute(1)));
    text
}

/// Reads the media protection of the first audio stream of `text`. A secure profile without a
/// usable `AES_CM_128_HMAC_SHA1_80` key is an error; `a=crypto` lines of a plain stream are
/// ignored (RFC 4568 §5.1.1).
pub fn read(text: &str) -> Result<MediaSecurity, SdesError> {
    let mut in_audio = false;
    let mut secure = false;
    let mut refused = None;
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            let mut parts = m.split_whitespace();
            in_audio = parts.next() == Some("audio");
            let proto = parts.nth(1).unwrap_or("");
            secure =
                proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF");
        } else if let Some(value) = line.strip_prefix("a=crypto:") {
            if in_audio && secure {
                match MasterKey::from_crypto_attribute(value) {
                    Ok((_, key)) => return Ok(MediaSecurity::Srtp(key)),
                    Err(e) => refused = Some(e),
                }
            }
        }
    }
    if in_audio && secure {
        return Err(refused.unwrap_or(SdesError::Malformed));
    }
    Ok(MediaSecurity::Plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_srtp_offer_is_valid_sdp_and_carries_our_key_for_savp() {
        let key = MasterKey::random();
        let text = offer("127.0.0.1:20004".parse().unwrap(), 9, &key);
        assert!(
            text.contains("m=audio 20004 RTP/SAVP 8 0 101\r\n"),
            "{text}"
        );
        let parsed =
            ezk_sdp_types::SessionDescription::parse(&bytesstr::BytesStr::from(text.as_str()));
        assert!(parsed.is_ok(), "the offer must be valid SDP");
        assert_eq!(read(&text), Ok(MediaSecurity::Srtp(key)));
        let back = sdp::read_offer(&text).unwrap();
        assert_eq!((back.codec, back.telephone_event), (sdp::PCMA, Some(101)));
    }

    #[test]
    fn a_baresip_answer_gives_its_key_and_a_plain_or_keyless_one_does_not() {
        let key = MasterKey::random();
        let answer = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10002 RTP/SAVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=crypto:1 {}|2^48\r\n",
            key.crypto_attribute(1).split_once(' ').unwrap().1
        );
        assert_eq!(read(&answer), Ok(MediaSecurity::Srtp(key)));
        let plain = answer.replace("RTP/SAVP", "RTP/AVP");
        assert_eq!(read(&plain), Ok(MediaSecurity::Plain));
        let keyless: String = answer
            .lines()
            .filter(|l| !l.starts_with("a=crypto"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        assert_eq!(read(&keyless), Err(SdesError::Malformed));
        let other_suite = answer.replace("_80", "_32");
        assert_eq!(read(&other_suite), Err(SdesError::Suite));
    }
}
