//! The SDP offer/answer the edge needs: audio in G.711 (A-law preferred, then µ-law) at 20 ms,
//! plus RFC 4733 telephone-events. Read from the offer's text; the answer is written as text.

use std::net::{IpAddr, SocketAddr};

/// Static payload types of G.711 (RFC 3551).
pub const PCMU: u8 = 0;
pub const PCMA: u8 = 8;

/// What the caller offered that the edge will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Where the caller wants its audio.
    pub remote: SocketAddr,
    /// The G.711 payload type chosen: A-law when offered, else µ-law.
    pub codec: u8,
    /// The caller's telephone-event/8000 payload type, when offered.
    pub telephone_event: Option<u8>,
}

/// Why an offer cannot be answered (the call is refused with 488).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the offer has no audio stream")]
    NoAudio,
    #[error("the offer has no connection address")]
    NoAddress,
    #[error("the offer has neither PCMA nor PCMU")]
    NoG711,
}

/// Reads the first audio stream of an SDP offer.
pub fn read_offer(text: &str) -> Result<Offer, OfferError> {
    let mut session_addr: Option<IpAddr> = None;
    let mut media_addr: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut in_audio = false;
    let mut events: Vec<u8> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if audio.is_some() {
                break;
            }
            let mut parts = m.split_whitespace();
            in_audio = parts.next() == Some("audio");
            if in_audio {
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let _proto = parts.next();
                audio = Some((port, parts.filter_map(|f| f.parse().ok()).collect()));
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let addr = c.split_whitespace().nth(2).and_then(|a| a.parse().ok());
            if audio.is_none() {
                session_addr = addr;
            } else if in_audio {
                media_addr = addr;
            }
        } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
            if in_audio {
                let mut parts = map.split_whitespace();
                let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
                let enc = parts.next().unwrap_or("");
                if let (Some(pt), true) = (pt, enc.eq_ignore_ascii_case("telephone-event/8000")) {
                    events.push(pt);
                }
            }
        }
    }
    let (port, formats) = audio.ok_or(OfferError::NoAudio)?;
    let ip = media_addr.or(session_addr).ok_or(OfferError::NoAddress)?;
    let codec = [PCMA, PCMU]
        .into_iter()
        .find(|c| formats.contains(c))
        .ok_or(OfferError::NoG711)?;
    let telephone_event = events.into_iter().find(|e| formats.contains(e));
    Ok(Offer {
        remote: SocketAddr::new(ip, port),
        codec,
        telephone_event,
    })
}

/// The answer: the chosen codec and the caller's telephone-event type, at `local`.
#[must_use]
pub fn answer(offer: &Offer, local: SocketAddr, session: u64) -> String {
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let codec_name = if offer.codec == PCMA { "PCMA" } else { "PCMU" };
    let mut formats = offer.codec.to_string();
    let mut attrs = format!("a=rtpmap:{} {codec_name}/8000\r\n", offer.codec);
    if let Some(te) = offer.telephone_event {
        formats.push_str(&format!(" {te}"));
        attrs.push_str(&format!(
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n"
        ));
    }
    format!(
        "v=0\r\no=callguard {session} {session} IN {family} {ip}\r\ns=callguard\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{attrs}a=ptime:20\r\na=sendrecv\r\n",
        port = local.port()
    )
}

/// The offer sent to an agent's softphone: A-law, µ-law and telephone-event (PT 101), 20 ms,
/// at `local`. The softphone's answer is read back with [`read_offer`].
#[must_use]
pub fn offer(local: SocketAddr, session: u64) -> String {
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=callguard {session} {session} IN {family} {ip}\r\ns=callguard\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        port = local.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

    #[test]
    fn alaw_is_preferred_and_the_callers_event_type_is_kept() {
        let o = read_offer(SIPP_OFFER).unwrap();
        assert_eq!(o.remote, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(o.codec, PCMA);
        assert_eq!(o.telephone_event, Some(101));
        let a = answer(&o, "127.0.0.1:10002".parse().unwrap(), 7);
        assert!(a.contains("m=audio 10002 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(a.contains("a=ptime:20\r\n"));
        let parsed =
            ezk_sdp_types::SessionDescription::parse(&bytesstr::BytesStr::from(a.as_str()));
        assert!(parsed.is_ok(), "the answer must be valid SDP");
    }

    #[test]
    fn ulaw_only_offers_get_ulaw_and_offers_without_g711_are_refused() {
        let o = read_offer(&SIPP_OFFER.replace(" 0 8 101", " 0")).unwrap();
        assert_eq!((o.codec, o.telephone_event), (PCMU, None));
        assert_eq!(
            read_offer(&SIPP_OFFER.replace(" 0 8 101", " 9 101")),
            Err(OfferError::NoG711)
        );
        assert_eq!(read_offer("v=0\r\n"), Err(OfferError::NoAudio));
    }

    #[test]
    fn the_offer_to_an_agent_lists_both_laws_and_events_and_reads_back() {
        let o = offer("127.0.0.1:20004".parse().unwrap(), 9);
        let parsed =
            ezk_sdp_types::SessionDescription::parse(&bytesstr::BytesStr::from(o.as_str()));
        assert!(parsed.is_ok(), "the offer must be valid SDP");
        let back = read_offer(&o).unwrap();
        assert_eq!(back.remote, "127.0.0.1:20004".parse().unwrap());
        assert_eq!((back.codec, back.telephone_event), (PCMA, Some(101)));
    }

    #[test]
    fn a_media_level_address_overrides_the_session_one() {
        let text = SIPP_OFFER.replace("a=ptime:20\r\n", "c=IN IP4 192.0.2.9\r\n");
        assert_eq!(
            read_offer(&text).unwrap().remote,
            "192.0.2.9:7000".parse().unwrap()
        );
    }
}
