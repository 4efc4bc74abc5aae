//! Queue figures over the JSON API (supervisors): now, and live as server-sent events.

use super::service::QueueBoard;
use crate::features::presence::service::AgentView;
use crate::http::access::Access;
use crate::http::routes::{route, ApiRoute};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use callguard_core::Permission;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

/// The queues and the agents, as the wallboard shows them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Wallboard {
    #[serde(flatten)]
    pub board: QueueBoard,
    pub agents: Vec<AgentView>,
}

/// The wallboard's figures now.
pub fn wallboard(s: &AppState) -> Wallboard {
    Wallboard {
        board: s.queues.board(),
        agents: s.presence.agents(),
    }
}

async fn get_queues(State(s): State<AppState>) -> Json<QueueBoard> {
    Json(s.queues.board())
}

fn board_event(s: &AppState) -> Result<Event, std::convert::Infallible> {
    Ok(Event::default()
        .event("board")
        .data(serde_json::to_string(&wallboard(s)).unwrap_or_default()))
}

/// Server-sent events: `event: board` with every queue's figures and every agent's state, at
/// once and whenever a call or an agent's state changes (changes arriving together make one
/// event). Ends with the session that opened it, and when the server stops.
async fn board_stream(State(s): State<AppState>, p: Principal) -> axum::response::Response {
    let (calls, agents) = (s.queues.subscribe(), s.presence.subscribe());
    let first = stream::iter(vec![Ok(Event::default().comment("live")), board_event(&s)]);
    let state = s.clone();
    let live = stream::unfold((calls, agents), move |(mut calls, mut agents)| {
        let state = state.clone();
        async move {
            use tokio::sync::broadcast::error::RecvError::Closed;
            tokio::select! {
                r = calls.recv() => if matches!(r, Err(Closed)) { return None },
                r = agents.recv() => if matches!(r, Err(Closed)) { return None },
            }
            // Whatever else already happened is in the same picture.
            while calls.try_recv().is_ok() {}
            while agents.try_recv().is_ok() {}
            Some((board_event(&state), (calls, agents)))
        }
    });
    let ended = s
        .identity
        .clone()
        .session_ended(p.session.clone(), s.alerts.stream_check());
    let until = futures_util::future::select(Box::pin(s.alerts.closed()), Box::pin(ended));
    Sse::new(first.chain(live).take_until(until))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/queues", Signed(QueuesRead), "Every queue's figures now (supervisors): calls waiting, longest wait, answered, abandoned and left today (UTC), service level (answered within `service_level_seconds` of answered or abandoned), average wait, calls per hour today, waits by bucket.", get(get_queues))
            .gives::<QueueBoard>(200),
        route("GET", "/api/v1/queues/stream", Signed(QueuesRead), "The wallboard, live, as server-sent events (supervisors): `event: board` with every queue's figures and every agent's state, at once and on every change.", get(board_stream)),
    ]
}
