//! The load generator: closed-loop clients, each on its own HTTP/1.1 keep-alive connection over
//! TLS (tokio-rustls and hyper's connection-level client, so the client side costs as little
//! CPU as it can), sending its next request as soon as the previous answer is read in full.

use crate::sys::{CpuUse, CpuWindow};
use crate::Res;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Method;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the clients connect, trusting only the given certificate for `localhost`.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    /// The server keeps its data in PostgreSQL: count PostgreSQL's CPU apart.
    pub postgres: bool,
}

impl Target {
    pub fn new(addr: SocketAddr, cert_pem: &[u8]) -> Res<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &cert_pem[..]) {
            roots.add(cert?)?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        // One HTTP/1.1 connection per client, as a browser tab or a desktop client would use.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            addr,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            postgres: false,
        })
    }
}

/// What client `c` sends as its `n`-th request: method, path with query, JSON body.
pub type Next = Arc<dyn Fn(usize, u64) -> (Method, String, Option<Bytes>) + Send + Sync>;

/// One phase's plan.
pub struct Plan {
    pub clients: usize,
    pub warmup: f64,
    pub seconds: f64,
    /// The bearer token of each client (cycled when fewer than clients).
    pub tokens: Vec<String>,
    pub next: Next,
    /// The answer's status that counts as done.
    pub ok_status: u16,
}

pub struct PhaseResult {
    pub completed: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Answers other than `ok_status` within the window, by status.
    pub refused: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub cpu: CpuUse,
    /// Bytes of the last good answer of client 0 (to check the answer's shape).
    pub sample: Bytes,
}

impl PhaseResult {
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.seconds.max(1e-9)
    }
}

#[derive(Default)]
struct ClientLog {
    /// (finished at, latency in seconds) of each good answer.
    done: Vec<(Instant, f32)>,
    refused: Vec<(Instant, u16)>,
    errors: Vec<Instant>,
    sample: Bytes,
}

async fn connect(target: &Target) -> Res<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let tls = target.tls.connect(name, tcp).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn client(
    target: Target,
    c: usize,
    bearer: String,
    next: Next,
    ok_status: u16,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let bearer = format!("Bearer {bearer}");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut sender = match connect(&target).await {
            Ok(s) => s,
            Err(_) => {
                log.errors.push(Instant::now());
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let (method, path, body) = next(c, n);
            n += 1;
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(HOST, "localhost")
                .header(AUTHORIZATION, &bearer);
            if body.is_some() {
                req = req.header(CONTENT_TYPE, "application/json");
            }
            let Ok(req) = req.body(Full::new(body.unwrap_or_default())) else {
                log.errors.push(Instant::now());
                break;
            };
            let started = Instant::now();
            let answered = async {
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, bytes))
            }
            .await;
            let at = Instant::now();
            match answered {
                Ok((status, bytes)) if status == ok_status => {
                    log.done.push((at, (at - started).as_secs_f64() as f32));
                    if c == 0 {
                        log.sample = bytes;
                    }
                }
                Ok((status, _)) => {
                    log.refused.push((at, status));
                    // Do not spin on a server that refuses.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    log.errors.push(at);
                    break;
                }
            }
        }
    }
    log
}

fn percentile(sorted: &[f32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

/// Runs `plan.clients` clients against `target`; counts what finishes in the `seconds` after
/// `warmup`. `pids[0]` is the process that answers (for the CPU lines).
pub async fn run(target: &Target, plan: &Plan, pids: &[u32]) -> Res<PhaseResult> {
    if plan.tokens.is_empty() {
        return Err("no bearer tokens for the clients".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..plan.clients {
        let bearer = plan.tokens[c % plan.tokens.len()].clone();
        tasks.spawn(client(
            target.clone(),
            c,
            bearer,
            plan.next.clone(),
            plan.ok_status,
            stop.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(plan.warmup)).await;
    let cpu = CpuWindow::start(pids, target.postgres);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(plan.seconds)).await;
    let t1 = Instant::now();
    let cpu = cpu.stop();
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<f32> = Vec::new();
    let mut refused = BTreeMap::new();
    let mut transport_errors = 0;
    let mut sample = Bytes::new();
    while let Some(log) = tasks.join_next().await {
        let log = log?;
        let inside = |at: &Instant| *at > t0 && *at <= t1;
        latencies.extend(
            log.done
                .iter()
                .filter(|(at, _)| inside(at))
                .map(|(_, l)| *l),
        );
        for (at, status) in &log.refused {
            if inside(at) {
                *refused.entry(*status).or_default() += 1;
            }
        }
        transport_errors += log.errors.iter().filter(|at| inside(at)).count() as u64;
        if !log.sample.is_empty() {
            sample = log.sample;
        }
    }
    latencies.sort_by(f32::total_cmp);
    let mean = latencies.iter().map(|l| f64::from(*l)).sum::<f64>() / latencies.len().max(1) as f64;
    Ok(PhaseResult {
        completed: latencies.len() as u64,
        seconds: (t1 - t0).as_secs_f64(),
        p50_ms: percentile(&latencies, 0.5) * 1e3,
        p99_ms: percentile(&latencies, 0.99) * 1e3,
        max_ms: latencies.last().map_or(0.0, |l| f64::from(*l) * 1e3),
        mean_ms: mean * 1e3,
        refused,
        transport_errors,
        cpu,
        sample,
    })
}
