//! Monitoring (SPEC C6) end to end: failed sign-ins spread over many addresses raise an alert
//! that reaches the API, the live event stream, a webhook (whose first answer is an error, so the
//! retry is exercised, and whose signature is checked here) and syslog; people acknowledge and
//! resolve it with comments that the audit log records without their words.

use crate::harness::{loopback, Deployment, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

both_backends!(
    alerts_reach_the_api_the_stream_the_webhook_and_syslog_and_are_handled_with_audited_comments,
    an_alert_stream_ends_when_its_session_ends,
    repeated_throttling_of_one_address_raises_one_alert_and_few_audit_entries,
);

const SECRET: &str = "webhook-secret-for-the-e2e-test";

/// One request the webhook receiver got.
struct Delivery {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 receiver: answers 500 to the first delivery of the alert under test
/// (`failed_sign_ins`) and 200 to everything else.
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut refused = false;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    break (Some(pos + 4), length);
                }
            };
            let Some(start) = head_end else { continue };
            while buf.len() < start + length {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..start]).to_string();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| {
                    l.split_once(':')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                })
                .collect();
            let body = buf[start..(start + length).min(buf.len())].to_vec();
            let under_test =
                String::from_utf8_lossy(&body).contains("\"rule\":\"failed_sign_ins\"");
            let status = if under_test && !refused {
                refused = true;
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = sock
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
            let _ = tx.send(Delivery { headers, body });
        }
    });
    (url, rx)
}

fn expected_signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn alerts_reach_the_api_the_stream_the_webhook_and_syslog_and_are_handled_with_audited_comments(
    backend: crate::harness::Backend,
) {
    let (hook_url, mut deliveries) = webhook_receiver().await;
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let syslog_addr = syslog.local_addr().unwrap().to_string();
    let server = Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_ALERTS_WEBHOOK_URL", hook_url.as_str()),
            ("CALLGUARD_ALERTS_WEBHOOK_SECRET", SECRET),
            ("CALLGUARD_ALERTS_SYSLOG", syslog_addr.as_str()),
        ],
    )
    .await;
    let supervisor = server.new_account("sup-watch", "supervisor").await;
    let compliance = server.new_account("cmp-watch", "compliance").await;
    let victim = server.new_account("victim-agent", "agent").await;
    let api = server.api();

    // The supervisor's live stream is open before anything happens.
    let mut stream = api
        .client
        .get(api.url("/api/v1/alerts/stream"))
        .bearer_auth(&supervisor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    // Five wrong passwords for the victim, each from another address.
    for n in 0..5u8 {
        server
            .api_from(loopback(40 + n))
            .login(&victim.username, "definitely not the password")
            .await
            .expect_problem(401, "invalid-credentials");
    }

    // The alert arrives on the stream…
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("failed_sign_ins") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an alert on the stream in time");
        seen.push_str(&String::from_utf8_lossy(
            &chunk.unwrap().expect("the stream stays open"),
        ));
    }
    assert!(seen.contains("event: alert"), "{seen}");
    assert!(seen.contains(&format!("user:{}", victim.id)), "{seen}");

    // …and in the list, open, about the victim.
    let list = api
        .get("/api/v1/alerts?status=open", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let alert = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "failed_sign_ins")
        .cloned()
        .expect("the alert is listed");
    assert_eq!(alert["subject"], format!("user:{}", victim.id));
    assert_eq!(alert["severity"], "high");
    let id = alert["id"].as_str().unwrap().to_owned();

    // The webhook: refused once, then delivered again with a valid signature. (The accounts
    // made for this test raised alerts of their own; those deliveries are not this one.)
    let mut of_this_alert = Vec::new();
    while of_this_alert.len() < 2 {
        let d = tokio::time::timeout(Duration::from_secs(20), deliveries.recv())
            .await
            .expect("a delivery and its retry")
            .unwrap();
        if d.header("x-callguard-delivery") == Some(id.as_str()) {
            of_this_alert.push(d);
        }
    }
    let second = of_this_alert.pop().unwrap();
    let first = of_this_alert.pop().unwrap();
    for d in [&first, &second] {
        let ts = d.header("x-callguard-timestamp").expect("timestamp header");
        let sig = d.header("x-callguard-signature").expect("signature header");
        assert_eq!(
            sig,
            format!("sha256={}", expected_signature(ts, &d.body)),
            "the HMAC checks out"
        );
        let body: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(body["type"], "callguard.alert");
        assert_eq!(body["alert"]["id"], id.as_str());
        assert_eq!(d.header("x-callguard-delivery"), Some(id.as_str()));
        assert!(!String::from_utf8_lossy(&d.body).contains("definitely not the password"));
    }
    let forged = expected_signature(
        first.header("x-callguard-timestamp").unwrap(),
        b"{\"type\":\"forged\"}",
    );
    assert_ne!(
        Some(format!("sha256={forged}").as_str()),
        first.header("x-callguard-signature")
    );

    // Syslog: an RFC 5424 line about it (after those of the accounts' own alerts).
    let mut buf = [0u8; 2048];
    let line = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), syslog.recv_from(&mut buf))
            .await
            .expect("a syslog message")
            .unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).to_string();
        if line.contains("rule=failed_sign_ins") {
            break line;
        }
    };
    assert!(line.starts_with("<85>1 "), "{line}");
    assert!(line.contains(" callguard "), "{line}");

    // Handling: a comment is required; acknowledge once; resolve once.
    let path = |what: &str| format!("/api/v1/alerts/{id}/{what}");
    api.post(
        &path("acknowledge"),
        Some(&supervisor.token),
        json!({"comment": "  "}),
    )
    .await
    .expect_problem(422, "validation-failed");
    // A control character (a NUL, which PostgreSQL text cannot hold) is refused like any bad
    // comment, never a server error (found by schemathesis).
    api.post(
        &path("acknowledge"),
        Some(&supervisor.token),
        json!({"comment": "checked\u{0}it"}),
    )
    .await
    .expect_problem(422, "validation-failed");
    api.post(
        &path("acknowledge"),
        Some(&supervisor.token),
        json!({"comment": "called the agent: typo storm"}),
    )
    .await
    .expect(200);
    api.post(
        &path("acknowledge"),
        Some(&supervisor.token),
        json!({"comment": "again"}),
    )
    .await
    .expect_problem(422, "validation-failed");
    let resolved = api
        .post(
            &path("resolve"),
            Some(&compliance.token),
            json!({"comment": "password reset, nothing else seen"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(
        resolved["acknowledged_by"],
        format!("user:{}", supervisor.id)
    );
    assert_eq!(resolved["resolved_by"], format!("user:{}", compliance.id));
    api.post(
        "/api/v1/alerts/00000000-0000-0000-0000-000000000000/resolve",
        Some(&supervisor.token),
        json!({"comment": "x"}),
    )
    .await
    .expect_problem(404, "not-found");
    api.post(
        &path("resolve"),
        Some(&victim.token),
        json!({"comment": "x"}),
    )
    .await
    .expect_problem(403, "forbidden");

    // The audit log records both actions, without the comments' words.
    let page = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .json();
    let entries = page["entries"].as_array().unwrap();
    let handled: Vec<&Value> = entries
        .iter()
        .filter(|e| e["target"] == format!("alert:{id}"))
        .collect();
    let actions: Vec<&str> = handled
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["alert.acknowledge", "alert.resolve"]);
    assert_eq!(handled[0]["actor"], format!("user:{}", supervisor.id));
    assert_eq!(handled[1]["actor"], format!("user:{}", compliance.id));
    let text = serde_json::to_string(&page).unwrap();
    assert!(
        !text.contains("typo storm") && !text.contains("password reset"),
        "comments stay out of the log"
    );

    // Metrics count the raised alert and the webhook outcomes: this alert's two attempts, and
    // one delivery for each alert the test's supervisor and compliance accounts raised (their
    // creation and first sign-in).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = api.get("/metrics", None).await.expect(200).text;
        let delivered = "callguard_alert_webhook_deliveries_total{outcome=\"delivered\"} 5";
        if metrics.contains(delivered) || tokio::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metrics.contains("callguard_alerts_raised_total{rule=\"failed_sign_ins\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callguard_alert_webhook_deliveries_total{outcome=\"delivered\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callguard_alert_webhook_deliveries_total{outcome=\"retried\"} 1"),
        "{metrics}"
    );
}

/// Opens the live alert stream with `token`.
pub async fn open_stream(api: &crate::harness::Api, token: &str) -> reqwest::Response {
    let stream = api
        .client
        .get(api.url("/api/v1/alerts/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

/// Reads the stream until the server ends it; fails when it is still open after 30 s (the
/// server re-checks every second in this test).
async fn ends(mut stream: reqwest::Response, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Err(_) => panic!("{what}: the alert stream was still open 30 s later"),
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return,
        }
    }
}

/// An open alert stream ends with its session: after logout, after the session is revoked from
/// another one, and after the account is disabled; a stream whose session stands stays open and
/// still delivers.
async fn an_alert_stream_ends_when_its_session_ends(backend: crate::harness::Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_ALERTS_STREAM_CHECK_SECONDS", "1")],
    )
    .await;
    let api = server.api();
    let admin = server.admin_session().await;
    let stays = server.new_account("sup-stays", "supervisor").await;
    let leaves = server.new_account("sup-leaves", "supervisor").await;
    let revoked = server.new_account("sup-revoked", "supervisor").await;
    let disabled = server.new_account("cmp-disabled", "compliance").await;

    let staying = open_stream(&api, &stays.token).await;

    // Logout.
    let stream = open_stream(&api, &leaves.token).await;
    api.post("/api/v1/auth/logout", Some(&leaves.token), json!({}))
        .await
        .expect(204);
    ends(stream, "after logout").await;

    // Revocation from another session of the same person.
    let stream = open_stream(&api, &revoked.token).await;
    let challenge = api
        .login(&revoked.username, &revoked.password)
        .await
        .expect(200)
        .str("challenge");
    let other = api
        .mfa(&challenge, "recovery", &revoked.recovery_codes[0])
        .await
        .expect(200)
        .str("token");
    let sessions = api
        .get("/api/v1/me/sessions", Some(&other))
        .await
        .expect(200)
        .json();
    let first = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("the streaming session is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/me/sessions/{first}"),
        Some(&other),
        None,
    )
    .await
    .expect(204);
    ends(stream, "after the session was revoked").await;

    // The account is disabled by an admin.
    let stream = open_stream(&api, &disabled.token).await;
    api.post(
        &format!("/api/v1/users/{}/disable", disabled.id),
        Some(&admin.token),
        json!({}),
    )
    .await
    .expect(200);
    ends(stream, "after the account was disabled").await;

    // The stream whose session stands is still open and delivers the next alert (a new admin
    // account raises one).
    let mut staying = staying;
    let created = api
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"username": format!("admin-{}", crate::harness::suffix()), "role": "admin"}),
        )
        .await;
    assert!(created.status.is_success(), "{created:?}");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("privileged_account_created") {
        let chunk = tokio::time::timeout_at(deadline, staying.chunk())
            .await
            .expect("an alert on the stream that stayed open")
            .unwrap()
            .expect("the stream of a live session stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// A burst of sign-in attempts from one address is mostly turned away with 429, which writes
/// nothing per request; once that address has been throttled repeatedly, one audit entry and
/// one alert name it — and a second burst in the same window adds neither.
async fn repeated_throttling_of_one_address_raises_one_alert_and_few_audit_entries(
    backend: crate::harness::Backend,
) {
    let server = Server::start(backend).await;
    let compliance = server.new_account("cmp-throttle", "compliance").await;
    let victim = server.new_account("victim-throttle", "agent").await;
    let api = server.api();
    let attacker = server.api_from(loopback(77));
    let mut sent = 0;
    let mut throttled = 0;
    for _burst in 0..2 {
        for _ in 0..30 {
            let answer = attacker
                .login(&victim.username, "definitely not the password")
                .await;
            sent += 1;
            match answer.status.as_u16() {
                429 => throttled += 1,
                401 => {}
                other => panic!("unexpected {other}: {}", answer.text),
            }
        }
        // Both bursts count: the alarm trips once, in the first.
        assert!(throttled >= 10, "{throttled} of {sent} throttled");
    }

    // Something after both bursts whose alert, once seen, means the engine has read every entry
    // written before it: a new admin account.
    let admin = server.admin_session().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let list = api
            .get("/api/v1/alerts?limit=500", Some(&compliance.token))
            .await
            .expect(200)
            .json();
        let alerts = list["alerts"].as_array().unwrap().clone();
        if alerts.iter().any(|a| {
            a["rule"] == "privileged_account_created"
                && a["subject"] == format!("user:{}", admin.id)
        }) {
            break alerts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no privileged_account_created alert: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let about_address: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "sign_in_throttled")
        .collect();
    assert_eq!(about_address.len(), 1, "{alerts:?}");
    assert_eq!(about_address[0]["subject"], "address:127.0.0.77");

    let page = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .json();
    let from_attacker: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "127.0.0.77")
        .collect();
    let marks: Vec<&&Value> = from_attacker
        .iter()
        .filter(|e| e["action"] == "auth.throttled")
        .collect();
    assert_eq!(marks.len(), 1, "{from_attacker:?}");
    assert!(
        from_attacker.len() <= sent - throttled + 1,
        "{} entries for {sent} requests, {throttled} of them throttled",
        from_attacker.len()
    );
    assert!(from_attacker.len() < 15, "{from_attacker:?}");
}
