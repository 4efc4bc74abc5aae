//! What agent states are made of: the states, the call offered to a desk, the views the desk
//! and the wallboard show, and why a change is refused.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The reason an agent is set not ready when a call rang them and they did not answer: they are
/// probably away, so the next call should not ring them again until they come back.
pub const MISSED_CALL: &str = "missed_call";

/// Settings of agent states (`queues.*`, `desk.not_ready_reasons`).
#[derive(Debug, Clone)]
pub struct PresenceSettings {
    /// How long wrap-up lasts before the agent is ready again by themselves.
    pub wrap_up: Duration,
    /// The reasons an agent may give for not being ready.
    pub not_ready_reasons: Vec<String>,
    /// Which agents (by username) serve each queue; a queue not listed is served by every agent.
    pub skills: BTreeMap<String, Vec<String>>,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        Self {
            wrap_up: Duration::from_secs(30),
            not_ready_reasons: ["break", "lunch", "meeting", "training", "coaching"]
                .map(String::from)
                .to_vec(),
            skills: BTreeMap::new(),
        }
    }
}

/// An agent's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    LoggedOut,
    Ready,
    NotReady,
    Ringing,
    OnCall,
    WrapUp,
}

impl StateName {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::LoggedOut => "logged_out",
            StateName::Ready => "ready",
            StateName::NotReady => "not_ready",
            StateName::Ringing => "ringing",
            StateName::OnCall => "on_call",
            StateName::WrapUp => "wrap_up",
        }
    }

    /// Words for pages.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            StateName::LoggedOut => "Signed out",
            StateName::Ready => "Ready",
            StateName::NotReady => "Not ready",
            StateName::Ringing => "Ringing",
            StateName::OnCall => "On a call",
            StateName::WrapUp => "Wrap-up",
        }
    }
}

/// The caller's number as the edge saw it. Spoofable, so it never raises verification; shown on
/// the agent's desk, never in a log line (`Debug` and `Display` print nothing of it).
#[derive(Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct CallerId(String);

impl CallerId {
    #[must_use]
    pub fn new(number: impl Into<String>) -> Self {
        Self(number.into())
    }

    /// The number, for the desk of the agent the call is offered to.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallerId(<redacted>)")
    }
}

/// A call offered to an agent's desk while their softphone rings: what the edge knows of it.
#[derive(Clone, Serialize, schemars::JsonSchema)]
pub struct CallOffer {
    /// The interaction the edge opened for the call (channel `phone`).
    pub interaction_id: String,
    pub queue: String,
    pub caller_id: Option<CallerId>,
    /// The IVR choices the caller made, in order (e.g. `["billing"]`).
    pub ivr_path: Vec<String>,
    /// The verification level the caller reached by keypad (0, 1 or 2).
    pub level: i64,
    /// The masked name of the customer the call is linked to, when one is.
    pub screen_pop: Option<String>,
}

impl fmt::Debug for CallOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOffer")
            .field("interaction_id", &self.interaction_id)
            .field("queue", &self.queue)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// The agent a call was offered to, now ringing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub user_id: String,
    pub username: String,
    /// The SIP user name their softphone registers with (the account's username).
    pub sip_username: String,
    pub queue: String,
}

/// One agent as the desk and the wallboard see them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AgentView {
    pub user_id: String,
    pub username: String,
    pub state: StateName,
    /// Why not ready (one of `desk.not_ready_reasons`, or `missed_call`).
    pub reason: Option<String>,
    /// The queue of the call ringing or on the line.
    pub queue: Option<String>,
    /// The interaction of the call on the line (the desk opens it).
    pub interaction_id: Option<String>,
    /// RFC 3339 time the agent entered this state.
    pub since: String,
    pub seconds_in_state: i64,
}

/// Something the desk or the wallboard shows changed.
#[derive(Debug, Clone)]
pub enum PresenceEvent {
    /// An agent's state changed.
    Changed { user_id: String },
    /// A call rings this agent: show it on their desk.
    Offer { user_id: String, offer: CallOffer },
}

/// Why a change of state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("that reason is not one of the configured not-ready reasons: {0}")]
    UnknownReason(String),
    #[error("a call is ringing or on the line: answer or reject it on your softphone first")]
    OnCall,
    #[error("this agent is not signed in to the queues")]
    NotSignedIn,
    #[error("this agent is not in the state this report needs (the call was not theirs, or it already moved on)")]
    WrongState,
}
