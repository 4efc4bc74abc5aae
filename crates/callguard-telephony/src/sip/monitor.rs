//! Supervisor legs (issue #13 item 2): the edge rings a supervisor's registered softphone and
//! adds it to a bridged call as a third leg, mixed in linear PCM ([`crate::media::mix`]).
//!
//! The supervisor hears what the agent is sent (the caller's audio taken after the relay to the
//! agent, so whatever the agent's feed has been through, masking included, is what supervisors
//! hear) mixed with what the caller is sent (the agent). In whisper the supervisor is mixed
//! into the agent's feed, in barge into the caller's as well; in listen what the supervisor
//! sends goes nowhere. The supervisor never hears themselves: the feeds are tapped before the
//! supervisor is mixed in.
//!
//! Limitation: the supervisor is mixed into packets as they are relayed, so while a leg sends no
//! RTP (silence suppression) the other side does not hear the supervisor either.

use super::acd::{NoAuth, Offering};
use super::bridge::LegFormat;
use super::call::rtp_socket;
use super::sdes;
use super::session::Command;
use super::srtp_leg::{negotiate, SrtpLeg};
use super::{sdp, Edge};
use crate::media::g711::Law;
use crate::media::mix::{self, Frames, Mode};
use crate::media::rtp::{RtpHeader, RtpPacket};
use crate::media::srtp::MasterKey;
use crate::media::FRAME_SAMPLES;
use callguard_server::features::monitor::service::{
    CallMonitor, JoinError, JoinedLeg, MonitorMode,
};
use ezk_sip_core::Endpoint;
use ezk_sip_types::header::typed::Contact;
use ezk_sip_types::uri::{NameAddr, SipUri};
use ezk_sip_ua::{CallEvent, OutboundCall};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Frames of a feed waiting to be mixed (60 ms): a feed that runs ahead adds no delay.
const MIX_DEPTH: usize = 3;

/// A supervisor's answered leg, handed to the call's media.
#[derive(Debug)]
pub struct SupervisorLeg {
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    pub format: LegFormat,
    pub mode: Mode,
    /// SRTP on this leg, negotiated like an agent's (`sip.agents_require_srtp`).
    pub srtp: Option<SrtpLeg>,
}

/// The supervisor leg inside a call's media: the taps on both feeds and the mixes.
pub(super) struct Monitoring {
    pub(super) leg: SupervisorLeg,
    law: Law,
    header: RtpHeader,
    /// What the agent was sent (the caller), and what the caller was sent (the agent).
    caller: Frames,
    agent: Frames,
    /// The supervisor's audio, for the agent's feed and for the caller's.
    for_agent: Frames,
    for_caller: Frames,
    out: Vec<u8>,
}

/// The payload of a datagram the relay wrote (a 12-byte header of ours) when it carries
/// `codec`.
fn audio_of(datagram: &mut [u8], codec: u8) -> Option<&mut [u8]> {
    if datagram.len() <= 12 || datagram[1] & 0x7F != codec {
        return None;
    }
    datagram.get_mut(12..)
}

impl Monitoring {
    pub(super) fn new(leg: SupervisorLeg) -> Self {
        Self {
            law: Law::from_payload_type(leg.format.codec).unwrap_or(Law::Alaw),
            header: RtpHeader {
                marker: true,
                payload_type: leg.format.codec,
                sequence: rand::random(),
                timestamp: rand::random(),
                ssrc: rand::random(),
            },
            leg,
            caller: Frames::new(MIX_DEPTH),
            agent: Frames::new(MIX_DEPTH),
            for_agent: Frames::new(MIX_DEPTH),
            for_caller: Frames::new(MIX_DEPTH),
            out: Vec::with_capacity(12 + FRAME_SAMPLES),
        }
    }

    /// The supervisor switches to `mode` without leaving the call: what they said before the
    /// switch is dropped, so it cannot reach a leg that no longer hears them.
    pub(super) fn set_mode(&mut self, mode: Mode) {
        self.leg.mode = mode;
        self.for_agent = Frames::new(MIX_DEPTH);
        self.for_caller = Frames::new(MIX_DEPTH);
    }

    /// A datagram the relay is about to send to the agent (of `codec`): its audio is the
    /// caller as the agent gets it (tapped for the supervisor); in whisper and barge the
    /// supervisor is mixed in.
    pub(super) fn sending_to_agent(&mut self, datagram: &mut [u8], codec: u8) {
        let law = Law::from_payload_type(codec).unwrap_or(Law::Alaw);
        let Some(audio) = audio_of(datagram, codec) else {
            return;
        };
        self.caller.push(mix::decode(audio, law));
        if self.leg.mode.agent_hears_supervisor() {
            if let Some(s) = self.for_agent.pop() {
                mix::mix_into_g711(audio, law, &s);
            }
        }
    }

    /// A datagram the relay is about to send to the caller (of `codec`): the agent, tapped;
    /// in barge the supervisor is mixed in. Whether it was (the recording keeps what the
    /// caller heard).
    pub(super) fn sending_to_caller(&mut self, datagram: &mut [u8], codec: u8) -> bool {
        let law = Law::from_payload_type(codec).unwrap_or(Law::Alaw);
        let Some(audio) = audio_of(datagram, codec) else {
            return false;
        };
        self.agent.push(mix::decode(audio, law));
        if self.leg.mode.caller_hears_supervisor() {
            if let Some(s) = self.for_caller.pop() {
                mix::mix_into_g711(audio, law, &s);
                return true;
            }
        }
        false
    }

    /// A packet from the supervisor's softphone: audio kept for mixing (dropped in listen;
    /// telephone events never go anywhere).
    pub(super) fn heard_supervisor(&mut self, packet: &RtpPacket<'_>) {
        if packet.payload_type != self.leg.format.codec || self.leg.mode == Mode::Listen {
            return;
        }
        let pcm = mix::decode(packet.payload, self.law);
        if self.leg.mode.caller_hears_supervisor() {
            self.for_caller.push(pcm.clone());
        }
        self.for_agent.push(pcm);
    }

    /// Every 20 ms: the datagram for the supervisor, caller and agent mixed (silence where a
    /// feed had nothing).
    pub(super) fn tick(&mut self) -> &[u8] {
        let (c, a) = (
            self.caller.pop().unwrap_or_default(),
            self.agent.pop().unwrap_or_default(),
        );
        let payload = mix::mix_to_g711(&c, &a, self.law);
        self.out.clear();
        if self.header.write(&payload, &mut self.out).is_err() {
            self.out.clear();
        }
        self.header.marker = false;
        self.header.sequence = self.header.sequence.wrapping_add(1);
        self.header.timestamp = self.header.timestamp.wrapping_add(payload.len() as u32);
        &self.out
    }

    /// Sends the supervisor this tick's mix.
    pub(super) async fn send_tick(&mut self) {
        self.tick();
        if let Some(s) = &mut self.leg.srtp {
            if !s.seal(&mut self.out) {
                return;
            }
        }
        let _ = self.leg.socket.send_to(&self.out, self.leg.remote).await;
    }

    /// Opens a datagram from the supervisor's softphone in place: its RTP packet's length, or
    /// `None` when SRTP refuses it.
    pub(super) fn open(&mut self, datagram: &mut [u8]) -> Option<usize> {
        match &mut self.leg.srtp {
            Some(s) => s.open(datagram),
            None => Some(datagram.len()),
        }
    }
}

/// The next datagram on the supervisor's leg; never, without one.
pub(super) async fn supervisor_recv(
    monitoring: Option<&Monitoring>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match monitoring {
        Some(m) => m.leg.socket.recv(buf).await,
        None => std::future::pending().await,
    }
}

/// The bridged calls of this edge, by interaction: where a supervisor leg is handed.
#[derive(Default)]
pub struct Bridges {
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<Command>>>,
}

/// A call listed in [`Bridges`] while bridged; unlisted when dropped.
pub(super) struct Listed {
    bridges: Arc<Bridges>,
    interaction: String,
}

impl Drop for Listed {
    fn drop(&mut self) {
        if let Ok(mut m) = self.bridges.calls.lock() {
            m.remove(&self.interaction);
        }
    }
}

impl Bridges {
    pub(super) fn list(
        self: &Arc<Self>,
        interaction: &str,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Listed {
        if let Ok(mut m) = self.calls.lock() {
            m.insert(interaction.to_owned(), commands);
        }
        Listed {
            bridges: self.clone(),
            interaction: interaction.to_owned(),
        }
    }

    fn commands_of(&self, interaction: &str) -> Option<mpsc::UnboundedSender<Command>> {
        self.calls.lock().ok()?.get(interaction).cloned()
    }
}

/// The edge as the server's [`CallMonitor`], once it runs.
#[derive(Default)]
pub struct EdgeMonitor {
    running: OnceLock<(Arc<Edge>, Endpoint)>,
}

impl EdgeMonitor {
    pub(super) fn attach(&self, edge: Arc<Edge>, endpoint: Endpoint) {
        let _ = self.running.set((edge, endpoint));
    }
}

fn mode_of(m: MonitorMode) -> Mode {
    match m {
        MonitorMode::Listen => Mode::Listen,
        MonitorMode::Whisper => Mode::Whisper,
        MonitorMode::Barge => Mode::Barge,
    }
}

#[async_trait::async_trait]
impl CallMonitor for EdgeMonitor {
    async fn join(
        &self,
        interaction: &str,
        sip_username: &str,
        mode: MonitorMode,
    ) -> Result<JoinedLeg, JoinError> {
        let (edge, endpoint) = self.running.get().ok_or(JoinError::NotBridged)?;
        edge.join_supervisor(endpoint, interaction, sip_username, mode_of(mode))
            .await
    }

    fn switch(&self, interaction: &str, mode: MonitorMode) -> Result<(), JoinError> {
        let (edge, _) = self.running.get().ok_or(JoinError::NotBridged)?;
        edge.bridges
            .commands_of(interaction)
            .and_then(|c| c.send(Command::MonitorMode(mode_of(mode))).ok())
            .ok_or(JoinError::NotBridged)?;
        tracing::info!(mode = mode.as_str(), "a supervisor switched mode on a call");
        Ok(())
    }
}

impl Edge {
    /// Rings `sip_username`'s registered softphone (for at most `queues.ring_seconds`) and,
    /// answered, adds it to the bridged call of `interaction` in `mode` until stopped, the
    /// supervisor hangs up, or the call ends.
    async fn join_supervisor(
        &self,
        endpoint: &Endpoint,
        interaction: &str,
        sip_username: &str,
        mode: Mode,
    ) -> Result<JoinedLeg, JoinError> {
        let commands = self
            .bridges
            .commands_of(interaction)
            .ok_or(JoinError::NotBridged)?;
        let contact = self
            .registrar
            .contact_of(sip_username)
            .ok_or(JoinError::NotRegistered)?;
        let target = contact.parse::<SipUri>().map_err(|_| {
            tracing::info!("a supervisor's softphone registered a contact that cannot be called");
            JoinError::NotRegistered
        })?;
        let socket = rtp_socket(self.settings.media_ip, self.settings.rtp_ports)
            .await
            .map_err(|_| JoinError::Busy)?;
        let local = socket.local_addr().map_err(|_| JoinError::Busy)?;
        // A supervisor's leg carries the call's audio: encrypted like an agent's, over the
        // transport their softphone registered on.
        let key = self.settings.agents_require_srtp.then(MasterKey::random);
        let session = rand::random::<u32>().into();
        let media = Offering {
            offer: match &key {
                Some(k) => sdes::offer(local, session, k),
                None => sdp::offer(local, session),
            },
            answer: None,
            key,
            srtp: None,
        };
        let deadline = Instant::now() + self.settings.acd.ring;
        let ours = match (
            &self.tls_contact,
            self.registrar.registered_over_tls(sip_username),
        ) {
            (Some(tls), true) => tls.clone(),
            _ => self.contact.clone(),
        };
        let us = NameAddr::uri(ours.clone());
        let contact_header = Contact::new(NameAddr::uri(ours));
        let make = OutboundCall::make(endpoint.clone(), NoAuth, us, contact_header, target, media);
        let mut outbound = match tokio::time::timeout_at(deadline, make).await {
            Ok(Ok(o)) => o,
            _ => return Err(JoinError::NotAnswered),
        };
        let unacknowledged = match tokio::time::timeout_at(deadline, outbound.wait_for_completion())
            .await
        {
            Ok(Ok(u)) => u,
            Ok(Err(_)) => return Err(JoinError::NotAnswered),
            Err(_) => {
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(10), outbound.cancel())
                            .await;
                });
                return Err(JoinError::NotAnswered);
            }
        };
        let mut call = unacknowledged
            .finish()
            .await
            .map_err(|_| JoinError::NotAnswered)?;
        let answer = call.media().answer.clone().unwrap_or_default();
        let srtp = {
            let media = call.media();
            negotiate(
                media.key.as_ref(),
                &answer,
                self.settings.agents_require_srtp,
            )
        };
        let srtp = match srtp {
            Ok(s) => s,
            Err(reason) => {
                tracing::info!(
                    reason,
                    "the supervisor's softphone answered without the required SRTP"
                );
                self.metrics.sip_refused(reason);
                let _ = call.terminate().await;
                return Err(JoinError::NotAnswered);
            }
        };
        let Ok(leg) = sdp::read_offer(&answer) else {
            tracing::info!("the supervisor's softphone answered without usable audio");
            let _ = call.terminate().await;
            return Err(JoinError::NotAnswered);
        };
        if let Err(e) = socket.connect(leg.remote).await {
            tracing::warn!(error = %e, "the supervisor's RTP address cannot be reached");
        }
        let supervisor = SupervisorLeg {
            socket,
            remote: leg.remote,
            format: LegFormat {
                codec: leg.codec,
                telephone_event: leg.telephone_event,
            },
            mode,
            srtp,
        };
        if commands.send(Command::Monitor(supervisor)).is_err() {
            let _ = call.terminate().await;
            return Err(JoinError::NotBridged);
        }
        tracing::info!(mode = mode.as_str(), "a supervisor joined a call");
        let (stop, mut stop_rx) = oneshot::channel();
        let (ended_tx, ended) = oneshot::channel();
        tokio::spawn(async move {
            let hung_up = loop {
                tokio::select! {
                    ev = call.run() => match ev {
                        Ok(CallEvent::Internal(ev)) => {
                            if call.handle_internal_event(ev).await.is_err() {
                                break true;
                            }
                        }
                        Ok(CallEvent::Media(never)) => match never {},
                        Ok(CallEvent::Terminated) | Err(_) => break true,
                    },
                    _ = &mut stop_rx => break false,
                    () = commands.closed() => break false,
                }
            };
            let _ = commands.send(Command::Unmonitor);
            if !hung_up {
                let _ = call.terminate().await;
            }
            tracing::info!(mode = mode.as_str(), "a supervisor left a call");
            let _ = ended_tx.send(());
        });
        Ok(JoinedLeg { stop, ended })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::goertzel::tone_share;

    fn tone(hz: f32, n: usize, from: usize) -> Vec<i16> {
        (from..from + n)
            .map(|i| (6000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    /// A relayed datagram of `law` carrying `pcm`.
    fn datagram(law: Law, pcm: &[i16]) -> Vec<u8> {
        let payload: Vec<u8> = pcm.iter().map(|&s| law.encode(s)).collect();
        RtpHeader {
            marker: false,
            payload_type: law.payload_type(),
            sequence: 1,
            timestamp: 1,
            ssrc: 1,
        }
        .to_packet(&payload)
        .unwrap()
    }

    async fn monitoring(mode: Mode) -> Monitoring {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let remote = socket.local_addr().unwrap();
        Monitoring::new(SupervisorLeg {
            socket,
            remote,
            format: LegFormat {
                codec: 0,
                telephone_event: None,
            },
            mode,
            srtp: None,
        })
    }

    /// Runs one second: caller 440 Hz to the agent (A-law), agent 1000 Hz to the caller
    /// (A-law), supervisor 1600 Hz (µ-law); what the agent, the caller and the supervisor got.
    fn second(m: &mut Monitoring) -> (Vec<i16>, Vec<i16>, Vec<i16>) {
        let (mut agent, mut caller, mut supervisor) = (Vec::new(), Vec::new(), Vec::new());
        for f in 0..50 {
            let from = f * FRAME_SAMPLES;
            let s: Vec<u8> = tone(1600.0, FRAME_SAMPLES, from)
                .iter()
                .map(|&v| Law::Ulaw.encode(v))
                .collect();
            let p = RtpHeader {
                marker: false,
                payload_type: 0,
                sequence: f as u16,
                timestamp: 0,
                ssrc: 9,
            }
            .to_packet(&s)
            .unwrap();
            m.heard_supervisor(&RtpPacket::parse(&p).unwrap());
            let mut to_agent = datagram(Law::Alaw, &tone(440.0, FRAME_SAMPLES, from));
            m.sending_to_agent(&mut to_agent, 8);
            agent.extend(mix::decode(&to_agent[12..], Law::Alaw));
            let mut to_caller = datagram(Law::Alaw, &tone(1000.0, FRAME_SAMPLES, from));
            m.sending_to_caller(&mut to_caller, 8);
            caller.extend(mix::decode(&to_caller[12..], Law::Alaw));
            let out = m.tick().to_vec();
            supervisor.extend(mix::decode(&out[12..], Law::Ulaw));
        }
        (agent, caller, supervisor)
    }

    #[tokio::test]
    async fn on_listen_the_supervisor_hears_both_and_nobody_hears_the_supervisor() {
        let (agent, caller, supervisor) = second(&mut monitoring(Mode::Listen).await);
        assert!(tone_share(&supervisor, 440.0) > 0.3);
        assert!(tone_share(&supervisor, 1000.0) > 0.3);
        assert!(tone_share(&supervisor, 1600.0) < 0.01);
        assert!(tone_share(&agent, 1600.0) < 0.01);
        assert!(tone_share(&caller, 1600.0) < 0.01);
    }

    #[tokio::test]
    async fn on_whisper_the_agent_hears_the_supervisor_and_the_caller_does_not() {
        let (agent, caller, supervisor) = second(&mut monitoring(Mode::Whisper).await);
        assert!(
            tone_share(&agent, 1600.0) > 0.3,
            "the agent hears the supervisor"
        );
        assert!(tone_share(&agent, 440.0) > 0.3, "and still the caller");
        assert!(tone_share(&caller, 1600.0) < 0.01, "the caller does not");
        assert!(
            tone_share(&supervisor, 1600.0) < 0.01,
            "nor the supervisor themselves"
        );
        assert!(tone_share(&supervisor, 440.0) > 0.3);
    }

    #[tokio::test]
    async fn on_barge_everyone_hears_the_other_two() {
        let (agent, caller, supervisor) = second(&mut monitoring(Mode::Barge).await);
        assert!(tone_share(&agent, 1600.0) > 0.3 && tone_share(&agent, 440.0) > 0.3);
        assert!(tone_share(&caller, 1600.0) > 0.3 && tone_share(&caller, 1000.0) > 0.3);
        assert!(tone_share(&supervisor, 440.0) > 0.3 && tone_share(&supervisor, 1000.0) > 0.3);
        assert!(tone_share(&supervisor, 1600.0) < 0.01);
    }

    #[tokio::test]
    async fn a_supervisor_switched_from_listen_to_whisper_to_barge_is_heard_as_each_mode_says() {
        let mut m = monitoring(Mode::Listen).await;
        let (agent, caller, _) = second(&mut m);
        assert!(tone_share(&agent, 1600.0) < 0.01 && tone_share(&caller, 1600.0) < 0.01);
        m.set_mode(Mode::Whisper);
        let (agent, caller, supervisor) = second(&mut m);
        assert!(tone_share(&agent, 1600.0) > 0.3, "whisper: the agent hears");
        assert!(tone_share(&caller, 1600.0) < 0.01, "the caller does not");
        assert!(tone_share(&supervisor, 440.0) > 0.3, "still listening");
        m.set_mode(Mode::Barge);
        let (agent, caller, _) = second(&mut m);
        assert!(tone_share(&agent, 1600.0) > 0.3 && tone_share(&caller, 1600.0) > 0.3);
        m.set_mode(Mode::Listen);
        let (agent, caller, _) = second(&mut m);
        assert!(
            tone_share(&agent, 1600.0) < 0.01 && tone_share(&caller, 1600.0) < 0.01,
            "back on listen nobody hears the supervisor"
        );
    }

    #[tokio::test]
    async fn telephone_events_are_neither_tapped_nor_mixed() {
        let mut m = monitoring(Mode::Barge).await;
        let mut event = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 1,
            timestamp: 1,
            ssrc: 1,
        }
        .to_packet(&[5, 10, 0, 160])
        .unwrap();
        let before = event.clone();
        m.heard_supervisor(&RtpPacket::parse(&datagram(Law::Ulaw, &[3000; 160])).unwrap());
        m.sending_to_agent(&mut event, 8);
        assert_eq!(event, before, "an event passes untouched");
        assert!(m.caller.is_empty(), "and is not heard by the supervisor");
    }
}
