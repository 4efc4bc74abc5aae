//! Agent states (SPEC C9, issue #12): ready, not ready (with a reason), ringing, on call, wrap-up,
//! and signed out, with the time each agent entered its state. The desk sets ready / not ready;
//! the telephony edge picks the longest-idle ready agent for a call (atomically moving them to
//! ringing), then reports answered / not answered / call ended.
//!
//! The states live in this node's memory: the SIP edge that rings agents runs on one node, and
//! an agent's state means "reachable through this edge now", which a restart rightly forgets
//! (everyone is signed out of the queues until they press Ready again). Every change is audited
//! as `agent.state_changed` (states, reason and queue names; never a caller's data), written in
//! order by one background task so a pick never waits for the database.

pub use super::model::*;
use crate::features::signin::service::Identity;
use crate::principal::{Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::audit::AuditRecord;
use callguard_core::{now, UnixTime};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone)]
enum State {
    Ready,
    NotReady(String),
    Ringing {
        queue: String,
        offer: Option<CallOffer>,
    },
    OnCall {
        queue: String,
        interaction: String,
    },
    WrapUp,
}

impl State {
    fn name(&self) -> StateName {
        match self {
            State::Ready => StateName::Ready,
            State::NotReady(_) => StateName::NotReady,
            State::Ringing { .. } => StateName::Ringing,
            State::OnCall { .. } => StateName::OnCall,
            State::WrapUp => StateName::WrapUp,
        }
    }
}

#[derive(Debug)]
struct Agent {
    username: String,
    state: State,
    /// Wall time the agent entered `state`.
    since: UnixTime,
    /// Order of becoming idle (ready): the smallest is the longest idle.
    idle_order: u64,
    /// Changes with every state change, so a wrap-up timer ends only the wrap-up it started.
    epoch: u64,
    /// Ends the watch on the session the agent went ready with.
    session_watch: Option<tokio::task::AbortHandle>,
}

#[derive(Debug, Default)]
struct Board {
    agents: HashMap<String, Agent>,
    counter: u64,
}

impl Board {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// A change made, to audit and announce once the board is unlocked.
struct Change {
    user_id: String,
    from: StateName,
    to: StateName,
    reason: Option<String>,
    queue: Option<String>,
}

/// Agent states on this node.
pub struct Presence {
    settings: PresenceSettings,
    board: Mutex<Board>,
    events: broadcast::Sender<PresenceEvent>,
    audit_tx: mpsc::UnboundedSender<AuditRecord>,
    audit_rx: Mutex<Option<mpsc::UnboundedReceiver<AuditRecord>>>,
    /// Signs agents out when the session they went ready with ends (how often to check).
    sessions: Option<(Arc<Identity>, Duration)>,
}

/// What an agent chooses on their desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskChoice {
    Ready,
    NotReady(String),
}

impl Presence {
    #[must_use]
    pub fn new(settings: PresenceSettings) -> Self {
        let (audit_tx, audit_rx) = mpsc::unbounded_channel();
        Self {
            settings,
            board: Mutex::new(Board::default()),
            events: broadcast::channel(1024).0,
            audit_tx,
            audit_rx: Mutex::new(Some(audit_rx)),
            sessions: None,
        }
    }

    /// Signs an agent out of the queues when the session they chose a state with ends
    /// (sign-out, revocation, expiry, a disabled account), checked every `every` and at once on
    /// PostgreSQL's change notices.
    #[must_use]
    pub fn with_sessions(mut self, identity: Arc<Identity>, every: Duration) -> Self {
        self.sessions = Some((identity, every));
        self
    }

    /// The signed-in agent chose a state on their desk (button or API). Their session is
    /// watched from the first choice on: when it ends, they are signed out of the queues.
    pub fn desk_set(
        self: &Arc<Self>,
        p: &Principal,
        choice: &DeskChoice,
    ) -> Result<AgentView, PresenceError> {
        let actor = p.actor();
        let (id, name) = (&p.user.id, &p.user.username);
        let joined = match choice {
            DeskChoice::Ready => self.set_ready(&actor, id, name)?,
            DeskChoice::NotReady(reason) => self.set_not_ready(&actor, id, name, reason)?,
        };
        if joined {
            if let (Some((identity, every)), Ok(rt)) =
                (&self.sessions, tokio::runtime::Handle::try_current())
            {
                let (me, identity, every) = (Arc::clone(self), identity.clone(), *every);
                let (session, user) = (p.session.clone(), id.clone());
                let watch = rt.spawn(async move {
                    identity.session_ended(session, every).await;
                    me.sign_out(&Actor::system(), &user);
                });
                self.keep_session_watch(id, watch.abort_handle());
            }
        }
        Ok(self.agent(id, name))
    }

    /// The agent signed out on their desk.
    pub fn desk_sign_out(&self, p: &Principal) -> AgentView {
        self.sign_out(&p.actor(), &p.user.id);
        self.agent(&p.user.id, &p.user.username)
    }

    #[must_use]
    pub fn settings(&self) -> &PresenceSettings {
        &self.settings
    }

    /// The audit entries of state changes, in order; taken once by the task that writes them.
    pub fn take_audit_feed(&self) -> Option<mpsc::UnboundedReceiver<AuditRecord>> {
        self.audit_rx.lock().ok().and_then(|mut g| g.take())
    }

    /// Writes the state changes to the audit log until the server stops.
    pub async fn run_audit(self: Arc<Self>, log: Arc<crate::features::audit::service::AuditLog>) {
        let Some(mut feed) = self.take_audit_feed() else {
            return;
        };
        while let Some(record) = feed.recv().await {
            if let Err(e) = log.record(record).await {
                tracing::warn!(error = %e, "an agent state change could not be audited");
            }
        }
    }

    /// Something about `user_id`'s call changed besides their state (a supervisor joined or
    /// left it): their desk and the wallboard draw it again.
    pub fn touch(&self, user_id: &str) {
        let _ = self.events.send(PresenceEvent::Changed {
            user_id: user_id.to_owned(),
        });
    }

    /// Changes of agents' states and offers to their desks.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<PresenceEvent> {
        self.events.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock cannot leave a half-made change (each change is one
        // assignment), so a poisoned lock is still a consistent board.
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, actor: &Actor, change: Change) {
        let mut r = actor
            .record("agent.state_changed")
            .target(user_ref(&change.user_id))
            .detail("from", change.from.as_str())
            .detail("to", change.to.as_str());
        if let Some(reason) = change.reason {
            r = r.detail("reason", reason);
        }
        if let Some(queue) = change.queue {
            r = r.detail("queue", queue);
        }
        let _ = self.audit_tx.send(r);
        let _ = self.events.send(PresenceEvent::Changed {
            user_id: change.user_id,
        });
    }

    /// Moves `user_id` to `state` on a locked board; the change to publish.
    fn set(board: &mut Board, user_id: &str, username: &str, state: State) -> Change {
        let (idle, epoch) = (board.next(), board.next());
        let to = state.name();
        let (reason, queue) = match &state {
            State::NotReady(r) => (Some(r.clone()), None),
            State::Ringing { queue, .. } | State::OnCall { queue, .. } => {
                (None, Some(queue.clone()))
            }
            _ => (None, None),
        };
        let from = match board.agents.get_mut(user_id) {
            Some(a) => {
                let from = a.state.name();
                if to == StateName::Ready && from != StateName::Ready {
                    a.idle_order = idle;
                }
                a.state = state;
                a.since = now();
                a.epoch = epoch;
                from
            }
            None => {
                board.agents.insert(
                    user_id.to_owned(),
                    Agent {
                        username: username.to_owned(),
                        state,
                        since: now(),
                        idle_order: idle,
                        epoch,
                        session_watch: None,
                    },
                );
                StateName::LoggedOut
            }
        };
        Change {
            user_id: user_id.to_owned(),
            from,
            to,
            reason,
            queue,
        }
    }

    /// The agent (from their desk) is ready for calls. From signed out, not ready or wrap-up
    /// (ending it early); refused while a call rings or is on the line. Returns whether the
    /// agent was signed out of the queues before (so the caller can watch their session).
    pub fn set_ready(
        &self,
        actor: &Actor,
        user_id: &str,
        username: &str,
    ) -> Result<bool, PresenceError> {
        let change = {
            let mut b = self.lock();
            let was_out = !b.agents.contains_key(user_id);
            match b.agents.get(user_id).map(|a| &a.state) {
                Some(State::Ready) => return Ok(false),
                Some(State::Ringing { .. } | State::OnCall { .. }) => {
                    return Err(PresenceError::OnCall)
                }
                _ => {}
            }
            (Self::set(&mut b, user_id, username, State::Ready), was_out)
        };
        let was_out = change.1;
        self.publish(actor, change.0);
        Ok(was_out)
    }

    /// The agent (from their desk) is not ready, for one of the configured reasons.
    pub fn set_not_ready(
        &self,
        actor: &Actor,
        user_id: &str,
        username: &str,
        reason: &str,
    ) -> Result<bool, PresenceError> {
        if !self.settings.not_ready_reasons.iter().any(|r| r == reason) {
            return Err(PresenceError::UnknownReason(
                self.settings.not_ready_reasons.join(", "),
            ));
        }
        let change = {
            let mut b = self.lock();
            let was_out = !b.agents.contains_key(user_id);
            match b.agents.get(user_id).map(|a| &a.state) {
                Some(State::NotReady(r)) if r == reason => return Ok(false),
                Some(State::Ringing { .. } | State::OnCall { .. }) => {
                    return Err(PresenceError::OnCall)
                }
                _ => {}
            }
            (
                Self::set(
                    &mut b,
                    user_id,
                    username,
                    State::NotReady(reason.to_owned()),
                ),
                was_out,
            )
        };
        let was_out = change.1;
        self.publish(actor, change.0);
        Ok(was_out)
    }

    /// Keeps `watch` (the task that signs the agent out when their session ends) with the agent,
    /// aborting it when they leave; aborts it at once when they already left.
    pub fn keep_session_watch(&self, user_id: &str, watch: tokio::task::AbortHandle) {
        let mut b = self.lock();
        match b.agents.get_mut(user_id) {
            Some(a) => {
                if let Some(old) = a.session_watch.replace(watch) {
                    old.abort();
                }
            }
            None => watch.abort(),
        }
    }

    /// The agent signed out (or their session ended): out of the queues, whatever the state. A
    /// call already on the line goes on at the edge; its later reports are ignored.
    pub fn sign_out(&self, actor: &Actor, user_id: &str) {
        let change = {
            let mut b = self.lock();
            let Some(a) = b.agents.remove(user_id) else {
                return;
            };
            if let Some(w) = a.session_watch {
                w.abort();
            }
            Change {
                user_id: user_id.to_owned(),
                from: a.state.name(),
                to: StateName::LoggedOut,
                reason: None,
                queue: None,
            }
        };
        self.publish(actor, change);
    }

    /// The telephony edge: the longest-idle ready agent who serves `queue`, moved to ringing
    /// in the same step, so two calls never get the same agent.
    pub fn pick(&self, queue: &str) -> Option<Offered> {
        self.pick_where(queue, None, |_| true)
    }

    /// [`Presence::pick`] among the agents for whom `reachable(sip_username)` holds (e.g. their
    /// softphone is registered), showing `offer` on the chosen agent's desk while it rings.
    pub fn pick_where(
        &self,
        queue: &str,
        offer: Option<CallOffer>,
        reachable: impl Fn(&str) -> bool,
    ) -> Option<Offered> {
        let skilled = self.settings.skills.get(queue);
        let (offered, change) = {
            let mut b = self.lock();
            let chosen = b
                .agents
                .iter()
                .filter(|(_, a)| matches!(a.state, State::Ready))
                .filter(|(_, a)| skilled.is_none_or(|s| s.contains(&a.username)))
                .filter(|(_, a)| reachable(&a.username))
                .min_by_key(|(_, a)| a.idle_order)
                .map(|(id, a)| (id.clone(), a.username.clone()))?;
            let change = Self::set(
                &mut b,
                &chosen.0,
                &chosen.1,
                State::Ringing {
                    queue: queue.to_owned(),
                    offer: offer.clone(),
                },
            );
            (
                Offered {
                    user_id: chosen.0,
                    sip_username: chosen.1.clone(),
                    username: chosen.1,
                    queue: queue.to_owned(),
                },
                change,
            )
        };
        self.publish(&Actor::telephony_edge(), change);
        if let Some(offer) = offer {
            let _ = self.events.send(PresenceEvent::Offer {
                user_id: offered.user_id.clone(),
                offer,
            });
        }
        Some(offered)
    }

    /// The telephony edge, for a call transferred to one agent: `user_id` if they are ready,
    /// moved to ringing for `queue` (showing `offer` on their desk) in the same step; `None`
    /// when they are not ready (signed out, not ready, on another call).
    pub fn pick_agent(&self, user_id: &str, queue: &str, offer: CallOffer) -> Option<Offered> {
        let (offered, change) = {
            let mut b = self.lock();
            let username = b
                .agents
                .get(user_id)
                .filter(|a| matches!(a.state, State::Ready))?
                .username
                .clone();
            let change = Self::set(
                &mut b,
                user_id,
                &username,
                State::Ringing {
                    queue: queue.to_owned(),
                    offer: Some(offer.clone()),
                },
            );
            (
                Offered {
                    user_id: user_id.to_owned(),
                    sip_username: username.clone(),
                    username,
                    queue: queue.to_owned(),
                },
                change,
            )
        };
        self.publish(&Actor::telephony_edge(), change);
        let _ = self.events.send(PresenceEvent::Offer {
            user_id: offered.user_id.clone(),
            offer,
        });
        Some(offered)
    }

    /// Whether `user_id` is ready for calls now.
    #[must_use]
    pub fn is_ready(&self, user_id: &str) -> bool {
        self.lock()
            .agents
            .get(user_id)
            .is_some_and(|a| matches!(a.state, State::Ready))
    }

    /// The agent answered the call on their softphone: on call.
    pub fn answered(&self, user_id: &str, interaction_id: &str) -> Result<(), PresenceError> {
        self.edge_move(user_id, |state| match state {
            State::Ringing { queue, .. } => Ok(State::OnCall {
                queue: queue.clone(),
                interaction: interaction_id.to_owned(),
            }),
            _ => Err(PresenceError::WrongState),
        })
    }

    /// The ringing agent did not answer in time or rejected the call: not ready with the reason
    /// `missed_call` (they are likely away; ringing them again would delay the next caller), until
    /// they press Ready.
    pub fn not_answered(&self, user_id: &str) -> Result<(), PresenceError> {
        self.edge_move(user_id, |state| match state {
            State::Ringing { .. } => Ok(State::NotReady(MISSED_CALL.to_owned())),
            _ => Err(PresenceError::WrongState),
        })
    }

    /// The ringing agent could not be reached at all (no registration, the INVITE failed before
    /// it rang): back to ready, keeping their place as the longest idle.
    pub fn not_reached(&self, user_id: &str) -> Result<(), PresenceError> {
        let change = {
            let mut b = self.lock();
            let Some(a) = b.agents.get_mut(user_id) else {
                return Err(PresenceError::NotSignedIn);
            };
            if !matches!(a.state, State::Ringing { .. }) {
                return Err(PresenceError::WrongState);
            }
            let idle = a.idle_order;
            let username = a.username.clone();
            let change = Self::set(&mut b, user_id, &username, State::Ready);
            if let Some(a) = b.agents.get_mut(user_id) {
                a.idle_order = idle;
            }
            change
        };
        self.publish(&Actor::telephony_edge(), change);
        Ok(())
    }

    /// The call the agent was on ended (either side hung up): wrap-up, then ready by itself
    /// after `queues.wrap_up_seconds` unless the agent chose another state meanwhile.
    pub fn call_ended(self: &Arc<Self>, user_id: &str) -> Result<(), PresenceError> {
        self.edge_move(user_id, |state| match state {
            State::OnCall { .. } | State::Ringing { .. } => Ok(State::WrapUp),
            _ => Err(PresenceError::WrongState),
        })?;
        let epoch = self.lock().agents.get(user_id).map(|a| a.epoch);
        let (me, user, wait) = (Arc::clone(self), user_id.to_owned(), self.settings.wrap_up);
        if let (Some(epoch), Ok(rt)) = (epoch, tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                tokio::time::sleep(wait).await;
                me.wrap_up_over(&user, epoch);
            });
        }
        Ok(())
    }

    /// Ends the wrap-up that started at `epoch`, if the agent is still in it.
    fn wrap_up_over(&self, user_id: &str, epoch: u64) {
        let change = {
            let mut b = self.lock();
            let Some(a) = b.agents.get(user_id) else {
                return;
            };
            if a.epoch != epoch || !matches!(a.state, State::WrapUp) {
                return;
            }
            let username = a.username.clone();
            Self::set(&mut b, user_id, &username, State::Ready)
        };
        self.publish(&Actor::system(), change);
    }

    fn edge_move(
        &self,
        user_id: &str,
        next: impl FnOnce(&State) -> Result<State, PresenceError>,
    ) -> Result<(), PresenceError> {
        let change = {
            let mut b = self.lock();
            let Some(a) = b.agents.get(user_id) else {
                return Err(PresenceError::NotSignedIn);
            };
            let state = next(&a.state)?;
            let username = a.username.clone();
            Self::set(&mut b, user_id, &username, state)
        };
        self.publish(&Actor::telephony_edge(), change);
        Ok(())
    }

    /// One agent's state (signed out when not on the board).
    #[must_use]
    pub fn agent(&self, user_id: &str, username: &str) -> AgentView {
        let b = self.lock();
        match b.agents.get(user_id) {
            Some(a) => view(user_id, a),
            None => AgentView {
                user_id: user_id.to_owned(),
                username: username.to_owned(),
                state: StateName::LoggedOut,
                reason: None,
                queue: None,
                interaction_id: None,
                since: callguard_core::rfc3339(now()),
                seconds_in_state: 0,
            },
        }
    }

    /// The call ringing this agent's desk, if one is.
    #[must_use]
    pub fn ringing_offer(&self, user_id: &str) -> Option<CallOffer> {
        let b = self.lock();
        match b.agents.get(user_id).map(|a| &a.state) {
            Some(State::Ringing { offer, .. }) => offer.clone(),
            _ => None,
        }
    }

    /// Every agent signed in to the queues, by username.
    #[must_use]
    pub fn agents(&self) -> Vec<AgentView> {
        let b = self.lock();
        let mut all: Vec<AgentView> = b.agents.iter().map(|(id, a)| view(id, a)).collect();
        all.sort_by(|x, y| x.username.cmp(&y.username));
        all
    }

    /// How many agents are in each state (for `/metrics`).
    #[must_use]
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let b = self.lock();
        let mut counts: BTreeMap<&'static str, usize> = [
            StateName::Ready,
            StateName::NotReady,
            StateName::Ringing,
            StateName::OnCall,
            StateName::WrapUp,
        ]
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for a in b.agents.values() {
            *counts.entry(a.state.name().as_str()).or_default() += 1;
        }
        counts
    }
}

fn view(user_id: &str, a: &Agent) -> AgentView {
    let (reason, queue, interaction_id) = match &a.state {
        State::NotReady(r) => (Some(r.clone()), None, None),
        State::Ringing { queue, .. } => (None, Some(queue.clone()), None),
        State::OnCall { queue, interaction } => {
            (None, Some(queue.clone()), Some(interaction.clone()))
        }
        _ => (None, None, None),
    };
    AgentView {
        user_id: user_id.to_owned(),
        username: a.username.clone(),
        state: a.state.name(),
        reason,
        queue,
        interaction_id,
        since: callguard_core::rfc3339(a.since),
        seconds_in_state: (now() - a.since).max(0),
    }
}
