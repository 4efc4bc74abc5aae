//! The media of one answered call: every 20 ms one frame to the caller (a prompt, the comfort
//! tone while holding, or silence), and from the caller its key presses, from RFC 4733 events
//! and from in-band tones, merged so a key sent both ways counts once. The caller's audio is
//! handed to the recorder once recording has started. Once an agent answers, the media relays
//! between the caller and the agent's leg ([`super::bridge`]) and records both, one channel each.

use super::bridge::{AgentLeg, LegFormat, Relay, Restamp};
use super::secure::SecureMedia;
use crate::media::dtmf::{DtmfMerger, DtmfSource};
use crate::media::g711::Law;
use crate::media::goertzel::{ToneDetector, ToneEvent};
use crate::media::mask::MaskStyle;
use crate::media::prompts::{Prompt, PromptSet};
use crate::media::rfc4733::EventReceiver;
use crate::media::rtp::{RtpHeader, RtpPacket};
use crate::media::{Key, FRAME_SAMPLES};
use callguard_core::recording::PauseReason;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the call flow asks of the media.
#[derive(Debug)]
pub enum Command {
    /// Play these prompts in turn (after anything still queued).
    Play(Vec<Prompt>),
    /// Drop what is playing and queued (the caller pressed a key).
    Interrupt,
    /// When nothing else plays, loop the comfort tone.
    Hold,
    /// From now on, hand the call's audio to this sink: every 20 ms one frame of each leg
    /// (caller, agent), A-law, silence where a leg sent nothing.
    Record(mpsc::UnboundedSender<ToRecorder>),
    /// Relay between the caller and this agent's leg (prompts stop).
    Bridge(AgentLeg),
    /// End the relay (a transfer, [`super::transfer`]): the agent's leg (and any supervisor's)
    /// leaves the media and is handed back; the caller hears the comfort tone. Secure mode
    /// ends with it (its capture was cancelled). With `hold` the recording pauses (reason
    /// `hold`) until the next bridge; without, it goes on.
    Unbridge {
        back: tokio::sync::oneshot::Sender<AgentLeg>,
        hold: bool,
    },
    /// The agent's softphone moved its media here (a re-INVITE): the relay sends there and
    /// takes the agent's packets from there only.
    AgentMoved(SocketAddr),
    /// Add a supervisor's leg to the bridge ([`super::monitor`]), replacing any before.
    Monitor(super::monitor::SupervisorLeg),
    /// Drop the supervisor's leg.
    Unmonitor,
    /// The supervisor's leg switches to this mode, staying on the call.
    MonitorMode(crate::media::mix::Mode),
    /// Secure mode ([`super::secure`]): the caller's telephone events stay here, the audio
    /// toward the agent is masked, the recording pauses; prompts play to the caller.
    Secure(MaskStyle),
    /// Secure mode ends once the line is clear of digits; the recording resumes.
    Unsecure,
    /// The caller pressed a key by SIP INFO ([`super::info`]): it joins the keys heard by RTP
    /// (merged, so a press also sent by RTP counts once) and is never relayed.
    InfoKey(super::info::InfoPress),
    /// End the media (the call is over).
    End,
}

/// What the recorder is handed.
#[derive(Debug)]
pub enum ToRecorder {
    /// 20 ms of both legs.
    Frame(StereoFrame),
    /// Recording pauses (no frame comes until [`ToRecorder::Resume`]).
    Pause(PauseReason),
    /// Recording resumes.
    Resume,
}

/// 20 ms of a call for the recorder: the caller's frame and the agent's, A-law.
pub type StereoFrame = (Vec<u8>, Vec<u8>);

/// Frames of a leg waiting for the next recorder tick: at most this many (60 ms of jitter); an
/// older frame is dropped when a leg runs ahead of the clock.
const RECORD_BACKLOG: usize = 3;

/// What the media tells the call flow.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// A key press (one per press, whichever path carried it).
    Key(Key),
    /// Everything asked to play has played.
    Played,
}

/// The caller's audio stops for this long: the media ends (the call is hung up).
const SILENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the media counted over the call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub sent: u64,
    pub received: u64,
}

struct Player {
    prompts: Arc<PromptSet>,
    law: Law,
    queue: VecDeque<Prompt>,
    playing: Option<(Prompt, usize)>,
    hold: bool,
}

impl Player {
    /// The next 20 ms frame, and whether the queue just ran out.
    fn next_frame(&mut self) -> ([u8; FRAME_SAMPLES], bool) {
        let mut frame = [self.law.silence(); FRAME_SAMPLES];
        if self.playing.is_none() {
            self.playing = self
                .queue
                .pop_front()
                .map(|p| (p, 0))
                .or_else(|| self.hold.then_some((Prompt::ComfortTone, 0)));
        }
        let Some((prompt, at)) = self.playing else {
            return (frame, false);
        };
        let audio = self.prompts.audio(prompt);
        let chunk = audio.get(at..).unwrap_or_default();
        let take = chunk.len().min(FRAME_SAMPLES);
        for (out, &a) in frame.iter_mut().zip(&chunk[..take]) {
            *out = Law::Alaw.transcode_to(self.law, a);
        }
        let next = at + take;
        if next >= audio.len() {
            self.playing = None;
            let was_queued = prompt != Prompt::ComfortTone || !self.hold;
            return (frame, was_queued && self.queue.is_empty());
        }
        self.playing = Some((prompt, next));
        (frame, false)
    }

    fn busy(&self) -> bool {
        self.playing.is_some() || !self.queue.is_empty()
    }

    fn interrupt(&mut self) {
        self.queue.clear();
        self.playing = None;
    }
}

/// Listens for the caller's key presses on both paths.
struct Keys {
    events: Option<EventReceiver>,
    tones: ToneDetector,
    merger: DtmfMerger,
    found: Vec<ToneEvent>,
}

impl Keys {
    fn hear(&mut self, packet: &RtpPacket<'_>, codec: u8, law: Law, now_ms: u64) -> Vec<Key> {
        let mut keys = Vec::new();
        if let Some(ev) = self
            .events
            .as_mut()
            .filter(|e| e.payload_type() == packet.payload_type)
        {
            if let Ok(Some(press)) = ev.push(packet, now_ms) {
                if self.merger.offer(press.key, DtmfSource::Rfc4733, now_ms) {
                    keys.push(press.key);
                }
            }
        } else if packet.payload_type == codec {
            self.found.clear();
            self.tones.push_g711(law, packet.payload, &mut self.found);
            for e in &self.found {
                if let ToneEvent::Started { key, .. } = *e {
                    if self.merger.offer(key, DtmfSource::InBand, now_ms) {
                        keys.push(key);
                    }
                }
            }
        }
        keys
    }
}

/// The relay to and from an agent who answered.
struct Bridged {
    leg: AgentLeg,
    to_agent: Relay,
    to_caller: Relay,
    agent_law: Law,
}

/// The next datagram on the agent's leg; never, before the bridge.
async fn agent_recv(bridge: Option<&Bridged>, buf: &mut [u8]) -> std::io::Result<usize> {
    match bridge {
        Some(b) => b.leg.socket.recv(buf).await,
        None => std::future::pending().await,
    }
}

/// Keeps a leg's frame (as A-law, the recording's law) for the next recorder tick.
fn keep(frames: &mut VecDeque<Vec<u8>>, law: Law, payload: &[u8]) {
    if frames.len() >= RECORD_BACKLOG {
        frames.pop_front();
    }
    frames.push_back(
        payload
            .iter()
            .map(|&c| law.transcode_to(Law::Alaw, c))
            .collect(),
    );
}

/// The media of one call, until the caller goes silent or the call flow drops its handle.
pub struct Session {
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    pub codec: u8,
    pub telephone_event: Option<u8>,
    pub prompts: Arc<PromptSet>,
}

impl Session {
    /// Runs the media; returns what it counted.
    pub async fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        heard: mpsc::UnboundedSender<Heard>,
    ) -> Counts {
        let law = Law::from_payload_type(self.codec).unwrap_or(Law::Alaw);
        let mut player = Player {
            prompts: self.prompts.clone(),
            law,
            queue: VecDeque::new(),
            playing: None,
            hold: false,
        };
        let mut keys = Keys {
            events: self.telephone_event.map(EventReceiver::new),
            tones: ToneDetector::new(),
            merger: DtmfMerger::default(),
            found: Vec::new(),
        };
        let mut header = RtpHeader {
            marker: true,
            payload_type: self.codec,
            sequence: rand::random(),
            timestamp: rand::random(),
            ssrc: rand::random(),
        };
        let mut recorder: Option<mpsc::UnboundedSender<ToRecorder>> = None;
        let mut secure: Option<SecureMedia> = None;
        // The caller is on hold for a consultation: the recording pauses.
        let mut held = false;
        let caller_format = LegFormat {
            codec: self.codec,
            telephone_event: self.telephone_event,
        };
        let mut bridge: Option<Bridged> = None;
        let mut monitor: Option<super::monitor::Monitoring> = None;
        let mut supervisor_buf = vec![0u8; 1500];
        let (mut caller_frames, mut agent_frames) = (VecDeque::new(), VecDeque::new());
        let started = Instant::now();
        let mut last_heard = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut counts = Counts::default();
        let mut buf = vec![0u8; 1500];
        let mut agent_buf = vec![0u8; 1500];
        let mut out = Vec::with_capacity(12 + FRAME_SAMPLES);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let (Some(b), Some(s)) = (&mut bridge, &mut secure) {
                        if player.busy() {
                            let (frame, done) = player.next_frame();
                            let relayed = s
                                .prompt_packet(&frame, law, b.leg.format.codec)
                                .is_some_and(|p| b.to_caller.relay(&p, &mut out));
                            if relayed {
                                let _ = self.socket.send_to(&out, self.remote).await;
                                counts.sent += 1;
                            }
                            if done && heard.send(Heard::Played).is_err() {
                                break;
                            }
                        }
                    }
                    if bridge.is_none() {
                        let (frame, done) = player.next_frame();
                        out.clear();
                        if header.write(&frame, &mut out).is_ok() {
                            let _ = self.socket.send_to(&out, self.remote).await;
                            counts.sent += 1;
                        }
                        header.marker = false;
                        header.sequence = header.sequence.wrapping_add(1);
                        header.timestamp = header.timestamp.wrapping_add(FRAME_SAMPLES as u32);
                        if done && heard.send(Heard::Played).is_err() {
                            break;
                        }
                    }
                    if let Some(m) = &mut monitor {
                        m.send_tick().await;
                    }
                    if let Some(r) = recorder.as_ref().filter(|_| secure.is_none() && !held) {
                        let caller = caller_frames.pop_front().unwrap_or_default();
                        let agent = agent_frames.pop_front().unwrap_or_default();
                        let _ = r.send(ToRecorder::Frame((caller, agent)));
                    }
                    if let Some(ev) = keys.events.as_mut() {
                        let _ = ev.poll(started.elapsed().as_millis() as u64);
                    }
                    if last_heard.elapsed() > SILENCE_TIMEOUT {
                        tracing::info!("no RTP from the caller: media ends");
                        break;
                    }
                }
                got = self.socket.recv_from(&mut buf) => {
                    let Ok((n, _)) = got else { continue };
                    let Ok(packet) = RtpPacket::parse(&buf[..n]) else { continue };
                    counts.received += 1;
                    last_heard = Instant::now();
                    if let Some(b) = &mut bridge {
                        let relayed = match &mut secure {
                            None => b.to_agent.relay(&packet, &mut out),
                            Some(s) => s
                                .caller_packet(&packet, self.codec)
                                .is_some_and(|p| b.to_agent.relay(&p, &mut out)),
                        };
                        if relayed {
                            // The supervisor hears (and whispers into) the masked, plain audio;
                            // only then is it sealed for an SRTP agent leg.
                            if let Some(m) = &mut monitor {
                                m.sending_to_agent(&mut out, b.leg.format.codec);
                            }
                            if b.leg.seal(&mut out) {
                                let _ = b.leg.socket.send_to(&out, b.leg.remote).await;
                            }
                        }
                    }
                    // Secure mode ends once the line ran clear and the last prompt played.
                    if secure.as_ref().is_some_and(SecureMedia::done) && !player.busy() {
                        secure = None;
                        if let Some(r) = &recorder {
                            let _ = r.send(ToRecorder::Resume);
                        }
                    }
                    let now_ms = started.elapsed().as_millis() as u64;
                    if packet.payload_type == self.codec && recorder.is_some() && secure.is_none() && !held {
                        keep(&mut caller_frames, law, packet.payload);
                    }
                    for key in keys.hear(&packet, self.codec, law, now_ms) {
                        if heard.send(Heard::Key(key)).is_err() {
                            return counts;
                        }
                    }
                }
                got = agent_recv(bridge.as_ref(), &mut agent_buf) => {
                    let (Some(b), Ok(n)) = (&mut bridge, got) else { continue };
                    let Some(n) = b.leg.open(&mut agent_buf[..n]) else { continue };
                    let Ok(packet) = RtpPacket::parse(&agent_buf[..n]) else { continue };
                    // While a payment prompt plays, the caller hears it instead of the agent.
                    let prompting = secure.is_some() && player.busy();
                    let mut barged = false;
                    if !prompting && b.to_caller.relay(&packet, &mut out) {
                        if let Some(m) = &mut monitor {
                            barged = m.sending_to_caller(&mut out, self.codec);
                        }
                        let _ = self.socket.send_to(&out, self.remote).await;
                        counts.sent += 1;
                    }
                    if packet.payload_type == b.leg.format.codec && recorder.is_some() && secure.is_none() {
                        // A barging supervisor is recorded as the caller heard them.
                        let (heard_law, heard) = if barged { (law, out.get(12..).unwrap_or_default()) } else { (b.agent_law, packet.payload) };
                        keep(&mut agent_frames, heard_law, heard);
                    }
                }
                got = super::monitor::supervisor_recv(monitor.as_ref(), &mut supervisor_buf) => {
                    let (Some(m), Ok(n)) = (&mut monitor, got) else { continue };
                    let Some(n) = m.open(&mut supervisor_buf[..n]) else { continue };
                    if let Ok(packet) = RtpPacket::parse(&supervisor_buf[..n]) {
                        m.heard_supervisor(&packet);
                    }
                }
                cmd = commands.recv() => match cmd {
                    None | Some(Command::End) => break,
                    Some(Command::Play(p)) => player.queue.extend(p),
                    Some(Command::Interrupt) => player.interrupt(),
                    Some(Command::Hold) => player.hold = true,
                    Some(Command::Secure(style)) => match &mut secure {
                        // Secure again before the line ran clear: it simply goes on.
                        Some(s) => s.go_on(),
                        None => {
                            secure = Some(SecureMedia::new(style));
                            caller_frames.clear();
                            agent_frames.clear();
                            if let Some(r) = &recorder {
                                let _ = r.send(ToRecorder::Pause(PauseReason::Payment));
                            }
                        }
                    },
                    Some(Command::Unsecure) => {
                        if let Some(s) = &mut secure {
                            s.end();
                        }
                    }
                    Some(Command::InfoKey(press)) => {
                        let now_ms = started.elapsed().as_millis() as u64;
                        if keys.merger.offer_lasting(press.key, DtmfSource::SipInfo, now_ms, press.lasts_ms)
                            && heard.send(Heard::Key(press.key)).is_err()
                        {
                            break;
                        }
                    }
                    Some(Command::Record(sink)) => recorder = Some(sink),
                    Some(Command::Monitor(leg)) => monitor = Some(super::monitor::Monitoring::new(leg)),
                    Some(Command::Unmonitor) => monitor = None,
                    Some(Command::MonitorMode(mode)) => {
                        if let Some(m) = &mut monitor {
                            m.set_mode(mode);
                        }
                    }
                    Some(Command::Bridge(mut leg)) => {
                        player.interrupt();
                        player.hold = false;
                        if std::mem::take(&mut held) {
                            if let Some(r) = &recorder {
                                let _ = r.send(ToRecorder::Resume);
                            }
                        }
                        bridge = Some(Bridged {
                            to_agent: Relay::new(caller_format, leg.format, leg.sent.take().unwrap_or_else(Restamp::fresh)),
                            to_caller: Relay::new(leg.format, caller_format, Restamp::new(header.ssrc, header.sequence, header.timestamp)),
                            agent_law: Law::from_payload_type(leg.format.codec).unwrap_or(Law::Alaw),
                            leg,
                        });
                    }
                    Some(Command::Unbridge { back, hold }) => {
                        monitor = None;
                        if let Some(mut b) = bridge.take() {
                            // The caller's stream goes on where the relay left it, and so
                            // will the agent's wherever their leg goes next.
                            (header.sequence, header.timestamp) = b.to_caller.next();
                            header.marker = true;
                            b.leg.sent = Some(b.to_agent.stream());
                            let _ = back.send(b.leg);
                        }
                        if secure.take().is_some() {
                            if let Some(r) = &recorder {
                                let _ = r.send(ToRecorder::Resume);
                            }
                        }
                        player.interrupt();
                        player.hold = true;
                        if hold && !held {
                            if let Some(r) = &recorder {
                                let _ = r.send(ToRecorder::Pause(PauseReason::Hold));
                            }
                            caller_frames.clear();
                            agent_frames.clear();
                            held = true;
                        }
                    }
                    Some(Command::AgentMoved(to)) => {
                        if let Some(b) = &mut bridge {
                            if let Err(e) = b.leg.socket.connect(to).await {
                                tracing::warn!(error = %e, "the agent's new media address cannot be reached");
                            }
                            b.leg.remote = to;
                        }
                    }
                },
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_of_prompts_plays_in_order_and_says_when_it_is_done() {
        let prompts = Arc::new(PromptSet::builtin());
        let frames = |p: Prompt| prompts.audio(p).len().div_ceil(FRAME_SAMPLES);
        let mut player = Player {
            prompts: prompts.clone(),
            law: Law::Ulaw,
            queue: VecDeque::from([Prompt::RecordingNotice, Prompt::IvrMenu]),
            playing: None,
            hold: false,
        };
        let total = frames(Prompt::RecordingNotice) + frames(Prompt::IvrMenu);
        let mut loud = 0;
        for i in 1..=total {
            let (frame, done) = player.next_frame();
            assert_eq!(done, i == total, "frame {i} of {total}");
            loud += usize::from(frame.iter().any(|&c| c != Law::Ulaw.silence()));
        }
        assert!(loud > total / 2, "prompts are mostly sound");
        let (frame, done) = player.next_frame();
        assert!(!done && frame.iter().all(|&c| c == Law::Ulaw.silence()));
    }

    /// The next RTP packet on `sock` whose payload type is `pt` (the media also sends prompt
    /// frames until the bridge); a hang guard of 10 s, not a timing assertion.
    async fn next_of(sock: &UdpSocket, pt: u8) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
                .await
                .expect("a packet")
                .unwrap();
            if RtpPacket::parse(&buf[..n]).unwrap().payload_type == pt {
                return buf[..n].to_vec();
            }
        }
    }

    #[tokio::test]
    async fn once_bridged_each_packet_is_relayed_as_it_arrives_and_both_legs_are_recorded() {
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
        let (sink, mut recorded) = mpsc::unbounded_channel();
        commands.send(Command::Record(sink)).unwrap();
        commands
            .send(Command::Bridge(AgentLeg {
                socket: media_agent,
                remote: local(&agent),
                format: LegFormat {
                    codec: 0,
                    telephone_event: None,
                },
                srtp: None,
                sent: None,
            }))
            .unwrap();
        // One caller packet (A-law) comes out on the agent's leg (µ-law) without waiting for
        // another: the relay holds nothing back.
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
        let got = next_of(&agent, 0).await;
        let p = RtpPacket::parse(&got).unwrap();
        assert_ne!(p.ssrc, 0xCA11, "re-stamped into the agent leg's own stream");
        let want: Vec<u8> = voice
            .iter()
            .map(|&c| Law::Alaw.transcode_to(Law::Ulaw, c))
            .collect();
        assert_eq!(p.payload, &want[..]);
        // A caller's telephone event is not carried to a leg that negotiated none.
        let event = RtpHeader {
            payload_type: 101,
            ..from_caller
        };
        caller
            .send(&event.to_packet(&[1, 10, 0, 160]).unwrap())
            .await
            .unwrap();
        // The agent's answer (µ-law) reaches the caller as A-law, in the caller leg's stream.
        let reply: Vec<u8> = (0..160u16).map(|i| (i % 100 + 20) as u8).collect();
        let from_agent = RtpHeader {
            marker: false,
            payload_type: 0,
            sequence: 9,
            timestamp: 1,
            ssrc: 0xA6E7,
        };
        agent
            .send(&from_agent.to_packet(&reply).unwrap())
            .await
            .unwrap();
        let got = next_of(&caller, 8).await;
        let p = RtpPacket::parse(&got).unwrap();
        let want: Vec<u8> = reply
            .iter()
            .map(|&c| Law::Ulaw.transcode_to(Law::Alaw, c))
            .collect();
        assert_eq!(p.payload, &want[..]);
        caller
            .send(&from_caller.to_packet(&voice).unwrap())
            .await
            .unwrap();
        agent
            .send(&from_agent.to_packet(&reply).unwrap())
            .await
            .unwrap();
        // The recorder gets both legs, A-law, the caller in the first channel.
        let (mut heard_caller, mut heard_agent) = (false, false);
        while !(heard_caller && heard_agent) {
            let ToRecorder::Frame((c, a)) =
                tokio::time::timeout(Duration::from_secs(10), recorded.recv())
                    .await
                    .expect("frames")
                    .unwrap()
            else {
                panic!("no pause without secure mode");
            };
            heard_caller |= c == voice;
            heard_agent |= a == want;
        }
        assert!(
            next_of_none(&agent).await,
            "no event packet reached the agent"
        );
        commands.send(Command::End).unwrap();
        media.await.unwrap();
    }

    #[tokio::test]
    async fn an_agent_who_moves_its_media_is_followed_and_its_old_address_is_no_longer_heard() {
        let local = |s: &UdpSocket| s.local_addr().unwrap();
        let media_caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let media_agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (old, new) = (
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        );
        caller.connect(local(&media_caller)).await.unwrap();
        old.connect(local(&media_agent)).await.unwrap();
        new.connect(local(&media_agent)).await.unwrap();
        media_agent.connect(local(&old)).await.unwrap();
        let session = Session {
            socket: media_caller,
            remote: local(&caller),
            codec: 8,
            telephone_event: None,
            prompts: Arc::new(PromptSet::builtin()),
        };
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (heard_tx, _heard) = mpsc::unbounded_channel();
        let media = tokio::spawn(session.run(commands_rx, heard_tx));
        let format = LegFormat {
            codec: 8,
            telephone_event: None,
        };
        commands
            .send(Command::Bridge(AgentLeg {
                socket: media_agent,
                remote: local(&old),
                format,
                srtp: None,
                sent: None,
            }))
            .unwrap();
        let packet = |ssrc: u32, seq: u16, fill: u8| {
            RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: seq,
                timestamp: u32::from(seq) * 160,
                ssrc,
            }
            .to_packet(&[fill; 160])
            .unwrap()
        };
        caller.send(&packet(0xCA11, 1, 0x11)).await.unwrap();
        assert_eq!(
            RtpPacket::parse(&next_of(&old, 8).await).unwrap().payload,
            &[0x11; 160][..]
        );

        // The re-INVITE moved the agent: the caller's audio goes to the new address.
        commands.send(Command::AgentMoved(local(&new))).unwrap();
        let mut moved = false;
        for seq in 2..200u16 {
            caller.send(&packet(0xCA11, seq, 0x22)).await.unwrap();
            let mut buf = vec![0u8; 1500];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(20), new.recv(&mut buf)).await
            {
                assert_eq!(
                    RtpPacket::parse(&buf[..n]).unwrap().payload,
                    &[0x22; 160][..]
                );
                moved = true;
                break;
            }
        }
        assert!(moved, "the relay sends to the agent's new address");

        // Only the new address is heard: a packet from the old one (sent first) never reaches
        // the caller, the new one's does. (Frames played before the bridge are drained first.)
        let mut buf = vec![0u8; 1500];
        while caller.try_recv(&mut buf).is_ok() {}
        old.send(&packet(0xA6E7, 1, 0x33)).await.unwrap();
        new.send(&packet(0xA6E7, 2, 0x44)).await.unwrap();
        let got = next_of(&caller, 8).await;
        assert_eq!(RtpPacket::parse(&got).unwrap().payload, &[0x44; 160][..]);
        commands.send(Command::End).unwrap();
        media.await.unwrap();
    }

    /// A call's media loop bridged to an agent, with a supervisor leg in `mode`, and the
    /// caller's, agent's and supervisor's sockets talking to it.
    struct ThreeLegs {
        media: tokio::task::JoinHandle<Counts>,
        commands: mpsc::UnboundedSender<Command>,
        recorded: Option<mpsc::UnboundedReceiver<ToRecorder>>,
        /// Kept open: the loop ends when nobody hears the caller's keys.
        _heard: mpsc::UnboundedReceiver<Heard>,
        caller: UdpSocket,
        agent: UdpSocket,
        supervisor: UdpSocket,
    }

    /// [`ThreeLegs`], with a recorder attached before the bridge when `record`.
    async fn three_legs(mode: crate::media::mix::Mode, record: bool) -> ThreeLegs {
        let local = |s: &UdpSocket| s.local_addr().unwrap();
        let bind = || UdpSocket::bind("127.0.0.1:0");
        let (media_caller, media_agent, media_supervisor) = (
            bind().await.unwrap(),
            bind().await.unwrap(),
            bind().await.unwrap(),
        );
        let (caller, agent, supervisor) = (
            bind().await.unwrap(),
            bind().await.unwrap(),
            bind().await.unwrap(),
        );
        caller.connect(local(&media_caller)).await.unwrap();
        agent.connect(local(&media_agent)).await.unwrap();
        supervisor.connect(local(&media_supervisor)).await.unwrap();
        let session = Session {
            socket: media_caller,
            remote: local(&caller),
            codec: 8,
            telephone_event: Some(101),
            prompts: Arc::new(PromptSet::builtin()),
        };
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let media = tokio::spawn(session.run(commands_rx, heard_tx));
        let recorded = record.then(|| {
            let (sink, recorded) = mpsc::unbounded_channel();
            commands.send(Command::Record(sink)).unwrap();
            recorded
        });
        let format = LegFormat {
            codec: 8,
            telephone_event: None,
        };
        commands
            .send(Command::Bridge(AgentLeg {
                socket: media_agent,
                remote: local(&agent),
                format,
                srtp: None,
                sent: None,
            }))
            .unwrap();
        commands
            .send(Command::Monitor(super::super::monitor::SupervisorLeg {
                socket: media_supervisor,
                remote: local(&supervisor),
                format,
                mode,
                srtp: None,
            }))
            .unwrap();
        ThreeLegs {
            media,
            commands,
            recorded,
            _heard: heard,
            caller,
            agent,
            supervisor,
        }
    }

    #[tokio::test]
    async fn a_barging_supervisor_reaches_the_caller_and_the_recording_keeps_what_the_caller_heard()
    {
        use crate::media::goertzel::tone_share;
        use crate::media::mix::Mode;
        let ThreeLegs {
            media,
            commands,
            recorded,
            caller,
            agent,
            supervisor,
            _heard,
        } = three_legs(Mode::Barge, true).await;
        let mut recorded = recorded.unwrap();
        let tone = |hz: f32, f: usize| -> Vec<u8> {
            (f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES)
                .map(|i| {
                    let v = 6000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin();
                    Law::Alaw.encode(v as i16)
                })
                .collect()
        };
        let header = |seq: u16| RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0x5EE,
        };
        // The supervisor speaks (1600 Hz) before each agent frame (1000 Hz): the caller hears
        // both, and so does the recording's agent channel.
        let (mut to_caller, mut agent_channel) = (Vec::new(), Vec::new());
        for f in 0..25u16 {
            supervisor
                .send(&header(f).to_packet(&tone(1600.0, f.into())).unwrap())
                .await
                .unwrap();
            // The supervisor's frame is taken in before the agent's goes out.
            tokio::time::sleep(Duration::from_millis(5)).await;
            agent
                .send(&header(f).to_packet(&tone(1000.0, f.into())).unwrap())
                .await
                .unwrap();
            let got = next_of(&caller, 8).await;
            let payload = RtpPacket::parse(&got).unwrap().payload.to_vec();
            to_caller.extend(payload.iter().map(|&c| Law::Alaw.decode(c)));
        }
        while agent_channel.len() < 10 * FRAME_SAMPLES {
            let got = tokio::time::timeout(Duration::from_secs(10), recorded.recv())
                .await
                .expect("frames")
                .unwrap();
            if let ToRecorder::Frame((_, a)) = got {
                agent_channel.extend(a.iter().map(|&c| Law::Alaw.decode(c)));
            }
        }
        assert!(
            tone_share(&to_caller, 1600.0) > 0.2,
            "the caller hears the supervisor"
        );
        assert!(tone_share(&to_caller, 1000.0) > 0.2, "and the agent");
        assert!(
            tone_share(&agent_channel, 1600.0) > 0.1,
            "the recording holds the barging supervisor"
        );
        commands.send(Command::End).unwrap();
        media.await.unwrap();
    }

    #[tokio::test]
    async fn in_secure_mode_neither_the_agent_nor_a_listening_supervisor_hears_a_key() {
        use crate::media::goertzel::{ToneDetector, ToneEvent};
        use crate::media::mask::MaskStyle;
        use crate::media::mix::Mode;
        let ThreeLegs {
            media,
            commands,
            caller,
            agent,
            supervisor,
            _heard,
            ..
        } = three_legs(Mode::Listen, false).await;
        commands.send(Command::Secure(MaskStyle::Tone)).unwrap();

        // The caller keys 4 1 1 1 in-band (100 ms tone, 100 ms gap), paced as a phone sends.
        let key = |c: char| -> (f32, f32) {
            let i = "123A456B789C*0#D".find(c).unwrap();
            (
                [697.0, 770.0, 852.0, 941.0][i / 4],
                [1209.0, 1336.0, 1477.0, 1633.0][i % 4],
            )
        };
        let mut sent: Vec<i16> = Vec::new();
        for c in "4111".chars() {
            let (low, high) = key(c);
            let start = sent.len();
            for n in 0..800 {
                let t = (start + n) as f32 / 8000.0;
                let v = 5000.0 * (2.0 * std::f32::consts::PI * low * t).sin()
                    + 5000.0 * (2.0 * std::f32::consts::PI * high * t).sin();
                sent.push(v as i16);
            }
            sent.extend(std::iter::repeat_n(0i16, 800));
        }
        sent.extend(std::iter::repeat_n(0i16, 8 * FRAME_SAMPLES));
        let keys_in = |audio: &[i16]| -> Vec<char> {
            let mut detector = ToneDetector::new();
            let mut events = Vec::new();
            detector.push(audio, &mut events);
            detector.finish(&mut events);
            events
                .iter()
                .filter_map(|e| match e {
                    ToneEvent::Started { key, .. } => Some(key.as_char()),
                    ToneEvent::Ended { .. } => None,
                })
                .collect()
        };
        assert_eq!(
            keys_in(&sent),
            vec!['4', '1', '1', '1'],
            "the caller keys them"
        );

        // Both legs are heard for as long as the caller sends, and a second more.
        let until = tokio::time::Instant::now()
            + Duration::from_millis(20 * (sent.len() / FRAME_SAMPLES) as u64 + 1000);
        let collect = |sock: UdpSocket| {
            tokio::spawn(async move {
                let mut audio = Vec::new();
                let mut buf = vec![0u8; 1500];
                while let Ok(Ok(n)) = tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                    if let Ok(p) = RtpPacket::parse(&buf[..n]) {
                        if p.payload_type == 8 {
                            audio.extend(p.payload.iter().map(|&c| Law::Alaw.decode(c)));
                        }
                    }
                }
                audio
            })
        };
        let (to_agent, to_supervisor) = (collect(agent), collect(supervisor));
        for (f, frame) in sent.chunks(FRAME_SAMPLES).enumerate() {
            let payload: Vec<u8> = frame.iter().map(|&v| Law::Alaw.encode(v)).collect();
            let seq = f as u16;
            let packet = RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 0xCA11,
            }
            .to_packet(&payload)
            .unwrap();
            caller.send(&packet).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (agent_heard, supervisor_heard) =
            (to_agent.await.unwrap(), to_supervisor.await.unwrap());
        let _ = commands.send(Command::End);
        media.await.unwrap();
        assert!(
            agent_heard.len() > sent.len() / 2 && supervisor_heard.len() > sent.len() / 2,
            "both legs got the call's audio ({} and {} samples of {})",
            agent_heard.len(),
            supervisor_heard.len(),
            sent.len()
        );
        assert!(keys_in(&agent_heard).is_empty(), "the agent hears no key");
        assert!(
            keys_in(&supervisor_heard).is_empty(),
            "the listening supervisor hears no key"
        );
    }

    #[tokio::test]
    async fn a_key_by_sip_info_and_its_rfc4733_copy_count_once_and_reach_neither_agent_nor_supervisor(
    ) {
        use crate::media::mask::MaskStyle;
        use crate::media::mix::Mode;
        use crate::media::rfc4733::EventSender;
        use crate::sip::info::InfoPress;
        let ThreeLegs {
            media,
            commands,
            caller,
            agent,
            supervisor,
            mut _heard,
            ..
        } = three_legs(Mode::Listen, false).await;
        commands.send(Command::Secure(MaskStyle::Tone)).unwrap();
        let key = |c: char| Key::from_char(c).unwrap();
        // The phone sends the press as an INFO and as RFC 4733 events beside it.
        commands
            .send(Command::InfoKey(InfoPress {
                key: key('5'),
                lasts_ms: 160,
            }))
            .unwrap();
        let sender = EventSender {
            payload_type: 101,
            ssrc: 0xCA11,
            volume: 10,
        };
        let mut seq = 1u16;
        for p in sender.press(key('5'), 1000, 1280, 160, &mut seq).unwrap() {
            caller.send(&p).await.unwrap();
        }
        // Then another key by INFO alone: the next key heard after the `5` is the `7`.
        tokio::time::sleep(Duration::from_millis(50)).await;
        commands
            .send(Command::InfoKey(InfoPress {
                key: key('7'),
                lasts_ms: 160,
            }))
            .unwrap();
        let mut heard = Vec::new();
        while heard.len() < 2 {
            let got = tokio::time::timeout(Duration::from_secs(10), _heard.recv())
                .await
                .expect("keys")
                .unwrap();
            if let Heard::Key(k) = got {
                heard.push(k.as_char());
            }
        }
        assert_eq!(heard, ['5', '7'], "the press sent both ways counts once");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(next_of_none(&agent).await, "no event reached the agent");
        assert!(
            next_of_none(&supervisor).await,
            "no event reached the supervisor"
        );
        commands.send(Command::End).unwrap();
        media.await.unwrap();
    }

    /// Whether no more packets are waiting on `sock` (what was sent has been handled: the
    /// recorder saw later packets).
    async fn next_of_none(sock: &UdpSocket) -> bool {
        let mut buf = vec![0u8; 1500];
        while let Ok(n) = sock.try_recv(&mut buf) {
            if RtpPacket::parse(&buf[..n]).map(|p| p.payload_type) == Ok(101) {
                return false;
            }
        }
        true
    }

    #[tokio::test]
    async fn an_unbridged_caller_hears_the_hold_tone_on_their_stream_and_the_agent_leg_comes_back()
    {
        let local = |s: &UdpSocket| s.local_addr().unwrap();
        let media_caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let media_agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        caller.connect(local(&media_caller)).await.unwrap();
        agent.connect(local(&media_agent)).await.unwrap();
        let agent_media = local(&media_agent);
        let session = Session {
            socket: media_caller,
            remote: local(&caller),
            codec: 8,
            telephone_event: None,
            prompts: Arc::new(PromptSet::builtin()),
        };
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (heard_tx, _heard) = mpsc::unbounded_channel();
        let media = tokio::spawn(session.run(commands_rx, heard_tx));
        let (sink, mut recorded) = mpsc::unbounded_channel();
        commands.send(Command::Record(sink)).unwrap();
        let format = LegFormat {
            codec: 8,
            telephone_event: None,
        };
        commands
            .send(Command::Bridge(AgentLeg {
                socket: media_agent,
                remote: local(&agent),
                format,
                srtp: None,
                sent: None,
            }))
            .unwrap();
        // The agent talks: the caller gets it on the caller leg's stream.
        let reply = [0x2Au8; 160];
        let from_agent = RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: 9,
            timestamp: 1,
            ssrc: 0xA6E7,
        };
        agent
            .send(&from_agent.to_packet(&reply).unwrap())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1500];
        let relayed = loop {
            let n = tokio::time::timeout(Duration::from_secs(10), caller.recv(&mut buf))
                .await
                .expect("a packet")
                .unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            if p.payload == &reply[..] {
                break (p.ssrc, p.sequence);
            }
        };
        // A transfer: the agent's leg comes back, the recording pauses for the hold.
        let (back, leg) = tokio::sync::oneshot::channel();
        commands
            .send(Command::Unbridge { back, hold: true })
            .unwrap();
        let leg = tokio::time::timeout(Duration::from_secs(10), leg)
            .await
            .expect("the leg")
            .unwrap();
        assert_eq!(leg.socket.local_addr().unwrap(), agent_media);
        loop {
            match tokio::time::timeout(Duration::from_secs(10), recorded.recv())
                .await
                .expect("the pause")
                .unwrap()
            {
                ToRecorder::Pause(PauseReason::Hold) => break,
                ToRecorder::Frame(_) => {}
                other => panic!("{other:?}"),
            }
        }
        // The caller hears the comfort tone, going on from the relayed stream.
        let n = tokio::time::timeout(Duration::from_secs(10), caller.recv(&mut buf))
            .await
            .expect("the hold tone")
            .unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.ssrc, relayed.0, "the same stream");
        assert_eq!(p.sequence, relayed.1.wrapping_add(1), "no jump in sequence");
        let mut loud = false;
        for _ in 0..50 {
            let n = tokio::time::timeout(Duration::from_secs(10), caller.recv(&mut buf))
                .await
                .expect("the hold tone")
                .unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            loud |= p.payload.iter().any(|&c| c != Law::Alaw.silence());
        }
        assert!(loud, "the comfort tone is sound, not silence");
        // Bridged again (a cancelled consultation): the recording resumes, and no frame came
        // while the caller held.
        commands.send(Command::Bridge(leg)).unwrap();
        let next = tokio::time::timeout(Duration::from_secs(10), recorded.recv())
            .await
            .expect("the resume")
            .unwrap();
        assert!(matches!(next, ToRecorder::Resume), "{next:?}");
        commands.send(Command::End).unwrap();
        media.await.unwrap();
    }

    #[test]
    fn holding_loops_the_comfort_tone_and_an_interrupt_stops_a_prompt() {
        let prompts = Arc::new(PromptSet::builtin());
        let mut player = Player {
            prompts,
            law: Law::Alaw,
            queue: VecDeque::from([Prompt::PleaseHold]),
            playing: None,
            hold: true,
        };
        player.next_frame();
        player.interrupt();
        let comfort = player
            .prompts
            .audio(Prompt::ComfortTone)
            .len()
            .div_ceil(FRAME_SAMPLES);
        for _ in 0..comfort * 2 + 3 {
            let (_, done) = player.next_frame();
            assert!(!done, "the comfort loop never reports done");
        }
        assert!(matches!(player.playing, Some((Prompt::ComfortTone, _))));
    }
}
