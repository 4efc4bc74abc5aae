//! Alerts over the JSON API: the list, the live SSE stream, acknowledge and resolve.

use crate::error::Error;
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{number, route, ApiRoute, Params};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use callguard_core::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, JsonSchema)]
pub struct AlertList {
    pub alerts: Vec<crate::features::alerts::service::AlertView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertComment {
    /// Why: what was checked or done (1 to 1000 characters). Kept with the alert, not in the log.
    pub comment: String,
}

async fn list_alerts(State(s): State<AppState>, q: Params) -> Result<Json<AlertList>, Error> {
    let limit = number(&q, "limit", Some(100))?;
    let alerts = s
        .alerts
        .list(q.get("status").map(String::as_str), limit)
        .await?;
    Ok(Json(AlertList { alerts }))
}

/// Server-sent events: `event: alert`, `id: SEQ`, `data: ALERT`. Resumes after
/// `Last-Event-ID` when the browser reconnects. Ends when the session that opened it ends: the
/// sign-in service re-checks it before every event and on a timer.
async fn alert_stream(
    State(s): State<AppState>,
    p: Principal,
    headers: axum::http::HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::stream::{self, StreamExt};
    let rx = s.alerts.subscribe();
    let missed = match headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(seq) => s.alerts.after(seq).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let last_sent = missed.last().map_or(i64::MIN, |a| a.seq);
    let event = |a: &crate::features::alerts::service::AlertView| -> Result<Event, std::convert::Infallible> {
        Ok(Event::default()
            .event("alert")
            .id(a.seq.to_string())
            .data(serde_json::to_string(a).unwrap_or_default()))
    };
    // An opening comment makes the server send the response head at once, so the browser's
    // EventSource reports the stream open before the first alert exists.
    let opening: Result<Event, std::convert::Infallible> = Ok(Event::default().comment("live"));
    let first = stream::iter(
        std::iter::once(opening)
            .chain(missed.iter().map(event))
            .collect::<Vec<_>>(),
    );
    let identity = s.identity.clone();
    let session = p.session.clone();
    let ended = identity
        .clone()
        .session_ended(p.session, s.alerts.stream_check());
    let live = stream::unfold((rx, last_sent), move |(mut rx, last)| {
        let (identity, session) = (identity.clone(), session.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(a) if a.seq > last => {
                        if !identity.session_alive(&session).await {
                            return None;
                        }
                        let next = a.seq;
                        return Some((a, (rx, next)));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
    .map(move |a| event(&a));
    let until = futures_util::future::select(Box::pin(s.alerts.closed()), Box::pin(ended));
    Sse::new(first.chain(live).take_until(until))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn acknowledge_alert(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AlertComment>,
) -> Result<Json<crate::features::alerts::service::AlertView>, Error> {
    Ok(Json(s.alerts.transition(&p, &id, false, &r.comment).await?))
}

async fn resolve_alert(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AlertComment>,
) -> Result<Json<crate::features::alerts::service::AlertView>, Error> {
    Ok(Json(s.alerts.transition(&p, &id, true, &r.comment).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/alerts", Signed(AlertsRead), "Alerts, newest first; `status` = open, acknowledged or resolved; `limit` ≤ 500.", get(list_alerts))
            .gives::<AlertList>(200).query("status", "string").query("limit", "integer").may(&[422]),
        route("GET", "/api/v1/alerts/stream", Signed(AlertsRead), "Live alerts as server-sent events (`event: alert`, `id` = seq; resumes after Last-Event-ID).", get(alert_stream)),
        route("POST", "/api/v1/alerts/{id}/acknowledge", Signed(AlertsManage), "Acknowledges an open alert with a comment (audited).", post(acknowledge_alert))
            .takes::<AlertComment>().gives::<crate::features::alerts::service::AlertView>(200).may(&[422]),
        route("POST", "/api/v1/alerts/{id}/resolve", Signed(AlertsManage), "Resolves an alert with a comment (audited).", post(resolve_alert))
            .takes::<AlertComment>().gives::<crate::features::alerts::service::AlertView>(200).may(&[422]),
    ]
}
