//! Supervisor listen, whisper and barge (issue #13 item 2): a supervisor of a call's queue joins
//! a bridged call from the wallboard. The telephony edge rings the supervisor's registered
//! softphone and adds it to the bridge as a third leg ([`CallMonitor`], filled in by the edge
//! when it runs). One supervisor per call at a time. Each start and stop is audited as
//! `supervisor.monitor_started` / `supervisor.monitor_stopped` with the mode and the call's
//! interaction, never a caller's data. Whether the agent's desk shows that a supervisor is on
//! the call is the `monitor.tell_agents` policy.

use crate::features::audit::service::AuditLog;
use crate::features::presence::service::{Presence, StateName};
use crate::principal::{Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::Permission;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::oneshot;

/// How a supervisor joins a call.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// The supervisor hears caller and agent; nobody hears the supervisor.
    Listen,
    /// The agent hears the supervisor; the caller does not.
    Whisper,
    /// Three-way: everyone hears everyone.
    Barge,
}

impl MonitorMode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Whisper => "whisper",
            MonitorMode::Barge => "barge",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "listen" => Some(MonitorMode::Listen),
            "whisper" => Some(MonitorMode::Whisper),
            "barge" => Some(MonitorMode::Barge),
            _ => None,
        }
    }
}

/// A supervisor's leg joined to a call: dropping or firing `stop` ends it; `ended` fires once
/// the leg is gone (stopped, the supervisor hung up, or the call ended).
pub struct JoinedLeg {
    pub stop: oneshot::Sender<()>,
    pub ended: oneshot::Receiver<()>,
}

/// Why the edge could not join a supervisor to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("the call is not bridged to an agent on this node")]
    NotBridged,
    #[error(
        "your softphone is not registered: sign it in with the SIP credentials from My account"
    )]
    NotRegistered,
    #[error("your softphone did not answer")]
    NotAnswered,
    #[error("no free media port for your leg")]
    Busy,
}

/// The telephony edge's side: ring a supervisor's softphone and add it to a bridged call.
#[async_trait::async_trait]
pub trait CallMonitor: Send + Sync {
    async fn join(
        &self,
        interaction: &str,
        sip_username: &str,
        mode: MonitorMode,
    ) -> Result<JoinedLeg, JoinError>;

    /// The supervisor's leg on the call of `interaction` switches to `mode`, staying on it.
    fn switch(&self, interaction: &str, mode: MonitorMode) -> Result<(), JoinError>;
}

/// The `monitor.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    /// queue → the supervisors (usernames) who may monitor its calls; a queue not listed may be
    /// monitored by every supervisor.
    pub supervisors: BTreeMap<String, Vec<String>>,
    /// Whether the agent's desk shows that a supervisor is on the call.
    pub tell_agents: bool,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            supervisors: BTreeMap::new(),
            tell_agents: true,
        }
    }
}

/// Why monitoring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    #[error("only supervisors monitor calls")]
    NotSupervisor,
    #[error("no call of that interaction is on the line")]
    NoSuchCall,
    #[error("you are not a supervisor of this call's queue")]
    NotYourQueue,
    #[error("a supervisor is already on this call")]
    AlreadyMonitored,
    #[error("nobody is monitoring this call on your behalf")]
    NotMonitoring,
    #[error("this server has no SIP edge")]
    NoEdge,
    #[error("{0}")]
    Edge(JoinError),
}

/// A supervisor on a call, as the wallboard and the desk show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct MonitorView {
    pub interaction_id: String,
    pub mode: MonitorMode,
    pub supervisor_id: String,
    pub agent_id: String,
    pub queue: String,
}

struct Active {
    view: Option<MonitorView>,
    stop: Option<oneshot::Sender<()>>,
}

/// Supervisors on calls, on this node (the edge that bridges the calls runs here).
pub struct Monitoring {
    settings: MonitorSettings,
    presence: Arc<Presence>,
    audit: Arc<AuditLog>,
    edge: OnceLock<Arc<dyn CallMonitor>>,
    /// interaction → its supervisor (`view` is `None` while the softphone rings).
    active: Mutex<HashMap<String, Active>>,
}

impl Monitoring {
    #[must_use]
    pub fn new(settings: MonitorSettings, presence: Arc<Presence>, audit: Arc<AuditLog>) -> Self {
        Self {
            settings,
            presence,
            audit,
            edge: OnceLock::new(),
            active: Mutex::new(HashMap::new()),
        }
    }

    /// The SIP edge, once it runs.
    pub fn attach(&self, edge: Arc<dyn CallMonitor>) {
        let _ = self.edge.set(edge);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Active>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `p` may monitor calls of `queue` (the wallboard offers its buttons only then).
    #[must_use]
    pub fn may_monitor(&self, p: &Principal, queue: &str) -> bool {
        p.user.role.allows(Permission::CallsMonitor)
            && self
                .settings
                .supervisors
                .get(queue)
                .is_none_or(|names| names.iter().any(|n| n == &p.user.username))
    }

    /// The supervisor `p` joins the call of `interaction` in `mode`: their softphone rings and,
    /// once answered, is on the call. Returns when the leg is on the call. The work runs on its
    /// own task, so a request given up half-way leaves no call half-joined.
    pub async fn start(
        self: &Arc<Self>,
        p: &Principal,
        interaction: &str,
        mode: MonitorMode,
    ) -> Result<MonitorView, MonitorError> {
        let (me, p, interaction) = (self.clone(), p.clone(), interaction.to_owned());
        tokio::spawn(async move { me.join(&p, &interaction, mode).await })
            .await
            .unwrap_or(Err(MonitorError::Edge(JoinError::NotAnswered)))
    }

    async fn join(
        self: &Arc<Self>,
        p: &Principal,
        interaction: &str,
        mode: MonitorMode,
    ) -> Result<MonitorView, MonitorError> {
        if !p.user.role.allows(Permission::CallsMonitor) {
            return Err(MonitorError::NotSupervisor);
        }
        let call = self
            .presence
            .agents()
            .into_iter()
            .find(|a| {
                a.state == StateName::OnCall && a.interaction_id.as_deref() == Some(interaction)
            })
            .ok_or(MonitorError::NoSuchCall)?;
        let queue = call.queue.clone().unwrap_or_default();
        if !self.may_monitor(p, &queue) {
            self.refused(p, interaction, mode, "not_your_queue").await;
            return Err(MonitorError::NotYourQueue);
        }
        let edge = self.edge.get().cloned().ok_or(MonitorError::NoEdge)?;
        {
            let mut active = self.lock();
            if active.contains_key(interaction) {
                return Err(MonitorError::AlreadyMonitored);
            }
            active.insert(
                interaction.to_owned(),
                Active {
                    view: None,
                    stop: None,
                },
            );
        }
        let joined = match edge.join(interaction, &p.user.username, mode).await {
            Ok(j) => j,
            Err(e) => {
                self.lock().remove(interaction);
                return Err(MonitorError::Edge(e));
            }
        };
        let view = MonitorView {
            interaction_id: interaction.to_owned(),
            mode,
            supervisor_id: p.user.id.clone(),
            agent_id: call.user_id.clone(),
            queue,
        };
        if let Some(a) = self.lock().get_mut(interaction) {
            a.view = Some(view.clone());
            a.stop = Some(joined.stop);
        }
        let mut started = p
            .actor()
            .record("supervisor.monitor_started")
            .target(user_ref(&call.user_id))
            .detail("mode", mode.as_str())
            .detail("queue", view.queue.clone());
        started.interaction = Some(interaction.to_owned());
        if let Err(e) = self.audit.record(started).await {
            tracing::error!(error = %e, "monitoring started but could not be audited: the leg is ended");
            self.end_now(interaction);
        }
        let (me, actor, ended) = (self.clone(), p.actor(), joined.ended);
        let interaction_id = interaction.to_owned();
        tokio::spawn(async move {
            let _ = ended.await;
            me.ended(&actor, &interaction_id).await;
        });
        self.presence.touch(&call.user_id);
        Ok(view)
    }

    /// Audits a refused start (the supervisor was not one of the queue's).
    async fn refused(&self, p: &Principal, interaction: &str, mode: MonitorMode, why: &str) {
        let mut r = p
            .actor()
            .record("supervisor.monitor_started")
            .failure()
            .detail("mode", mode.as_str())
            .detail("reason", why);
        r.interaction = Some(interaction.to_owned());
        if let Err(e) = self.audit.record(r).await {
            tracing::warn!(error = %e, "a refused monitoring could not be audited");
        }
    }

    fn end_now(&self, interaction: &str) {
        if let Some(stop) = self.lock().get_mut(interaction).and_then(|a| a.stop.take()) {
            let _ = stop.send(());
        }
    }

    /// The leg ended (stopped, hung up, or the call ended): audited once.
    async fn ended(&self, actor: &Actor, interaction: &str) {
        let Some(view) = self.lock().remove(interaction).and_then(|a| a.view) else {
            return;
        };
        let mut r = actor
            .record("supervisor.monitor_stopped")
            .target(user_ref(&view.agent_id))
            .detail("mode", view.mode.as_str())
            .detail("queue", view.queue.clone());
        r.interaction = Some(interaction.to_owned());
        if let Err(e) = self.audit.record(r).await {
            tracing::error!(error = %e, "the end of a monitoring could not be audited");
        }
        self.presence.touch(&view.agent_id);
    }

    /// The supervisor `p` leaves the call of `interaction`.
    pub fn stop(&self, p: &Principal, interaction: &str) -> Result<(), MonitorError> {
        let mut active = self.lock();
        let a = active
            .get_mut(interaction)
            .filter(|a| {
                a.view
                    .as_ref()
                    .is_some_and(|v| v.supervisor_id == p.user.id)
            })
            .ok_or(MonitorError::NotMonitoring)?;
        if let Some(stop) = a.stop.take() {
            let _ = stop.send(());
        }
        Ok(())
    }

    /// The supervisor `p` switches their leg on the call of `interaction` to `mode` without
    /// leaving it (listen → whisper → barge, any way round). Audited as
    /// `supervisor.monitor_mode_changed` with the mode before and after; asking for the mode
    /// already on changes nothing.
    pub async fn switch(
        &self,
        p: &Principal,
        interaction: &str,
        mode: MonitorMode,
    ) -> Result<MonitorView, MonitorError> {
        if !p.user.role.allows(Permission::CallsMonitor) {
            return Err(MonitorError::NotSupervisor);
        }
        let (before, view) = {
            let mut active = self.lock();
            let view = active
                .get_mut(interaction)
                .and_then(|a| a.view.as_mut())
                .filter(|v| v.supervisor_id == p.user.id)
                .ok_or(MonitorError::NotMonitoring)?;
            if view.mode == mode {
                return Ok(view.clone());
            }
            // Someone on a call means the edge runs.
            let edge = self.edge.get().ok_or(MonitorError::NoEdge)?;
            edge.switch(interaction, mode).map_err(MonitorError::Edge)?;
            let before = view.mode;
            view.mode = mode;
            (before, view.clone())
        };
        let mut changed = p
            .actor()
            .record("supervisor.monitor_mode_changed")
            .target(user_ref(&view.agent_id))
            .detail("from", before.as_str())
            .detail("mode", mode.as_str())
            .detail("queue", view.queue.clone());
        changed.interaction = Some(interaction.to_owned());
        if let Err(e) = self.audit.record(changed).await {
            tracing::error!(error = %e, "a monitoring mode change could not be audited: the leg is ended");
            self.end_now(interaction);
        }
        self.presence.touch(&view.agent_id);
        Ok(view)
    }

    /// Every supervisor on a call now.
    #[must_use]
    pub fn active(&self) -> Vec<MonitorView> {
        let mut all: Vec<MonitorView> = self
            .lock()
            .values()
            .filter_map(|a| a.view.clone())
            .collect();
        all.sort_by(|a, b| a.interaction_id.cmp(&b.interaction_id));
        all
    }

    /// What the agent's desk shows: the mode a supervisor is on the agent's call in, when the
    /// policy tells agents.
    #[must_use]
    pub fn shown_to_agent(&self, agent_id: &str) -> Option<MonitorMode> {
        if !self.settings.tell_agents {
            return None;
        }
        self.lock()
            .values()
            .filter_map(|a| a.view.as_ref())
            .find(|v| v.agent_id == agent_id)
            .map(|v| v.mode)
    }
}
