//! An HTTP server that answers like Twilio's Programmable Messaging REST API for the one call
//! that sends a message: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded
//! `To`, `From` and `Body`, HTTP basic authentication with the account SID and auth token, and
//! `201 Created` with the new Message resource as JSON. Errors have Twilio's JSON shape
//! (`code`, `message`, `more_info`, `status`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One message as the API accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// The Message SID the API answered with (`SM` and 32 hex digits).
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

/// A local stand-in for Twilio's messaging API that records every message it accepts. Stops
/// when dropped.
pub struct SmsApiSink {
    addr: SocketAddr,
    state: Arc<SinkState>,
    task: JoinHandle<()>,
}

struct SinkState {
    account_sid: String,
    auth_token: String,
    port: u16,
    received: watch::Sender<Vec<SmsMessage>>,
    /// When set, every request is answered with this status.
    failure: Mutex<Option<StatusCode>>,
}

impl SmsApiSink {
    /// Starts a server that accepts messages for `account_sid`, authenticated with
    /// `auth_token`.
    pub async fn start(account_sid: &str, auth_token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(SinkState {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            port: addr.port(),
            received: watch::Sender::new(Vec::new()),
            failure: Mutex::new(None),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account_sid}/Messages.json",
                post(create_message),
            )
            .fallback(|| async {
                twilio_error(
                    StatusCode::NOT_FOUND,
                    20404,
                    "The requested resource was not found",
                )
            })
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// The base URL to configure the client with (`http://127.0.0.1:PORT/`), in place of
    /// `https://api.twilio.com/`.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr)).expect("a valid URL")
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<SmsMessage> {
        self.state.received.borrow().clone()
    }

    /// Waits until at least `n` messages have been accepted and returns them all; panics after
    /// `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmsMessage> {
        crate::wait_for(&self.state.received, n, timeout, "SmsApiSink").await
    }

    /// From now on answer every request with `status` (e.g. 500 or 503) and a Twilio error
    /// body, or behave normally again with `None`.
    pub fn fail_with(&self, status: Option<u16>) {
        let status = status.map(|s| StatusCode::from_u16(s).expect("an HTTP status code"));
        *self.state.failure.lock().unwrap() = status;
    }
}

impl Drop for SmsApiSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    let mut resp = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
    }
    resp
}

/// The (user, password) of an `Authorization: Basic …` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn create_message(
    State(state): State<Arc<SinkState>>,
    Path(path_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let failure = *state.failure.lock().unwrap();
    if let Some(status) = failure {
        return twilio_error(status, 20500, "Internal Server Error");
    }
    let authenticated = basic_auth(&headers)
        .is_some_and(|(user, pw)| user == state.account_sid && pw == state.auth_token);
    if !authenticated {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if path_sid != state.account_sid {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    }
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            "Parameters must be form-encoded",
        );
    }
    let mut to = None;
    let mut from = None;
    let mut text = None;
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "To" => to = Some(value.into_owned()),
            "From" => from = Some(value.into_owned()),
            "Body" => text = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(to) = to.filter(|v| !v.is_empty()) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(from) = from.filter(|v| !v.is_empty()) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(text) = text.filter(|v| !v.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };

    let mut message = SmsMessage {
        sid: String::new(),
        to,
        from,
        body: text,
    };
    let mut answer = Value::Null;
    state.received.send_modify(|v| {
        // Unique per sink; the port keeps sids of two sinks in one test apart.
        message.sid = format!("SM{:016x}{:016x}", state.port, v.len() + 1);
        answer = json!({
            "account_sid": state.account_sid,
            "api_version": "2010-04-01",
            "body": message.body,
            "date_created": null,
            "date_sent": null,
            "date_updated": null,
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": message.from,
            "messaging_service_sid": null,
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": message.sid,
            "status": "queued",
            "subresource_uris": {
                "media": format!(
                    "/2010-04-01/Accounts/{}/Messages/{}/Media.json",
                    state.account_sid, message.sid
                ),
            },
            "to": message.to,
            "uri": format!(
                "/2010-04-01/Accounts/{}/Messages/{}.json",
                state.account_sid, message.sid
            ),
        });
        v.push(message.clone());
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request over a fresh connection; returns the whole response.
    async fn request(
        sink: &SmsApiSink,
        path: &str,
        auth: Option<(&str, &str)>,
        form: &str,
    ) -> String {
        let mut stream = tokio::net::TcpStream::connect(sink.addr()).await.unwrap();
        let auth = auth
            .map(|(u, p)| {
                let token = data_encoding::BASE64.encode(format!("{u}:{p}").as_bytes());
                format!("Authorization: Basic {token}\r\n")
            })
            .unwrap_or_default();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            sink.addr(),
            form.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        stream.read_to_string(&mut resp).await.unwrap();
        resp
    }

    fn json_body(resp: &str) -> Value {
        serde_json::from_str(resp.split_once("\r\n\r\n").unwrap().1).unwrap()
    }

    const PATH: &str = "/2010-04-01/Accounts/AC1/Messages.json";

    #[tokio::test]
    async fn a_message_is_created_like_twilio_does() {
        let sink = SmsApiSink::start("AC1", "tok").await;
        let resp = request(
            &sink,
            PATH,
            Some(("AC1", "tok")),
            "To=%2B48601234567&From=%2B15005550006&Body=Hello+there%21",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 201 "), "{resp}");
        let body = json_body(&resp);
        let m = &sink.wait_for(1, Duration::from_secs(5)).await[0];
        assert_eq!(body["sid"], m.sid.as_str());
        assert_eq!(body["status"], "queued");
        assert!(m.sid.starts_with("SM") && m.sid.len() == 34);
        assert_eq!(
            (m.to.as_str(), m.from.as_str(), m.body.as_str()),
            ("+48601234567", "+15005550006", "Hello there!")
        );
    }

    #[tokio::test]
    async fn wrong_credentials_missing_fields_and_failures_answer_like_twilio() {
        let sink = SmsApiSink::start("AC1", "tok").await;
        let form = "To=%2B1&From=%2B2&Body=x";
        let resp = request(&sink, PATH, Some(("AC1", "nope")), form).await;
        assert!(resp.starts_with("HTTP/1.1 401 "), "{resp}");
        assert!(resp
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"));
        assert_eq!(json_body(&resp)["code"], 20003);
        let resp = request(&sink, PATH, None, form).await;
        assert!(resp.starts_with("HTTP/1.1 401 "), "{resp}");
        let resp = request(&sink, PATH, Some(("AC1", "tok")), "To=%2B1&From=%2B2").await;
        assert_eq!(json_body(&resp)["code"], 21602);
        sink.fail_with(Some(503));
        let resp = request(&sink, PATH, Some(("AC1", "tok")), form).await;
        assert!(resp.starts_with("HTTP/1.1 503 "), "{resp}");
        assert!(sink.messages().is_empty());
    }
}
