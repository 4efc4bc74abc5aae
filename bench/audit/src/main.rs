//! Audit-log benchmark (issue #3, SPEC C5).
//!
//! Measures, in one run on one machine:
//! 1. durable audited actions per second on SQLite and on PostgreSQL — concurrent tasks each
//!    creating a user through `UserStore::create_pending_user`, which appends the audit entry in
//!    the same transaction and answers only after the commit — next to the same writes without
//!    the entry (built in this crate with the same design, see `plain.rs`) on a fresh database;
//! 2. how long after its acknowledgement an entry is inside a signed checkpoint, with the real
//!    checkpointer (`AuditLog::run`) running while entries are appended at a steady rate;
//! 3. inclusion- and consistency-proof latency (`AuditLog::inclusion_proof`) on a log of 10
//!    million entries built with `AuditStore::append`;
//! 4. `audit verify` (`verify_store`) over that log, in entries per second.
//!
//! Every database is new and is deleted at the end (see `bench/audit.sh` and `--help`).
#![forbid(unsafe_code)]

mod plain;
mod sys;

use callguard_core::audit::merkle::{self, Frontier, Hash};
use callguard_core::audit::note::NoteSigner;
use callguard_core::audit::record::user as user_ref;
use callguard_core::audit::{jcs, AuditRecord};
use callguard_core::Role;
use callguard_server::features::audit::service::{AuditLog, WitnessSettings};
use callguard_server::features::audit::verify::verify_store;
use callguard_store::{NewPendingUser, PostgresStore, SqliteStore, Store};
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

const USAGE: &str = "\
callguard-bench-audit: the audit log's cost and speed (issue #3)

usage: callguard-bench-audit [options]
  --tasks N             concurrent tasks in the throughput phases (default 128)
  --seconds S           measured seconds of each throughput phase (default 5, after 1 s warm-up)
  --rate R              appends per second while checkpoint latency is measured on SQLite
                        (default 2000)
  --pg-rate R           the same on PostgreSQL (default 500: its single-record append rate is
                        about 1,000/s here, and an overloaded pool delays the checkpointer too)
  --latency-seconds S   length of each checkpoint-latency phase (default 10)
  --interval-ms MS      checkpoint interval (default 800, the server's default)
  --poll-ms MS          how often latest_checkpoint() is polled (default 2)
  --entries N           SQLite log size for proofs and verify (default 10000000)
  --pg-entries N        PostgreSQL log size for proofs and verify (default 500000; 0 skips;
                        10000000 takes about 25 minutes to build here)
  --batch N             records per AuditStore::append call while building (default 10000)
  --proofs N            inclusion proofs measured at the full size (default 20000)
  --proof-clients N     concurrent clients for the proofs/s figure (default 4)
  --consistency N       consistency proofs measured (default 2000)
  --pg URL              PostgreSQL server, without database name
                        (default postgres://postgres@127.0.0.1:5432)
  --no-pg               SQLite only
  --only LIST           phases to run, comma-separated: throughput,latency,proofs (default all)
  --dir DIR             where the temporary SQLite databases go (default: the system temp dir)
  --keep                keep the temporary databases (SQLite files and PostgreSQL databases)
  --without-integrator  diagnosis: run PostgreSQL's audited-write phase with no integrator (the
                        entries stay pending), to show what the integrator costs of its rate
";

/// The actor of the user-creation entries (an admin's id).
const ADMIN: &str = "user:6a1f4c2e-8d3b-4f7a-9c5e-2b8d1e0f3a47";
/// Names of the checkpoints signed here.
const ORIGIN: &str = "bench.callguard.invalid/audit";
/// The SQLite store's writer thread ("callguard-sqlite-writer", cut to 15 bytes by Linux).
const STORE_WRITER_THREAD: &str = "callguard-sqlit";

struct Options {
    tasks: usize,
    warmup: f64,
    seconds: f64,
    rate: u64,
    pg_rate: u64,
    latency_seconds: f64,
    interval_ms: u64,
    poll_ms: u64,
    entries: u64,
    pg_entries: u64,
    batch: usize,
    proofs: usize,
    proof_clients: usize,
    consistency: usize,
    pg: Option<String>,
    throughput: bool,
    latency: bool,
    proofs_phase: bool,
    dir: PathBuf,
    keep: bool,
    without_integrator: bool,
}

fn parse_args() -> Res<Option<Options>> {
    let mut o = Options {
        tasks: 128,
        warmup: 1.0,
        seconds: 5.0,
        rate: 2000,
        pg_rate: 500,
        latency_seconds: 10.0,
        interval_ms: callguard_server::AuditSettings::defaults(std::path::Path::new("."))
            .checkpoint_interval
            .as_millis() as u64,
        poll_ms: 2,
        entries: 10_000_000,
        pg_entries: 500_000,
        batch: 10_000,
        proofs: 20_000,
        proof_clients: 4,
        consistency: 2000,
        pg: Some("postgres://postgres@127.0.0.1:5432".into()),
        throughput: true,
        latency: true,
        proofs_phase: true,
        dir: std::env::temp_dir(),
        keep: false,
        without_integrator: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || -> Res<String> {
            args.next()
                .ok_or_else(|| format!("{a} needs a value (see --help)").into())
        };
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--tasks" => o.tasks = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--pg-rate" => o.pg_rate = value()?.parse()?,
            "--latency-seconds" => o.latency_seconds = value()?.parse()?,
            "--interval-ms" => o.interval_ms = value()?.parse()?,
            "--poll-ms" => o.poll_ms = value()?.parse()?,
            "--entries" => o.entries = value()?.parse()?,
            "--pg-entries" => o.pg_entries = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--proofs" => o.proofs = value()?.parse()?,
            "--proof-clients" => o.proof_clients = value()?.parse()?,
            "--consistency" => o.consistency = value()?.parse()?,
            "--pg" => o.pg = Some(value()?.trim_end_matches('/').to_owned()),
            "--no-pg" => o.pg = None,
            "--only" => {
                let list = value()?;
                o.throughput = false;
                o.latency = false;
                o.proofs_phase = false;
                for p in list.split(',') {
                    match p.trim() {
                        "throughput" => o.throughput = true,
                        "latency" => o.latency = true,
                        "proofs" => o.proofs_phase = true,
                        other => return Err(format!("unknown phase {other:?}").into()),
                    }
                }
            }
            "--dir" => o.dir = PathBuf::from(value()?),
            "--keep" => o.keep = true,
            "--without-integrator" => o.without_integrator = true,
            other => return Err(format!("unknown option {other:?} (see --help)").into()),
        }
    }
    if o.tasks == 0 || o.batch == 0 || o.proof_clients == 0 || o.seconds <= 0.0 {
        return Err("--tasks, --batch, --proof-clients and --seconds must be positive".into());
    }
    Ok(Some(o))
}

// ---- small helpers ------------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> Res<MutexGuard<'_, T>> {
    m.lock().map_err(|_| "a lock was poisoned".into())
}

/// 12,345,678
fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(count: u64, secs: f64) -> u64 {
    if secs > 0.0 {
        (count as f64 / secs).round() as u64
    } else {
        0
    }
}

/// The `p`-quantile (nearest rank) of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn micros(d: Duration, per: u64) -> f64 {
    d.as_secs_f64() * 1e6 / per.max(1) as f64
}

/// "p50 … p99 … max …" of unsorted durations.
fn spread(lat: &mut [Duration]) -> String {
    lat.sort_unstable();
    format!(
        "p50 {}  p99 {}  max {}",
        ms(pct(lat, 0.50)),
        ms(pct(lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    )
}

/// A random version-4 UUID, from the thread's generator (no system call per id).
fn random_uuid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

fn user(seq: u64) -> NewPendingUser {
    let now = callguard_core::now();
    NewPendingUser {
        id: random_uuid(),
        username: format!("bench{seq}"),
        role: Role::Agent,
        setup_token_hash: format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        ),
        setup_expires_at: now + 86_400,
        created_at: now,
        created_by: "cli".into(),
        confirmed_by: None,
    }
}

/// The entry `IdentityService::create_user` writes for a new account.
fn create_record(id: &str) -> AuditRecord {
    AuditRecord::new("user.create", ADMIN)
        .target(user_ref(id))
        .source("192.0.2.10")
        .detail("role", "agent")
}

/// A mix of the entries a busy contact center writes, for the big log.
fn mixed_record(i: u64, ids: &[String], base_time: i64) -> AuditRecord {
    let who = &ids[(i as usize).wrapping_mul(7) % ids.len()];
    let mut r = AuditRecord::new("auth.sign_in", user_ref(who));
    r.time = base_time + (i / 2000) as i64;
    r.source = Some(format!("198.51.100.{}", i % 250));
    match i % 8 {
        0..=3 => r.target(user_ref(who)).detail("method", "totp"),
        4 => {
            r.actor = "anonymous".into();
            r.target(user_ref(who))
                .failure()
                .detail("reason", "wrong_password")
        }
        5 => {
            r.action = "auth.sign_out".into();
            r.target(format!("session:{}", &ids[(i as usize) % ids.len()]))
        }
        6 => {
            r.action = "user.role_change".into();
            r.actor = ADMIN.into();
            r.target(user_ref(who))
                .detail("from", "agent")
                .detail("to", "supervisor")
        }
        _ => {
            r.action = "audit.read".into();
            r.detail("start", i as i64).detail("limit", 100)
        }
    }
}

// ---- temporary databases ------------------------------------------------------------------

struct Pg {
    base: String,
    admin: tokio_postgres::Client,
    dbs: Vec<String>,
}

struct Scratch {
    dir: PathBuf,
    pg: Option<Pg>,
    tag: String,
}

impl Scratch {
    async fn new(opts: &Options) -> Res<Self> {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let dir = opts.dir.join(format!("callguard-bench-audit-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let pg = match &opts.pg {
            None => None,
            Some(base) => {
                let (admin, conn) = tokio_postgres::connect(
                    &format!("{base}/postgres"),
                    tokio_postgres::NoTls,
                )
                .await
                .map_err(|e| {
                    format!("PostgreSQL at {base} is not reachable ({e}); use --no-pg to skip it")
                })?;
                tokio::spawn(conn);
                Some(Pg {
                    base: base.clone(),
                    admin,
                    dbs: Vec::new(),
                })
            }
        };
        Ok(Self { dir, pg, tag })
    }

    fn sqlite(&self, label: &str) -> PathBuf {
        self.dir.join(format!("{label}.db"))
    }

    /// A fresh PostgreSQL database; its URL.
    async fn pg_db(&mut self, label: &str) -> Res<String> {
        let pg = self.pg.as_mut().ok_or("PostgreSQL is off")?;
        let name = format!("cg_bench_audit_{}_{label}", self.tag);
        pg.admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        pg.dbs.push(name.clone());
        Ok(format!("{}/{name}", pg.base))
    }

    async fn clean(self, keep: bool) {
        if keep {
            println!("\nkept: {}", self.dir.display());
            if let Some(pg) = &self.pg {
                for db in &pg.dbs {
                    println!("kept: PostgreSQL database {db}");
                }
            }
            return;
        }
        if let Some(pg) = &self.pg {
            for db in &pg.dbs {
                if let Err(e) = pg
                    .admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await
                {
                    eprintln!("could not drop PostgreSQL database {db}: {e}");
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

// ---- 1. throughput ------------------------------------------------------------------------

struct Load {
    ops: u64,
    secs: f64,
    lat: Vec<Duration>,
    /// CPU time of the named writer thread during the measured window.
    writer_cpu: Duration,
    process_cpu: Duration,
}

/// Runs `op` in `tasks` concurrent loops; counts the acknowledgements in the measured window.
async fn load<F, Fut>(opts: &Options, writer_thread: Option<&str>, op: F) -> Res<Load>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(opts.warmup);
    let until = from + Duration::from_secs_f64(opts.seconds);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..opts.tasks {
        let (op, seq) = (op.clone(), seq.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                op(seq.fetch_add(1, Ordering::Relaxed)).await?;
                let t1 = Instant::now();
                if t1 >= from && t1 <= until {
                    lat.push(t1 - t0);
                }
            }
            Ok::<_, BoxError>(lat)
        });
    }
    let cpu = |t: Option<&str>| t.map(sys::thread_cpu).unwrap_or_default();
    tokio::time::sleep_until(from.into()).await;
    let (w0, p0) = (cpu(writer_thread), sys::process_cpu());
    tokio::time::sleep_until(until.into()).await;
    let (w1, p1) = (cpu(writer_thread), sys::process_cpu());
    let mut lat = Vec::new();
    while let Some(done) = set.join_next().await {
        lat.extend(done??);
    }
    Ok(Load {
        ops: lat.len() as u64,
        secs: opts.seconds,
        lat,
        writer_cpu: w1.saturating_sub(w0),
        process_cpu: p1.saturating_sub(p0),
    })
}

struct Throughput {
    with: Load,
    without: Load,
    /// The entry alone: `AuditStore::append` of one record per action.
    alone: Load,
    groups_without: u64,
}

impl Throughput {
    fn ratio(&self) -> f64 {
        let w = self.without.ops as f64;
        if w > 0.0 {
            self.with.ops as f64 / w
        } else {
            0.0
        }
    }

    fn print(&mut self, backend: &str, writer_lines: bool) {
        let (with_rate, without_rate) = (
            rate(self.with.ops, self.with.secs),
            rate(self.without.ops, self.without.secs),
        );
        println!(
            "  with the entry    (UserStore::create_pending_user)      {:>9} actions/s   ack {}",
            n(with_rate),
            spread(&mut self.with.lat)
        );
        println!(
            "  without the entry (same INSERT, same design, own DB)    {:>9} writes/s    ack {}",
            n(without_rate),
            spread(&mut self.without.lat)
        );
        println!(
            "  the entry alone   (AuditStore::append, 1 record)        {:>9} appends/s   ack {}",
            n(rate(self.alone.ops, self.alone.secs)),
            spread(&mut self.alone.lat)
        );
        println!(
            "  ratio with / without: {:.2}   ({backend}: the entry costs {:.0}% of the baseline's rate)",
            self.ratio(),
            (1.0 - self.ratio()) * 100.0
        );
        let secs = self.with.secs;
        println!(
            "  process CPU: {:.2} cores with the entry, {:.2} cores without ({:.0} µs vs {:.0} µs of CPU per action)",
            self.with.process_cpu.as_secs_f64() / secs,
            self.without.process_cpu.as_secs_f64() / secs,
            micros(self.with.process_cpu, self.with.ops),
            micros(self.without.process_cpu, self.without.ops),
        );
        if writer_lines {
            println!(
                "  writer thread: {:.0}% busy with the entry ({:.1} µs CPU per action), {:.0}% busy without ({:.1} µs per write; {:.0} writes per group commit on average)",
                self.with.writer_cpu.as_secs_f64() / secs * 100.0,
                micros(self.with.writer_cpu, self.with.ops),
                self.without.writer_cpu.as_secs_f64() / secs * 100.0,
                micros(self.without.writer_cpu, self.without.ops),
                self.without.ops as f64 / self.groups_without.max(1) as f64,
            );
        }
    }
}

async fn throughput_sqlite(opts: &Options, scratch: &Scratch) -> Res<Throughput> {
    let plain = plain::PlainSqlite::open(&scratch.sqlite("throughput-plain")).await?;
    let p = plain.clone();
    let g0 = plain.groups();
    let without = load(opts, Some(plain::PLAIN_WRITER_THREAD), move |i| {
        let p = p.clone();
        async move { p.create_pending_user(user(i)).await }
    })
    .await?;
    let groups_without = plain.groups() - g0;
    drop(plain);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&scratch.sqlite("throughput-audited")).await?);
    let s = store.clone();
    let with = load(opts, Some(STORE_WRITER_THREAD), move |i| {
        let s = s.clone();
        async move {
            let u = user(i);
            let r = create_record(&u.id);
            s.create_pending_user(u, r).await?;
            Ok(())
        }
    })
    .await?;
    let alone = load(opts, Some(STORE_WRITER_THREAD), move |_| {
        let s = store.clone();
        async move {
            s.append(vec![create_record(&random_uuid())]).await?;
            Ok(())
        }
    })
    .await?;
    Ok(Throughput {
        with,
        without,
        alone,
        groups_without,
    })
}

async fn throughput_pg(opts: &Options, scratch: &mut Scratch) -> Res<Throughput> {
    let plain = plain::PlainPostgres::connect(&scratch.pg_db("plain").await?).await?;
    let without = load(opts, None, move |i| {
        let p = plain.clone();
        async move { p.create_pending_user(user(i)).await }
    })
    .await?;
    let store: Arc<dyn Store> =
        Arc::new(PostgresStore::connect(&scratch.pg_db("audited").await?).await?);
    // The integrator runs beside the load, as on a node, so its work counts against the rate
    // (unless left out on purpose, to measure that share).
    if opts.without_integrator {
        println!("  (without the integrator: --without-integrator; the entries stay pending)");
    } else {
        store.start_integrator("bench");
    }
    let s = store.clone();
    let with = load(opts, None, move |i| {
        let s = s.clone();
        async move {
            let u = user(i);
            let r = create_record(&u.id);
            s.create_pending_user(u, r).await?;
            Ok(())
        }
    })
    .await?;
    let alone = load(opts, None, move |_| {
        let s = store.clone();
        async move {
            s.append(vec![create_record(&random_uuid())]).await?;
            Ok(())
        }
    })
    .await?;
    Ok(Throughput {
        with,
        without,
        alone,
        groups_without: 0,
    })
}

// ---- 2. checkpoint latency ----------------------------------------------------------------

struct CheckpointLatency {
    lat: Vec<Duration>,
    appended: u64,
    secs: f64,
    uncovered: usize,
    checkpoints: u64,
}

#[derive(Default)]
struct Coverage {
    /// Size of the latest checkpoint the poller has seen.
    seen: u64,
    /// Acknowledged appends not yet covered, by their `n` detail (on PostgreSQL an entry's
    /// index is not known when its append is acknowledged: the integrator gives it later).
    pending: std::collections::HashMap<u64, Instant>,
    /// Entries covered before their task noted its acknowledgement.
    early: std::collections::HashSet<u64>,
    lat: Vec<Duration>,
    checkpoints: u64,
}

async fn checkpoint_latency(
    opts: &Options,
    rate_per_s: u64,
    store: Arc<dyn Store>,
    witness_dir: PathBuf,
) -> Res<CheckpointLatency> {
    let log = Arc::new(AuditLog::new(
        store.clone(),
        NoteSigner::generate(ORIGIN)?,
        WitnessSettings {
            dir: witness_dir,
            syslog: None,
            url: None,
        },
    )?);
    let checkpointer = tokio::spawn(
        log.clone()
            .run(Duration::from_millis(opts.interval_ms.max(1))),
    );
    let state = Arc::new(Mutex::new(Coverage::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (store, state, stop) = (store.clone(), state.clone(), stop.clone());
        let poll = Duration::from_millis(opts.poll_ms.max(1));
        let give_up = Duration::from_millis(opts.interval_ms * 3 + 3000);
        tokio::spawn(async move {
            let mut stopped_at: Option<Instant> = None;
            loop {
                tokio::time::sleep(poll).await;
                let size = store.latest_checkpoint().await?.map_or(0, |c| c.size);
                let now = Instant::now();
                let from = {
                    let mut s = lock(&state)?;
                    let from = s.seen;
                    if size > from {
                        s.seen = size;
                        s.checkpoints += 1;
                    }
                    from
                };
                let covered = if size > from {
                    store.audit_entries(from, size - from).await?
                } else {
                    Vec::new()
                };
                let mut s = lock(&state)?;
                {
                    for e in covered {
                        let Some(n) = serde_json::from_str::<serde_json::Value>(&e.text)?
                            ["details"]["n"]
                            .as_u64()
                        else {
                            continue;
                        };
                        match s.pending.remove(&n) {
                            Some(acked) => s.lat.push(now.saturating_duration_since(acked)),
                            None => {
                                s.early.insert(n);
                            }
                        }
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    let at = *stopped_at.get_or_insert(now);
                    if s.pending.is_empty() || now - at > give_up {
                        return Ok::<(), BoxError>(());
                    }
                }
            }
        })
    };
    // Wait for the first checkpoint, so that the measure starts in the steady state.
    let first = Instant::now();
    while lock(&state)?.seen == 0 && first.elapsed() < Duration::from_secs(5) {
        store.append(vec![create_record("warm-up")]).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let per_tick = (rate_per_s as f64 / 100.0).max(0.01);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(opts.latency_seconds);
    let mut set = tokio::task::JoinSet::new();
    let mut owed = 0.0;
    let mut sent = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            sent += 1;
            let (store, state) = (store.clone(), state.clone());
            set.spawn(async move {
                let r = AuditRecord::new("auth.sign_in", "anonymous")
                    .source("203.0.113.7")
                    .failure()
                    .detail("reason", "unknown_username")
                    .detail("n", sent);
                store.append(vec![r]).await?;
                let acked = Instant::now();
                let mut s = lock(&state)?;
                if s.early.remove(&sent) {
                    // Already covered by a checkpoint the poller saw before this task ran.
                    s.lat.push(Duration::ZERO);
                } else {
                    s.pending.insert(sent, acked);
                }
                Ok::<(), BoxError>(())
            });
        }
        while let Some(done) = set.try_join_next() {
            done??;
        }
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    poller.await??;
    checkpointer.abort();
    let mut s = lock(&state)?;
    Ok(CheckpointLatency {
        lat: std::mem::take(&mut s.lat),
        appended: sent,
        secs,
        uncovered: s.pending.len(),
        checkpoints: s.checkpoints,
    })
}

// ---- 3. proofs at 10 million entries ------------------------------------------------------

struct BigLog {
    store: Arc<dyn Store>,
    log: Arc<AuditLog>,
    witness_file: PathBuf,
    size: u64,
    build_secs: f64,
}

async fn build_log(
    opts: &Options,
    label: &str,
    store: Arc<dyn Store>,
    witness_dir: PathBuf,
    entries: u64,
) -> Res<BigLog> {
    let witness = WitnessSettings {
        dir: witness_dir,
        syslog: None,
        url: None,
    };
    let witness_file = witness.file();
    let log = Arc::new(AuditLog::new(
        store.clone(),
        NoteSigner::generate(ORIGIN)?,
        witness,
    )?);
    let ids: Arc<Vec<String>> = Arc::new((0..1000).map(|_| random_uuid()).collect());
    let base_time = callguard_core::now() - (entries / 2000) as i64;
    let checkpoint_every = (entries / 10).max(1);
    let progress_every = (entries / 10).max(opts.batch as u64);
    let start = Instant::now();
    let mut next = 0u64;
    let mut done = 0u64;
    let mut next_checkpoint = checkpoint_every;
    let mut next_progress = progress_every;
    let mut set = tokio::task::JoinSet::new();
    while done < entries {
        // Two calls in flight: the next batch is made while the writer stores the previous one.
        if next < entries && set.len() < 2 {
            let count = (entries - next).min(opts.batch as u64);
            let (store, ids) = (store.clone(), ids.clone());
            let first = next;
            set.spawn(async move {
                let records: Vec<AuditRecord> = (first..first + count)
                    .map(|i| mixed_record(i, &ids, base_time))
                    .collect();
                store.append(records).await?;
                Ok::<u64, BoxError>(count)
            });
            next += count;
            continue;
        }
        let Some(finished) = set.join_next().await else {
            break;
        };
        done += finished??;
        if done >= next_checkpoint {
            log.checkpoint().await?;
            next_checkpoint += checkpoint_every;
        }
        if done >= next_progress || done == entries {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "  {label}: {} / {} entries appended, {secs:.0} s, {} entries/s",
                n(done),
                n(entries),
                n(rate(done, secs))
            );
            next_progress += progress_every;
        }
    }
    log.checkpoint().await?;
    let build_secs = start.elapsed().as_secs_f64();
    let size = store.audit_head().await?.size;
    Ok(BigLog {
        store,
        log,
        witness_file,
        size,
        build_secs,
    })
}

struct Proofs {
    size: u64,
    lat: Vec<Duration>,
    seq_rate: u64,
    conc_lat: Vec<Duration>,
    conc_rate: u64,
    consistency_lat: Vec<Duration>,
    checked_inclusion: usize,
    checked_consistency: usize,
}

async fn proofs(opts: &Options, big: &BigLog) -> Res<Proofs> {
    let head = big.store.audit_head().await?;
    let (size, root) = (head.size, head.root());
    if size == 0 {
        return Err("the log is empty".into());
    }
    let mut rng = rand::rngs::StdRng::from_entropy();
    let indexes: Vec<u64> = (0..opts.proofs).map(|_| rng.gen_range(0..size)).collect();
    let warm: Vec<u64> = (0..1000).map(|_| rng.gen_range(0..size)).collect();
    let firsts: Vec<u64> = (0..opts.consistency)
        .map(|_| rng.gen_range(1..=size))
        .collect();
    for &i in &warm {
        big.log.inclusion_proof(i, size).await?;
    }
    // One client: latency of each proof.
    let mut lat = Vec::with_capacity(indexes.len());
    let mut kept = Vec::new();
    let start = Instant::now();
    for &i in &indexes {
        let t0 = Instant::now();
        let proof = big.log.inclusion_proof(i, size).await?;
        lat.push(t0.elapsed());
        if kept.len() < 500 {
            kept.push((i, proof));
        }
    }
    let seq_rate = rate(indexes.len() as u64, start.elapsed().as_secs_f64());
    // Several clients at once: proofs per second.
    let chunks: Vec<Vec<u64>> = indexes
        .chunks(indexes.len().div_ceil(opts.proof_clients).max(1))
        .map(<[u64]>::to_vec)
        .collect();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chunk in chunks {
        let log = big.log.clone();
        set.spawn(async move {
            let mut lat = Vec::with_capacity(chunk.len());
            for i in chunk {
                let t0 = Instant::now();
                log.inclusion_proof(i, size).await?;
                lat.push(t0.elapsed());
            }
            Ok::<_, BoxError>(lat)
        });
    }
    let mut conc_lat = Vec::new();
    while let Some(done) = set.join_next().await {
        conc_lat.extend(done??);
    }
    let conc_rate = rate(conc_lat.len() as u64, start.elapsed().as_secs_f64());
    // The proofs are right: each kept one verifies against the root (RFC 9162 §2.1.3.2).
    for (i, proof) in &kept {
        let entry = big.store.audit_entries(*i, 1).await?;
        let text = entry.first().ok_or("an entry is missing")?;
        let leaf = merkle::leaf_hash(text.text.as_bytes());
        if !merkle::verify_inclusion(*i, size, &leaf, proof, &root) {
            return Err(format!("the inclusion proof of entry {i} does not verify").into());
        }
    }
    let mut consistency_lat = Vec::with_capacity(firsts.len());
    for &first in &firsts {
        let t0 = Instant::now();
        big.log.consistency_proof(first, size).await?;
        consistency_lat.push(t0.elapsed());
    }
    // Consistency from every signed checkpoint to the full tree verifies too.
    let mut checked_consistency = 0;
    for cp in big.store.checkpoints().await? {
        let proof = big.log.consistency_proof(cp.size, size).await?;
        if !merkle::verify_consistency(cp.size, size, &cp.root, &root, &proof) {
            return Err(format!(
                "the consistency proof {} -> {size} does not verify",
                cp.size
            )
            .into());
        }
        checked_consistency += 1;
    }
    Ok(Proofs {
        size,
        lat,
        seq_rate,
        conc_lat,
        conc_rate,
        consistency_lat,
        checked_inclusion: kept.len(),
        checked_consistency,
    })
}

struct Verified {
    entries: u64,
    secs: f64,
    checkpoints: usize,
    witness: usize,
}

async fn verify(big: &BigLog, label: &str) -> Res<Verified> {
    let step = (big.size / 5).max(1);
    let mut next = step;
    let start = Instant::now();
    let report = verify_store(
        &*big.store,
        &big.log.verifier_key(),
        &big.witness_file,
        |done| {
            if done >= next {
                eprintln!(
                    "  {label} verify: {} / {} entries, {:.0} s",
                    n(done),
                    n(big.size),
                    start.elapsed().as_secs_f64()
                );
                next += step;
            }
        },
    )
    .await
    .map_err(|e| format!("audit verify failed on an untouched log: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if report.entries != big.size {
        return Err("audit verify checked a different number of entries".into());
    }
    Ok(Verified {
        entries: report.entries,
        secs,
        checkpoints: report.checkpoints,
        witness: report.witness_checkpoints,
    })
}

/// Where one entry's verification time goes, on a sample read from the store.
struct VerifyProfile {
    sample: u64,
    /// `audit_entries` in batches of 20,000, as `verify_store` reads them.
    read: Duration,
    /// The slow path's cost (what every entry cost before the fast path): parse, canonicalise.
    parse: Duration,
    canonical: Duration,
    hash: Duration,
    tree: Duration,
    /// `audit_level` over every level for the same entries, as `verify_nodes` reads them, and
    /// the node hashes it recomputes.
    node_read: Duration,
    node_hash: Duration,
    /// The bulk reads of the same entries and nodes (`audit_entry_block`, `audit_nodes_over`).
    block_read: Duration,
    nodes_over_read: Duration,
}

async fn verify_profile(store: &dyn Store, sample: u64) -> Res<VerifyProfile> {
    let start = Instant::now();
    let mut texts = Vec::with_capacity(sample as usize);
    let mut at = 0;
    while at < sample {
        let batch = store.audit_entries(at, 20_000.min(sample - at)).await?;
        if batch.is_empty() {
            break;
        }
        at += batch.len() as u64;
        texts.extend(batch.into_iter().map(|e| e.text));
    }
    let read = start.elapsed();
    // The bulk reads `verify_store` makes since 2026-12-06: packed entry blocks of 65,536 and
    // the nodes over them, all levels in one call.
    let t = Instant::now();
    let mut at = 0;
    let mut block = callguard_store::EntryBlock::default();
    while at < sample {
        let want = 65_536.min(sample - at);
        block = store.audit_entry_block(at, want, block).await?;
        if block.is_empty() {
            break;
        }
        at += block.len() as u64;
    }
    let block_read = t.elapsed();
    let t = Instant::now();
    let mut at = 0;
    while at + 65_536 <= sample {
        store.audit_nodes_over(at, 65_536, 16).await?;
        at += 65_536;
    }
    // Scaled to the whole sample (whole steps only).
    let nodes_over_read = t.elapsed().mul_f64(sample as f64 / at.max(1) as f64);
    let t = Instant::now();
    let values: Vec<serde_json::Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t))
        .collect::<Result<_, _>>()?;
    let parse = t.elapsed();
    let t = Instant::now();
    let canon: Vec<String> = values
        .iter()
        .map(jcs::canonical)
        .collect::<Result<_, _>>()?;
    let canonical = t.elapsed();
    let t = Instant::now();
    let leaves: Vec<Hash> = canon
        .iter()
        .map(|c| merkle::leaf_hash(c.as_bytes()))
        .collect();
    let hash = t.elapsed();
    let t = Instant::now();
    let mut f = Frontier::default();
    for l in leaves {
        f.append(l);
    }
    let tree = t.elapsed();
    let count = texts.len() as u64;
    let (mut node_read, mut node_hash) = (Duration::ZERO, Duration::ZERO);
    let mut level = 1u32;
    while level < 64 && (count >> level) > 0 {
        let nodes = count >> level;
        let mut start = 0;
        while start < nodes {
            let want = 32_768.min(nodes - start);
            let t = Instant::now();
            let children = store.audit_level(level - 1, start * 2, want * 2).await?;
            let parents = store.audit_level(level, start, want).await?;
            node_read += t.elapsed();
            let t = Instant::now();
            let mut bad = 0usize;
            for (pair, parent) in children.chunks_exact(2).zip(&parents) {
                let l = Hash::try_from(pair[0].1.as_slice())?;
                let r = Hash::try_from(pair[1].1.as_slice())?;
                bad += usize::from(merkle::node_hash(&l, &r)[..] != parent.1[..]);
            }
            node_hash += t.elapsed();
            if bad > 0 {
                return Err("a stored node does not match its children".into());
            }
            start += want;
        }
        level += 1;
    }
    Ok(VerifyProfile {
        sample: count,
        read,
        parse,
        canonical,
        hash,
        tree,
        node_read,
        node_hash,
        block_read,
        nodes_over_read,
    })
}

/// Where the CPU of one append goes outside SQL: the entry object, its canonical text, the
/// leaf hash and the frontier.
struct AppendProfile {
    sample: u64,
    entry: Duration,
    canonical: Duration,
    hash: Duration,
    tree: Duration,
}

fn append_profile(sample: u64) -> Res<AppendProfile> {
    let records: Vec<AuditRecord> = (0..sample)
        .map(|i| create_record(&format!("{:032x}", i)))
        .collect();
    let t = Instant::now();
    let values: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| r.entry(i as u64))
        .collect();
    let entry = t.elapsed();
    let t = Instant::now();
    let texts: Vec<String> = values
        .iter()
        .map(jcs::canonical)
        .collect::<Result<_, _>>()?;
    let canonical = t.elapsed();
    let t = Instant::now();
    let leaves: Vec<Hash> = texts
        .iter()
        .map(|c| merkle::leaf_hash(c.as_bytes()))
        .collect();
    let hash = t.elapsed();
    let t = Instant::now();
    let mut f = Frontier::default();
    let mut nodes = 0usize;
    for l in leaves {
        nodes += f.append(l).len();
    }
    let tree = t.elapsed();
    if nodes == 0 {
        return Err("no leaves".into());
    }
    Ok(AppendProfile {
        sample,
        entry,
        canonical,
        hash,
        tree,
    })
}

// ---- the run ------------------------------------------------------------------------------

/// One line of the summary: what, measured, goal, verdict.
struct Summary(Vec<(String, String, String, String)>);

impl Summary {
    fn add(&mut self, what: &str, measured: String, goal: &str, met: Option<bool>) {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        };
        self.0.push((
            what.to_owned(),
            measured,
            goal.to_owned(),
            verdict.to_owned(),
        ));
    }
}

async fn big_log_phase(
    opts: &Options,
    label: &str,
    store: Arc<dyn Store>,
    witness_dir: PathBuf,
    entries: u64,
    summary: &mut Summary,
) -> Res<()> {
    println!(
        "\n{label}: a log of {} entries built with AuditStore::append ({} records per call)",
        n(entries),
        n(opts.batch as u64)
    );
    let big = build_log(opts, label, store, witness_dir, entries).await?;
    println!(
        "  built in {:.1} s ({} entries/s, {} signed checkpoints on the way)",
        big.build_secs,
        n(rate(big.size, big.build_secs)),
        big.store.checkpoints().await?.len()
    );
    let mut p = proofs(opts, &big).await?;
    p.lat.sort_unstable();
    let p99 = pct(&p.lat, 0.99);
    println!(
        "  inclusion proofs at size {}, {} random indexes, one client: {}   {} proofs/s",
        n(p.size),
        n(p.lat.len() as u64),
        spread(&mut p.lat),
        n(p.seq_rate)
    );
    println!(
        "  the same with {} concurrent clients: {}   {} proofs/s",
        opts.proof_clients,
        spread(&mut p.conc_lat),
        n(p.conc_rate)
    );
    println!(
        "  consistency proofs to size {} from {} random sizes: {}",
        n(p.size),
        n(p.consistency_lat.len() as u64),
        spread(&mut p.consistency_lat)
    );
    println!(
        "  checked: {} inclusion proofs verify against the root; consistency from each of the {} checkpoints verifies",
        p.checked_inclusion, p.checked_consistency
    );
    summary.add(
        &format!("{label}: inclusion proof p99 at {} entries", n(p.size)),
        format!(
            "{} (p50 {}, {} proofs/s with {} clients)",
            ms(p99),
            ms(pct(&p.lat, 0.5)),
            n(p.conc_rate),
            opts.proof_clients
        ),
        "p99 <= 1 ms at 10,000,000",
        Some(p99 <= Duration::from_millis(1) && p.size >= 10_000_000),
    );
    let v = verify(&big, label).await?;
    let vrate = rate(v.entries, v.secs);
    println!(
        "  audit verify (verify_store): {} entries in {:.1} s = {} entries/s ({} checkpoints and {} witness lines checked)",
        n(v.entries),
        v.secs,
        n(vrate),
        v.checkpoints,
        v.witness
    );
    summary.add(
        &format!("{label}: audit verify over {} entries", n(v.entries)),
        format!("{} entries/s", n(vrate)),
        ">= 2,000,000 entries/s",
        Some(vrate >= 2_000_000),
    );
    let prof = verify_profile(&*big.store, big.size.min(1_000_000)).await?;
    let per = |d: Duration| micros(d, prof.sample);
    println!(
        "  verify profile on the first {} entries, µs per entry: whole verify_store {:.3}; of which read entries {:.3}, leaf hash {:.3}, frontier {:.3}, read stored nodes (all levels) {:.3}, recompute nodes {:.3}",
        n(prof.sample),
        micros(Duration::from_secs_f64(v.secs), v.entries),
        per(prof.read),
        per(prof.hash),
        per(prof.tree),
        per(prof.node_read),
        per(prof.node_hash),
    );
    println!(
        "  bulk reads as verify_store makes them now, µs per entry: entries in packed blocks of 65,536 {:.3}; the stored nodes over them, all levels per call {:.3}",
        per(prof.block_read),
        per(prof.nodes_over_read),
    );
    println!(
        "  the slow path per entry (serde_json parse {:.3} + canonicalise {:.3}), now taken only by texts that fail the one-scan canonical check",
        per(prof.parse),
        per(prof.canonical),
    );
    Ok(())
}

async fn run(opts: &Options, scratch: &mut Scratch, summary: &mut Summary) -> Res<()> {
    let m = sys::machine();
    println!("Callguard audit-log benchmark (issue #3)");
    println!(
        "machine: {} cores (nproc), {}, {:.1} GiB RAM, Linux {}",
        m.cores, m.cpu, m.memory_gib, m.kernel
    );
    println!(
        "disk: 4 KiB write + fdatasync in {} takes {} (the floor under each group commit)",
        scratch.dir.display(),
        ms(sys::fdatasync_probe(&scratch.dir, 100)?)
    );
    if let Some(pg) = &scratch.pg {
        let mut settings = Vec::new();
        for s in [
            "server_version",
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
            "commit_delay",
            "shared_buffers",
        ] {
            let row = pg.admin.query_one(&format!("SHOW {s}"), &[]).await?;
            settings.push(format!("{s}={}", row.try_get::<_, String>(0)?));
        }
        println!("PostgreSQL: {}", settings.join(", "));
    }
    let started = Instant::now();

    if opts.throughput {
        println!(
            "\n1. Durable audited actions per second: {} concurrent tasks, each acknowledged after its commit; {} s measured after {} s warm-up",
            opts.tasks, opts.seconds, opts.warmup
        );
        println!("SQLite (WAL, synchronous=FULL, one writer thread, savepoint per write, one fsync per group commit):");
        let mut t = throughput_sqlite(opts, scratch).await?;
        t.print("SQLite", true);
        let r = rate(t.with.ops, t.with.secs);
        summary.add(
            "SQLite: durable audited actions/s",
            format!(
                "{} /s (without the entry {} /s, ratio {:.2})",
                n(r),
                n(rate(t.without.ops, t.without.secs)),
                t.ratio()
            ),
            ">= 20,000 /s",
            Some(r >= 20_000),
        );
        let prof = append_profile(200_000)?;
        let per = |d: Duration| micros(d, prof.sample);
        println!(
            "  append profile outside SQL, µs per entry: entry object {:.2}, canonical JSON {:.2}, leaf hash {:.2}, frontier {:.2}",
            per(prof.entry),
            per(prof.canonical),
            per(prof.hash),
            per(prof.tree)
        );
        if scratch.pg.is_some() {
            println!("PostgreSQL (synchronous_commit as above; pool of 16 connections as PostgresStore; a transaction per write):");
            let mut t = throughput_pg(opts, scratch).await?;
            t.print("PostgreSQL", false);
            summary.add(
                "PostgreSQL: durable audited actions/s",
                format!(
                    "{} /s (without the entry {} /s, ratio {:.2}){}",
                    n(rate(t.with.ops, t.with.secs)),
                    n(rate(t.without.ops, t.without.secs)),
                    t.ratio(),
                    if opts.without_integrator {
                        ", integrator NOT running"
                    } else {
                        ""
                    }
                ),
                "(no goal)",
                None,
            );
        }
    }

    if opts.latency {
        println!(
            "\n2. Time from an append's acknowledgement until a signed checkpoint covers it: AuditLog::run every {} ms, single-record AuditStore::append calls at a steady rate for {} s, latest_checkpoint() polled every {} ms",
            opts.interval_ms, opts.latency_seconds, opts.poll_ms
        );
        let mut backends: Vec<(&str, Arc<dyn Store>)> = vec![(
            "SQLite",
            Arc::new(SqliteStore::open(&scratch.sqlite("latency")).await?),
        )];
        if scratch.pg.is_some() {
            let url = scratch.pg_db("latency").await?;
            let pg: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await?);
            // The integrator runs as on a node: it gives entries their indexes after commit.
            pg.start_integrator("bench");
            backends.push(("PostgreSQL", pg));
        }
        for (label, store) in backends {
            let witness = scratch.dir.join(format!("witness-latency-{label}"));
            let rate_per_s = if label == "SQLite" {
                opts.rate
            } else {
                opts.pg_rate
            };
            let mut c = checkpoint_latency(opts, rate_per_s, store, witness).await?;
            c.lat.sort_unstable();
            let max = c.lat.last().copied().unwrap_or_default();
            println!(
                "  {label}: {} entries appended (asked {} /s, got {} /s), {} checkpoints seen: {}{}",
                n(c.appended),
                n(rate_per_s),
                n(rate(c.appended, c.secs)),
                c.checkpoints,
                spread(&mut c.lat),
                if c.uncovered > 0 {
                    format!("; {} entries NOT covered after the wait", c.uncovered)
                } else {
                    String::new()
                }
            );
            summary.add(
                &format!("{label}: ack -> inside a signed checkpoint"),
                format!(
                    "max {} (p50 {}, p99 {})",
                    ms(max),
                    ms(pct(&c.lat, 0.5)),
                    ms(pct(&c.lat, 0.99))
                ),
                "every entry within 1 s",
                Some(c.uncovered == 0 && max <= Duration::from_secs(1)),
            );
        }
    }

    if opts.proofs_phase {
        println!("\n3. Proofs at size, and 4. audit verify");
        if opts.entries > 0 {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&scratch.sqlite("big")).await?);
            let witness = scratch.dir.join("witness-big-sqlite");
            big_log_phase(opts, "SQLite", store, witness, opts.entries, summary).await?;
        }
        if scratch.pg.is_some() && opts.pg_entries > 0 {
            let url = scratch.pg_db("big").await?;
            let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await?);
            let witness = scratch.dir.join("witness-big-pg");
            big_log_phase(opts, "PostgreSQL", store, witness, opts.pg_entries, summary).await?;
        }
    }
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_summary(summary: &Summary) {
    if summary.0.is_empty() {
        return;
    }
    println!("\nSummary (goals from issue #3):");
    let w0 = summary
        .0
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0);
    let w1 = summary
        .0
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0);
    let w2 = summary
        .0
        .iter()
        .map(|r| r.2.chars().count())
        .max()
        .unwrap_or(0);
    for (what, measured, goal, verdict) in &summary.0 {
        println!("  {what:<w0$}  {measured:<w1$}  goal {goal:<w2$}  {verdict}");
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callguard-bench-audit: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut scratch = match Scratch::new(&opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("callguard-bench-audit: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut summary = Summary(Vec::new());
    let result = run(&opts, &mut scratch, &mut summary).await;
    print_summary(&summary);
    scratch.clean(opts.keep).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callguard-bench-audit: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(pct(&v, 0.5), Duration::from_millis(50));
        assert_eq!(pct(&v, 0.99), Duration::from_millis(99));
        assert_eq!(pct(&v, 1.0), Duration::from_millis(100));
        assert_eq!(pct(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1000), "1,000");
        assert_eq!(n(10_000_000), "10,000,000");
    }

    #[test]
    fn mixed_records_canonicalise() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        for i in 0..16 {
            assert!(mixed_record(i, &ids, 1_700_000_000).leaf(i).is_ok());
        }
    }
}
