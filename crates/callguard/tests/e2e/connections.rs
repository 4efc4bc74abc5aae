//! Connections (issue #10, item 12): a TLS connection that sends nothing, a request body trickled
//! byte by byte and an idle HTTP/2 connection are closed by the server within its (here small)
//! timeouts; beyond the connection limit new connections are closed at once, and clients get in
//! again when others leave. The bounds below are generous: they tell "closed" from "left open",
//! not how fast.

use crate::harness::{Deployment, Server};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How long a connection the server should close may stay open before the test calls it open.
const CLOSED_WITHIN: Duration = Duration::from_secs(30);

/// A TLS connection to the server, verified against its certificate, offering `alpn`.
async fn connect(server: &Server, alpn: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    let pem = std::fs::read(server.data_dir.join("tls").join("cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// Reads until the server closes the connection; answers what it sent. Fails the test when the
/// connection is still open after [`CLOSED_WITHIN`].
async fn read_until_closed<R: AsyncReadExt + Unpin>(reader: &mut R, what: &str) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + CLOSED_WITHIN;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => panic!("{what}: the server left the connection open for {CLOSED_WITHIN:?}"),
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// HTTP/2 frames in `bytes`: (type, flags) of each whole frame.
fn h2_frames(bytes: &[u8]) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 9 {
        let len = (usize::from(bytes[at]) << 16)
            | (usize::from(bytes[at + 1]) << 8)
            | usize::from(bytes[at + 2]);
        if bytes.len() < at + 9 + len {
            break;
        }
        out.push((bytes[at + 3], bytes[at + 4]));
        at += 9 + len;
    }
    out
}

/// A server whose idle and body timeouts are two seconds.
async fn impatient_server() -> Server {
    Server::start_with(
        Deployment::new(crate::harness::Backend::Sqlite),
        &[
            ("CALLGUARD_HTTP_IDLE_TIMEOUT_SECONDS", "2"),
            ("CALLGUARD_HTTP_BODY_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_tls_connection_that_sends_nothing_is_closed_by_the_server() {
    let server = impatient_server().await;
    let mut quiet = connect(&server, b"http/1.1").await.unwrap();
    read_until_closed(&mut quiet, "a silent TLS connection").await;
    // Others are not cut off: the health check answers over a fresh connection.
    server.api().get("/healthz", None).await.expect(200);
}

#[tokio::test]
async fn a_trickled_request_body_fails_and_its_connection_is_closed() {
    let server = impatient_server().await;
    // A request whose body trickles in at a byte every half second (faster than the idle
    // timeout, so only the body timeout can end it).
    let slow = connect(&server, b"http/1.1").await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(slow);
    writer
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n",
        )
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() || writer.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let answer = read_until_closed(&mut reader, "a trickled request body").await;
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("did not arrive within the time allowed"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_by_the_server_with_goaway() {
    let server = impatient_server().await;
    // An HTTP/2 connection that opens no stream: settings exchanged, then silence.
    let h2 = connect(&server, b"h2").await.unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut reader, mut writer) = tokio::io::split(h2);
    writer
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    writer.flush().await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !h2_frames(&got).contains(&(4, 0)) {
        let n = tokio::time::timeout(CLOSED_WITHIN, reader.read(&mut buf))
            .await
            .expect("the server's HTTP/2 settings")
            .unwrap();
        assert!(n > 0, "the server closed before sending its settings");
        got.extend_from_slice(&buf[..n]);
    }
    // Acknowledge the server's settings, as a well-behaved client does, then say nothing.
    writer
        .write_all(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
        .await
        .unwrap();
    writer.flush().await.unwrap();
    got.extend(read_until_closed(&mut reader, "an idle HTTP/2 connection").await);
    assert!(
        h2_frames(&got).iter().any(|(kind, _)| *kind == 7),
        "the server said goodbye with GOAWAY"
    );
}

/// An HTTP/1.1 answer tells the client how long the connection may wait for the next request
/// (a second under the server's header timeout), and a connection left idle after it is closed
/// by the server: a client that honours the header never sends on a connection being closed.
#[tokio::test]
async fn an_idle_http1_connection_is_announced_and_then_closed_by_the_server() {
    let server = impatient_server().await;
    let mut conn = connect(&server, b"http/1.1").await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(CLOSED_WITHIN, conn.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "the server closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\nkeep-alive: timeout=9\r\n"), "{head}");
    read_until_closed(&mut conn, "an idle HTTP/1.1 connection").await;
}

/// Sends `GET /healthz` on an open HTTP/1.1 connection and answers the status line.
async fn healthz_on(conn: &mut TlsStream<TcpStream>) -> String {
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(CLOSED_WITHIN, conn.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn beyond_the_connection_limit_new_connections_are_closed_until_others_leave() {
    const LIMIT: usize = 4;
    let server = Server::start_with(
        Deployment::new(crate::harness::Backend::Sqlite),
        &[("CALLGUARD_HTTP_MAX_CONNECTIONS", "4")],
    )
    .await;
    // Take every slot: each finished handshake is a connection the server holds.
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(connect(&server, b"http/1.1").await.unwrap());
    }
    // The next ones are closed at once, however many come.
    let extra = attempt_connections(&server, 8).await;
    assert!(
        extra.iter().all(Result::is_err),
        "a connection beyond the limit of {LIMIT} got through: {extra:?}"
    );
    let refused = server.api().client.get(server.url("/healthz")).send().await;
    assert!(refused.is_err(), "{refused:?}");
    // The connections it holds still work.
    assert_eq!(healthz_on(&mut held[0]).await, "HTTP/1.1 200 OK");
    // Two leave; a normal client gets in again.
    held.truncate(LIMIT - 2);
    let deadline = tokio::time::Instant::now() + CLOSED_WITHIN;
    loop {
        let answer = server.api().client.get(server.url("/healthz")).send().await;
        if matches!(&answer, Ok(a) if a.status() == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no client got in after two connections left: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(healthz_on(&mut held[1]).await, "HTTP/1.1 200 OK");
}

/// `n` connection attempts at once: each handshake's outcome.
async fn attempt_connections(server: &Server, n: usize) -> Vec<std::io::Result<()>> {
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..n {
        let addr = server.addr;
        let pem = std::fs::read(server.data_dir.join("tls").join("cert.pem")).unwrap();
        attempts.spawn(async move {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = TcpStream::connect(addr).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            // A handshake that got through must also be served.
            tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
                .await?;
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => Ok(()),
                _ => Err(std::io::Error::other("no answer")),
            }
        });
    }
    attempts.join_all().await
}
