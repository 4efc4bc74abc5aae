//! An SMTP server (RFC 5321) that accepts mail and keeps it in memory: greeting, EHLO/HELO,
//! optional AUTH PLAIN and LOGIN (RFC 4954), MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT. Plain TCP only. Enough for `lettre` and for most other clients.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpMessage {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, CRLF line ends), dot-unstuffed and
    /// without the final `.` line.
    pub data: String,
    /// The user name the client authenticated as, if it did.
    pub authenticated_as: Option<String>,
}

/// A local SMTP server that records every message it accepts. Stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

struct State {
    received: watch::Sender<Vec<SmtpMessage>>,
    /// When set, clients must authenticate with exactly these before `MAIL`.
    credentials: Option<(String, String)>,
    /// When set, `MAIL` is answered with this code (4xx: try later, 5xx: refused).
    refuse_mail: Mutex<Option<u16>>,
}

impl SmtpSink {
    /// Starts a server that accepts mail from anyone, without authentication.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts a server that advertises AUTH PLAIN and LOGIN and accepts mail only from a
    /// client that authenticated with `username` and `password`.
    pub async fn start_with_credentials(username: &str, password: &str) -> Self {
        Self::start_with(Some((username.to_owned(), password.to_owned()))).await
    }

    async fn start_with(credentials: Option<(String, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            received: watch::Sender::new(Vec::new()),
            credentials,
            refuse_mail: Mutex::new(None),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // Sessions live in the set, so dropping the sink ends them too.
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let state = shared.clone();
                            sessions.spawn(async move {
                                let _ = session(stream, &state).await;
                            });
                        }
                    }
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        });
        Self { addr, state, task }
    }

    /// The address the server listens on (127.0.0.1 and a free port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.state.received.borrow().clone()
    }

    /// Waits until at least `n` messages have arrived and returns them all; panics after
    /// `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmtpMessage> {
        crate::wait_for(&self.state.received, n, timeout, "SmtpSink").await
    }

    /// From now on answer `MAIL` with `code` (e.g. 451 for "try later", 550 for "refused"), or
    /// accept mail again with `None`.
    pub fn refuse_mail_with(&self, code: Option<u16>) {
        *self.state.refuse_mail.lock().unwrap() = code;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The address inside `<…>` after a `MAIL FROM:` or `RCPT TO:` prefix, ignoring parameters.
fn path_argument(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        inner.split('>').next().map(str::to_owned)
    } else {
        rest.split_whitespace().next().map(str::to_owned)
    }
}

fn decode_base64(text: &str) -> Option<String> {
    let bytes = data_encoding::BASE64.decode(text.trim().as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

async fn session(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    // Reads one line without its line end; `None` when the client has gone.
    macro_rules! next_line {
        () => {{
            buf.clear();
            if reader.read_until(b'\n', &mut buf).await? == 0 {
                return Ok(());
            }
            let line = String::from_utf8_lossy(&buf);
            line.trim_end_matches(['\r', '\n']).to_owned()
        }};
    }
    macro_rules! reply {
        ($text:expr) => {{
            writer
                .write_all(format!("{}\r\n", $text).as_bytes())
                .await?;
            writer.flush().await?;
        }};
    }

    reply!("220 callguard-testkit ESMTP ready");
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut user: Option<String> = None;
    loop {
        let line = next_line!();
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_owned();
        match verb.as_str() {
            "EHLO" => {
                let mut lines = vec!["callguard-testkit", "8BITMIME", "SMTPUTF8"];
                if state.credentials.is_some() {
                    lines.push("AUTH PLAIN LOGIN");
                }
                let last = lines.len() - 1;
                let text: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                    .collect();
                reply!(text.join("\r\n"));
                from = None;
                to.clear();
            }
            "HELO" => {
                reply!("250 callguard-testkit");
                from = None;
                to.clear();
            }
            "AUTH" => {
                let Some(expected) = &state.credentials else {
                    reply!("502 5.5.1 AUTH not available");
                    continue;
                };
                let mut words = line.split_whitespace().skip(1);
                let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = words.next().map(str::to_owned);
                let given = match mechanism.as_str() {
                    "PLAIN" => {
                        let response = match initial {
                            Some(r) => r,
                            None => {
                                reply!("334 ");
                                next_line!()
                            }
                        };
                        // authzid NUL authcid NUL passwd
                        decode_base64(&response).and_then(|s| {
                            let mut parts = s.split('\0').skip(1);
                            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
                        })
                    }
                    "LOGIN" => {
                        let name = match initial {
                            Some(r) => r,
                            None => {
                                reply!("334 VXNlcm5hbWU6"); // "Username:"
                                next_line!()
                            }
                        };
                        reply!("334 UGFzc3dvcmQ6"); // "Password:"
                        let password = next_line!();
                        decode_base64(&name).zip(decode_base64(&password))
                    }
                    _ => {
                        reply!("504 5.5.4 Unrecognized authentication type");
                        continue;
                    }
                };
                if given.as_ref() == Some(expected) {
                    user = Some(expected.0.clone());
                    reply!("235 2.7.0 Authentication successful");
                } else {
                    reply!("535 5.7.8 Authentication credentials invalid");
                }
            }
            "MAIL" => {
                let refused = *state.refuse_mail.lock().unwrap();
                if let Some(code) = refused {
                    let class = code / 100;
                    reply!(format!("{code} {class}.3.0 Mail not accepted now"));
                } else if state.credentials.is_some() && user.is_none() {
                    reply!("530 5.7.0 Authentication required");
                } else if let Some(path) = upper
                    .starts_with("MAIL FROM:")
                    .then(|| path_argument(&line["MAIL FROM:".len()..]))
                    .flatten()
                {
                    from = Some(path);
                    to.clear();
                    reply!("250 2.1.0 Ok");
                } else {
                    reply!("501 5.5.4 Syntax: MAIL FROM:<address>");
                }
            }
            "RCPT" => {
                if from.is_none() {
                    reply!("503 5.5.1 Need MAIL first");
                } else if let Some(path) = upper
                    .starts_with("RCPT TO:")
                    .then(|| path_argument(&line["RCPT TO:".len()..]))
                    .flatten()
                {
                    to.push(path);
                    reply!("250 2.1.5 Ok");
                } else {
                    reply!("501 5.5.4 Syntax: RCPT TO:<address>");
                }
            }
            "DATA" => {
                if from.is_none() || to.is_empty() {
                    reply!("503 5.5.1 Need MAIL and RCPT first");
                    continue;
                }
                reply!("354 End data with <CR><LF>.<CR><LF>");
                let mut data = Vec::new();
                loop {
                    buf.clear();
                    if reader.read_until(b'\n', &mut buf).await? == 0 {
                        return Ok(());
                    }
                    if buf == b".\r\n" || buf == b".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 section 4.5.2).
                    let line = if buf.starts_with(b".") {
                        &buf[1..]
                    } else {
                        &buf[..]
                    };
                    data.extend_from_slice(line);
                }
                let message = SmtpMessage {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data: String::from_utf8_lossy(&data).into_owned(),
                    authenticated_as: user.clone(),
                };
                let mut queue_id = 0;
                state.received.send_modify(|v| {
                    v.push(message);
                    queue_id = v.len();
                });
                reply!(format!("250 2.0.0 Ok: queued as TESTKIT{queue_id:06}"));
            }
            "RSET" => {
                from = None;
                to.clear();
                reply!("250 2.0.0 Ok");
            }
            "NOOP" => reply!("250 2.0.0 Ok"),
            "VRFY" => reply!("252 2.5.2 Cannot VRFY user"),
            "QUIT" => {
                reply!("221 2.0.0 Bye");
                return Ok(());
            }
            _ => reply!("502 5.5.2 Command not recognized"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Sends `script` in one piece (as a pipelining client would) and returns all replies.
    async fn converse(sink: &SmtpSink, script: &str) -> String {
        let mut stream = TcpStream::connect(sink.addr()).await.unwrap();
        stream.write_all(script.as_bytes()).await.unwrap();
        let mut replies = String::new();
        stream.read_to_string(&mut replies).await.unwrap();
        replies
    }

    fn codes(replies: &str) -> Vec<&str> {
        replies
            .lines()
            .filter(|l| l.as_bytes().get(3) == Some(&b' '))
            .map(|l| &l[..3])
            .collect()
    }

    #[tokio::test]
    async fn a_session_is_recorded_with_dots_unstuffed() {
        let sink = SmtpSink::start().await;
        let replies = converse(
            &sink,
            "EHLO client.example\r\nNOOP\r\nMAIL FROM:<a@x.example> BODY=8BITMIME\r\n\
             RCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n\
             Subject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(
            codes(&replies),
            ["220", "250", "250", "250", "250", "250", "354", "250", "221"]
        );
        let m = &sink.wait_for(1, Duration::from_secs(5)).await[0];
        assert_eq!(m.from, "a@x.example");
        assert_eq!(m.to, ["b@y.example", "c@y.example"]);
        assert_eq!(m.data, "Subject: hi\r\n\r\n.leading dot\r\n");
        assert_eq!(m.authenticated_as, None);
    }

    #[tokio::test]
    async fn rset_forgets_the_transaction_and_order_is_enforced() {
        let sink = SmtpSink::start().await;
        let replies = converse(
            &sink,
            "HELO c\r\nRCPT TO:<b@y.example>\r\nMAIL FROM:<a@x.example>\r\nRSET\r\nDATA\r\n\
             BOGUS\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(
            codes(&replies),
            ["220", "250", "503", "250", "250", "503", "502", "221"]
        );
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn mail_needs_the_configured_credentials() {
        let sink = SmtpSink::start_with_credentials("u", "p").await;
        let good = data_encoding::BASE64.encode(b"\0u\0p");
        let bad = data_encoding::BASE64.encode(b"\0u\0wrong");
        let replies = converse(
            &sink,
            &format!(
                "EHLO c\r\nMAIL FROM:<a@x.example>\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN {good}\r\n\
                 MAIL FROM:<a@x.example>\r\nQUIT\r\n"
            ),
        )
        .await;
        assert!(replies.contains("250 AUTH PLAIN LOGIN\r\n"));
        assert_eq!(
            codes(&replies),
            ["220", "250", "530", "535", "235", "250", "221"]
        );
    }
}
