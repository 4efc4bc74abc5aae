//! The SRTP hook of the agent's leg: what the edge sends to the softphone is sealed with our
//! key, what the softphone sends is checked and opened with its key, both negotiated by SDES
//! ([`super::sdes`]). A leg without SRTP passes packets through unchanged.

use super::bridge::AgentLeg;
use super::sdes::{self, MediaSecurity};
use crate::media::srtp::{MasterKey, Protect, Unprotect};

/// The SRTP of an agent leg from our offer's key (`None`: plain RTP was offered) and the
/// softphone's `answer`; the reason to refuse the leg when `required` and the answer is plain,
/// or when it names SRTP without a usable key.
pub fn negotiate(
    ours: Option<&MasterKey>,
    answer: &str,
    required: bool,
) -> Result<Option<SrtpLeg>, &'static str> {
    let Some(ours) = ours else {
        return if required { Err("plain_rtp") } else { Ok(None) };
    };
    match sdes::read(answer) {
        Ok(MediaSecurity::Srtp(theirs)) => Ok(Some(SrtpLeg::new(ours, &theirs))),
        Ok(MediaSecurity::Plain) if !required => Ok(None),
        Ok(MediaSecurity::Plain) => Err("plain_rtp"),
        Err(_) => Err("srtp_key"),
    }
}

/// Both directions of an agent leg's SRTP.
#[derive(Debug)]
pub struct SrtpLeg {
    protect: Protect,
    unprotect: Unprotect,
}

impl SrtpLeg {
    /// `ours` protects what the edge sends; `theirs` (from the softphone's answer) what it sends.
    #[must_use]
    pub fn new(ours: &MasterKey, theirs: &MasterKey) -> Self {
        Self {
            protect: Protect::new(ours),
            unprotect: Unprotect::new(theirs),
        }
    }
}

impl SrtpLeg {
    /// Protects the RTP packet in `packet` in place; false when it cannot be sent.
    pub fn seal(&mut self, packet: &mut Vec<u8>) -> bool {
        self.protect.protect(packet).is_ok()
    }

    /// Opens a datagram in place: the length of its RTP packet, or `None` when it is refused
    /// (a wrong tag, a replay, or too short).
    pub fn open(&mut self, datagram: &mut [u8]) -> Option<usize> {
        match self.unprotect.unprotect(datagram) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(error = %e, "SRTP packet from a softphone dropped");
                None
            }
        }
    }
}

impl AgentLeg {
    /// Makes the RTP packet in `packet` ready to send to the softphone (SRTP when negotiated);
    /// false when it cannot be sent.
    pub fn seal(&mut self, packet: &mut Vec<u8>) -> bool {
        match &mut self.srtp {
            Some(s) => s.seal(packet),
            None => true,
        }
    }

    /// Opens a datagram from the softphone in place: the length of its RTP packet, or `None`
    /// when it is refused (a wrong tag, a replay, or too short).
    pub fn open(&mut self, datagram: &mut [u8]) -> Option<usize> {
        match &mut self.srtp {
            Some(s) => s.open(datagram),
            None => Some(datagram.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::prompts::PromptSet;
    use crate::media::rtp::{RtpHeader, RtpPacket};
    use crate::sip::bridge::LegFormat;
    use crate::sip::session::{Command, Session};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::net::UdpSocket;
    use tokio::sync::mpsc;

    /// The next datagram on `sock` (a 10 s hang guard, not a timing assertion).
    async fn next(sock: &UdpSocket) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .expect("a packet")
            .unwrap();
        buf.truncate(n);
        buf
    }

    const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10002 RTP/SAVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn a_plain_rtp_answer_is_refused_when_srtp_is_required_and_a_keyed_one_is_bridged() {
        let ours = MasterKey::random();
        let keyed = format!(
            "{ANSWER}a=crypto:{}\r\n",
            MasterKey::random().crypto_attribute(1)
        );
        let plain = ANSWER.replace("RTP/SAVP", "RTP/AVP");
        assert!(matches!(negotiate(Some(&ours), &keyed, true), Ok(Some(_))));
        assert_eq!(
            negotiate(Some(&ours), &plain, true).err(),
            Some("plain_rtp")
        );
        assert_eq!(
            negotiate(Some(&ours), ANSWER, true).err(),
            Some("srtp_key"),
            "SAVP without a key"
        );
        assert_eq!(negotiate(None, &plain, true).err(), Some("plain_rtp"));
        // Not required: a plain answer (or a plain offer) gives a plain leg.
        assert!(matches!(negotiate(Some(&ours), &plain, false), Ok(None)));
        assert!(matches!(negotiate(None, &plain, false), Ok(None)));
    }

    #[tokio::test]
    async fn an_srtp_agent_leg_gets_only_encrypted_audio_and_only_its_authentic_packets_reach_the_caller(
    ) {
        let local = |s: &UdpSocket| s.local_addr().unwrap();
        let media_caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let media_agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        caller.connect(local(&media_caller)).await.unwrap();
        agent.connect(local(&media_agent)).await.unwrap();
        let session = Session {
            socket: media_caller,
            remote: local(&caller),
            codec: 8,
            telephone_event: Some(101),
            prompts: Arc::new(PromptSet::builtin()),
        };
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (heard_tx, _heard) = mpsc::unbounded_channel();
        let media = tokio::spawn(session.run(commands_rx, heard_tx));
        let (ours, theirs) = (MasterKey::random(), MasterKey::random());
        let alaw = LegFormat {
            codec: 8,
            telephone_event: Some(101),
        };
        commands
            .send(Command::Bridge(AgentLeg {
                socket: media_agent,
                remote: local(&agent),
                format: alaw,
                srtp: Some(SrtpLeg::new(&ours, &theirs)),
                sent: None,
            }))
            .unwrap();
        // The caller's audio reaches the agent encrypted; the agent's key opens it.
        let voice: Vec<u8> = (0..160u16).map(|i| (i % 120) as u8).collect();
        let from_caller = RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: 40,
            timestamp: 6400,
            ssrc: 0xCA11,
        };
        caller
            .send(&from_caller.to_packet(&voice).unwrap())
            .await
            .unwrap();
        let mut got = next(&agent).await;
        assert_eq!(got.len(), 12 + 160 + 10, "RTP header, payload, SRTP tag");
        assert!(
            !got.windows(16).any(|w| voice.windows(16).any(|v| v == w)),
            "no run of the caller's audio is sent in the clear"
        );
        let n = Unprotect::new(&ours).unprotect(&mut got).unwrap();
        assert_eq!(RtpPacket::parse(&got[..n]).unwrap().payload, &voice[..]);
        // From the agent: plain RTP and a packet under another key are dropped; the one
        // protected with the agent's key is relayed.
        let from_agent = |seq: u16| RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0xA6E7,
        };
        let (plain, forged, real) = ([0x11u8; 160], [0x22u8; 160], [0x33u8; 160]);
        agent
            .send(&from_agent(1).to_packet(&plain).unwrap())
            .await
            .unwrap();
        let mut p = from_agent(2).to_packet(&forged).unwrap();
        Protect::new(&MasterKey::random()).protect(&mut p).unwrap();
        agent.send(&p).await.unwrap();
        let mut p = from_agent(3).to_packet(&real).unwrap();
        Protect::new(&theirs).protect(&mut p).unwrap();
        agent.send(&p).await.unwrap();
        loop {
            let got = next(&caller).await;
            let payload = RtpPacket::parse(&got).unwrap().payload.to_vec();
            assert!(
                payload != plain && payload != forged,
                "a refused packet was relayed"
            );
            if payload == real {
                break;
            }
        }
        commands.send(Command::End).unwrap();
        media.await.unwrap();
    }
}
