//! The supervisors' wallboard (`/wallboard`): the queues, the agents and their time in state,
//! and today's charts drawn as SVG on the server. `static/wallboard.js` follows
//! `GET /api/v1/queues/stream` and swaps in `/wallboard/panel`, the same panel freshly drawn.

use super::charts::{self, BarChart};
use super::service::QueueView;
use crate::features::presence::service::AgentView;
use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, render, who, PageRoute, Who};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use callguard_core::Permission;

/// The live part of the wallboard.
pub(crate) struct Panel {
    pub(crate) at: String,
    pub(crate) queues: Vec<QueueRow>,
    pub(crate) agents: Vec<AgentRow>,
    pub(crate) per_hour: BarChart,
    pub(crate) waits: BarChart,
    pub(crate) chart_width: u32,
    pub(crate) chart_height: u32,
    /// The anti-forgery token of the monitoring buttons.
    pub(crate) csrf: String,
}

pub(crate) struct QueueRow {
    pub(crate) name: String,
    pub(crate) waiting: usize,
    pub(crate) longest_wait: String,
    pub(crate) answered: u64,
    pub(crate) abandoned: u64,
    pub(crate) service_level: String,
    pub(crate) average_wait: String,
}

pub(crate) struct AgentRow {
    pub(crate) username: String,
    pub(crate) state: &'static str,
    pub(crate) label: &'static str,
    pub(crate) detail: String,
    pub(crate) since: String,
    pub(crate) time_in_state: String,
    /// The call on the line, which a supervisor may join (empty when none).
    pub(crate) interaction_id: String,
    /// How a supervisor is on the call (empty when nobody is), and whether it is me.
    pub(crate) monitored: String,
    pub(crate) monitored_by_me: bool,
    /// Whether I may join the call (a supervisor of its queue).
    pub(crate) may_monitor: bool,
}

fn clock(seconds: u64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn queue_row(q: &QueueView) -> QueueRow {
    QueueRow {
        name: q.name.clone(),
        waiting: q.waiting,
        longest_wait: clock(q.longest_wait_seconds),
        answered: q.answered,
        abandoned: q.abandoned,
        service_level: q.service_level_percent.map_or_else(
            || "–".into(),
            |p| format!("{p:.0}% in {}s", q.service_level_seconds),
        ),
        average_wait: q
            .average_answer_wait_seconds
            .map_or_else(|| "–".into(), |s| format!("{s:.0}s")),
    }
}

fn agent_row(
    a: &AgentView,
    monitors: &[crate::features::monitor::service::MonitorView],
    me: &str,
    may_monitor: bool,
) -> AgentRow {
    let interaction_id = match a.state {
        crate::features::presence::service::StateName::OnCall => {
            a.interaction_id.clone().unwrap_or_default()
        }
        _ => String::new(),
    };
    let monitor = monitors
        .iter()
        .find(|m| !interaction_id.is_empty() && m.interaction_id == interaction_id);
    let detail = match (&a.reason, &a.queue) {
        (Some(r), _) => r.replace('_', " "),
        (None, Some(q)) => q.clone(),
        (None, None) => String::new(),
    };
    AgentRow {
        username: a.username.clone(),
        state: a.state.as_str(),
        label: a.state.label(),
        detail,
        since: a.since.clone(),
        time_in_state: clock(u64::try_from(a.seconds_in_state).unwrap_or(0)),
        monitored: monitor
            .map(|m| m.mode.as_str().to_owned())
            .unwrap_or_default(),
        monitored_by_me: monitor.is_some_and(|m| m.supervisor_id == me),
        may_monitor,
        interaction_id,
    }
}

fn panel(s: &AppState, p: &Principal, csrf: String) -> Panel {
    let board = s.queues.board();
    let monitors = s.monitoring.active();
    Panel {
        at: board.at.clone(),
        per_hour: charts::calls_per_hour(&board),
        waits: charts::waits(&board),
        queues: board.queues.iter().map(queue_row).collect(),
        agents: s
            .presence
            .agents()
            .iter()
            .map(|a| {
                let queue = a.queue.as_deref().unwrap_or_default();
                agent_row(a, &monitors, &p.user.id, s.monitoring.may_monitor(p, queue))
            })
            .collect(),
        csrf,
        chart_width: charts::WIDTH,
        chart_height: charts::HEIGHT,
    }
}

#[derive(Template)]
#[template(path = "queues/wallboard.html")]
struct WallboardPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    panel: Panel,
}

#[derive(Template)]
#[template(path = "queues/panel.html")]
struct PanelOnly {
    panel: Panel,
}

async fn wallboard_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    let c = csrf_of(&headers);
    let page = WallboardPage {
        csrf: c.token.clone(),
        who: who(&p),
        error: String::new(),
        notice: String::new(),
        panel: panel(&s, &p, c.token),
    };
    render(
        StatusCode::OK,
        page,
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

async fn panel_fragment(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    let c = csrf_of(&headers);
    render(
        StatusCode::OK,
        PanelOnly {
            panel: panel(&s, &p, c.token),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// This feature's pages, supervisors only.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    vec![
        (
            "/wallboard",
            Signed(Permission::QueuesRead),
            get(wallboard_page),
        ),
        (
            "/wallboard/panel",
            Signed(Permission::QueuesRead),
            get(panel_fragment),
        ),
    ]
}
