//! One answered call from a carrier: the SDP answer (G.711 + telephone-event, 20 ms), an RTP
//! port of its own, and the dialog kept until the caller hangs up (or its audio stops).

use super::sdp::{self, Offer};
use super::Edge;
use bytesstr::BytesStr;
use ezk_sdp_types::SessionDescription;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::header::typed::Contact;
use ezk_sip_types::uri::NameAddr;
use ezk_sip_types::StatusCode;
use ezk_sip_ua::{CallEvent, InboundCall, MediaBackend};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// A call whose caller has sent no RTP for this long is hung up (a carrier that vanished).
const SILENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The media side of one call: its RTP socket and what was negotiated.
pub struct CallMedia {
    socket: UdpSocket,
    answer: String,
    /// Packets and bytes heard from the caller.
    pub heard: (u64, u64),
    last_heard: Instant,
}

impl MediaBackend for CallMedia {
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

    /// Drains the caller's RTP; returns an error only when the caller went silent.
    async fn run(&mut self) -> Result<Self::Event, io::Error> {
        let mut buf = [0u8; 1500];
        loop {
            let deadline = self.last_heard + SILENCE_TIMEOUT;
            match tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf)).await {
                Ok(Ok((n, _from))) => {
                    self.heard.0 += 1;
                    self.heard.1 += n as u64;
                    self.last_heard = Instant::now();
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no RTP from the caller",
                    ))
                }
            }
        }
    }
}

impl CallMedia {
    fn parsed_answer(&self) -> Result<SessionDescription, io::Error> {
        SessionDescription::parse(&BytesStr::from(self.answer.as_str()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
}

/// Binds an RTP socket on an even port of `range` at `ip`.
async fn rtp_socket(ip: std::net::IpAddr, range: (u16, u16)) -> io::Result<UdpSocket> {
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
    let media = CallMedia {
        socket,
        answer,
        heard: (0, 0),
        last_heard: Instant::now(),
    };
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
    let mut inbound = inbound.with_media(media);
    let _ = inbound.respond_provisional(StatusCode::RINGING).await;
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
    loop {
        match call.run().await {
            Ok(CallEvent::Internal(ev)) => {
                if let Err(e) = call.handle_internal_event(ev).await {
                    tracing::debug!(error = %e, "call event failed");
                    break;
                }
            }
            Ok(CallEvent::Media(never)) => match never {},
            Ok(CallEvent::Terminated) => {
                tracing::info!("call ended by the caller");
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, "call ended");
                break;
            }
        }
    }
    let _ = call.terminate().await;
}
