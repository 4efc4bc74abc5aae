//! Guessing a softphone's password against the real binary: a burst of simultaneous REGISTERs
//! with wrong digest answers, each from its own UDP socket, gets exactly the limit checked; the
//! rest, and then the right password too, are refused; and the alarm reaches the alerts page.
//! The SIP edge listens on a random loopback port, so no private namespace is needed.

use crate::harness::{alert_when, suffix, Backend, Deployment, Server};
use serde_json::json;
use std::net::UdpSocket;
use std::sync::{Arc, Barrier};

both_backends!(a_burst_of_wrong_registers_is_cut_off_at_the_limit_and_raises_an_alert);

/// The digest Authorization answering `challenge` for `user` with `password` (SHA-256).
fn authorization(challenge: &str, user: &str, password: &str) -> String {
    use callguard_telephony::sip::digest::{ha1, Algorithm};
    let line = challenge
        .lines()
        .find(|l| {
            l.to_ascii_lowercase().starts_with("www-authenticate")
                && l.contains("algorithm=SHA-256,")
        })
        .unwrap_or_else(|| panic!("a SHA-256 challenge: {challenge}"));
    let nonce = line
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let a = Algorithm::Sha256;
    let h1 = ha1(a, user, "callguard.test", password);
    let h2 = a.hex("REGISTER:sip:callguard.test");
    let response = a.hex(&format!("{h1}:{nonce}:00000001:abc:auth:{h2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"callguard.test\", nonce=\"{nonce}\", uri=\"sip:callguard.test\", response=\"{response}\", algorithm=SHA-256, cnonce=\"abc\", qop=auth, nc=00000001\r\n"
    )
}

/// One REGISTER from `sock` to `edge`; the answer's text.
fn register(sock: &UdpSocket, edge: &str, user: &str, cseq: u32, authorization: &str) -> String {
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "REGISTER sip:callguard.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{port}-{cseq}\r\nFrom: <sip:{user}@callguard.test>;tag=t{port}\r\nTo: <sip:{user}@callguard.test>\r\nCall-ID: burst-{port}@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me}>\r\nExpires: 60\r\nMax-Forwards: 70\r\n{authorization}Content-Length: 0\r\n\r\n",
        port = me.port()
    );
    sock.send_to(msg.as_bytes(), edge).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("an answer from the SIP edge");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn a_burst_of_wrong_registers_is_cut_off_at_the_limit_and_raises_an_alert(backend: Backend) {
    let port = crate::harness::sip_port();
    let edge = format!("127.0.0.1:{port}");
    let server = Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", edge.as_str()),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
        ],
    )
    .await;
    let api = server.api();
    let agent = server
        .new_account(&format!("agent{}", suffix()), "agent")
        .await;
    let supervisor = server
        .new_account(&format!("sup{}", suffix()), "supervisor")
        .await;
    let issued = api
        .post("/api/v1/me/sip-credentials", Some(&agent.token), json!({}))
        .await
        .expect(200)
        .json();
    let password = issued["password"].as_str().unwrap().to_owned();
    let user = agent.username.clone();

    // Forty softphones each take a challenge, then all answer at once with a wrong password.
    const BURST: usize = 40;
    let barrier = Arc::new(Barrier::new(BURST));
    let answers: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..BURST)
            .map(|_| {
                let (barrier, edge, user) = (barrier.clone(), edge.clone(), user.clone());
                s.spawn(move || {
                    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    let challenge = register(&sock, &edge, &user, 1, "");
                    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
                    let wrong = authorization(&challenge, &user, "a-guessed-password");
                    barrier.wait();
                    register(&sock, &edge, &user, 2, &wrong)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|a| a.starts_with("SIP/2.0 403")),
        "every guess refused"
    );
    let metrics = api.get("/metrics", None).await.expect(200).text;
    assert!(
        metrics.contains("callguard_sip_refused_total{reason=\"auth\"} 10"),
        "exactly ten answers were checked: {metrics}"
    );
    assert!(
        metrics.contains("callguard_sip_refused_total{reason=\"locked\"} 30"),
        "the other thirty were refused unchecked: {metrics}"
    );

    // The right password now waits out the lock as well.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let challenge = register(&sock, &edge, &user, 1, "");
    let right = authorization(&challenge, &user, &password);
    let answer = register(&sock, &edge, &user, 2, &right);
    assert!(answer.starts_with("SIP/2.0 403"), "{answer}");

    let subject = format!("user:{}", agent.id);
    let (alert, _) = alert_when(&api, &supervisor.token, |a| {
        a["rule"] == "sip_registration_guessing" && a["subject"] == subject.as_str()
    })
    .await;
    assert_eq!(alert["severity"], "high");
    assert!(
        !alert.to_string().contains("a-guessed-password"),
        "no guessed password in the alert"
    );
}
