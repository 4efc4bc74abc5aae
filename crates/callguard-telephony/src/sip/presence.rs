//! The ACD's agents and queue figures from the server's agent states (`features/presence`)
//! and queue figures (`features/queues`): a registered softphone takes calls only while its
//! agent is signed in and ready on the desk.

use super::acd::{AgentPool, Picked, QueuedCall};
use callguard_server::features::presence::service::{CallOffer, CallerId, Presence, PresenceError};
use callguard_server::features::queues::service::QueueFigures;
use std::collections::HashSet;
use std::sync::Arc;

/// The server's agent states and queue figures, as the ACD's pool.
pub struct DeskAgents {
    pub presence: Arc<Presence>,
    pub queues: Arc<QueueFigures>,
}

/// An agent who moved on meanwhile (signed out, chose another state) is no error for the call.
fn moved_on(what: &str, r: Result<(), PresenceError>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, what, "agent state not changed by the edge");
    }
}

/// What an agent's desk is shown while `call` rings them.
fn offer_of(queue: &str, call: &QueuedCall) -> CallOffer {
    CallOffer {
        interaction_id: call.interaction.clone(),
        queue: queue.to_owned(),
        caller_id: (!call.caller_id.is_empty()).then(|| CallerId::new(call.caller_id.clone())),
        ivr_path: call.ivr_path.clone(),
        level: call.level,
        screen_pop: call.screen_pop.clone(),
    }
}

#[async_trait::async_trait]
impl AgentPool for DeskAgents {
    async fn pick(&self, queue: &str, call: &QueuedCall, registered: &[String]) -> Option<Picked> {
        let registered: HashSet<&str> = registered.iter().map(String::as_str).collect();
        self.presence
            .pick_where(queue, Some(offer_of(queue, call)), |sip| {
                registered.contains(sip)
            })
            .map(|o| Picked {
                user_id: o.user_id,
                sip_username: o.sip_username,
            })
    }

    async fn reserve(&self, user_id: &str, queue: &str, call: &QueuedCall) -> Option<Picked> {
        self.presence
            .pick_agent(user_id, queue, offer_of(queue, call))
            .map(|o| Picked {
                user_id: o.user_id,
                sip_username: o.sip_username,
            })
    }

    async fn answered(&self, agent: &Picked, interaction: &str) {
        moved_on(
            "answered",
            self.presence.answered(&agent.user_id, interaction),
        );
    }

    async fn not_answered(&self, agent: &Picked) {
        moved_on("not_answered", self.presence.not_answered(&agent.user_id));
    }

    async fn not_reached(&self, agent: &Picked) {
        moved_on("not_reached", self.presence.not_reached(&agent.user_id));
    }

    async fn call_ended(&self, agent: &Picked) {
        moved_on("call_ended", self.presence.call_ended(&agent.user_id));
    }

    async fn waiting(&self, queue: &str, interaction: &str) {
        self.queues.waiting(queue, interaction);
    }

    async fn queue_answered(&self, queue: &str, interaction: &str) {
        let _ = self.queues.answered(queue, interaction);
    }

    async fn abandoned(&self, queue: &str, interaction: &str) {
        let _ = self.queues.abandoned(queue, interaction);
    }

    async fn left(&self, queue: &str, interaction: &str) {
        let _ = self.queues.left(queue, interaction);
    }
}
