//! Transfers of live calls: the agent whose call it is transfers it to another ready agent or
//! to a queue, blind or attended; the SIP edge carrying the call puts the caller on hold and
//! rings the target (see `callguard-telephony`'s `sip::transfer` and `sip::consult`). In an
//! attended transfer the agent talks to the target first, then completes the transfer (the
//! caller is put through, the agent leaves) or cancels it (the caller is back with the agent).
//!
//! Audited as `call.transfer.requested` (the agent; refusals as failures with a reason),
//! `call.transfer.completed` (the new agent has the call), `call.transfer.cancelled` (an
//! attended transfer given up: by the agent, or the target did not answer or hung up) and
//! `call.transfer.failed` (the target did not answer, the caller hung up), with the mode, the
//! target queue or agent and the call's interaction, never a caller's data.

use crate::error::Error;
use crate::features::audit::service::AuditLog;
use crate::features::interactions::model::level_of;
use crate::features::interactions::service::Interactions;
use crate::features::presence::service::Presence;
use crate::features::queues::service::QueueFigures;
use crate::principal::{Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::audit::AuditRecord;
use callguard_core::role::Role;
use callguard_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Where a call is transferred to, as asked.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TransferTo {
    /// A queue: the call waits there like any call of the queue (normal ACD).
    Queue(String),
    /// An agent, by username: their softphone rings at once.
    Agent(String),
}

/// How a call is transferred.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// The caller is put through at once; the transferring agent leaves the call.
    Blind,
    /// The agent talks to the target first (the caller on hold), then completes or cancels.
    Attended,
}

impl TransferMode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Blind => "blind",
            TransferMode::Attended => "attended",
        }
    }
}

/// The target the edge rings, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Queue(String),
    Agent { user_id: String, username: String },
}

/// How a transfer ended, as the edge reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The call is with `agent_id` now.
    Completed { agent_id: String },
    /// The transfer did not happen: why (a fixed word: `not_answered`, `caller_hung_up`,
    /// `max_wait`); where the call went then, if anywhere.
    Failed { reason: &'static str },
    /// An attended transfer was given up: the call is back with the first agent. Why
    /// (`agent_cancelled`, `not_answered`, `target_hung_up`, `no_agent`).
    Cancelled { reason: &'static str },
}

/// The agent's word on an attended transfer while consulting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consult {
    /// Put the caller through to the target; the agent leaves the call.
    Complete,
    /// Drop the target; the caller is back with the agent.
    Cancel,
}

/// What the server asks of the edge carrying a call.
#[derive(Debug)]
pub struct TransferOrder {
    pub target: Target,
    pub mode: TransferMode,
    /// The caller's verification level now (shown on the new agent's desk as the call rings).
    pub level: i64,
    /// The agent the call is transferred from.
    pub from_agent: String,
    /// Where the edge tells how the transfer ended.
    pub outcome: oneshot::Sender<TransferOutcome>,
    /// Attended: the agent's complete / cancel (applied once the target answered).
    pub consult: Option<mpsc::UnboundedReceiver<Consult>>,
}

/// The SIP edge's side: hand a transfer to the call it carries.
pub trait CallTransfer: Send + Sync {
    /// Gives `order` to the bridged call of `interaction`; the order back when this edge carries
    /// no such call.
    fn transfer(&self, interaction: &str, order: TransferOrder) -> Result<(), TransferOrder>;
}

/// A transfer the edge accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TransferView {
    pub interaction_id: String,
    pub mode: TransferMode,
    /// `queue` or `agent`.
    pub target_kind: String,
    /// The queue's name or the agent's username.
    pub target: String,
    /// `ringing`: the caller is on hold while the target is rung (or waits in the queue).
    pub state: String,
}

/// An attended transfer under way: the agent consulting and their line to the edge.
type Consulting = (String, mpsc::UnboundedSender<Consult>);

/// Call transfers on this node (the edge carrying the calls runs here).
pub struct Transfers {
    presence: Arc<Presence>,
    queues: Arc<QueueFigures>,
    interactions: Arc<Interactions>,
    store: Arc<dyn Store>,
    audit: Arc<AuditLog>,
    edge: OnceLock<Arc<dyn CallTransfer>>,
    /// Interactions with a transfer under way.
    pending: Arc<Mutex<HashSet<String>>>,
    /// Attended transfers under way: interaction → the agent consulting and their line to it.
    consulting: Mutex<HashMap<String, Consulting>>,
}

/// The call is not bridged by this node's SIP edge (or the node has none).
const NOT_ON_THE_LINE: Error =
    Error::State("the call is not on a phone line of this server: it cannot be transferred");

/// Why a target is refused, before any telephony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownQueue,
    UnknownAgent,
    SameAgent,
    NotReady,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownQueue => "unknown_queue",
            Refusal::UnknownAgent => "unknown_agent",
            Refusal::SameAgent => "same_agent",
            Refusal::NotReady => "target_not_ready",
        }
    }

    fn error(self) -> Error {
        match self {
            Refusal::UnknownQueue => Error::Validation("there is no queue of that name".into()),
            Refusal::UnknownAgent => Error::Validation("there is no agent of that name".into()),
            Refusal::SameAgent => Error::Validation("the call is yours already".into()),
            Refusal::NotReady => Error::State("that agent is not ready for calls"),
        }
    }
}

/// The rule on a target agent: an agent account (`role`, `None` when there is none of that
/// name), not `me`, ready now.
#[must_use]
pub fn check_agent(me: &str, target_id: &str, role: Option<Role>, ready: bool) -> Option<Refusal> {
    if role != Some(Role::Agent) {
        Some(Refusal::UnknownAgent)
    } else if target_id == me {
        Some(Refusal::SameAgent)
    } else if !ready {
        Some(Refusal::NotReady)
    } else {
        None
    }
}

/// Removes an interaction from the pending set when dropped.
struct Pending(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut p) = self.0.lock() {
            p.remove(&self.1);
        }
    }
}

impl Transfers {
    #[must_use]
    pub fn new(
        presence: Arc<Presence>,
        queues: Arc<QueueFigures>,
        interactions: Arc<Interactions>,
        store: Arc<dyn Store>,
        audit: Arc<AuditLog>,
    ) -> Self {
        Self {
            presence,
            queues,
            interactions,
            store,
            audit,
            edge: OnceLock::new(),
            pending: Arc::default(),
            consulting: Mutex::default(),
        }
    }

    /// The SIP edge, once it runs.
    pub fn attach(&self, edge: Arc<dyn CallTransfer>) {
        let _ = self.edge.set(edge);
    }

    /// The agent `p` transfers their call of `interaction` to `to`. Returns once the edge
    /// carrying the call has taken the order (the caller is then on hold while the target
    /// rings); how it ends is audited when it does.
    pub async fn transfer(
        self: &Arc<Self>,
        p: &Principal,
        interaction: &str,
        to: &TransferTo,
        mode: TransferMode,
    ) -> Result<TransferView, Error> {
        if p.user.role != Role::Agent {
            return Err(Error::Forbidden);
        }
        // Only the agent whose call it is: anyone else's is not found.
        let row = self.interactions.own(p, interaction).await?;
        if row.status != "active" {
            return Err(Error::State("the call has ended"));
        }
        // Without a SIP edge on this node no call is carried here.
        let edge = self.edge.get().cloned().ok_or(NOT_ON_THE_LINE)?;
        let target = match self.target(p, to).await? {
            Ok(t) => t,
            Err(refusal) => {
                self.refused(p, interaction, mode, refusal.reason()).await;
                return Err(refusal.error());
            }
        };
        let pending = {
            let mut set = self.pending.lock().map_err(|_| Error::Internal)?;
            if !set.insert(interaction.to_owned()) {
                return Err(Error::State("a transfer of this call is under way"));
            }
            Pending(self.pending.clone(), interaction.to_owned())
        };
        let requested = described(p.actor().record("call.transfer.requested"), &target, mode);
        self.audit
            .record(with_interaction(requested, interaction))
            .await?;
        let (outcome, ended) = oneshot::channel();
        let consult = (mode == TransferMode::Attended).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            if let Ok(mut c) = self.consulting.lock() {
                c.insert(interaction.to_owned(), (p.user.id.clone(), tx));
            }
            rx
        });
        let order = TransferOrder {
            target: target.clone(),
            mode,
            level: level_of(&row.state),
            from_agent: p.user.id.clone(),
            outcome,
            consult,
        };
        if edge.transfer(interaction, order).is_err() {
            self.stop_consulting(interaction);
            self.failed(&p.actor(), interaction, &target, mode, "not_on_the_line")
                .await;
            return Err(NOT_ON_THE_LINE);
        }
        let (me, interaction_id, t) = (self.clone(), interaction.to_owned(), target.clone());
        tokio::spawn(async move {
            let outcome = ended.await.unwrap_or(TransferOutcome::Failed {
                reason: "call_ended",
            });
            drop(pending);
            me.stop_consulting(&interaction_id);
            me.ended(&interaction_id, &t, mode, outcome).await;
        });
        Ok(view(interaction, &target, mode))
    }

    /// The agent `p` completes (`Consult::Complete`) or cancels their attended transfer of
    /// the call of `interaction`. Refused (409) when no attended transfer of theirs is under
    /// way; the call is not found when it is not theirs.
    pub async fn consult(
        &self,
        p: &Principal,
        interaction: &str,
        word: Consult,
    ) -> Result<(), Error> {
        if p.user.role != Role::Agent {
            return Err(Error::Forbidden);
        }
        self.interactions.own(p, interaction).await?;
        let line = self
            .consulting
            .lock()
            .map_err(|_| Error::Internal)?
            .get(interaction)
            .filter(|(agent, _)| *agent == p.user.id)
            .map(|(_, line)| line.clone())
            .ok_or(Error::State(
                "no attended transfer of this call is under way",
            ))?;
        line.send(word)
            .map_err(|_| Error::State("the transfer has ended"))
    }

    fn stop_consulting(&self, interaction: &str) {
        if let Ok(mut c) = self.consulting.lock() {
            c.remove(interaction);
        }
    }

    /// The target as checked: a queue that exists, or a ready agent other than `p`.
    async fn target(
        &self,
        p: &Principal,
        to: &TransferTo,
    ) -> Result<Result<Target, Refusal>, Error> {
        Ok(match to {
            TransferTo::Queue(q) if self.queues.exists(q) => Ok(Target::Queue(q.clone())),
            TransferTo::Queue(_) => Err(Refusal::UnknownQueue),
            TransferTo::Agent(name) => {
                let user = self.store.user_by_username(name).await?;
                let (id, role) = user.map(|u| (u.id, Some(u.role))).unwrap_or_default();
                let ready = self.presence.is_ready(&id);
                match check_agent(&p.user.id, &id, role, ready) {
                    Some(r) => Err(r),
                    None => Ok(Target::Agent {
                        user_id: id,
                        username: name.clone(),
                    }),
                }
            }
        })
    }

    async fn refused(&self, p: &Principal, interaction: &str, mode: TransferMode, why: &str) {
        let r = p
            .actor()
            .record("call.transfer.requested")
            .failure()
            .detail("mode", mode.as_str())
            .detail("reason", why);
        if let Err(e) = self.audit.record(with_interaction(r, interaction)).await {
            tracing::warn!(error = %e, "a refused transfer could not be audited");
        }
    }

    async fn failed(
        &self,
        actor: &Actor,
        interaction: &str,
        target: &Target,
        mode: TransferMode,
        why: &'static str,
    ) {
        let r = described(actor.record("call.transfer.failed"), target, mode)
            .failure()
            .detail("reason", why);
        if let Err(e) = self.audit.record(with_interaction(r, interaction)).await {
            tracing::error!(error = %e, "a failed transfer could not be audited");
        }
    }

    /// The edge said how the transfer ended: audited.
    async fn ended(
        &self,
        interaction: &str,
        target: &Target,
        mode: TransferMode,
        outcome: TransferOutcome,
    ) {
        let edge = Actor::telephony_edge();
        match outcome {
            TransferOutcome::Completed { agent_id } => {
                let r = described(edge.record("call.transfer.completed"), target, mode)
                    .detail("to_agent", user_ref(&agent_id));
                if let Err(e) = self.audit.record(with_interaction(r, interaction)).await {
                    tracing::error!(error = %e, "a completed transfer could not be audited");
                }
            }
            TransferOutcome::Failed { reason } => {
                self.failed(&edge, interaction, target, mode, reason).await;
            }
            TransferOutcome::Cancelled { reason } => {
                let r = described(edge.record("call.transfer.cancelled"), target, mode)
                    .detail("reason", reason);
                if let Err(e) = self.audit.record(with_interaction(r, interaction)).await {
                    tracing::error!(error = %e, "a cancelled transfer could not be audited");
                }
            }
        }
    }
}

fn with_interaction(mut r: AuditRecord, interaction: &str) -> AuditRecord {
    r.interaction = Some(interaction.to_owned());
    r
}

/// The mode and target of a transfer on its audit record (a queue's name, an agent's id).
fn described(r: AuditRecord, target: &Target, mode: TransferMode) -> AuditRecord {
    let r = r.detail("mode", mode.as_str());
    match target {
        Target::Queue(q) => r.detail("queue", q.clone()),
        Target::Agent { user_id, .. } => r.target(user_ref(user_id)),
    }
}

fn view(interaction: &str, target: &Target, mode: TransferMode) -> TransferView {
    let (kind, name) = match target {
        Target::Queue(q) => ("queue", q.clone()),
        Target::Agent { username, .. } => ("agent", username.clone()),
    };
    TransferView {
        interaction_id: interaction.to_owned(),
        mode,
        target_kind: kind.to_owned(),
        target: name,
        state: "ringing".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_agent_must_be_an_agent_account_other_than_me_and_ready() {
        assert_eq!(check_agent("ann", "bob", Some(Role::Agent), true), None);
        assert_eq!(
            check_agent("ann", "", None, false),
            Some(Refusal::UnknownAgent),
            "no account of that name"
        );
        assert_eq!(
            check_agent("ann", "sue", Some(Role::Supervisor), true),
            Some(Refusal::UnknownAgent),
            "a supervisor takes no transferred calls"
        );
        assert_eq!(
            check_agent("ann", "ann", Some(Role::Agent), true),
            Some(Refusal::SameAgent)
        );
        assert_eq!(
            check_agent("ann", "bob", Some(Role::Agent), false),
            Some(Refusal::NotReady)
        );
    }

    #[test]
    fn refusals_are_told_apart_by_status_and_name_no_personal_data() {
        use crate::http::problem::status_of;
        assert_eq!(status_of(&Refusal::UnknownQueue.error()).as_u16(), 422);
        assert_eq!(status_of(&Refusal::UnknownAgent.error()).as_u16(), 422);
        assert_eq!(status_of(&Refusal::SameAgent.error()).as_u16(), 422);
        assert_eq!(status_of(&Refusal::NotReady.error()).as_u16(), 409);
        for r in [
            Refusal::UnknownQueue,
            Refusal::UnknownAgent,
            Refusal::SameAgent,
            Refusal::NotReady,
        ] {
            assert!(r
                .reason()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn the_transfer_request_names_its_target_by_queue_or_account_id() {
        let actor = Actor::telephony_edge();
        let q = described(
            actor.record("x"),
            &Target::Queue("billing".into()),
            TransferMode::Blind,
        );
        assert_eq!(
            q.details.get("queue").and_then(|v| v.as_str()),
            Some("billing")
        );
        let a = described(
            actor.record("x"),
            &Target::Agent {
                user_id: "u-1".into(),
                username: "bob".into(),
            },
            TransferMode::Blind,
        );
        assert_eq!(a.target.as_deref(), Some(user_ref("u-1").as_str()));
        assert_eq!(
            a.details.get("mode").and_then(|v| v.as_str()),
            Some("blind")
        );
    }
}
