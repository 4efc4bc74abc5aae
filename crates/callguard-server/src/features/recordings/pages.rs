//! The recordings pages for supervisors and compliance: the list (by interaction, date, queue)
//! and the playback page, where the listener picks a reason before the audio is fetched.

use super::api::{audio_response, filter_of};
use crate::features::recordings::service::RecordingView;
use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render, who, Checked, Flash, PageRoute, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use callguard_core::Permission;
use serde::Deserialize;

/// The playback page's Content-Security-Policy: the site's, plus audio from this origin.
pub const PLAYBACK_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "recordings/list.html")]
struct ListPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    recordings: Vec<RecordingView>,
    interaction: String,
    from: String,
    until: String,
    queue: String,
}

async fn list_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    q: crate::http::routes::Params,
) -> Response {
    let c = csrf_of(&headers);
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (recordings, error) = match filter_of(&q) {
        Ok(f) => match s.recordings.list(&f).await {
            Ok(r) => (r, String::new()),
            Err(e) => (Vec::new(), e.to_string()),
        },
        Err(e) => (Vec::new(), e.to_string()),
    };
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        ListPage {
            csrf: c.token,
            who: who(&p),
            error,
            notice: String::new(),
            recordings,
            interaction: field("interaction"),
            from: field("from"),
            until: field("until"),
            queue: field("queue"),
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Template)]
#[template(path = "recordings/playback.html")]
struct PlaybackPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    recording: RecordingView,
    reasons: Vec<String>,
    chosen: String,
    note: String,
    /// The one-time audio address, once a playback was started.
    audio_url: String,
}

async fn playback_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    id: &str,
    flash: Flash,
    form: (String, String),
    audio_url: String,
) -> Response {
    let recording = match s.recordings.view(id).await {
        Ok(r) => r,
        Err(e) => return error_page(headers, &e, who(p)),
    };
    let Flash { error, notice } = flash;
    let c = csrf_of(headers);
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = render(
        status,
        PlaybackPage {
            csrf: c.token,
            who: who(p),
            error,
            notice,
            recording,
            reasons: s.recordings.reasons().to_vec(),
            chosen: form.0,
            note: form.1,
            audio_url,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PLAYBACK_CSP),
    );
    resp
}

async fn playback_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
) -> Response {
    playback_view(
        &s,
        &headers,
        &p,
        &id,
        Flash::default(),
        Default::default(),
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
struct PlayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

async fn play(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<PlayForm>,
) -> Response {
    match s
        .recordings
        .begin_playback(&p, &id, &f.reason, &f.note)
        .await
    {
        Ok(t) => {
            let url = format!("/recordings/playback/{}", t.ticket.expose());
            let notice = format!(
                "Playback recorded with the reason {}; the audio below can be fetched once, within two minutes.",
                f.reason
            );
            playback_view(
                &s,
                &headers,
                &p,
                &id,
                Flash::notice(notice),
                (f.reason, f.note),
                url,
            )
            .await
        }
        Err(crate::error::Error::NotFound) => {
            error_page(&headers, &crate::error::Error::NotFound, who(&p))
        }
        Err(e) => {
            playback_view(
                &s,
                &headers,
                &p,
                &id,
                Flash::error(&e),
                (f.reason, f.note),
                String::new(),
            )
            .await
        }
    }
}

async fn audio(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(ticket): Path<String>,
) -> Response {
    match s.recordings.play(&p, &ticket).await {
        Ok(a) => audio_response(a),
        Err(e) => error_page(&headers, &e, who(&p)).into_response(),
    }
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/recordings", Signed(RecordingsPlay), get(list_page)),
        (
            "/recordings/{id}",
            Signed(RecordingsPlay),
            get(playback_page),
        ),
        ("/recordings/{id}/play", Signed(RecordingsPlay), post(play)),
        (
            "/recordings/playback/{ticket}",
            Signed(RecordingsPlay),
            get(audio),
        ),
    ]
}

crate::web::csrf_forms!(PlayForm);
