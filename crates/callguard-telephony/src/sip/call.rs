//! One answered call from a carrier: the SDP answer (G.711 + telephone-event, 20 ms), an RTP
//! port of its own, the call's interaction and IVR, and the dialog kept until the caller hangs
//! up (or its audio stops).

use super::ivr::{Flow, Line};
use super::sdp::{self, Offer};
use super::session::{Command, Session, ToRecorder};
use super::Edge;
use crate::media::g711::ALAW_SILENCE;
use crate::media::FRAME_SAMPLES;
use bytesstr::BytesStr;
use callguard_server::features::interactions::model::{
    Direction, InteractionChannel, NewInteraction,
};
use callguard_server::principal::Principal;
use ezk_sdp_types::SessionDescription;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::header::typed::Contact;
use ezk_sip_types::uri::NameAddr;
use ezk_sip_types::uri::SipUriUserPart;
use ezk_sip_types::StatusCode;
use ezk_sip_ua::{CallEvent, InboundCall, MediaBackend};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The SDP side of a call for ezk: the answer is made before accepting; RTP is the
/// [`Session`]'s.
pub struct Negotiated {
    answer: String,
}

impl MediaBackend for Negotiated {
    type Error = io::Error;
    type Event = std::convert::Infallible;

    fn has_media(&self) -> bool {
        true
    }

    async fn create_sdp_offer(&mut self) -> Result<SessionDescription, io::Error> {
        self.parsed_answer()
    }

    async fn receive_sdp_answer(&mut self, _sdp: SessionDescription) -> Result<(), io::Error> {
        Ok(())
    }

    async fn receive_sdp_offer(
        &mut self,
        _sdp: SessionDescription,
    ) -> Result<SessionDescription, io::Error> {
        self.parsed_answer()
    }

    async fn run(&mut self) -> Result<Self::Event, io::Error> {
        std::future::pending().await
    }
}

impl Negotiated {
    fn parsed_answer(&self) -> Result<SessionDescription, io::Error> {
        SessionDescription::parse(&BytesStr::from(self.answer.as_str()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
}

/// Binds an RTP socket on an even port of `range` at `ip`.
pub(super) async fn rtp_socket(ip: std::net::IpAddr, range: (u16, u16)) -> io::Result<UdpSocket> {
    let (lo, hi) = (range.0 / 2, range.1 / 2);
    for _ in 0..64 {
        let port = rand::random::<u16>() % (hi - lo + 1).max(1) + lo;
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(ip, port * 2)).await {
            return Ok(s);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free RTP port in sip.rtp_ports",
    ))
}

/// Refuses an INVITE with `code` (no dialog is created).
pub async fn refuse(endpoint: &Endpoint, mut invite: IncomingRequest, code: StatusCode) {
    let response = endpoint.create_response(&invite, code, None);
    let tsx = endpoint.create_server_inv_tsx(&mut invite);
    if let Err(e) = tsx.respond_failure(response).await {
        tracing::debug!(error = %e, "could not refuse an INVITE");
    }
}

/// Answers an INVITE from a carrier and keeps the call until it ends.
pub async fn answer(edge: Arc<Edge>, endpoint: Endpoint, invite: IncomingRequest) {
    let offer = std::str::from_utf8(&invite.body)
        .map_err(|_| sdp::OfferError::NoAudio)
        .and_then(sdp::read_offer);
    let offer: Offer = match offer {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(error = %e, "call refused: unusable SDP offer");
            edge.metrics.sip_refused("codec");
            return refuse(&endpoint, invite, StatusCode::NOT_ACCEPTABLE_HERE).await;
        }
    };
    let socket = match rtp_socket(edge.settings.media_ip, edge.settings.rtp_ports).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "call refused: no RTP port");
            edge.metrics.sip_refused("busy");
            return refuse(&endpoint, invite, StatusCode::SERVICE_UNAVAILABLE).await;
        }
    };
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(_) => return refuse(&endpoint, invite, StatusCode::SERVER_INTERNAL_ERROR).await,
    };
    let answer = sdp::answer(&offer, local, rand::random::<u32>().into());
    // Only the text is taken here: checking it as a number may load the numbering plan on
    // first use, which must not delay the provisional answer (the INVITE would be resent).
    let from_user = from_user(&invite);
    let source = invite.tp_info.source.ip();
    // Key presses by SIP INFO in the caller's dialog go to the call's media.
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let _info = edge.info.open(&invite, commands.clone());
    let contact = Contact::new(NameAddr::uri(edge.contact.clone()));
    let inbound = match InboundCall::from_invite(endpoint.clone(), invite, contact) {
        Ok(i) => i,
        Err(e) => {
            let (invite, error) = *e;
            tracing::info!(error = %error, "call refused: malformed INVITE");
            edge.metrics.sip_refused("malformed");
            return refuse(&endpoint, invite, StatusCode::BAD_REQUEST).await;
        }
    };
    let mut inbound = inbound.with_media(Negotiated { answer });
    let _ = inbound.respond_provisional(StatusCode::RINGING).await;
    let caller_id = caller_id(from_user);
    let mut call = match inbound.accept().await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "call not established");
            edge.metrics.sip_call("failed");
            return;
        }
    };
    edge.metrics.sip_call("answered");
    tracing::info!(
        codec = offer.codec,
        rfc4733 = offer.telephone_event.is_some(),
        "call answered"
    );
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let session = Session {
        socket,
        remote: offer.remote,
        codec: offer.codec,
        telephone_event: offer.telephone_event,
        prompts: edge.prompts.clone(),
    };
    let media = tokio::spawn(session.run(commands_rx, heard_tx));
    let line = Line { commands, heard };
    let principal = Principal::telephony_edge(source);
    let flow = edge.clone().follow(&endpoint, line, &principal, caller_id);
    tokio::pin!(flow);
    let mut hung_up_by_caller = false;
    let mut flow_done = false;
    loop {
        tokio::select! {
            ev = call.run() => match ev {
                Ok(CallEvent::Internal(ev)) => {
                    if let Err(e) = call.handle_internal_event(ev).await {
                        tracing::debug!(error = %e, "call event failed");
                        break;
                    }
                }
                Ok(CallEvent::Media(never)) => match never {},
                Ok(CallEvent::Terminated) => {
                    hung_up_by_caller = true;
                    break;
                }
                Err(e) => {
                    tracing::info!(error = %e, "call ended");
                    break;
                }
            },
            () = &mut flow => {
                flow_done = true;
                break;
            }
        }
    }
    // The media stops; the flow then ends the interaction and the recording is sealed.
    media.abort();
    if !flow_done {
        flow.await;
    }
    if !hung_up_by_caller {
        let _ = call.terminate().await;
    }
    tracing::info!(by_caller = hung_up_by_caller, "call ended");
}

/// The caller's number from the From header when it is one (E.164); otherwise withheld. It
/// only pops up the caller's record: it never counts towards verification.
fn caller_id(from_user: Option<String>) -> String {
    match from_user {
        Some(u) if callguard_core::vault::validate::phone(&u).is_ok() => u,
        _ => String::new(),
    }
}

/// The user part of the INVITE's From URI, unchecked.
fn from_user(invite: &IncomingRequest) -> Option<String> {
    match &invite.base_headers.from.uri.uri.user_part {
        SipUriUserPart::User(u) => Some(u.to_string()),
        _ => None,
    }
}

impl Edge {
    /// The call's interaction and IVR, then its queue and the agent, until the media ends.
    async fn follow(
        self: Arc<Self>,
        endpoint: &Endpoint,
        mut line: Line,
        edge: &Principal,
        from: String,
    ) {
        let new = NewInteraction {
            channel: InteractionChannel::Phone,
            direction: Direction::Inbound,
            from: from.clone(),
            customer_id: None,
        };
        let (interaction, customer) = match self.interactions.start(edge, new).await {
            Ok(i) => (i.id, i.customer_id),
            Err(e) => {
                tracing::warn!(error = %e, "no interaction for the call; it goes on unrecorded, without self-verification");
                while line.heard.recv().await.is_some() {}
                return;
            }
        };
        let (frames, frames_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(self.clone().record(
            edge.clone(),
            interaction.clone(),
            customer,
            frames_rx,
        ));
        let flow = Flow {
            menu: &self.settings.menu,
            interactions: &self.interactions,
            edge,
            interaction: &interaction,
        };
        let commands = line.commands.clone();
        let start_recording = move || {
            let _ = commands.send(Command::Record(frames));
        };
        let mut handed_over = false;
        let mut queued_in = None;
        if let Some(r) = flow.run(&mut line, start_recording).await {
            let queue = r
                .queue
                .or_else(|| self.settings.menu.0.values().next().cloned())
                .unwrap_or_default();
            tracing::info!(queue = %queue, level = r.level, "caller queued");
            queued_in = Some(queue.clone());
            let call = super::acd::QueuedCall {
                interaction: interaction.clone(),
                caller_id: from.clone(),
                ivr_path: vec![queue.clone()],
                level: r.level,
                screen_pop: self.screen_pop(edge, &interaction).await,
            };
            let ended = self
                .queue_and_bridge(endpoint, &mut line, queue, &call, edge)
                .await;
            tracing::info!(?ended, "queued call over");
            let _ = line.commands.send(Command::End);
            handed_over = matches!(ended, super::acd::Ended::Bridged { handed: true, .. });
        }
        while line.heard.recv().await.is_some() {}
        // A call an agent took is theirs: they end it on the desk after wrap-up.
        if !handed_over {
            if let Err(e) = self.interactions.end(edge, &interaction).await {
                tracing::warn!(error = %e, "the call's interaction could not be ended");
            }
        }
        let _ = recorder.await;
        if let Some(queue) = queued_in {
            self.name_queue_of_recordings(&interaction, &queue).await;
        }
    }

    /// The masked name of the customer the call is linked to now (the caller's number or the
    /// IVR's identification singled one out), for the agent's desk while it rings.
    async fn screen_pop(&self, edge: &Principal, interaction: &str) -> Option<String> {
        match self.interactions.get(edge, interaction).await {
            Ok(view) => view.customer.map(|c| c.full_name),
            Err(e) => {
                tracing::warn!(error = %e, "the call's screen-pop could not be read");
                None
            }
        }
    }

    /// Names the queue the call waited in on its recordings, for the recordings list's filter.
    async fn name_queue_of_recordings(&self, interaction: &str, queue: &str) {
        let rows = match self.recordings.of_interaction(interaction).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "the call's recordings could not be listed to name their queue");
                return;
            }
        };
        for row in rows.iter().filter(|r| r.queue.is_none()) {
            if let Err(e) = self.recordings.set_queue(&row.id, queue).await {
                tracing::warn!(error = %e, "the queue of a recording could not be named");
            }
        }
    }

    /// Records the call from the frames the media hands over (after the notice) until the
    /// media ends: the caller in one channel, the agent (once bridged) in the other.
    async fn record(
        self: Arc<Self>,
        edge: Principal,
        interaction: String,
        customer: Option<String>,
        mut frames: mpsc::UnboundedReceiver<ToRecorder>,
    ) {
        let Some(first) = frames.recv().await else {
            return;
        };
        let mut rec = match self.recordings.start(&edge, &interaction, customer).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the call could not be recorded");
                return;
            }
        };
        let mut frame = Some(first);
        while let Some(item) = frame {
            let written = match item {
                ToRecorder::Frame((caller, agent)) => {
                    let n = caller.len().max(agent.len()).max(FRAME_SAMPLES);
                    rec.writer.push(&pad(&caller, n), &pad(&agent, n))
                }
                // Secure mode: a pause chunk, then nothing until it resumes by itself.
                ToRecorder::Pause(reason) => rec.writer.pause(reason),
                ToRecorder::Resume => rec.writer.resume_audio(),
            };
            if let Err(e) = written {
                tracing::error!(error = %e, "recording stopped");
                break;
            }
            frame = frames.recv().await;
        }
        if let Err(e) = self.recordings.finish(&edge, rec).await {
            tracing::error!(error = %e, "the recording could not be finished");
        }
    }
}

/// `frame` padded with A-law silence to `n` samples.
fn pad(frame: &[u8], n: usize) -> Vec<u8> {
    let mut v = frame.to_vec();
    v.resize(n, ALAW_SILENCE);
    v
}
