//! Queues and the ACD: after the IVR a call waits in its queue (comfort tone, its position
//! announced), the head of each queue gets the next agent the [`AgentPool`] picks (the
//! longest-idle ready agent), whose registered softphone is rung with an INVITE of our own; no
//! answer within `queues.ring_seconds` → CANCEL, the agent counts as not answering, and the call
//! is offered again. Past `queues.max_wait_seconds` the call moves to its overflow queue (once),
//! or ends. Once answered, the caller's media relays to the agent's leg until either hangs up.
//! A softphone registered over TLS is rung over that connection; with
//! `sip.agents_require_srtp` every agent is offered SRTP (SDES) only and a plain answer is not
//! bridged.

use super::bridge::{AgentLeg, LegFormat};
use super::call::rtp_socket;
use super::ivr::Line;
use super::sdes;
use super::sdp;
use super::session::{Command, Heard};
use super::srtp_leg::{negotiate, SrtpLeg};
use super::Edge;
use crate::media::prompts::{Digit, Prompt};
use crate::media::srtp::MasterKey;
use bytesstr::BytesStr;
use callguard_server::features::transfer::service::TransferOrder;
use callguard_server::principal::Principal;
use ezk_sdp_types::SessionDescription;
use ezk_sip_core::Endpoint;
use ezk_sip_types::header::typed::Contact;
use ezk_sip_types::uri::{NameAddr, SipUri};
use ezk_sip_types::Headers;
use ezk_sip_ua::{Call, CallEvent, MediaBackend, OutboundCall};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The `queues.*` settings the edge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdSettings {
    /// How long an agent's softphone rings before the call is offered to someone else.
    pub ring: Duration,
    /// How long a caller waits in a queue before overflowing (or the call ends).
    pub max_wait: Duration,
    /// queue → the queue its callers move to after `max_wait` (once).
    pub overflow: BTreeMap<String, String>,
    /// How often a waiting caller hears their position.
    pub announce_every: Duration,
}

impl Default for AcdSettings {
    fn default() -> Self {
        Self {
            ring: Duration::from_secs(15),
            max_wait: Duration::from_secs(600),
            overflow: BTreeMap::new(),
            announce_every: Duration::from_secs(30),
        }
    }
}

/// Parses `billing=support,support=general` (queue=overflow queue); an error says what is wrong.
pub fn parse_overflow(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    let valid = |q: &str| {
        !q.is_empty()
            && q.len() <= 64
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (from, to) = item
            .split_once('=')
            .map(|(a, b)| (a.trim(), b.trim()))
            .ok_or_else(|| format!("{item:?} is not queue=overflow_queue, like billing=support"))?;
        if !valid(from) || !valid(to) {
            return Err(format!(
                "{item:?}: queue names are 1 to 64 letters, digits, - or _"
            ));
        }
        if from == to {
            return Err(format!("{item:?}: a queue cannot overflow to itself"));
        }
        if m.insert(from.to_owned(), to.to_owned()).is_some() {
            return Err(format!("queue {from} is listed twice"));
        }
    }
    Ok(m)
}

/// A queued call as the agents' desks are shown it when it rings.
#[derive(Clone)]
pub struct QueuedCall {
    /// The call's interaction.
    pub interaction: String,
    /// The caller's number (E.164) when given; empty when withheld. Never verification.
    pub caller_id: String,
    /// The IVR choices the caller made.
    pub ivr_path: Vec<String>,
    /// The verification level the caller reached by keypad.
    pub level: i64,
    /// The masked name of the customer the call is linked to (by the caller's number or the
    /// IVR's identification), when one is.
    pub screen_pop: Option<String>,
}

impl std::fmt::Debug for QueuedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedCall")
            .field("interaction", &self.interaction)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// The agent a call rings: their account and the SIP username their softphone registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub user_id: String,
    pub sip_username: String,
}

/// Who takes calls, and the queue figures: the agent states behind the ACD.
#[async_trait::async_trait]
pub trait AgentPool: Send + Sync {
    /// The agent to ring for `call` in `queue`, among those whose softphone is `registered`:
    /// the longest-idle ready one, reserved (ringing) at once so no other call gets them.
    async fn pick(&self, queue: &str, call: &QueuedCall, registered: &[String]) -> Option<Picked>;
    /// The agent `user_id`, ready, for a call transferred to them: reserved (ringing, `call`
    /// shown on their desk) at once; `None` when they are not ready.
    async fn reserve(&self, user_id: &str, queue: &str, call: &QueuedCall) -> Option<Picked>;
    /// The agent answered the call.
    async fn answered(&self, agent: &Picked, interaction: &str);
    /// The agent's phone rang out or refused the call.
    async fn not_answered(&self, agent: &Picked);
    /// The agent's phone could not be rung at all, or the caller hung up while it rang: the
    /// agent is free again, in their place.
    async fn not_reached(&self, agent: &Picked);
    /// The bridged call ended.
    async fn call_ended(&self, agent: &Picked);
    /// A call started waiting in `queue`.
    async fn waiting(&self, queue: &str, interaction: &str);
    /// An agent answered a call waiting in `queue`.
    async fn queue_answered(&self, queue: &str, interaction: &str);
    /// The caller hung up while waiting in `queue`.
    async fn abandoned(&self, queue: &str, interaction: &str);
    /// The call left `queue` unanswered (overflow, maximum wait).
    async fn left(&self, queue: &str, interaction: &str);
}

/// The calls waiting in each queue, oldest first.
#[derive(Default)]
pub struct Waiting {
    queues: Mutex<HashMap<String, VecDeque<String>>>,
}

/// A call's place in a queue; leaving the queue when dropped.
struct Place {
    waiting: Arc<Waiting>,
    queue: String,
    call: String,
}

impl Waiting {
    fn join(self: &Arc<Self>, queue: &str, call: &str) -> Place {
        if let Ok(mut m) = self.queues.lock() {
            m.entry(queue.to_owned())
                .or_default()
                .push_back(call.to_owned());
        }
        Place {
            waiting: self.clone(),
            queue: queue.to_owned(),
            call: call.to_owned(),
        }
    }

    /// 1 for the call at the head of its queue.
    fn position(&self, queue: &str, call: &str) -> Option<usize> {
        let m = self.queues.lock().ok()?;
        m.get(queue)?.iter().position(|c| c == call).map(|p| p + 1)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut m) = self.waiting.queues.lock() {
            if let Some(q) = m.get_mut(&self.queue) {
                q.retain(|c| c != &self.call);
                if q.is_empty() {
                    m.remove(&self.queue);
                }
            }
        }
    }
}

/// How long the edge waits after its last prompt before hanging up, so that the prompt's end
/// is not cut off by the BYE overtaking audio still in the network or a jitter buffer.
const PLAY_OUT: std::time::Duration = std::time::Duration::from_millis(300);

/// The SDP of the agent's leg for ezk: our offer out, the softphone's answer kept.
pub(super) struct Offering {
    pub(super) offer: String,
    pub(super) answer: Option<String>,
    /// Our SRTP key, when SRTP was offered.
    pub(super) key: Option<MasterKey>,
    /// Both directions' SRTP once the answer accepted it.
    pub(super) srtp: Option<SrtpLeg>,
}

fn parse_sdp(text: &str) -> Result<SessionDescription, io::Error> {
    SessionDescription::parse(&BytesStr::from(text))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

impl MediaBackend for Offering {
    type Error = io::Error;
    type Event = std::convert::Infallible;

    fn has_media(&self) -> bool {
        true
    }

    async fn create_sdp_offer(&mut self) -> Result<SessionDescription, io::Error> {
        parse_sdp(&self.offer)
    }

    async fn receive_sdp_answer(&mut self, sdp: SessionDescription) -> Result<(), io::Error> {
        self.answer = Some(sdp.to_string());
        Ok(())
    }

    async fn receive_sdp_offer(
        &mut self,
        sdp: SessionDescription,
    ) -> Result<SessionDescription, io::Error> {
        self.answer = Some(sdp.to_string());
        parse_sdp(&self.offer)
    }

    async fn run(&mut self) -> Result<Self::Event, io::Error> {
        std::future::pending().await
    }
}

/// Where the agent's softphone now takes its media, when its latest SDP (a re-INVITE's offer)
/// names another address than `current`; an SDP without usable audio moves nothing.
fn moved_media(media: &Offering, current: std::net::SocketAddr) -> Option<std::net::SocketAddr> {
    let latest = sdp::read_offer(media.answer.as_deref()?).ok()?;
    // Port 0 or 0.0.0.0 is a hold, not a move.
    let usable = latest.remote.port() != 0 && !latest.remote.ip().is_unspecified();
    (usable && latest.remote != current).then_some(latest.remote)
}

/// Agents' softphones are not asked to authenticate us: a challenge ends the attempt.
pub(super) struct NoAuth;

#[derive(Debug, thiserror::Error)]
#[error("the softphone asked the edge to authenticate")]
pub(super) struct ChallengedByPhone;

impl ezk_sip_auth::ClientAuthenticator for NoAuth {
    type Error = ChallengedByPhone;

    fn authorize_request(&mut self, _request: &mut Headers) {}

    fn handle_rejection(
        &mut self,
        _rejected: ezk_sip_auth::RequestParts<'_>,
        _response: ezk_sip_auth::ResponseParts<'_>,
    ) -> Result<(), ChallengedByPhone> {
        Err(ChallengedByPhone)
    }
}

/// How ringing an agent ended.
pub(super) enum Rung {
    Answered(Box<Call<Offering>>, UdpSocket),
    /// Rang out, or refused.
    NotAnswered,
    /// Could not be rung (no registration, no RTP port, an unusable contact).
    NotReached,
    CallerGone,
}

/// An agent who answered a queued call, with their leg.
pub(super) struct Answered {
    pub(super) agent: Picked,
    pub(super) leg: Box<Call<Offering>>,
    pub(super) socket: UdpSocket,
}

/// How waiting in a queue ended.
pub(super) enum Waited {
    Answered(Answered),
    Over(Ended),
}

/// How a bridged call's relay ended.
pub(super) enum Relayed {
    /// Either side hung up (`by_caller`: the caller did).
    Over { by_caller: bool },
    /// The agent transferred the call: the caller is on hold, the agent's leg hung up.
    Transfer(TransferOrder),
    /// The agent asked for an attended transfer: the caller is on hold; the agent's call and
    /// leg, for the consultation.
    Consult {
        order: TransferOrder,
        call: Box<Call<Offering>>,
        leg: Box<AgentLeg>,
    },
}

/// How a queued call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The caller hung up while waiting.
    ByCaller,
    /// An agent took the call (`handed`: it became theirs, their desk ends it), and then
    /// `by_caller` or the agent hung up.
    Bridged { by_caller: bool, handed: bool },
    /// Nobody answered within the maximum wait (and no overflow was left).
    MaxWait,
}

/// Resolves when the caller's media has ended (the caller hung up); what it hears meanwhile
/// (keys, prompts played) is dropped.
pub(super) async fn caller_gone(heard: &mut mpsc::UnboundedReceiver<Heard>) {
    while heard.recv().await.is_some() {}
}

/// The position prompt: "you are caller number" and its digits.
fn position_prompt(position: usize) -> Vec<Prompt> {
    let mut p = vec![Prompt::CallerNumber];
    p.extend(
        position
            .to_string()
            .bytes()
            .filter_map(|b| Digit::new(b.wrapping_sub(b'0')))
            .map(Prompt::Digit),
    );
    p
}

/// Cancels a ringing INVITE in the background (the CANCEL transaction and the phone's 487 are
/// not waited for: the next agent is rung at once).
fn cancel(outbound: OutboundCall<Offering>) {
    tokio::spawn(async move {
        if tokio::time::timeout(Duration::from_secs(10), outbound.cancel())
            .await
            .is_err()
        {
            tracing::debug!("the CANCEL of an agent's ringing got no answer");
        }
    });
}

/// How often the head of a queue asks for an agent while none is free.
const PICK_EVERY: Duration = Duration::from_millis(250);

impl Edge {
    /// Queues the call in `queue` and rings agents until one answers (the call then leaves the
    /// queue: the agent is on it, not yet handed the interaction).
    pub(super) async fn wait_for_agent(
        &self,
        endpoint: &Endpoint,
        line: &mut Line,
        queue: String,
        call: &QueuedCall,
    ) -> Waited {
        let interaction = call.interaction.as_str();
        let settings = &self.settings.acd;
        let mut queue = queue;
        let mut overflowed = false;
        let mut entered = Instant::now();
        let mut place = self.waiting.join(&queue, interaction);
        self.agents.waiting(&queue, interaction).await;
        let mut announce_at = Instant::now();
        let mut last_position = 0;
        loop {
            if entered.elapsed() >= settings.max_wait {
                self.agents.left(&queue, interaction).await;
                match settings.overflow.get(&queue).filter(|_| !overflowed) {
                    Some(next) => {
                        tracing::info!(from = %queue, to = %next, "call overflows to another queue");
                        queue = next.clone();
                        overflowed = true;
                        entered = Instant::now();
                        drop(place);
                        place = self.waiting.join(&queue, interaction);
                        self.agents.waiting(&queue, interaction).await;
                        continue;
                    }
                    None => {
                        tracing::info!(queue = %queue, "no agent within the maximum wait: call ends");
                        // The caller hears why before the edge hangs up (the comfort tone
                        // and any position announcement stop first).
                        let _ = line.commands.send(Command::Interrupt);
                        if line.play_through(vec![Prompt::Goodbye]).await.is_none() {
                            return Waited::Over(Ended::ByCaller);
                        }
                        // The last frames are still in the network and the phone's jitter
                        // buffer: hang up only once they have played.
                        tokio::time::sleep(PLAY_OUT).await;
                        return Waited::Over(Ended::MaxWait);
                    }
                }
            }
            let position = self.waiting.position(&queue, interaction).unwrap_or(1);
            if position == 1 {
                let registered = self.registrar.registered();
                if let Some(agent) = self.agents.pick(&queue, call, &registered).await {
                    match self.ring(endpoint, line, &agent.sip_username).await {
                        Rung::Answered(leg, socket) => {
                            drop(place);
                            self.agents.queue_answered(&queue, interaction).await;
                            return Waited::Answered(Answered { agent, leg, socket });
                        }
                        Rung::NotAnswered => {
                            self.agents.not_answered(&agent).await;
                            continue;
                        }
                        Rung::NotReached => {
                            self.agents.not_reached(&agent).await;
                        }
                        Rung::CallerGone => {
                            self.agents.not_reached(&agent).await;
                            self.agents.abandoned(&queue, interaction).await;
                            return Waited::Over(Ended::ByCaller);
                        }
                    }
                }
            }
            if Instant::now() >= announce_at || position < last_position {
                let _ = line.commands.send(Command::Play(position_prompt(position)));
                announce_at = Instant::now() + settings.announce_every;
            }
            last_position = position;
            tokio::select! {
                () = tokio::time::sleep(PICK_EVERY) => {}
                () = caller_gone(&mut line.heard) => {
                    self.agents.abandoned(&queue, interaction).await;
                    return Waited::Over(Ended::ByCaller);
                }
            }
        }
    }

    /// Rings `agent`'s registered softphone for at most `queues.ring_seconds`.
    pub(super) async fn ring(&self, endpoint: &Endpoint, line: &mut Line, agent: &str) -> Rung {
        let Some(contact) = self.registrar.contact_of(agent) else {
            return Rung::NotReached;
        };
        let Ok(target) = contact.parse::<SipUri>() else {
            tracing::info!("an agent's softphone registered a contact that cannot be called");
            return Rung::NotReached;
        };
        let socket = match rtp_socket(self.settings.media_ip, self.settings.rtp_ports).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP port for the agent's leg");
                return Rung::NotReached;
            }
        };
        let Ok(local) = socket.local_addr() else {
            return Rung::NotReached;
        };
        let over_tls = self.registrar.registered_over_tls(agent);
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
        let ours = match (&self.tls_contact, over_tls) {
            (Some(tls), true) => tls.clone(),
            _ => self.contact.clone(),
        };
        let us = NameAddr::uri(ours.clone());
        let contact_header = Contact::new(NameAddr::uri(ours));
        let make = OutboundCall::make(endpoint.clone(), NoAuth, us, contact_header, target, media);
        let mut outbound = tokio::select! {
            made = tokio::time::timeout_at(deadline, make) => match made {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "the agent's softphone refused the call");
                    return Rung::NotAnswered;
                }
                Err(_) => {
                    tracing::info!("the agent's softphone did not answer in time");
                    return Rung::NotAnswered;
                }
            },
            () = caller_gone(&mut line.heard) => return Rung::CallerGone,
        };
        let done = tokio::select! {
            done = tokio::time::timeout_at(deadline, outbound.wait_for_completion()) => done,
            () = caller_gone(&mut line.heard) => {
                cancel(outbound);
                return Rung::CallerGone;
            }
        };
        let unacknowledged = match done {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "the agent's softphone declined the call");
                return Rung::NotAnswered;
            }
            Err(_) => {
                tracing::info!("ring timeout: the call is offered again");
                cancel(outbound);
                return Rung::NotAnswered;
            }
        };
        match unacknowledged.finish().await {
            Ok(mut call) => match self.secure_leg(&mut call) {
                Ok(()) => Rung::Answered(Box::new(call), socket),
                Err(reason) => {
                    self.metrics.sip_refused(reason);
                    tracing::info!(
                        reason,
                        "the agent's softphone answered without usable SRTP: not bridged"
                    );
                    let _ = call.terminate().await;
                    Rung::NotAnswered
                }
            },
            Err(e) => {
                tracing::info!(error = %e, "the agent's call could not be set up");
                Rung::NotAnswered
            }
        }
    }

    /// The media leg of an answered agent's call on `socket` (connected to the softphone's
    /// address); `None` (to hang up) when its answer has no usable audio.
    pub(super) async fn leg_of(call: &mut Call<Offering>, socket: UdpSocket) -> Option<AgentLeg> {
        let answer = call.media().answer.clone().unwrap_or_default();
        let leg = match sdp::read_offer(&answer) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(error = %e, "the agent's softphone answered without usable audio");
                return None;
            }
        };
        if let Err(e) = socket.connect(leg.remote).await {
            tracing::warn!(error = %e, "the agent's RTP address cannot be reached");
        }
        Some(AgentLeg {
            socket,
            remote: leg.remote,
            format: LegFormat {
                codec: leg.codec,
                telephone_event: leg.telephone_event,
            },
            srtp: call.media().srtp.take(),
            sent: None,
        })
    }

    /// Sets up the SRTP of an answered agent leg; the reason to refuse a leg whose answer has no
    /// usable key where one is needed.
    fn secure_leg(&self, call: &mut Call<Offering>) -> Result<(), &'static str> {
        let media = call.media();
        let answer = media.answer.as_deref().unwrap_or_default();
        media.srtp = negotiate(
            media.key.as_ref(),
            answer,
            self.settings.agents_require_srtp,
        )?;
        Ok(())
    }

    /// Relays the caller to the agent's leg until either side hangs up, or the agent transfers
    /// the call (blind: the caller is then on hold and the agent's leg hung up; attended: the
    /// caller is on hold and the agent's call and leg are handed back for the consultation).
    pub(super) async fn relay(
        &self,
        line: &mut Line,
        mut call: Call<Offering>,
        agent_leg: AgentLeg,
        interaction: &str,
        edge: &Principal,
    ) -> Relayed {
        let (remote, codec) = (agent_leg.remote, agent_leg.format.codec);
        let srtp = agent_leg.srtp.is_some();
        if line.commands.send(Command::Bridge(agent_leg)).is_err() {
            let _ = call.terminate().await;
            return Relayed::Over { by_caller: true };
        }
        self.metrics.sip_call("bridged");
        tracing::info!(codec, srtp, "caller and agent bridged");
        let mut agent_media = remote;
        // The agent may take a keypad payment on the call from now on.
        let live = self.live_calls.attach(interaction);
        // The agent may transfer it.
        let (_transferable, mut orders) = self.transfers.list(interaction);
        let commands = line.commands.clone();
        let in_call = super::secure::serve(line, live, self.settings.dtmf_mask, edge.actor());
        tokio::pin!(in_call);
        loop {
            tokio::select! {
                ev = call.run() => match ev {
                    Ok(CallEvent::Internal(ev)) => {
                        if let Err(e) = call.handle_internal_event(ev).await {
                            tracing::debug!(error = %e, "agent leg event failed");
                            return Relayed::Over { by_caller: false };
                        }
                        // A re-INVITE may have moved the softphone's media.
                        if let Some(to) = moved_media(call.media(), agent_media) {
                            tracing::info!("the agent's softphone moved its media; the relay follows");
                            agent_media = to;
                            if commands.send(Command::AgentMoved(to)).is_err() {
                                let _ = call.terminate().await;
                                return Relayed::Over { by_caller: true };
                            }
                        }
                    }
                    Ok(CallEvent::Media(never)) => match never {},
                    Ok(CallEvent::Terminated) | Err(_) => return Relayed::Over { by_caller: false },
                },
                Some(order) = orders.recv() => {
                    // The caller goes on hold (and any keypad capture ends); blind, the
                    // agent's leg is hung up.
                    let attended = order.consult.is_some();
                    let (back, leg) = tokio::sync::oneshot::channel();
                    let leg = match commands.send(Command::Unbridge { back, hold: attended }) {
                        Ok(()) => leg.await.ok(),
                        Err(_) => None,
                    };
                    match leg {
                        Some(leg) if attended => {
                            tracing::info!("the agent consults before transferring the call");
                            return Relayed::Consult { order, call: Box::new(call), leg: Box::new(leg) };
                        }
                        _ => {
                            let _ = call.terminate().await;
                            tracing::info!("the agent transferred the call");
                            return Relayed::Transfer(order);
                        }
                    }
                }
                () = &mut in_call => {
                    let _ = call.terminate().await;
                    return Relayed::Over { by_caller: true };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_lists_parse_and_bad_ones_say_why() {
        let m = parse_overflow("billing=support, support=general").unwrap();
        assert_eq!(m.get("billing").map(String::as_str), Some("support"));
        assert!(parse_overflow("billing")
            .unwrap_err()
            .contains("queue=overflow_queue"));
        assert!(parse_overflow("a=a").unwrap_err().contains("itself"));
        assert!(parse_overflow("a=b,a=c").unwrap_err().contains("twice"));
        assert!(parse_overflow("a b=c").unwrap_err().contains("letters"));
        assert!(parse_overflow("").unwrap().is_empty());
    }

    #[test]
    fn the_position_prompt_speaks_each_digit() {
        assert_eq!(
            position_prompt(12),
            vec![
                Prompt::CallerNumber,
                Prompt::Digit(Digit::new(1).unwrap()),
                Prompt::Digit(Digit::new(2).unwrap())
            ]
        );
    }

    #[test]
    fn waiting_calls_keep_their_order_and_leave_when_their_place_drops() {
        let w = Arc::new(Waiting::default());
        let a = w.join("billing", "a");
        let b = w.join("billing", "b");
        let _c = w.join("support", "c");
        assert_eq!(w.position("billing", "b"), Some(2));
        assert_eq!(w.position("support", "c"), Some(1));
        drop(a);
        assert_eq!(w.position("billing", "b"), Some(1));
        drop(b);
        assert_eq!(w.position("billing", "b"), None);
    }
}
