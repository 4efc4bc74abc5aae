//! HTTPS: rustls with the ring provider, a certificate that is either configured or made
//! self-signed on first start, and a connection loop with handshake, header, idle, body and
//! HTTP/2 keep-alive timeouts, a cap on open connections, and a graceful shutdown that lets
//! in-flight requests finish.

use crate::http::connection::{Activity, ConnectionLimits, Counted, Deadline};
use crate::http::proxied::{read_proxy_header, TrustedProxies};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Why TLS could not be set up. Names the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// Where the certificate and key are: configured, or made under `data_dir/tls/`.
pub struct CertificatePaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a self-signed certificate for localhost when none exists yet.
pub fn ensure_self_signed(
    data_dir: &Path,
    extra_names: &[String],
) -> Result<CertificatePaths, TlsError> {
    let dir = data_dir.join("tls");
    let paths = CertificatePaths {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    crate::bootstrap::create_private_dir(&dir).map_err(|e| TlsError::Write {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(
        extra_names
            .iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Invalid(e.to_string()))?;
    crate::bootstrap::write_private_file(&paths.key, certified.key_pair.serialize_pem().as_bytes())
        .map_err(|e| TlsError::Write {
            path: paths.key.clone(),
            reason: e.to_string(),
        })?;
    std::fs::write(&paths.cert, certified.cert.pem()).map_err(|e| TlsError::Write {
        path: paths.cert.clone(),
        reason: e.to_string(),
    })?;
    tracing::info!(cert = %paths.cert.display(), "made a self-signed certificate");
    Ok(paths)
}

/// Loads the certificate chain and key into a rustls configuration (HTTP/2 and HTTP/1.1).
pub fn server_config(paths: &CertificatePaths) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| TlsError::Read {
            path: p.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            TlsError::Invalid(format!(
                "{} holds no valid PEM certificate",
                paths.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid(format!(
            "{} holds no certificate",
            paths.cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| {
            TlsError::Invalid(format!(
                "{} holds no valid PEM private key",
                paths.key.display()
            ))
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Invalid(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Invalid(format!("certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then waits up to ten seconds
/// for open connections to finish their requests. At most `limits.max_connections` are open at
/// once: a connection beyond that is closed as soon as it is accepted, before any TLS work.
/// Requests from `proxies` are attributed to the client they name.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: ConnectionLimits,
    proxies: TrustedProxies,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let all_closed = Arc::new(tokio::sync::Notify::new());
    let mut refused = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if open.load(Ordering::Acquire) >= limits.max_connections {
            drop(stream);
            refused += 1;
            // One line per thousand refusals, so a flood does not flood the log too.
            if refused % 1000 == 1 {
                tracing::warn!(
                    limit = limits.max_connections,
                    refused,
                    "connection limit reached: new connections are closed at once"
                );
            }
            continue;
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let open = open.clone();
        let all_closed = all_closed.clone();
        let proxies = proxies.clone();
        open.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let peer = Peer { addr, proxies };
            serve_connection(acceptor, stream, peer, app, limits, &mut stop).await;
            if open.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_closed.notify_waiters();
            }
        });
    }
    tracing::info!("shutting down: no new connections, finishing open requests");
    let _ = stop_tx.send(true);
    let wait = async {
        while open.load(Ordering::Acquire) > 0 {
            let notified = all_closed.notified();
            if open.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
}

/// How long a connection that is being closed (idle, a slow body) may take to say goodbye
/// (an HTTP/2 GOAWAY, the answer to the slow request) before it is dropped.
const CLOSING_GRACE: Duration = Duration::from_secs(1);

/// HTTP/1: a request's headers must arrive within this. hyper starts the clock as soon as the
/// previous response has been sent, so it is also how long an idle HTTP/1 connection stays open
/// (the `idle_timeout` bounds HTTP/2 connections).
const HTTP1_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What HTTP/1 answers say of that: a second less, so that a client that honours it never sends
/// on a connection the server is closing.
const HTTP1_KEEP_ALIVE: &str = "timeout=9";

/// Who is at the other end of a connection: its address, and the proxies trusted to name
/// someone else.
struct Peer {
    addr: SocketAddr,
    proxies: TrustedProxies,
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    mut stream: tokio::net::TcpStream,
    peer: Peer,
    app: Router,
    limits: ConnectionLimits,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Peer { mut addr, proxies } = peer;
    if proxies.trusts(addr.ip()) {
        match read_proxy_header(&mut stream, limits.handshake_timeout).await {
            Ok(Some(client)) => addr = client,
            Ok(None) => {}
            Err(e) => {
                tracing::info!(error = %e, "closing a connection from a trusted proxy");
                return;
            }
        }
    }
    let Ok(Ok(tls)) = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await
    else {
        return;
    };
    let activity = Activity::new();
    let in_service = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let guard = in_service.start();
        let mut req = req.map(|b| {
            axum::body::Body::new(Deadline::new(b, limits.body_timeout, in_service.clone()))
        });
        let client = proxies.client_of(addr.ip(), req.headers());
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, addr.port())));
        let http1 = req.version() < hyper::Version::HTTP_2;
        let answer = app.clone().oneshot(req);
        async move {
            let mut response = answer.await?;
            if http1 {
                // Clients that honour it stop reusing the connection before the server
                // closes it.
                response.headers_mut().insert(
                    hyper::header::HeaderName::from_static("keep-alive"),
                    hyper::header::HeaderValue::from_static(HTTP1_KEEP_ALIVE),
                );
            }
            Ok::<_, std::convert::Infallible>(response.map(|inner| {
                axum::body::Body::new(Counted {
                    inner,
                    _guard: guard,
                })
            }))
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP1_HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(200)
        .keep_alive_interval(Some(limits.keep_alive))
        .keep_alive_timeout(limits.keep_alive);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        why = activity.expired(limits.idle_timeout) => {
            tracing::debug!(?why, "closing a connection");
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CLOSING_GRACE, conn).await;
        }
    }
}
