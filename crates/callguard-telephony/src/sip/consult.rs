//! The consultation of an attended transfer (issue #13 item 4): the caller is on hold (comfort
//! tone; the recording pauses with reason `hold`), the target is rung as a consult leg, and
//! once they answer the edge relays between the first agent's leg and theirs (the caller hears
//! neither). Then:
//! - *complete* (or the first agent hanging up): the target is the one put through to the
//!   caller, the first agent's leg is hung up ([`super::transfer`] does the rest);
//! - *cancel*, the target not answering (or not ready, or no agent of the target queue free),
//!   or the target hanging up: the consult leg is dropped and the caller is back with the first
//!   agent.
//!
//! A complete or cancel sent while the target still rings is applied once they answer.

use super::acd::{caller_gone, Offering, Picked, QueuedCall, Rung};
use super::bridge::{AgentLeg, Relay, Restamp};
use super::ivr::Line;
use super::Edge;
use crate::media::rtp::RtpPacket;
use callguard_server::features::transfer::service::{Consult, Target};
use ezk_sip_core::Endpoint;
use ezk_sip_ua::{Call, CallEvent};
use tokio::sync::mpsc;

/// How a consultation ended.
pub(super) enum Consulted {
    /// Put the caller through to this agent (their call and leg).
    Complete {
        agent: Picked,
        call: Box<Call<Offering>>,
        leg: Box<AgentLeg>,
    },
    /// Given up (why): the caller goes back to the first agent.
    Back { reason: &'static str },
    /// The caller hung up meanwhile (the consult leg is hung up).
    CallerGone,
}

/// One direction of the consultation's relay: a datagram from `from`, opened, re-stamped and
/// sealed for `to`; sent there.
async fn pass(
    datagram: &mut [u8],
    from: &mut AgentLeg,
    to: &mut AgentLeg,
    relay: &mut Relay,
    out: &mut Vec<u8>,
) {
    let Some(n) = from.open(datagram) else { return };
    let Ok(packet) = RtpPacket::parse(&datagram[..n]) else {
        return;
    };
    if relay.relay(&packet, out) && to.seal(out) {
        let _ = to.socket.send_to(out, to.remote).await;
    }
}

impl Edge {
    /// Rings the target of an attended transfer and relays the first agent (`first`) to them
    /// until the agent's word (`control`), either agent hanging up, or the caller hanging up.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn consult(
        &self,
        endpoint: &Endpoint,
        line: &mut Line,
        interaction: &str,
        target: &Target,
        queue: &str,
        call: &QueuedCall,
        first: (&mut Call<Offering>, &mut AgentLeg),
        control: &mut mpsc::UnboundedReceiver<Consult>,
    ) -> Consulted {
        let (first_call, first_leg) = first;
        let agent = match target {
            Target::Agent { user_id, .. } => self.agents.reserve(user_id, queue, call).await,
            Target::Queue(q) => {
                let registered = self.registrar.registered();
                self.agents.pick(q, call, &registered).await
            }
        };
        let Some(agent) = agent else {
            return Consulted::Back { reason: "no_agent" };
        };
        let (mut second, socket) = match self.ring(endpoint, line, &agent.sip_username).await {
            Rung::Answered(c, s) => (c, s),
            Rung::NotAnswered => {
                self.agents.not_answered(&agent).await;
                return Consulted::Back {
                    reason: "not_answered",
                };
            }
            Rung::NotReached => {
                self.agents.not_reached(&agent).await;
                return Consulted::Back {
                    reason: "not_answered",
                };
            }
            Rung::CallerGone => {
                self.agents.not_reached(&agent).await;
                return Consulted::CallerGone;
            }
        };
        self.agents.answered(&agent, interaction).await;
        let Some(mut second_leg) = Edge::leg_of(&mut second, socket).await else {
            let _ = second.terminate().await;
            self.agents.call_ended(&agent).await;
            return Consulted::Back {
                reason: "target_hung_up",
            };
        };
        tracing::info!("the consulted agent answered: the agents talk, the caller holds");
        // Each agent goes on hearing the stream they heard before (ann the caller's relay,
        // bob a fresh one), so neither softphone sees a new source mid-call.
        let fresh = Restamp::fresh;
        let mut to_second = Relay::new(
            first_leg.format,
            second_leg.format,
            second_leg.sent.take().unwrap_or_else(fresh),
        );
        let mut to_first = Relay::new(
            second_leg.format,
            first_leg.format,
            first_leg.sent.take().unwrap_or_else(fresh),
        );
        let (mut buf_a, mut buf_b) = (vec![0u8; 1500], vec![0u8; 1500]);
        let mut out = Vec::with_capacity(1500);
        let ended = loop {
            tokio::select! {
                got = first_leg.socket.recv(&mut buf_a) => {
                    if let Ok(n) = got {
                        pass(&mut buf_a[..n], first_leg, &mut second_leg, &mut to_second, &mut out).await;
                    }
                }
                got = second_leg.socket.recv(&mut buf_b) => {
                    if let Ok(n) = got {
                        pass(&mut buf_b[..n], &mut second_leg, first_leg, &mut to_first, &mut out).await;
                    }
                }
                ev = first_call.run() => match ev {
                    Ok(CallEvent::Internal(ev)) => {
                        if first_call.handle_internal_event(ev).await.is_err() {
                            break Ending::Complete;
                        }
                    }
                    Ok(CallEvent::Media(never)) => match never {},
                    // The first agent hung up while consulting: the transfer completes.
                    Ok(CallEvent::Terminated) | Err(_) => break Ending::Complete,
                },
                ev = second.run() => match ev {
                    Ok(CallEvent::Internal(ev)) => {
                        if second.handle_internal_event(ev).await.is_err() {
                            break Ending::Back("target_hung_up");
                        }
                    }
                    Ok(CallEvent::Media(never)) => match never {},
                    Ok(CallEvent::Terminated) | Err(_) => break Ending::Back("target_hung_up"),
                },
                word = control.recv() => match word {
                    Some(Consult::Complete) => break Ending::Complete,
                    Some(Consult::Cancel) | None => break Ending::Cancelled,
                },
                () = caller_gone(&mut line.heard) => break Ending::CallerGone,
            }
        };
        first_leg.sent = Some(to_first.stream());
        match ended {
            Ending::Complete => {
                second_leg.sent = Some(to_second.stream());
                complete(agent, second, second_leg)
            }
            Ending::Back(reason) => {
                self.agents.call_ended(&agent).await;
                Consulted::Back { reason }
            }
            Ending::Cancelled => {
                let _ = second.terminate().await;
                self.agents.call_ended(&agent).await;
                Consulted::Back {
                    reason: "agent_cancelled",
                }
            }
            Ending::CallerGone => {
                let _ = second.terminate().await;
                self.agents.call_ended(&agent).await;
                Consulted::CallerGone
            }
        }
    }
}

/// How the consultation's relay loop ended.
enum Ending {
    Complete,
    /// The consulted agent's leg ended (why).
    Back(&'static str),
    /// The first agent cancelled: the consult leg is hung up.
    Cancelled,
    /// The caller hung up: the consult leg is hung up.
    CallerGone,
}

fn complete(agent: Picked, call: Box<Call<Offering>>, leg: AgentLeg) -> Consulted {
    tracing::info!("the attended transfer completes");
    Consulted::Complete {
        agent,
        call,
        leg: Box::new(leg),
    }
}
