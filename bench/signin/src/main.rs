//! Staff sign-in benchmark (issue #2).
//!
//! Measures, in one run on one machine:
//! 1. the raw Argon2id rate of the `argon2` crate at Callguard's parameters (m=19 MiB, t=2, p=1)
//!    on one OS thread per core, before and after the server phases;
//! 2. the server's password check alone (the server's own `hasher::Hasher`: one thread per core
//!    reusing its Argon2 buffer), in this process, without HTTP or database;
//! 3. full staff sign-ins per second (password, then TOTP) against a real `callguard serve`
//!    over HTTPS, and the ratio to the raw rate, with the CPU each side used;
//! 4. the password step alone;
//! 5. the server's memory (VmRSS, VmHWM) while a flood of concurrent sign-ins hits it, and how
//!    the flood was answered.
//!
//! It builds nothing: it runs the release binary given by `--bin` (see `bench/signin.sh`).
#![forbid(unsafe_code)]

use argon2::{Algorithm, Argon2, Params, Version};
use callguard_core::password::{ARGON2_M_KIB, ARGON2_P, ARGON2_T};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const USAGE: &str = "\
callguard-bench-signin: staff sign-in throughput and memory under a flood (issue #2)

usage: callguard-bench-signin [options]
  --bin PATH          the callguard release binary (default target/release/callguard)
  --raw-seconds S     each raw Argon2id measurement (default 6; run before and after)
  --seconds S         measured full sign-in phase (default 12, after 2 s of warm-up)
  --login-seconds S   measured password-step phase (default 6)
  --clients N         concurrent sign-in clients (default 4 x cores)
  --flood N           concurrent sign-ins in the flood (default 2000)
  --server-env K=V    set an environment variable for the server only (repeatable), e.g.
                      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304 or MALLOC_ARENA_MAX=2
  --keep              keep the temporary data directory and server log
";

/// Seconds in a TOTP step, and how close to a step's end a code for the previous step is still
/// sent (the server must see it before the step ends).
const STEP: i64 = 30;
const PREVIOUS_STEP_MARGIN: f64 = 3.0;
/// USER_HZ: the unit of CPU times in /proc (100 on every Linux ABI).
const CLOCK_TICKS: f64 = 100.0;

struct Options {
    bin: PathBuf,
    raw_seconds: f64,
    seconds: f64,
    warmup: f64,
    login_seconds: f64,
    clients: usize,
    flood: usize,
    server_env: Vec<(String, String)>,
    keep: bool,
}

fn parse_args(cores: usize) -> Res<Options> {
    let mut o = Options {
        bin: PathBuf::from("target/release/callguard"),
        raw_seconds: 6.0,
        seconds: 12.0,
        warmup: 2.0,
        login_seconds: 6.0,
        clients: 4 * cores,
        flood: 2000,
        server_env: Vec::new(),
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--bin" => o.bin = PathBuf::from(value()?),
            "--raw-seconds" => o.raw_seconds = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--login-seconds" => o.login_seconds = value()?.parse()?,
            "--clients" => o.clients = value()?.parse()?,
            "--flood" => o.flood = value()?.parse()?,
            "--server-env" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or("--server-env takes KEY=VALUE")?;
                o.server_env.push((k.to_owned(), v.to_owned()));
            }
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}").into()),
        }
    }
    if o.clients == 0 || o.seconds <= 0.0 || o.raw_seconds <= 0.0 || o.login_seconds <= 0.0 {
        return Err("clients and durations must be positive".into());
    }
    Ok(o)
}

fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callguard-bench-signin: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callguard-bench-signin: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---- machine facts and /proc ------------------------------------------------------------

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn mem_total_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(kib_field)
        })
        .map_or(0.0, |k| k as f64 / (1024.0 * 1024.0))
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned())
}

fn kib_field(line: &str) -> Option<u64> {
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok())
}

/// The soft limit on open files of this process (the server inherits it).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut rss = None;
    let mut hwm = None;
    for l in text.lines() {
        if l.starts_with("VmRSS:") {
            rss = kib_field(l);
        } else if l.starts_with("VmHWM:") {
            hwm = kib_field(l);
        }
    }
    Some((rss?, hwm?))
}

fn threads_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with("Threads:"))
        .and_then(kib_field)
}

/// CPU seconds (user, system) and minor page faults of a process so far (`self` for this one).
fn proc_stat(pid: &str) -> (f64, f64, f64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0, 0.0);
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = text.rsplit_once(')') else {
        return (0.0, 0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // minflt is field 10, utime 14, stime 15 (proc(5)).
    (field(14) / CLOCK_TICKS, field(15) / CLOCK_TICKS, field(10))
}

/// Machine-wide CPU seconds: (busy, idle, iowait, steal), summed over all cores.
fn machine_cpu() -> (f64, f64, f64, f64) {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0, 0.0, 0.0);
    };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0, 0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0.0) / CLOCK_TICKS;
    // user nice system idle iowait irq softirq steal
    let busy = g(0) + g(1) + g(2) + g(5) + g(6);
    (busy, g(3), g(4), g(7))
}

/// CPU accounting over one phase.
struct CpuWindow {
    server_pid: String,
    server: (f64, f64, f64),
    client: (f64, f64, f64),
    machine: (f64, f64, f64, f64),
    at: Instant,
}

struct CpuUse {
    wall: f64,
    server: f64,
    server_sys: f64,
    server_faults: f64,
    client: f64,
    machine_busy: f64,
    iowait: f64,
    steal: f64,
}

impl CpuUse {
    /// CPU used by processes other than the server and this benchmark (compilers, …).
    fn others(&self) -> f64 {
        (self.machine_busy - self.server - self.client).max(0.0)
    }
}

impl CpuWindow {
    fn start(server_pid: u32) -> Self {
        let server_pid = server_pid.to_string();
        Self {
            server: proc_stat(&server_pid),
            client: proc_stat("self"),
            machine: machine_cpu(),
            at: Instant::now(),
            server_pid,
        }
    }

    fn stop(&self) -> CpuUse {
        let m = machine_cpu();
        let server = proc_stat(&self.server_pid);
        let client = proc_stat("self");
        CpuUse {
            wall: self.at.elapsed().as_secs_f64(),
            server: server.0 + server.1 - self.server.0 - self.server.1,
            server_sys: server.1 - self.server.1,
            server_faults: server.2 - self.server.2,
            client: client.0 + client.1 - self.client.0 - self.client.1,
            machine_busy: m.0 - self.machine.0,
            iowait: m.2 - self.machine.2,
            steal: m.3 - self.machine.3,
        }
    }
}

// ---- raw Argon2id -----------------------------------------------------------------------

struct RawRate {
    threads: usize,
    hashes: u64,
    /// CPU seconds (user + system) this process used while hashing.
    cpu: f64,
    /// CPU seconds other processes used meanwhile.
    others: f64,
    /// Sum over threads of each thread's own rate.
    per_second: f64,
}

/// Hashes on `threads` OS threads for `seconds`, with the `argon2` crate at Callguard's
/// parameters. Each thread's rate is its hashes over the time its last hash finished.
fn raw_argon2(threads: usize, seconds: f64) -> Res<RawRate> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(32))
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(std::sync::Barrier::new(threads + 1));
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let (stop, barrier, params) = (stop.clone(), barrier.clone(), params.clone());
        handles.push(std::thread::spawn(move || -> Result<(u64, f64), String> {
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let salt = [u8::try_from(i % 256).unwrap_or(0); 16];
            let mut password = *b"raw argon2id rate, 0000000000";
            let mut out = [0u8; 32];
            // One untimed hash first, like the server's first sign-in.
            argon
                .hash_password_into(&password, &salt, &mut out)
                .map_err(|e| e.to_string())?;
            barrier.wait();
            let started = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                password[password.len() - 1] = out[0];
                argon
                    .hash_password_into(&password, &salt, &mut out)
                    .map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok((n, started.elapsed().as_secs_f64()))
        }));
    }
    barrier.wait();
    // Every thread has done its untimed hash and waited at the barrier.
    let cpu_before = proc_stat("self");
    let machine_before = machine_cpu();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut hashes = 0;
    let mut per_second = 0.0;
    for h in handles {
        let (n, secs) = h.join().map_err(|_| "a hashing thread died")??;
        hashes += n;
        per_second += n as f64 / secs;
    }
    let cpu_after = proc_stat("self");
    let cpu = cpu_after.0 + cpu_after.1 - cpu_before.0 - cpu_before.1;
    let others = (machine_cpu().0 - machine_before.0 - cpu).max(0.0);
    Ok(RawRate {
        threads,
        hashes,
        cpu,
        others,
        per_second,
    })
}

// ---- the server's hashing service alone ----------------------------------------------------

struct HasherRate {
    verifies: u64,
    seconds: f64,
    cpu: f64,
    faults: f64,
    failures: u64,
    rss_before_kib: u64,
    rss_after_kib: u64,
}

/// The server's own hashing service (`callguard_server::hasher::Hasher`): one thread per core
/// reusing its Argon2 buffer, with bounded admission. Used as is, so it cannot drift from the
/// server.
#[derive(Clone)]
struct Hasher {
    inner: callguard_server::hasher::Hasher,
}

impl Hasher {
    fn for_this_machine() -> Self {
        Self {
            inner: callguard_server::hasher::Hasher::for_this_machine(),
        }
    }

    async fn verify(&self, password: &'static str, phc: Arc<String>) -> Res<bool> {
        Ok(self
            .inner
            .verify(
                callguard_core::Secret::from(password),
                Some(phc.as_ref().clone()),
            )
            .await
            .map_err(|e| e.to_string())?)
    }
}

/// The server's password check (`callguard_core::password::verify` behind the hashing
/// service) from `tasks` concurrent tasks in this process: a sign-in without HTTP, TLS or the
/// database.
async fn hasher_alone(tasks: usize, warmup: f64, seconds: f64) -> Res<HasherRate> {
    let hasher = Hasher::for_this_machine();
    let password = "a benchmark passphrase for the hashing service";
    let phc = Arc::new(
        tokio::task::spawn_blocking(move || {
            callguard_core::password::hash(&callguard_core::Secret::from(password))
        })
        .await?
        .map_err(|e| e.to_string())?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let rss_before_kib = memory_of(std::process::id()).map_or(0, |m| m.0);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (hasher, phc, stop, done, failures) = (
            hasher.clone(),
            phc.clone(),
            stop.clone(),
            done.clone(),
            failures.clone(),
        );
        set.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match hasher.verify(password, phc.clone()).await {
                    Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                    _ => failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let (n0, cpu0, t0) = (
        done.load(Ordering::Relaxed),
        proc_stat("self"),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let (n1, cpu1, t1) = (
        done.load(Ordering::Relaxed),
        proc_stat("self"),
        Instant::now(),
    );
    stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    Ok(HasherRate {
        verifies: n1 - n0,
        seconds: (t1 - t0).as_secs_f64(),
        cpu: cpu1.0 + cpu1.1 - cpu0.0 - cpu0.1,
        faults: cpu1.2 - cpu0.2,
        failures: failures.load(Ordering::Relaxed),
        rss_before_kib,
        rss_after_kib: memory_of(std::process::id()).map_or(0, |m| m.0),
    })
}

// ---- the server under test --------------------------------------------------------------

struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    keep: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A `callguard` command with only the benchmark's configuration in its environment.
fn callguard(bin: &Path, data: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CALLGUARD_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("CALLGUARD_DATA_DIR", data)
        .env("CALLGUARD_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null());
    cmd
}

impl Server {
    async fn start(bin: &Path, env: &[(String, String)], keep: bool) -> Res<Self> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p callguard` or pass --bin",
                bin.display()
            )
            .into());
        }
        let base = std::env::temp_dir().join(format!(
            "callguard-bench-signin-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&base)?;
        let data = base.join("data");
        let log = std::fs::File::create(base.join("server.log"))?;
        let child = callguard(bin, &data)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("the server exited at once")?;
        Ok(Self {
            child,
            pid,
            base,
            data,
            bin: bin.to_path_buf(),
            keep,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.base.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits for `data/run/address`, which the server writes once it listens.
    async fn address(&mut self) -> Res<SocketAddr> {
        let file = self.data.join("run").join("address");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Ok(addr) = text.trim().parse() {
                    return Ok(addr);
                }
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "the server exited ({status}) before listening:\n{}",
                    self.log_tail()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the server did not write {} within 60 s", file.display()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails when the server process has ended (someone else may have signalled it).
    fn check_alive(&mut self, during: &str) -> Res<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "the server ended ({status}) during {during}; its log:\n{}",
                self.log_tail()
            )
            .into()),
        }
    }

    /// `callguard user add NAME --role ROLE`: the setup token it prints.
    async fn add_user(&self, name: &str, role: &str) -> Res<String> {
        let out = callguard(&self.bin, &self.data)
            .args(["user", "add", name, "--role", role])
            .output()
            .await?;
        if !out.status.success() {
            return Err(format!(
                "callguard user add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    async fn stop(mut self) -> Res<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        if self.keep {
            eprintln!("kept {} (server.log, data/)", self.base.display());
        }
        Ok(())
    }
}

// ---- HTTP ---------------------------------------------------------------------------------

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
}

/// Attempts the server admits at once from one source address (its per-address rule): more
/// concurrent sign-ins from one address wait for the earlier ones.
const PER_ADDRESS: usize = callguard_core::throttle::FREE_FAILURES as usize;

/// The `i`-th loopback source address `127.2.x.y` (the whole 127.0.0.0/8 is loopback on
/// Linux): each client of a phase is a person at their own desk, with an address of its own.
fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        2,
        u8::try_from(i / 250).unwrap_or(u8::MAX),
        u8::try_from(i % 250 + 1).unwrap_or(1),
    ))
}

impl Http {
    /// A client from 127.0.0.1 (see [`Http::from`]).
    fn new(cert_pem: &[u8], addr: SocketAddr) -> Res<Self> {
        Self::from(cert_pem, addr, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A client that trusts only the server's own certificate, reaches `localhost` at `addr`
    /// and connects from `source`.
    fn from(cert_pem: &[u8], addr: SocketAddr, source: IpAddr) -> Res<Self> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert_pem)?)
            .resolve("localhost", addr)
            .local_address(source)
            .user_agent("callguard-bench-signin")
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self {
            client,
            base: format!("https://localhost:{}", addr.port()),
        })
    }

    async fn post(&self, path: &str, body: &Value, bearer: Option<&str>) -> Res<(u16, Value)> {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// POST expecting `want`; the named string fields of the answer.
    async fn expect(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
        want: u16,
        fields: &[&str],
    ) -> Res<Vec<String>> {
        let (status, v) = self.post(path, body, bearer).await?;
        if status != want {
            return Err(format!("POST {path}: {status} {v}").into());
        }
        fields
            .iter()
            .map(|f| {
                v.get(*f)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("POST {path}: no {f:?} in {v}").into())
            })
            .collect()
    }
}

// ---- TOTP -----------------------------------------------------------------------------------

/// The earliest TOTP step this account may use now: the server accepts the steps around its
/// current one, each only once and in increasing order. The previous step is only used well
/// before the current one ends, so that the server still accepts it when the request lands.
fn usable_step(now: f64, last: Option<i64>) -> Option<i64> {
    let current = (now / STEP as f64).floor() as i64;
    let into = now - (current * STEP) as f64;
    let first = if into < STEP as f64 - PREVIOUS_STEP_MARGIN {
        current - 1
    } else {
        current
    };
    (first..=current + 1).find(|s| last.is_none_or(|l| *s > l))
}

fn totp_code(secret: &[u8], step: i64) -> String {
    totp_lite::totp_custom::<totp_lite::Sha1>(
        STEP as u64,
        6,
        secret,
        u64::try_from(step * STEP).unwrap_or(0),
    )
}

// ---- accounts -------------------------------------------------------------------------------

struct Agent {
    username: String,
    password: String,
    secret: Vec<u8>,
    last_step: i64,
}

fn password_for(i: usize) -> String {
    format!("correct horse battery staple number {i:05} for the benchmark")
}

/// First-time setup: password, then a code from the new authenticator. Answers with the
/// session token (for the admin) and the enrolled agent.
async fn set_up(
    http: &Http,
    username: &str,
    setup_token: &str,
    password: &str,
) -> Res<(String, Agent)> {
    let got = http
        .expect(
            "/api/v1/auth/setup",
            &json!({ "token": setup_token, "password": password }),
            None,
            200,
            &["challenge", "totp_secret"],
        )
        .await?;
    let [challenge, secret] = <[String; 2]>::try_from(got).map_err(|_| "setup answer")?;
    let secret = data_encoding::BASE32_NOPAD.decode(secret.as_bytes())?;
    let step = usable_step(unix_now(), None).ok_or("no TOTP step")?;
    let got = http
        .expect(
            "/api/v1/auth/setup/confirm",
            &json!({ "challenge": challenge, "code": totp_code(&secret, step) }),
            None,
            200,
            &["token"],
        )
        .await?;
    let token = got.into_iter().next().ok_or("no session token")?;
    let agent = Agent {
        username: username.to_owned(),
        password: password.to_owned(),
        secret,
        last_step: step,
    };
    Ok((token, agent))
}

/// Makes `count` agents through the admin API and sets each up, one worker per client in
/// `https` (each from its own address).
async fn make_agents(https: &[Http], admin_token: &str, count: usize) -> Res<Vec<Agent>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for http in https {
        let (http, next, admin) = (http.clone(), next.clone(), admin_token.to_owned());
        tasks.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                if i >= count {
                    return Ok::<_, BoxError>(made);
                }
                let username = format!("bench{i:05}");
                let got = http
                    .expect(
                        "/api/v1/users",
                        &json!({ "username": username, "role": "agent" }),
                        Some(&admin),
                        201,
                        &["setup_token"],
                    )
                    .await?;
                let setup_token = got.into_iter().next().ok_or("no setup token")?;
                let (_, agent) = set_up(&http, &username, &setup_token, &password_for(i)).await?;
                made.push(agent);
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}

/// Agents waiting for their next sign-in, least recently used first.
struct Pool {
    agents: Mutex<VecDeque<Agent>>,
}

impl Pool {
    /// An agent that can sign in now (with `totp`, one that still has a usable TOTP step).
    fn take(&self, totp: bool) -> Option<Agent> {
        let mut q = self.agents.lock().ok()?;
        if !totp {
            return q.pop_front();
        }
        let now = unix_now();
        for _ in 0..q.len() {
            let a = q.pop_front()?;
            if usable_step(now, Some(a.last_step)).is_some() {
                return Some(a);
            }
            q.push_back(a);
        }
        None
    }

    fn put(&self, a: Agent) {
        if let Ok(mut q) = self.agents.lock() {
            q.push_back(a);
        }
    }

    fn into_agents(self) -> Vec<Agent> {
        self.agents.into_inner().map(Vec::from).unwrap_or_default()
    }
}

// ---- the sign-in phases -------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    done: AtomicU64,
    starved: AtomicU64,
    errors: AtomicU64,
    statuses: Mutex<BTreeMap<String, u64>>,
    /// (finished at, whole sign-in seconds, password step seconds)
    latencies: Mutex<Vec<(Instant, f64, f64)>>,
}

impl Stats {
    fn other(&self, what: String) {
        if let Ok(mut m) = self.statuses.lock() {
            *m.entry(what).or_default() += 1;
        }
    }
}

struct PhaseResult {
    completed: u64,
    seconds: f64,
    cpu: CpuUse,
    starved: u64,
    errors: u64,
    statuses: BTreeMap<String, u64>,
    latency_ms: (f64, f64, f64),
    password_ms: f64,
}

impl PhaseResult {
    fn per_second(&self) -> f64 {
        self.completed as f64 / self.seconds
    }
}

/// One client: signs agents in (password, then TOTP when `totp`) until told to stop.
async fn sign_in_loop(
    http: Http,
    pool: Arc<Pool>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    totp: bool,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut agent) = pool.take(totp) else {
            stats.starved.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let started = Instant::now();
        let login = http
            .post(
                "/api/v1/auth/login",
                &json!({ "username": agent.username, "password": agent.password }),
                None,
            )
            .await;
        let password_secs = started.elapsed().as_secs_f64();
        let challenge = match login {
            Ok((200, v)) => v
                .get("challenge")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Ok((status, _)) => {
                stats.other(format!("login {status}"));
                None
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        let ok = match (challenge, totp) {
            (None, _) => false,
            (Some(_), false) => true,
            (Some(challenge), true) => match usable_step(unix_now(), Some(agent.last_step)) {
                None => {
                    stats.other("no usable TOTP step".into());
                    false
                }
                Some(step) => {
                    agent.last_step = step;
                    let body = json!({ "challenge": challenge, "method": "totp", "code": totp_code(&agent.secret, step) });
                    match http.post("/api/v1/auth/mfa", &body, None).await {
                        Ok((200, _)) => true,
                        Ok((status, v)) => {
                            stats.other(format!(
                                "mfa {status} {}",
                                v.get("title").and_then(Value::as_str).unwrap_or("")
                            ));
                            false
                        }
                        Err(_) => {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    }
                }
            },
        };
        if !ok {
            // Do not spin on a server that refuses or has gone away.
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            stats.done.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = stats.latencies.lock() {
                l.push((
                    Instant::now(),
                    started.elapsed().as_secs_f64(),
                    password_secs,
                ));
            }
        }
        pool.put(agent);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs one sign-in loop per client in `https`; counts what completes within `seconds` after
/// `warmup`.
async fn sign_in_phase(
    https: &[Http],
    pool: &Arc<Pool>,
    server_pid: u32,
    warmup: f64,
    seconds: f64,
    totp: bool,
) -> PhaseResult {
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for http in https {
        tasks.spawn(sign_in_loop(
            http.clone(),
            pool.clone(),
            stats.clone(),
            stop.clone(),
            totp,
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let (starved0, errors0) = (
        stats.starved.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed),
    );
    let statuses0 = stats.statuses.lock().map(|m| m.clone()).unwrap_or_default();
    let done0 = stats.done.load(Ordering::Relaxed);
    let cpu = CpuWindow::start(server_pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let done1 = stats.done.load(Ordering::Relaxed);
    let t1 = Instant::now();
    let cpu = cpu.stop();
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let mut statuses = stats.statuses.lock().map(|m| m.clone()).unwrap_or_default();
    for (k, v) in statuses0 {
        if let Some(n) = statuses.get_mut(&k) {
            *n -= v;
        }
    }
    statuses.retain(|_, n| *n > 0);
    let (mut whole, mut password): (Vec<f64>, Vec<f64>) = stats
        .latencies
        .lock()
        .map(|l| {
            l.iter()
                .filter(|(at, _, _)| *at > t0 && *at <= t1)
                .map(|(_, w, p)| (*w, *p))
                .unzip()
        })
        .unwrap_or_default();
    whole.sort_by(f64::total_cmp);
    password.sort_by(f64::total_cmp);
    PhaseResult {
        completed: done1 - done0,
        seconds: (t1 - t0).as_secs_f64(),
        cpu,
        starved: stats.starved.load(Ordering::Relaxed) - starved0,
        errors: stats.errors.load(Ordering::Relaxed) - errors0,
        statuses,
        latency_ms: (
            percentile(&whole, 0.5) * 1e3,
            percentile(&whole, 0.99) * 1e3,
            whole.last().copied().unwrap_or(0.0) * 1e3,
        ),
        password_ms: percentile(&password, 0.5) * 1e3,
    }
}

// ---- the flood ------------------------------------------------------------------------------

/// Samples a process's VmRSS every 10 ms on its own thread, so a busy runtime cannot skip it.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(Instant, u64)>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some((rss, _)) = memory_of(pid) {
                    samples.push((Instant::now(), rss));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        });
        Self { stop, handle }
    }

    fn finish(self) -> Vec<(Instant, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn peak_between(samples: &[(Instant, u64)], from: Instant, to: Instant) -> u64 {
    samples
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0)
}

struct FloodResult {
    requests: usize,
    connected: BTreeMap<String, u64>,
    answers: BTreeMap<String, u64>,
    idle_kib: u64,
    connections_peak_kib: u64,
    connected_kib: u64,
    flood_peak_kib: u64,
    hwm_kib: Option<u64>,
    hwm_reset: bool,
    after_kib: u64,
    closed_kib: u64,
    threads_peak: u64,
    connect_secs: f64,
    busy_max_ms: f64,
    ok_max_ms: f64,
    drain_secs: f64,
    still_signs_in: bool,
}

fn status_key(r: &Result<u16, reqwest::Error>) -> String {
    match r {
        Ok(s) => s.to_string(),
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(e) if e.is_connect() => "connect error".into(),
        Err(_) => "other error".into(),
    }
}

/// Opens `n` connections, then sends `n` sign-ins (correct passwords) at once over them, at
/// most [`PER_ADDRESS`] from each source address, so that every one is admitted at once and
/// reaches the hashing queue.
async fn flood(
    cert_pem: &[u8],
    addr: SocketAddr,
    pid: u32,
    agents: &[Agent],
    n: usize,
) -> Res<FloodResult> {
    let https: Vec<Http> = (0..n.div_ceil(PER_ADDRESS))
        .map(|j| Http::from(cert_pem, addr, source(1_000 + j)))
        .collect::<Res<_>>()?;
    let sampler = RssSampler::start(pid);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_kib = memory_of(pid).map_or(0, |m| m.0);
    // Open the connections: n concurrent cheap requests, each on a new TLS connection that the
    // client then keeps idle.
    let t_connect = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let h = https[i / PER_ADDRESS].clone();
        tasks.spawn(async move {
            let r = h.client.get(format!("{}/healthz", h.base)).send().await;
            match r {
                Ok(resp) => {
                    let s = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    Ok(s)
                }
                Err(e) => Err(e),
            }
        });
    }
    let mut connected = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        *connected
            .entry(r.map_or_else(|_| "task failed".into(), |r| status_key(&r)))
            .or_default() += 1;
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connected_kib = memory_of(pid).map_or(0, |m| m.0);
    let t_connected = Instant::now();
    // VmHWM from here on measures the flood alone (writing 5 to clear_refs resets it).
    let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let t_flood = Instant::now();
    let mut threads_peak = 0;
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..n {
        let h = https[i / PER_ADDRESS].clone();
        let a = agents
            .get(i % agents.len().max(1))
            .ok_or("no agents for the flood")?;
        let body = json!({ "username": a.username, "password": a.password });
        logins.spawn(async move {
            let started = Instant::now();
            let r = h
                .client
                .post(format!("{}/api/v1/auth/login", h.base))
                .json(&body)
                .send()
                .await;
            let r = match r {
                Ok(resp) => {
                    let s = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    Ok(s)
                }
                Err(e) => Err(e),
            };
            (r, started.elapsed().as_secs_f64())
        });
    }
    let mut answers = BTreeMap::new();
    let (mut busy_max, mut ok_max) = (0.0f64, 0.0f64);
    let mut left = n;
    while left > 0 {
        tokio::select! {
            r = logins.join_next() => {
                let Some(r) = r else { break };
                left -= 1;
                let (r, secs) = r.unwrap_or((Ok(0), 0.0));
                match r {
                    Ok(503) => busy_max = busy_max.max(secs),
                    Ok(200) => ok_max = ok_max.max(secs),
                    _ => {}
                }
                *answers.entry(status_key(&r)).or_default() += 1;
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                threads_peak = threads_peak.max(threads_of(pid).unwrap_or(0));
            }
        }
    }
    let drain_secs = t_flood.elapsed().as_secs_f64();
    let t_drained = Instant::now();
    let hwm_kib = memory_of(pid).map(|m| m.1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_kib = memory_of(pid).map_or(0, |m| m.0);
    // The server still works: one more password step on a fresh connection.
    let fresh = Http::new(cert_pem, addr)?;
    let a = agents.first().ok_or("no agents")?;
    let still_signs_in = matches!(
        fresh
            .post(
                "/api/v1/auth/login",
                &json!({ "username": a.username, "password": a.password }),
                None
            )
            .await,
        Ok((200, _))
    );
    drop(https);
    drop(fresh);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed_kib = memory_of(pid).map_or(0, |m| m.0);
    let samples = sampler.finish();
    Ok(FloodResult {
        requests: n,
        connected,
        answers,
        idle_kib,
        connections_peak_kib: peak_between(&samples, t_connect, t_connected),
        connected_kib,
        flood_peak_kib: peak_between(&samples, t_flood, t_drained),
        hwm_kib,
        hwm_reset,
        after_kib,
        closed_kib,
        threads_peak,
        connect_secs,
        busy_max_ms: busy_max * 1e3,
        ok_max_ms: ok_max * 1e3,
        drain_secs,
        still_signs_in,
    })
}

// ---- the run --------------------------------------------------------------------------------

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cpu_line(c: &CpuUse, cores: usize, per: u64) -> String {
    let per = per.max(1) as f64;
    format!(
        "CPU over {:.1} s on {cores} cores: server {:.2} s ({:.0}%, of which kernel {:.2} s), benchmark client {:.2} s ({:.0}%), other processes {:.2} s, iowait {:.2} s, steal {:.2} s\n    per completed operation: server {:.1} ms CPU and {:.0} minor page faults, client {:.1} ms CPU",
        c.wall,
        c.server,
        100.0 * c.server / (c.wall * cores as f64),
        c.server_sys,
        c.client,
        100.0 * c.client / (c.wall * cores as f64),
        c.others(),
        c.iowait,
        c.steal,
        1e3 * c.server / per,
        c.server_faults / per,
        1e3 * c.client / per,
    )
}

async fn run() -> Res<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut o = parse_args(cores)?;
    // Each flood connection is a file on both sides; stay well inside the limit.
    if let Some(limit) = open_files_limit() {
        let most = usize::try_from(limit.saturating_sub(256)).unwrap_or(usize::MAX);
        if o.flood > most {
            eprintln!(
                "note: the open-file limit is {limit}; flooding with {most} instead of {} (raise it with `ulimit -n`)",
                o.flood
            );
            o.flood = most;
        }
    }
    let started = Instant::now();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map_or_else(
            |_| String::new(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );

    eprintln!(
        "[1/7] raw Argon2id on {cores} threads for {} s",
        o.raw_seconds
    );
    let raw_before =
        tokio::task::spawn_blocking(move || raw_argon2(cores, o.raw_seconds)).await??;
    eprintln!(
        "[2/7] the server's password check alone, in this process, {} tasks, {} s",
        o.clients, o.raw_seconds
    );
    let alone = hasher_alone(o.clients, 1.0, o.raw_seconds).await?;

    eprintln!("[3/7] starting {} serve", o.bin.display());
    let mut server = Server::start(&o.bin, &o.server_env, o.keep).await?;
    let addr = server.address().await?;
    let pid = server.pid;
    let cert = std::fs::read(server.data.join("tls").join("cert.pem"))?;
    let http = Http::new(&cert, addr)?;
    let mut memory: Vec<(String, Option<(u64, u64)>)> = vec![("start".into(), memory_of(pid))];

    // Enough agents that no TOTP step is ever needed twice: each can sign in at least twice in
    // any window shorter than a step, and sign-ins cannot outrun the raw hash rate.
    let expected = raw_before.per_second * (o.warmup + o.seconds) * 1.3;
    let agents_needed = (expected / 2.0).ceil() as usize + o.clients + 16;
    eprintln!("[3/7] creating and setting up {agents_needed} agents (one admin via `callguard user add`, the rest via the API)");
    let t_setup = Instant::now();
    let admin_setup = server.add_user("benchadmin", "admin").await?;
    let (admin_token, _) = set_up(
        &http,
        "benchadmin",
        &admin_setup,
        "the benchmark administrator's long passphrase",
    )
    .await?;
    // Each client signs in from an address of its own, as agents at their own desks do.
    let https: Vec<Http> = (0..o.clients)
        .map(|i| Http::from(&cert, addr, source(i)))
        .collect::<Res<_>>()?;
    let agents = make_agents(&https, &admin_token, agents_needed).await?;
    let setup_secs = t_setup.elapsed().as_secs_f64();
    let pool = Arc::new(Pool {
        agents: Mutex::new(agents.into()),
    });
    memory.push((
        format!("setting up {agents_needed} accounts"),
        memory_of(pid),
    ));

    eprintln!(
        "[4/7] full sign-ins (password + TOTP), {} clients, {} s + {} s warm-up",
        o.clients, o.seconds, o.warmup
    );
    let full = sign_in_phase(&https, &pool, pid, o.warmup, o.seconds, true).await;
    server.check_alive("the full sign-in phase")?;
    eprintln!(
        "[5/7] password step only, {} clients, {} s + 1 s warm-up",
        o.clients, o.login_seconds
    );
    memory.push(("full sign-in phase".into(), memory_of(pid)));
    let login = sign_in_phase(&https, &pool, pid, 1.0, o.login_seconds, false).await;
    server.check_alive("the password-step phase")?;
    memory.push(("password-step phase".into(), memory_of(pid)));

    eprintln!(
        "[6/7] flood: {} connections, then {} concurrent sign-ins",
        o.flood, o.flood
    );
    let agents = Arc::try_unwrap(pool)
        .map_err(|_| "the agent pool is still shared")?
        .into_agents();
    let fl = flood(&cert, addr, pid, &agents, o.flood).await?;
    server.check_alive("the flood")?;
    let log_tail = server.log_tail();
    server.stop().await?;
    eprintln!("[7/7] raw Argon2id again");
    let raw_after = tokio::task::spawn_blocking(move || raw_argon2(cores, o.raw_seconds)).await??;

    // ---- report ----
    // Other load on the machine only ever slows hashing down, so the faster of the two raw runs
    // is the better estimate of the machine's rate (and the stricter yardstick).
    let raw_core = raw_before.per_second.max(raw_after.per_second) / cores as f64;
    let full_core = full.per_second() / cores as f64;
    let login_core = login.per_second() / cores as f64;
    let ratio = full_core / raw_core;
    let hash_ms = 1e3 / raw_core;
    let raw_cpu_ms = [&raw_before, &raw_after]
        .iter()
        .map(|r| 1e3 * r.cpu / r.hashes.max(1) as f64)
        .fold(f64::INFINITY, f64::min);
    let full_cpu_ms = 1e3 * full.cpu.server / full.completed.max(1) as f64;
    let clean = full.starved == 0 && full.errors == 0 && full.statuses.is_empty();

    println!("Callguard staff sign-in benchmark (issue #2), {date}");
    println!(
        "machine: {cores} cores (available_parallelism), {}, {:.1} GiB RAM, Linux {}",
        cpu_model(),
        mem_total_gib(),
        kernel()
    );
    for (k, v) in &o.server_env {
        println!("server environment: {k}={v}");
    }
    println!(
        "Argon2id: m={ARGON2_M_KIB} KiB ({} MiB), t={ARGON2_T}, p={ARGON2_P}, version 0x13 (callguard_core::password); server {}",
        ARGON2_M_KIB / 1024,
        o.bin.display()
    );
    println!();
    println!(
        "raw Argon2id, argon2 crate, {cores} OS threads, {} s each:",
        o.raw_seconds
    );
    for (when, r) in [
        ("before the server phases", &raw_before),
        ("after the server phases ", &raw_after),
    ] {
        println!(
            "  {when}: {:>5} hashes, {:6.1} hashes/s = {:5.1} hashes/s per core; {:.1} ms CPU per hash; other processes {:.2} cores",
            r.hashes,
            r.per_second,
            r.per_second / r.threads as f64,
            1e3 * r.cpu / r.hashes.max(1) as f64,
            r.others / o.raw_seconds
        );
    }
    println!("  yardstick (the faster run): {raw_core:.1} hashes/s per core ({hash_ms:.1} ms per hash per core); {raw_cpu_ms:.1} ms CPU per hash (the lower)");
    println!(
        "the server's password check alone (callguard_server::hasher::Hasher: {cores} threads reusing their Argon2 buffers; in this process, no HTTP, no database), {} tasks:",
        o.clients
    );
    let alone_core = alone.verifies as f64 / alone.seconds / cores as f64;
    println!(
        "  {} verifies in {:.1} s = {:.1}/s per core, ratio to raw {:.3}; {:.1} ms CPU and {:.0} minor page faults per verify; failures {}; this process's VmRSS {:.1} -> {:.1} MiB",
        alone.verifies,
        alone.seconds,
        alone_core,
        alone_core / raw_core,
        1e3 * alone.cpu / alone.verifies.max(1) as f64,
        alone.faults / alone.verifies.max(1) as f64,
        alone.failures,
        mib(alone.rss_before_kib),
        mib(alone.rss_after_kib)
    );
    println!();
    println!(
        "full sign-in (POST /api/v1/auth/login, then POST /api/v1/auth/mfa with TOTP), HTTPS, {} clients, {agents_needed} agents (set up in {setup_secs:.1} s):",
        o.clients
    );
    println!(
        "  {} sign-ins in {:.1} s = {:.1} sign-ins/s = {:.1} sign-ins/s per core",
        full.completed,
        full.seconds,
        full.per_second(),
        full_core
    );
    println!(
        "  ratio to raw Argon2id: {ratio:.3} (goal >= 0.9: {})",
        if ratio >= 0.9 { "met" } else { "NOT met" }
    );
    println!(
        "  server CPU per sign-in {full_cpu_ms:.1} ms against {raw_cpu_ms:.1} ms per raw hash: CPU ratio {:.3} (less sensitive to other load on the machine)",
        raw_cpu_ms / full_cpu_ms
    );
    println!(
        "  latency: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (password step p50 {:.0} ms)",
        full.latency_ms.0, full.latency_ms.1, full.latency_ms.2, full.password_ms
    );
    println!(
        "  refused or failed: {}; transport errors: {}; waits for an agent with a usable TOTP step: {}",
        counts(&full.statuses),
        full.errors,
        full.starved
    );
    println!("  {}", cpu_line(&full.cpu, cores, full.completed));
    println!();
    println!(
        "password step only (POST /api/v1/auth/login), {} clients:",
        o.clients
    );
    println!(
        "  {} in {:.1} s = {:.1}/s = {:.1}/s per core, ratio to raw {:.3}; p50 {:.0} ms, p99 {:.0} ms",
        login.completed,
        login.seconds,
        login.per_second(),
        login_core,
        login_core / raw_core,
        login.latency_ms.0,
        login.latency_ms.1
    );
    println!(
        "  refused or failed: {}; transport errors: {}",
        counts(&login.statuses),
        login.errors
    );
    println!("  {}", cpu_line(&login.cpu, cores, login.completed));
    println!();
    println!(
        "flood: {} connections opened at once, then {} concurrent POST /api/v1/auth/login with correct passwords",
        fl.requests, fl.requests
    );
    println!(
        "  (from {} loopback addresses, at most {PER_ADDRESS} each: the per-address rule admits {PER_ADDRESS} attempts at once from one address, so every request reaches the hashing queue)",
        fl.requests.div_ceil(PER_ADDRESS)
    );
    println!(
        "  connecting: {} in {:.1} s",
        counts(&fl.connected),
        fl.connect_secs
    );
    println!(
        "  answers: {}; all answered within {:.1} s",
        counts(&fl.answers),
        fl.drain_secs
    );
    println!(
        "  slowest 503 (busy) {:.0} ms, slowest 200 {:.0} ms; server threads at most {}; signs in afterwards: {}",
        fl.busy_max_ms,
        fl.ok_max_ms,
        fl.threads_peak,
        if fl.still_signs_in { "yes" } else { "NO" }
    );
    let before: Vec<String> = memory
        .iter()
        .map(|(when, m)| {
            m.map_or_else(
                || format!("{when}: ?"),
                |(rss, hwm)| format!("after {when}: {:.1} (VmHWM {:.1})", mib(rss), mib(hwm)),
            )
        })
        .collect();
    println!(
        "  server VmRSS in MiB before the flood: {}",
        before.join("; ")
    );
    println!(
        "  VmRSS: idle {:.1} MiB; peak while connecting {:.1} MiB; {:.1} MiB with {} connections open",
        mib(fl.idle_kib),
        mib(fl.connections_peak_kib),
        mib(fl.connected_kib),
        fl.requests
    );
    println!(
        "  VmRSS peak during the sign-in flood {:.1} MiB (sampled every 10 ms); VmHWM {}",
        mib(fl.flood_peak_kib),
        match (fl.hwm_kib, fl.hwm_reset) {
            (Some(h), true) => format!("{:.1} MiB (reset just before the sign-ins)", mib(h)),
            (Some(h), false) => format!("{:.1} MiB (lifetime; could not reset)", mib(h)),
            (None, _) => "unknown".into(),
        }
    );
    println!(
        "  VmRSS 1 s after the flood {:.1} MiB; after the client closed its connections {:.1} MiB",
        mib(fl.after_kib),
        mib(fl.closed_kib)
    );
    let peak = fl.flood_peak_kib.max(fl.hwm_kib.unwrap_or(0));
    println!(
        "  flood peak above the VmRSS just before it: {:.1} MiB (one 19 MiB hash per request would be {:.1} GiB)",
        mib(peak.saturating_sub(fl.idle_kib)),
        fl.requests as f64 * 19.0 / 1024.0
    );
    let highest = memory
        .iter()
        .filter_map(|(_, m)| m.map(|(_, hwm)| hwm))
        .chain([peak, fl.after_kib, fl.closed_kib])
        .max()
        .unwrap_or(0);
    println!(
        "  highest server VmRSS over the run: {:.1} MiB; at start {:.1} MiB; the hashes in flight need at most {cores} x 19 MiB = {} MiB",
        mib(highest),
        mib(memory.first().and_then(|(_, m)| *m).map_or(0, |m| m.0)),
        cores * 19
    );
    println!();
    println!("total run time {:.0} s", started.elapsed().as_secs_f64());
    if !clean {
        println!(
            "WARNING: the full sign-in phase saw refusals, errors or waits; its rate is not clean."
        );
    }
    let disturbed: Vec<String> = [
        ("raw before", raw_before.others / o.raw_seconds),
        ("raw after", raw_after.others / o.raw_seconds),
        ("full sign-in", full.cpu.others() / full.cpu.wall),
        ("password step", login.cpu.others() / login.cpu.wall),
    ]
    .iter()
    .filter(|(_, cores)| *cores > 0.1)
    .map(|(phase, cores)| format!("{phase} {cores:.2} cores"))
    .collect();
    if !disturbed.is_empty() {
        println!(
            "WARNING: other processes used CPU during: {}; rates there are disturbed (the CPU-per-operation figures less so).",
            disturbed.join(", ")
        );
    }
    if !fl.still_signs_in || !clean {
        eprintln!("server log (last lines):\n{log_tail}");
    }
    Ok(())
}
