//! Key presses sent as SIP INFO (RFC 2976) in the caller's dialog: `application/dtmf-relay`
//! (`Signal=5` and `Duration=160` lines) or `application/dtmf` (the key alone). The edge answers
//! each INFO in the caller's dialog with 200 OK and hands the key to the call's media
//! ([`Command::InfoKey`]), where it joins the RFC 4733 and in-band presses (merged, so a press
//! sent more than one way counts once) and goes to the IVR or, in secure mode, to the keypad
//! capture only: an INFO is never relayed to the agent, a supervisor or the recorder. A body that
//! is not one key is refused with 400, a body of another type with 415; the key is never logged.
//!
//! ezk answers in-dialog requests no usage of the dialog takes with 404. [`InfoTap`], a layer
//! before ezk's dialog layer, sees each request of a caller's dialog first and registers
//! [`InfoUsage`] in that dialog (its key needs our tag, which only the caller's requests
//! carry); the dialog layer then hands the INFO to it in CSeq order.

use super::session::Command;
use crate::media::Key;
use bytesstr::BytesStr;
use ezk_sip_core::{Endpoint, EndpointBuilder, IncomingRequest, Layer, MayTake};
use ezk_sip_types::header::typed::ContentType;
use ezk_sip_types::{Method, StatusCode};
use ezk_sip_ua::dialog::{register_usage, DialogKey, Usage, UsageGuard};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// How long a press lasts when an `application/dtmf-relay` body gives no `Duration`, or an
/// `application/dtmf` body is used (it has none), in milliseconds.
pub const DEFAULT_PRESS_MS: u64 = 250;

/// A key press read from an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoPress {
    pub key: Key,
    /// How long the key was held, in milliseconds.
    pub lasts_ms: u64,
}

/// Why an INFO is refused (the response's status; never the body's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error("the DTMF body is not one key")]
    Malformed,
    #[error("the INFO body is not application/dtmf-relay or application/dtmf")]
    UnsupportedType,
}

impl InfoError {
    /// The SIP status the INFO is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            InfoError::Malformed => StatusCode::BAD_REQUEST,
            InfoError::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The reason phrase of that response.
    pub fn reason(self) -> &'static str {
        match self {
            InfoError::Malformed => "Malformed DTMF Body",
            InfoError::UnsupportedType => "Unsupported Media Type",
        }
    }
}

/// The key press of an INFO with `content_type` (the header's value, if any) and `body`.
/// `Ok(None)`: an INFO without a body (a keep-alive), answered 200 and otherwise ignored.
pub fn parse_info(content_type: Option<&str>, body: &[u8]) -> Result<Option<InfoPress>, InfoError> {
    let media_type = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if body.iter().all(u8::is_ascii_whitespace) && media_type.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(body).map_err(|_| InfoError::Malformed)?;
    match media_type.as_str() {
        "application/dtmf-relay" => dtmf_relay(text).map(Some),
        "application/dtmf" => Ok(Some(InfoPress {
            key: one_key(text.trim())?,
            lasts_ms: DEFAULT_PRESS_MS,
        })),
        _ => Err(InfoError::UnsupportedType),
    }
}

/// `Signal=<key>` (required, once) and `Duration=<ms>` (optional) lines; others are ignored.
fn dtmf_relay(text: &str) -> Result<InfoPress, InfoError> {
    let (mut key, mut lasts_ms) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(InfoError::Malformed);
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" if key.is_none() => key = Some(one_key(value)?),
            "duration" if lasts_ms.is_none() => {
                let ms = (!value.is_empty()
                    && value.len() <= 6
                    && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten()
                .ok_or(InfoError::Malformed)?;
                lasts_ms = Some(ms);
            }
            "signal" | "duration" => return Err(InfoError::Malformed),
            _ => {}
        }
    }
    Ok(InfoPress {
        key: key.ok_or(InfoError::Malformed)?,
        lasts_ms: lasts_ms.unwrap_or(DEFAULT_PRESS_MS),
    })
}

/// One key: its character (`0`–`9`, `*`, `#`, `A`–`D`), or its RFC 4733 event code `10`–`15`
/// (some gateways write `*` as `10` and `#` as `11`).
fn one_key(value: &str) -> Result<Key, InfoError> {
    let mut chars = value.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(c), None, _) => Key::from_char(c).ok_or(InfoError::Malformed),
        (Some('1'), Some(d @ '0'..='5'), None) => {
            Key::from_event(10 + (d as u8 - b'0')).ok_or(InfoError::Malformed)
        }
        _ => Err(InfoError::Malformed),
    }
}

/// The callers' dialogs whose INFO key presses the edge takes: (Call-ID, caller's tag) → the
/// call's media.
#[derive(Default)]
pub struct InfoRoutes {
    calls: Mutex<HashMap<(String, String), Route>>,
}

struct Route {
    commands: mpsc::UnboundedSender<Command>,
    /// Set once the usage is in the dialog (dropping it takes the usage out).
    usage: Option<UsageGuard>,
}

/// While kept, INFO in the caller's dialog reaches the call's media.
pub struct InfoRoute {
    routes: Arc<InfoRoutes>,
    id: (String, String),
}

impl Drop for InfoRoute {
    fn drop(&mut self) {
        let route = match self.routes.calls.lock() {
            Ok(mut calls) => calls.remove(&self.id),
            Err(_) => None,
        };
        // Outside the lock: dropping the usage locks ezk's dialog layer.
        drop(route);
    }
}

impl InfoRoutes {
    /// Routes INFO of the dialog the caller's INVITE (`invite`) opened to `commands`.
    pub fn open(
        self: &Arc<Self>,
        invite: &IncomingRequest,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Option<InfoRoute> {
        let id = (
            invite.base_headers.call_id.0.to_string(),
            invite.base_headers.from.tag.as_ref()?.to_string(),
        );
        let mut calls = self.calls.lock().ok()?;
        calls.insert(
            id.clone(),
            Route {
                commands,
                usage: None,
            },
        );
        Some(InfoRoute {
            routes: self.clone(),
            id,
        })
    }

    /// A request of a caller's dialog: the INFO usage joins that dialog if it has not yet.
    fn saw(&self, endpoint: &Endpoint, request: &IncomingRequest) {
        let (Some(peer_tag), Some(local_tag)) = (
            request.base_headers.from.tag.as_ref(),
            request.base_headers.to.tag.as_ref(),
        ) else {
            return;
        };
        let id = (
            request.base_headers.call_id.0.to_string(),
            peer_tag.to_string(),
        );
        let Ok(mut calls) = self.calls.lock() else {
            return;
        };
        let Some(route) = calls.get_mut(&id).filter(|r| r.usage.is_none()) else {
            return;
        };
        let key = DialogKey {
            call_id: BytesStr::from(id.0.as_str()),
            peer_tag: Some(BytesStr::from(id.1.as_str())),
            local_tag: BytesStr::from(local_tag.as_str()),
        };
        let usage = InfoUsage {
            commands: route.commands.clone(),
        };
        route.usage = register_usage(endpoint.clone(), key, usage);
    }
}

/// The layer before ezk's dialog layer that puts [`InfoUsage`] into callers' dialogs. It takes
/// no request.
pub struct InfoTap(pub Arc<InfoRoutes>);

#[async_trait::async_trait]
impl Layer for InfoTap {
    fn name(&self) -> &'static str {
        "callguard-info-tap"
    }

    fn init(&mut self, endpoint: &mut EndpointBuilder) {
        endpoint.add_allow(Method::INFO);
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        if request.line.method != Method::INVITE {
            self.0.saw(endpoint, &request);
        }
    }
}

/// Answers INFO in one caller's dialog and hands its key to the call's media.
struct InfoUsage {
    commands: mpsc::UnboundedSender<Command>,
}

#[async_trait::async_trait]
impl Usage for InfoUsage {
    fn name(&self) -> &'static str {
        "callguard-info-dtmf"
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        if request.line.method != Method::INFO {
            return;
        }
        let mut info = request.take();
        let content_type = info.headers.get_named::<ContentType>().ok();
        let parsed = parse_info(content_type.as_ref().map(|t| t.0.as_str()), &info.body);
        let (code, reason) = match parsed {
            Ok(Some(press)) => {
                if self.commands.send(Command::InfoKey(press)).is_ok() {
                    tracing::debug!("a key press by SIP INFO");
                    (StatusCode::OK, None)
                } else {
                    (StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST, None)
                }
            }
            Ok(None) => (StatusCode::OK, None),
            Err(e) => {
                tracing::info!(error = %e, "SIP INFO refused");
                (e.status(), Some(BytesStr::from_static(e.reason())))
            }
        };
        let response = endpoint.create_response(&info, code, reason);
        let tsx = endpoint.create_server_tsx(&mut info);
        if let Err(e) = tsx.respond(response).await {
            tracing::debug!(error = %e, "could not answer an INFO");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(content_type: &str, body: &str) -> Result<Option<InfoPress>, InfoError> {
        parse_info(Some(content_type), body.as_bytes())
    }

    fn key_of(content_type: &str, body: &str) -> char {
        press(content_type, body).unwrap().unwrap().key.as_char()
    }

    #[test]
    fn a_dtmf_relay_body_gives_its_signal_and_duration() {
        let p = press("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((p.key.as_char(), p.lasts_ms), ('5', 160));
        for (body, want) in [
            ("Signal=*\r\nDuration=100", '*'),
            ("Signal = #\nDuration = 250\n", '#'),
            ("signal=a", 'A'),
            ("Signal=10\r\nDuration=160", '*'),
            ("Signal=11", '#'),
            ("Signal=0\r\nVolume=10\r\n", '0'),
        ] {
            assert_eq!(key_of("application/dtmf-relay", body), want, "{body:?}");
        }
        let p = press("Application/DTMF-Relay; charset=utf-8", "Signal=9")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.key.as_char(), p.lasts_ms),
            ('9', DEFAULT_PRESS_MS),
            "no duration: the default press"
        );
    }

    #[test]
    fn a_dtmf_body_is_the_key_alone() {
        assert_eq!(key_of("application/dtmf", "5"), '5');
        assert_eq!(key_of("application/dtmf", "#\r\n"), '#');
        assert_eq!(key_of("application/dtmf", "11"), '#');
    }

    #[test]
    fn a_body_that_is_not_one_key_is_malformed() {
        for body in [
            "",
            "Duration=160",
            "Signal=",
            "Signal=55",
            "Signal=X",
            "Signal=16",
            "Signal=5\r\nSignal=6",
            "Signal=5\r\nDuration=long",
            "Signal=5\r\nDuration=-1",
            "Signal=5\r\nDuration=99999999999999999999",
            "Signal 5",
        ] {
            assert_eq!(
                press("application/dtmf-relay", body),
                Err(InfoError::Malformed),
                "{body:?}"
            );
        }
        for body in ["", "55", "x", "5 6"] {
            assert_eq!(
                press("application/dtmf", body),
                Err(InfoError::Malformed),
                "{body:?}"
            );
        }
        assert_eq!(
            parse_info(Some("application/dtmf"), &[0xff]),
            Err(InfoError::Malformed)
        );
        assert_eq!(InfoError::Malformed.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn another_body_type_is_unsupported_and_an_empty_info_is_no_key() {
        assert_eq!(
            press("application/sdp", "v=0"),
            Err(InfoError::UnsupportedType)
        );
        assert_eq!(
            parse_info(None, b"Signal=5"),
            Err(InfoError::UnsupportedType)
        );
        assert_eq!(
            InfoError::UnsupportedType.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(parse_info(None, b""), Ok(None));
        assert_eq!(parse_info(None, b"\r\n"), Ok(None));
    }

    #[test]
    fn an_error_never_carries_the_key() {
        for e in [InfoError::Malformed, InfoError::UnsupportedType] {
            let text = format!("{e} {e:?} {}", e.reason());
            assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
        }
    }
}
