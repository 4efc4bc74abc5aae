//! Recordings over the JSON API: the list, starting a playback for a reason, and the audio.

use crate::error::Error;
use crate::features::recordings::service::{PlaybackAudio, RecordingView};
use crate::http::access::{Access, ApiJson};
use crate::http::routes::{route, ApiRoute, Params};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use callguard_core::{Permission, UnixTime};
use callguard_store::RecordingFilter;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, JsonSchema)]
pub struct RecordingList {
    pub recordings: Vec<RecordingView>,
    /// The reasons a playback may be asked for.
    pub reasons: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybackRequest {
    /// One of the configured reasons (see `reasons` in the list).
    pub reason: String,
    /// Free text about why (at most 500 characters, one line); kept with the playback, not in
    /// the audit log.
    #[serde(default)]
    pub note: String,
}

#[derive(Serialize, JsonSchema)]
pub struct PlaybackStarted {
    /// Fetch the audio here, once, with the same session, before `expires_at`.
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Length of the audio in milliseconds.
    pub duration_ms: u64,
}

/// `YYYY-MM-DD` → the Unix time of that day's midnight UTC.
pub(crate) fn day_start(text: &str, name: &str) -> Result<UnixTime, Error> {
    let bad = || {
        Error::BadRequest(format!(
            "query parameter `{name}` must be a date like 2026-12-31"
        ))
    };
    let mut parts = text.trim().splitn(3, '-');
    let mut next = || parts.next().and_then(|p| p.parse::<i32>().ok());
    let (y, m, d) = (
        next().ok_or_else(bad)?,
        next().ok_or_else(bad)?,
        next().ok_or_else(bad)?,
    );
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let day = u8::try_from(d).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, day).map_err(|_| bad())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

/// The list's filter from query parameters: `interaction`, `from` and `until` (dates, both
/// included), `queue`, `limit`.
pub(crate) fn filter_of(
    q: &std::collections::HashMap<String, String>,
) -> Result<RecordingFilter, Error> {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        Some(v) => v.parse().map_err(|_| {
            Error::BadRequest("query parameter `limit` must be a non-negative integer".into())
        })?,
        None => 100,
    };
    Ok(RecordingFilter {
        interaction_id: text("interaction"),
        from: text("from").map(|d| day_start(&d, "from")).transpose()?,
        until: text("until")
            .map(|d| day_start(&d, "until").map(|t| t + 86_400))
            .transpose()?,
        queue: text("queue"),
        limit,
    })
}

async fn list_recordings(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<RecordingList>, Error> {
    let filter = filter_of(&q)?;
    Ok(Json(RecordingList {
        recordings: s.recordings.list(&filter).await?,
        reasons: s.recordings.reasons().to_vec(),
    }))
}

async fn start_playback(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PlaybackRequest>,
) -> Result<(StatusCode, Json<PlaybackStarted>), Error> {
    let t = s
        .recordings
        .begin_playback(&p, &id, &r.reason, &r.note)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PlaybackStarted {
            url: format!("/api/v1/recordings/playback/{}", t.ticket.expose()),
            expires_at: callguard_core::rfc3339(t.expires_at),
            duration_ms: t.duration_ms,
        }),
    ))
}

/// The WAV answer of a playback: streamed, never cached.
pub(crate) fn audio_response(audio: PlaybackAudio) -> Response {
    use futures_util::stream;
    let PlaybackAudio { bytes, blocks } = audio;
    let body = axum::body::Body::from_stream(stream::unfold(blocks, |mut rx| async move {
        rx.recv().await.map(|block| (block, rx))
    }));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    if let Ok(v) = HeaderValue::from_str(&bytes.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"recording.wav\""),
    );
    resp
}

async fn playback_audio(
    State(s): State<AppState>,
    p: Principal,
    Path(ticket): Path<String>,
) -> Result<Response, Error> {
    Ok(audio_response(s.recordings.play(&p, &ticket).await?))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/recordings", Signed(RecordingsPlay), "Call recordings, newest first: `interaction`, `from` and `until` (dates, UTC, both included), `queue`, `limit` (1 to 500, default 100). No customer data.", get(list_recordings))
            .gives::<RecordingList>(200).query("interaction", "string").query("from", "string").query("until", "string").query("queue", "string").query("limit", "integer"),
        route("POST", "/api/v1/recordings/{id}/playback", Signed(RecordingsPlay), "Starts a playback for a listed reason (audited): checks the whole recording first (a truncated or altered one is refused with 422) and answers a one-time URL for the audio, valid two minutes.", post(start_playback))
            .takes::<PlaybackRequest>().gives::<PlaybackStarted>(201).may(&[409, 422, 503]),
        route("GET", "/api/v1/recordings/playback/{ticket}", Signed(RecordingsPlay), "The audio of a playback started by this person: a WAV file (16-bit PCM, stereo: caller left, agent right), once.", get(playback_audio)),
    ]
}
