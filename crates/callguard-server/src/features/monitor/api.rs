//! Monitoring over the JSON API: a supervisor joins a call of their queues (listen, whisper,
//! barge), leaves it, and sees who is on which call; an agent sees whether a supervisor is on
//! theirs (when `monitor.tell_agents`).

use super::service::{JoinError, MonitorError, MonitorMode, MonitorView};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Json;
use callguard_core::Permission;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/monitor`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMonitor {
    /// The interaction of a call on the line.
    pub interaction_id: String,
    pub mode: MonitorMode,
}

/// `POST /api/v1/monitor/{interaction_id}/mode`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchMonitor {
    pub mode: MonitorMode,
}

/// Every supervisor on a call now.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MonitorList {
    pub monitors: Vec<MonitorView>,
}

/// Whether a supervisor is on my call, and how.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MyMonitor {
    pub supervisor_on_call: bool,
    pub mode: Option<MonitorMode>,
}

impl From<MonitorError> for Error {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::NotSupervisor | MonitorError::NotYourQueue => Error::Forbidden,
            MonitorError::NoSuchCall | MonitorError::NotMonitoring => Error::NotFound,
            MonitorError::AlreadyMonitored => Error::State("a supervisor is already on this call"),
            MonitorError::NoEdge => Error::NotConfigured("this server has no SIP edge"),
            MonitorError::Edge(JoinError::NotBridged) => Error::NotFound,
            MonitorError::Edge(JoinError::NotRegistered) => Error::State(
                "your softphone is not registered: sign it in with the SIP credentials from My account",
            ),
            MonitorError::Edge(JoinError::NotAnswered) => {
                Error::State("your softphone did not answer")
            }
            MonitorError::Edge(JoinError::Busy) => Error::Busy,
        }
    }
}

async fn start(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<StartMonitor>,
) -> Result<(StatusCode, Json<MonitorView>), Error> {
    let view = s.monitoring.start(&p, &r.interaction_id, r.mode).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn switch(
    State(s): State<AppState>,
    p: Principal,
    Path(interaction): Path<String>,
    ApiJson(r): ApiJson<SwitchMonitor>,
) -> Result<Json<MonitorView>, Error> {
    Ok(Json(s.monitoring.switch(&p, &interaction, r.mode).await?))
}

async fn stop(
    State(s): State<AppState>,
    p: Principal,
    Path(interaction): Path<String>,
) -> Result<StatusCode, Error> {
    s.monitoring.stop(&p, &interaction)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(s): State<AppState>) -> Json<MonitorList> {
    Json(MonitorList {
        monitors: s.monitoring.active(),
    })
}

async fn mine(State(s): State<AppState>, p: Principal) -> Json<MyMonitor> {
    let mode = s.monitoring.shown_to_agent(&p.user.id);
    Json(MyMonitor {
        supervisor_on_call: mode.is_some(),
        mode,
    })
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("POST", "/api/v1/monitor", Signed(CallsMonitor), "Joins a call on the line (supervisors of its queue, see `queues.supervisors`): `listen` (hear caller and agent), `whisper` (the agent hears you, the caller does not) or `barge` (three-way). The edge rings your registered softphone; answered, you are on the call. One supervisor per call; audited.", post(start))
            .takes::<StartMonitor>().gives::<MonitorView>(201).may(&[403, 404, 409, 422, 501, 503]),
        route("POST", "/api/v1/monitor/{interaction_id}/mode", Signed(CallsMonitor), "Switches my leg on a call I am monitoring to another mode (`listen`, `whisper`, `barge`) without leaving it; audited.", post(switch))
            .takes::<SwitchMonitor>().gives::<MonitorView>(200).may(&[403, 404]),
        route("DELETE", "/api/v1/monitor/{interaction_id}", Signed(CallsMonitor), "Leaves a call I am monitoring (audited).", delete(stop))
            .may(&[404]),
        route("GET", "/api/v1/monitor", Signed(CallsMonitor), "Every supervisor on a call now: the call's interaction, mode, supervisor, agent and queue.", get(list))
            .gives::<MonitorList>(200),
        route("GET", "/api/v1/agents/me/monitor", Signed(AgentState), "Whether a supervisor is on my call and how (shown when `monitor.tell_agents` is true).", get(mine))
            .gives::<MyMonitor>(200),
    ]
}
