//! Agent states over the JSON API: my state (read, set), my live stream of state and offered
//! calls; every agent's state for supervisors.

use super::service::{AgentView, CallOffer, DeskChoice, Presence, PresenceError, PresenceEvent};
use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Json;
use callguard_core::Permission;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The state an agent asks for.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WantedState {
    Ready,
    NotReady,
    /// Out of the queues (also what signing out does).
    LoggedOut,
}

/// `PUT /api/v1/agents/me/state`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    pub state: WantedState,
    /// Required for `not_ready`: one of `not_ready_reasons`; not allowed otherwise.
    #[serde(default)]
    pub reason: Option<String>,
}

/// My state, the reasons I may give, and the call ringing me (if one is).
#[derive(Serialize, schemars::JsonSchema)]
pub struct MyState {
    pub agent: AgentView,
    pub not_ready_reasons: Vec<String>,
    pub offer: Option<CallOffer>,
}

/// Every agent signed in to the queues.
#[derive(Serialize, schemars::JsonSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

impl From<PresenceError> for Error {
    fn from(e: PresenceError) -> Self {
        match e {
            PresenceError::UnknownReason(list) => Error::Validation(format!(
                "`reason` must be one of the configured not-ready reasons: {list}"
            )),
            PresenceError::OnCall => Error::State(
                "a call is ringing or on the line: answer or reject it on your softphone first",
            ),
            PresenceError::NotSignedIn => Error::State("this agent is not signed in to the queues"),
            PresenceError::WrongState => {
                Error::State("this agent is not in the state this report needs")
            }
        }
    }
}

/// The change an agent's request asks for, or why it is not one.
pub fn choice_of(state: WantedState, reason: Option<&str>) -> Result<Option<DeskChoice>, Error> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match (state, reason) {
        (WantedState::Ready, None) => Ok(Some(DeskChoice::Ready)),
        (WantedState::NotReady, Some(r)) => Ok(Some(DeskChoice::NotReady(r.to_owned()))),
        (WantedState::NotReady, None) => Err(Error::Validation(
            "`reason` is required for not_ready: one of the configured not-ready reasons".into(),
        )),
        (WantedState::LoggedOut, None) => Ok(None),
        (_, Some(_)) => Err(Error::Validation(
            "`reason` goes only with not_ready; leave it out".into(),
        )),
    }
}

fn my_state(p: &Presence, me: &Principal) -> MyState {
    MyState {
        agent: p.agent(&me.user.id, &me.user.username),
        not_ready_reasons: p.settings().not_ready_reasons.clone(),
        offer: p.ringing_offer(&me.user.id),
    }
}

async fn get_my_state(State(s): State<AppState>, p: Principal) -> Json<MyState> {
    Json(my_state(&s.presence, &p))
}

async fn put_my_state(
    State(s): State<AppState>,
    p: Principal,
    ApiJson(r): ApiJson<StateChange>,
) -> Result<Json<MyState>, Error> {
    match choice_of(r.state, r.reason.as_deref())? {
        Some(choice) => {
            s.presence.desk_set(&p, &choice)?;
        }
        None => {
            s.presence.desk_sign_out(&p);
        }
    }
    Ok(Json(my_state(&s.presence, &p)))
}

async fn list_agents(State(s): State<AppState>) -> Json<AgentList> {
    Json(AgentList {
        agents: s.presence.agents(),
    })
}

fn json_event(name: &str, value: &impl Serialize) -> Result<Event, std::convert::Infallible> {
    Ok(Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_default()))
}

/// Server-sent events for my desk: `state` (my state, first at once, then on every change) and
/// `offer` (a call ringing me: caller id, queue, IVR path, level reached, masked screen-pop).
/// Ends with the session that opened it, and when the server stops.
async fn my_stream(State(s): State<AppState>, p: Principal) -> axum::response::Response {
    let rx = s.presence.subscribe();
    let presence: Arc<Presence> = s.presence.clone();
    let mut first = vec![
        Ok(Event::default().comment("live")),
        json_event("state", &presence.agent(&p.user.id, &p.user.username)),
    ];
    if let Some(offer) = presence.ringing_offer(&p.user.id) {
        first.push(json_event("offer", &offer));
    }
    let (me, name) = (p.user.id.clone(), p.user.username.clone());
    let live = stream::unfold(rx, move |mut rx| {
        let (presence, me, name) = (presence.clone(), me.clone(), name.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(PresenceEvent::Changed { user_id }) if user_id == me => {
                        return Some((json_event("state", &presence.agent(&me, &name)), rx));
                    }
                    Ok(PresenceEvent::Offer { user_id, offer }) if user_id == me => {
                        return Some((json_event("offer", &offer), rx));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let ended = s
        .identity
        .clone()
        .session_ended(p.session.clone(), s.alerts.stream_check());
    let until = futures_util::future::select(Box::pin(s.alerts.closed()), Box::pin(ended));
    Sse::new(stream::iter(first).chain(live).take_until(until))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/agents/me/state", Signed(AgentState), "My state for queued calls (ready, not_ready, ringing, on_call, wrap_up, logged_out) with the time I entered it, the not-ready reasons I may give, and the call ringing me.", get(get_my_state))
            .gives::<MyState>(200),
        route("PUT", "/api/v1/agents/me/state", Signed(AgentState), "Sets my state: `ready`, `not_ready` with a configured `reason`, or `logged_out` (out of the queues). Refused (409) while a call rings me or is on the line.", put(put_my_state))
            .takes::<StateChange>().gives::<MyState>(200).may(&[409, 422]),
        route("GET", "/api/v1/agents/me/stream", Signed(AgentState), "My desk, live, as server-sent events: `event: state` (my state, at once and on every change) and `event: offer` (a call ringing me: caller id, queue, IVR path, verification level reached, masked screen-pop).", get(my_stream)),
        route("GET", "/api/v1/agents", Signed(QueuesRead), "Every agent signed in to the queues, with their state and time in it (supervisors).", get(list_agents))
            .gives::<AgentList>(200),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_for_not_ready_and_refused_with_anything_else() {
        assert!(choice_of(WantedState::NotReady, None).is_err());
        assert!(choice_of(WantedState::NotReady, Some("  ")).is_err());
        assert!(choice_of(WantedState::Ready, Some("lunch")).is_err());
        assert!(choice_of(WantedState::LoggedOut, Some("lunch")).is_err());
        assert_eq!(
            choice_of(WantedState::NotReady, Some("lunch")).unwrap(),
            Some(DeskChoice::NotReady("lunch".into()))
        );
        assert_eq!(choice_of(WantedState::LoggedOut, None).unwrap(), None);
    }
}
