//! Call transfers on the edge (issue #13 item 4): the agent on a bridged call asks the server
//! (`features/transfer`) to pass it on, and the server hands the order to the call's relay
//! through [`EdgeTransfers`].
//!
//! A **blind** transfer: the caller hears the comfort tone (`Command::Unbridge`), the first
//! agent's leg is hung up (BYE) and the agent goes to wrap-up; then
//! - to a **queue**: the call waits in that queue like any other (normal ACD: longest-idle ready
//!   agent, ring timeout, overflow, maximum wait);
//! - to an **agent**: their softphone is rung at once (the agent is reserved, ringing, in the
//!   same step as they are checked ready). If they do not answer (or cannot be reached), the
//!   call goes back to the queue it came from, where the ACD offers it to the next free agent:
//!   the caller is never dropped for a missed transfer.
//!
//! Whoever answers is handed the interaction from the first agent (its verification level and
//! everything in it go along) and their desk pops with the call as it rang (the same offer as
//! any queued call, with the level the caller had reached at the transfer). The recording runs
//! on across the transfer (the hold is in it, as silence from the agent's side). The server is
//! told how the transfer ended (completed, or failed and why) and audits it.
//!
//! An **attended** transfer consults the target first ([`super::consult`]): complete puts the
//! caller through to the target as above, cancel (or the target not answering or hanging up)
//! returns the caller to the first agent.

use super::acd::{Answered, Ended, QueuedCall, Relayed, Rung, Waited};
use super::consult::Consulted;
use super::ivr::Line;
use super::Edge;
use callguard_server::features::transfer::service::{
    CallTransfer, Target, TransferOrder, TransferOutcome,
};
use callguard_server::principal::Principal;
use ezk_sip_core::Endpoint;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The bridged calls of this edge that may be transferred, by interaction.
#[derive(Default)]
pub struct EdgeTransfers {
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<TransferOrder>>>,
}

/// A call listed in [`EdgeTransfers`] while bridged; unlisted when dropped.
pub(super) struct Transferable {
    transfers: Arc<EdgeTransfers>,
    interaction: String,
    sender: mpsc::UnboundedSender<TransferOrder>,
}

impl Drop for Transferable {
    fn drop(&mut self) {
        if let Ok(mut m) = self.transfers.calls.lock() {
            if m.get(&self.interaction)
                .is_some_and(|s| s.same_channel(&self.sender))
            {
                m.remove(&self.interaction);
            }
        }
    }
}

impl EdgeTransfers {
    /// Lists the bridged call of `interaction`: the orders for it arrive on the receiver.
    pub(super) fn list(
        self: &Arc<Self>,
        interaction: &str,
    ) -> (Transferable, mpsc::UnboundedReceiver<TransferOrder>) {
        let (sender, orders) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.calls.lock() {
            m.insert(interaction.to_owned(), sender.clone());
        }
        (
            Transferable {
                transfers: self.clone(),
                interaction: interaction.to_owned(),
                sender,
            },
            orders,
        )
    }
}

impl CallTransfer for EdgeTransfers {
    fn transfer(&self, interaction: &str, order: TransferOrder) -> Result<(), TransferOrder> {
        let sender = self
            .calls
            .lock()
            .ok()
            .and_then(|m| m.get(interaction).cloned());
        match sender {
            Some(s) => s.send(order).map_err(|e| e.0),
            None => Err(order),
        }
    }
}

/// Where the call goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// Wait in this queue for its next free agent.
    Queue(String),
    /// Ring this agent straight away (a transfer to them).
    Agent { user_id: String, username: String },
}

/// Where a transfer order sends the call.
pub(super) fn next_of(target: &Target) -> Next {
    match target {
        Target::Queue(q) => Next::Queue(q.clone()),
        Target::Agent { user_id, username } => Next::Agent {
            user_id: user_id.clone(),
            username: username.clone(),
        },
    }
}

/// How a call that had been with an agent ends when it ends before the next one answers: it
/// stays the agent's (their desk ends it), whatever ended it.
pub(super) fn ended_after(ended: Ended, with_an_agent: bool) -> Ended {
    match ended {
        Ended::ByCaller | Ended::MaxWait if with_an_agent => Ended::Bridged {
            by_caller: ended == Ended::ByCaller,
            handed: true,
        },
        other => other,
    }
}

/// The outcome word of a call that ended while a transfer waited for its target.
fn failure_of(ended: Ended) -> &'static str {
    match ended {
        Ended::MaxWait => "max_wait",
        _ => "caller_hung_up",
    }
}

/// Tells the server how a transfer ended (it may have stopped waiting: nothing to do then).
fn report(pending: &mut Option<oneshot::Sender<TransferOutcome>>, outcome: TransferOutcome) {
    if let Some(tell) = pending.take() {
        let _ = tell.send(outcome);
    }
}

impl Edge {
    /// Queues the call in `queue`, rings agents until one answers, and relays the call to them
    /// until either side hangs up; a transfer puts the call on hold and sends it on (see the
    /// module's documentation), as often as agents transfer it.
    pub(super) async fn queue_and_bridge(
        &self,
        endpoint: &Endpoint,
        line: &mut Line,
        queue: String,
        call: &QueuedCall,
        edge: &Principal,
    ) -> Ended {
        let interaction = call.interaction.clone();
        let mut call = call.clone();
        let home = queue.clone();
        let mut next = Next::Queue(queue);
        // The agent the interaction is with (after the first answer).
        let mut holder: Option<String> = None;
        let mut handed = false;
        // The server waits to hear how a transfer under way ends.
        let mut pending: Option<oneshot::Sender<TransferOutcome>> = None;
        loop {
            let answered = match next {
                Next::Queue(q) => match self.wait_for_agent(endpoint, line, q, &call).await {
                    Waited::Answered(a) => a,
                    Waited::Over(ended) => {
                        let reason = failure_of(ended);
                        report(&mut pending, TransferOutcome::Failed { reason });
                        return ended_after(ended, holder.is_some());
                    }
                },
                Next::Agent { user_id, username } => {
                    match self
                        .ring_agent(endpoint, line, &user_id, &username, &home, &call)
                        .await
                    {
                        Ok(a) => a,
                        Err(Some(ended)) => {
                            let reason = failure_of(ended);
                            report(&mut pending, TransferOutcome::Failed { reason });
                            return ended_after(ended, holder.is_some());
                        }
                        Err(None) => {
                            tracing::info!("the transfer's agent did not answer: the call goes back to its queue");
                            report(
                                &mut pending,
                                TransferOutcome::Failed {
                                    reason: "not_answered",
                                },
                            );
                            next = Next::Queue(home.clone());
                            continue;
                        }
                    }
                }
            };
            let Answered {
                agent,
                leg: mut answered_call,
                socket,
            } = answered;
            self.give(edge, &interaction, &mut holder, &mut handed, &agent.user_id)
                .await;
            report(
                &mut pending,
                TransferOutcome::Completed {
                    agent_id: agent.user_id.clone(),
                },
            );
            self.agents.answered(&agent, &interaction).await;
            let Some(leg) = Edge::leg_of(&mut answered_call, socket).await else {
                let _ = answered_call.terminate().await;
                self.agents.call_ended(&agent).await;
                return Ended::Bridged {
                    by_caller: false,
                    handed,
                };
            };
            let (mut agent, mut agent_call, mut leg) = (agent, *answered_call, leg);
            // Relay to the agent; an attended transfer comes back here with the call still
            // the first agent's (cancelled) or the consulted agent's (completed).
            let relayed = loop {
                let listed = self.bridges.list(&interaction, line.commands.clone());
                let relayed = self.relay(line, agent_call, leg, &interaction, edge).await;
                drop(listed);
                let Relayed::Consult {
                    mut order,
                    call: first_call,
                    leg: first_leg,
                } = relayed
                else {
                    break relayed;
                };
                let (mut first_call, mut first_leg) = (*first_call, *first_leg);
                call.level = order.level;
                let mut control = order
                    .consult
                    .take()
                    .unwrap_or_else(|| mpsc::unbounded_channel().1);
                let consulted = self
                    .consult(
                        endpoint,
                        line,
                        &interaction,
                        &order.target,
                        &home,
                        &call,
                        (&mut first_call, &mut first_leg),
                        &mut control,
                    )
                    .await;
                match consulted {
                    Consulted::Complete {
                        agent: to,
                        call: to_call,
                        leg: to_leg,
                    } => {
                        let _ = first_call.terminate().await;
                        self.agents.call_ended(&agent).await;
                        self.give(edge, &interaction, &mut holder, &mut handed, &to.user_id)
                            .await;
                        let _ = order.outcome.send(TransferOutcome::Completed {
                            agent_id: to.user_id.clone(),
                        });
                        (agent, agent_call, leg) = (to, *to_call, *to_leg);
                    }
                    Consulted::Back { reason } => {
                        let _ = order.outcome.send(TransferOutcome::Cancelled { reason });
                        (agent_call, leg) = (first_call, first_leg);
                    }
                    Consulted::CallerGone => {
                        let _ = first_call.terminate().await;
                        self.agents.call_ended(&agent).await;
                        let _ = order.outcome.send(TransferOutcome::Failed {
                            reason: "caller_hung_up",
                        });
                        return Ended::Bridged {
                            by_caller: true,
                            handed,
                        };
                    }
                }
            };
            // The agent leaves the call either way: wrap-up.
            self.agents.call_ended(&agent).await;
            match relayed {
                Relayed::Transfer(order) => {
                    call.level = order.level;
                    next = next_of(&order.target);
                    pending = Some(order.outcome);
                }
                Relayed::Over { by_caller } => return Ended::Bridged { by_caller, handed },
                // Consultations were handled above.
                Relayed::Consult { .. } => {
                    return Ended::Bridged {
                        by_caller: false,
                        handed,
                    }
                }
            }
        }
    }

    /// The interaction goes to `to` (from the agent who holds it, or from the edge at first);
    /// a failure is logged and the call goes on (the desk just does not open it).
    async fn give(
        &self,
        edge: &Principal,
        interaction: &str,
        holder: &mut Option<String>,
        handed: &mut bool,
        to: &str,
    ) {
        let given = match holder.as_deref() {
            None => self.interactions.hand_over(edge, interaction, to).await,
            Some(from) => self.interactions.hand_on(edge, interaction, from, to).await,
        };
        match given {
            Ok(_) => {
                *handed = true;
                *holder = Some(to.to_owned());
            }
            Err(e) => {
                tracing::warn!(error = %e, "the call could not be handed to the agent's desk");
            }
        }
    }

    /// Rings the agent a call is transferred to (reserved at once if ready). `Err(None)`: they
    /// did not answer or could not be rung (or were not ready any more); `Err(Some(_))`: the
    /// caller hung up meanwhile.
    async fn ring_agent(
        &self,
        endpoint: &Endpoint,
        line: &mut Line,
        user_id: &str,
        username: &str,
        queue: &str,
        call: &QueuedCall,
    ) -> Result<Answered, Option<Ended>> {
        let Some(agent) = self.agents.reserve(user_id, queue, call).await else {
            return Err(None);
        };
        debug_assert_eq!(agent.sip_username, username);
        match self.ring(endpoint, line, &agent.sip_username).await {
            Rung::Answered(leg, socket) => Ok(Answered { agent, leg, socket }),
            Rung::NotAnswered => {
                self.agents.not_answered(&agent).await;
                Err(None)
            }
            Rung::NotReached => {
                self.agents.not_reached(&agent).await;
                Err(None)
            }
            Rung::CallerGone => {
                self.agents.not_reached(&agent).await;
                Err(Some(Ended::ByCaller))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(target: Target) -> (TransferOrder, oneshot::Receiver<TransferOutcome>) {
        let (outcome, rx) = oneshot::channel();
        (
            TransferOrder {
                target,
                mode: callguard_server::features::transfer::service::TransferMode::Blind,
                level: 2,
                from_agent: "a".into(),
                outcome,
                consult: None,
            },
            rx,
        )
    }

    #[test]
    fn an_order_reaches_the_listed_call_only_while_it_is_listed() {
        let t = Arc::new(EdgeTransfers::default());
        let (o, _) = order(Target::Queue("billing".into()));
        assert!(t.transfer("i1", o).is_err(), "no call of that interaction");
        let (listed, mut orders) = t.list("i1");
        let (o, _) = order(Target::Queue("billing".into()));
        assert!(t.transfer("i1", o).is_ok());
        assert_eq!(
            orders.try_recv().unwrap().target,
            Target::Queue("billing".into())
        );
        drop(listed);
        let (o, _) = order(Target::Queue("billing".into()));
        assert!(
            t.transfer("i1", o).is_err(),
            "unlisted once the relay ended"
        );
    }

    #[test]
    fn a_newer_listing_of_the_same_call_is_not_unlisted_by_the_older_one() {
        let t = Arc::new(EdgeTransfers::default());
        let (first, _a) = t.list("i1");
        let (_second, mut b) = t.list("i1");
        drop(first);
        let (o, _) = order(Target::Queue("q".into()));
        assert!(t.transfer("i1", o).is_ok());
        assert!(b.try_recv().is_ok(), "the newer relay gets the order");
    }

    #[test]
    fn a_transfer_rings_an_agent_directly_or_queues_the_call() {
        assert_eq!(
            next_of(&Target::Queue("billing".into())),
            Next::Queue("billing".into())
        );
        assert_eq!(
            next_of(&Target::Agent {
                user_id: "u1".into(),
                username: "bob".into()
            }),
            Next::Agent {
                user_id: "u1".into(),
                username: "bob".into()
            }
        );
    }

    #[test]
    fn a_call_that_ends_on_hold_after_an_agent_had_it_stays_that_agents() {
        assert_eq!(
            ended_after(Ended::ByCaller, true),
            Ended::Bridged {
                by_caller: true,
                handed: true
            }
        );
        assert_eq!(
            ended_after(Ended::MaxWait, true),
            Ended::Bridged {
                by_caller: false,
                handed: true
            }
        );
        assert_eq!(ended_after(Ended::ByCaller, false), Ended::ByCaller);
        assert_eq!(failure_of(Ended::MaxWait), "max_wait");
        assert_eq!(failure_of(Ended::ByCaller), "caller_hung_up");
    }
}
