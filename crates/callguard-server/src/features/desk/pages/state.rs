//! The desk's state button: ready, not ready with a reason, out of the queues. The live part
//! (time in state, calls ringing, opening the answered call) is `static/presence.js` over
//! `GET /api/v1/agents/me/stream`.

use super::DeskPage;
use crate::features::presence::service::{AgentView, DeskChoice, StateName};
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{render, Checked};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

/// The agent's state as the desk shows it.
pub(crate) struct DeskPresence {
    pub(crate) state: String,
    pub(crate) label: &'static str,
    pub(crate) reason: String,
    pub(crate) since: String,
    pub(crate) reasons: Vec<String>,
    pub(crate) ready: bool,
    pub(crate) signed_in: bool,
    /// The call ringing now: queue, caller id, IVR path, level, masked name.
    pub(crate) offer: Option<OfferRow>,
    /// How a supervisor is on my call (empty when nobody is, or `monitor.tell_agents` is off).
    pub(crate) supervisor: String,
}

pub(crate) struct OfferRow {
    pub(crate) queue: String,
    pub(crate) caller_id: String,
    pub(crate) ivr_path: String,
    pub(crate) level: i64,
    pub(crate) screen_pop: String,
}

impl DeskPresence {
    pub(crate) fn of(s: &AppState, p: &Principal) -> Self {
        let v: AgentView = s.presence.agent(&p.user.id, &p.user.username);
        Self {
            state: v.state.as_str().to_owned(),
            label: v.state.label(),
            reason: v.reason.unwrap_or_default().replace('_', " "),
            since: v.since,
            reasons: s.presence.settings().not_ready_reasons.clone(),
            ready: v.state == StateName::Ready,
            signed_in: v.state != StateName::LoggedOut,
            supervisor: s
                .monitoring
                .shown_to_agent(&p.user.id)
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            offer: s.presence.ringing_offer(&p.user.id).map(|o| OfferRow {
                queue: o.queue,
                caller_id: o
                    .caller_id
                    .map(|c| c.expose().to_owned())
                    .unwrap_or_else(|| "withheld".into()),
                ivr_path: o.ivr_path.join(" › "),
                level: o.level,
                screen_pop: o.screen_pop.unwrap_or_default(),
            }),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct StateForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) reason: String,
}

pub(crate) async fn set_state(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<StateForm>,
) -> Response {
    let outcome = match f.state.as_str() {
        "ready" => s
            .presence
            .desk_set(&p, &DeskChoice::Ready)
            .map(|_| "You are ready: queued calls ring your softphone.".to_owned()),
        "not_ready" => s
            .presence
            .desk_set(&p, &DeskChoice::NotReady(f.reason.trim().to_owned()))
            .map(|_| {
                "You are not ready: no queued call rings you until you press Ready.".to_owned()
            }),
        "logged_out" => {
            s.presence.desk_sign_out(&p);
            Ok("You are out of the queues.".to_owned())
        }
        _ => Err(
            crate::features::presence::service::PresenceError::UnknownReason(
                "choose Ready, Not ready or Out of the queues".into(),
            ),
        ),
    };
    let (mut page, cookies) = DeskPage::new(&s, &headers, &p).await;
    match outcome {
        Ok(notice) => {
            page.notice = notice;
            render(StatusCode::OK, page, &cookies)
        }
        Err(e) => {
            let e = crate::error::Error::from(e);
            page.error = e.to_string();
            render(crate::http::problem::status_of(&e), page, &cookies)
        }
    }
}

crate::web::csrf_forms!(StateForm);
