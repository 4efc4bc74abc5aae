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
    alerts_reach_the_api_the_stream_the_webhook_and_syslog_and_are_handled_with_audited_comments
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
