//! Do-Not-Call registry benchmark (issue #5, SPEC C8).
//!
//! One run, on one machine, at national scale by default (253 million numbers, the size of the
//! US registry at the end of FY2024):
//! 1. generates the registry itself (seeded, valid NANP numbers in random order, see `plan.rs`)
//!    and writes it as the 10-digit-per-line file the FTC publishes;
//! 2. times the real `callguard dnc import FILE` on a fresh data directory;
//! 3. measures the registry file on disk, and the resident memory a process gains by loading it
//!    with the server's own `Dnc::open`;
//! 4. times single look-ups (random valid numbers, half of them on the registry) and the scrub of
//!    a sorted batch, on the loaded registry;
//! 5. does the same look-ups on a 10^10-bit bitmap, a sorted `u64` array, SQLite (a WITHOUT ROWID
//!    table keyed by the number) and PostgreSQL (a BIGINT primary key loaded with COPY), and
//!    prints every figure next to Callguard's as a ratio.
//!
//! Every file and database it makes is deleted at the end (see `bench/dnc.sh` and `--help`).
#![forbid(unsafe_code)]

mod peers;
mod plan;
mod sys;

use callguard_core::dnc::elias_fano::EliasFano;
use callguard_server::features::dnc::registry::{Dnc, DncSettings};
use plan::Plan;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sys::CpuWindow;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

const USAGE: &str = "\
callguard-bench-dnc: the national Do-Not-Call registry at scale (issue #5)

usage: callguard-bench-dnc --bin PATH [options]
  --bin PATH            the callguard binary whose `dnc import` is timed (bench/dnc.sh passes
                        target/release/callguard)
  --count N             numbers on the registry (default 253000000)
  --seed S              seed of the synthetic numbers and queries (default 5)
  --lookups N           single look-ups for the rate (default 20000000)
  --latency N           single look-ups timed one by one (default 1000000)
  --batch N             numbers in the sorted batch to scrub (default 50000000)
  --peer-count N        numbers loaded into SQLite and PostgreSQL (default: --count); when
                        smaller they get the first N numbers of the registry file and their own
                        queries of the same kind, and their load figures are extrapolated
  --peer-seconds S      time box of each database look-up phase (default 10)
  --peer-lookups N      at most this many single look-ups per database (default 1000000)
  --peer-batch N        numbers of the sorted batch asked of each database (default 2000000,
                        evenly spaced through the batch so they stay sorted and spread)
  --pg URL              PostgreSQL server, without database name
                        (default postgres://postgres@127.0.0.1:5432)
  --no-pg               leave PostgreSQL out
  --no-sqlite           leave SQLite out
  --no-baselines        leave the bitmap and sorted-array baselines out
  --dir DIR             where the registry file, data directory and SQLite database go
                        (default: the system temp dir)
  --keep                keep them (and the PostgreSQL database)
";

/// The US registry at the end of FY2024 (FTC): the scale the goals are set for.
const NATIONAL: u64 = 253_000_000;
const UNIVERSE: u64 = 10_000_000_000;
/// Most numbers one `POST /api/v1/dnc/check` carries: the chunk a database gets per query.
const API_BATCH: usize = callguard_server::features::dnc::registry::MAX_BATCH;

pub struct Options {
    bin: Option<PathBuf>,
    count: u64,
    seed: u64,
    lookups: usize,
    latency: usize,
    batch: usize,
    peer_count: Option<u64>,
    peer_seconds: f64,
    peer_lookups: usize,
    peer_batch: usize,
    pg: Option<String>,
    sqlite: bool,
    baselines: bool,
    dir: PathBuf,
    keep: bool,
    /// Internal: load the registry in this directory and print the memory it took.
    load_registry: Option<PathBuf>,
}

fn parse_args() -> Res<Option<Options>> {
    let mut o = Options {
        bin: None,
        count: NATIONAL,
        seed: 5,
        lookups: 20_000_000,
        latency: 1_000_000,
        batch: 50_000_000,
        peer_count: None,
        peer_seconds: 10.0,
        peer_lookups: 1_000_000,
        peer_batch: 2_000_000,
        pg: Some("postgres://postgres@127.0.0.1:5432".into()),
        sqlite: true,
        baselines: true,
        dir: std::env::temp_dir(),
        keep: false,
        load_registry: None,
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
            "--bin" => o.bin = Some(PathBuf::from(value()?)),
            "--count" => o.count = value()?.parse()?,
            "--seed" => o.seed = value()?.parse()?,
            "--lookups" => o.lookups = value()?.parse()?,
            "--latency" => o.latency = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--peer-count" => o.peer_count = Some(value()?.parse()?),
            "--peer-seconds" => o.peer_seconds = value()?.parse()?,
            "--peer-lookups" => o.peer_lookups = value()?.parse()?,
            "--peer-batch" => o.peer_batch = value()?.parse()?,
            "--pg" => o.pg = Some(value()?.trim_end_matches('/').to_owned()),
            "--no-pg" => o.pg = None,
            "--no-sqlite" => o.sqlite = false,
            "--no-baselines" => o.baselines = false,
            "--dir" => o.dir = PathBuf::from(value()?),
            "--keep" => o.keep = true,
            "--load-registry" => o.load_registry = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other:?} (see --help)").into()),
        }
    }
    if o.load_registry.is_none() && o.bin.is_none() {
        return Err("--bin PATH is needed (bench/dnc.sh passes it)".into());
    }
    if o.count == 0 || o.count > plan::VALID / 2 {
        return Err(format!("--count must be between 1 and {}", plan::VALID / 2).into());
    }
    if o.lookups == 0 || o.batch == 0 || o.latency > o.lookups {
        return Err("--lookups and --batch must be positive, --latency at most --lookups".into());
    }
    if o.peer_count.is_some_and(|p| p == 0 || p > o.count) {
        return Err("--peer-count must be between 1 and --count".into());
    }
    Ok(Some(o))
}

// ---- small helpers ------------------------------------------------------------------------

/// 12,345,678
pub fn n(v: u64) -> String {
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

/// A rate in millions per second, or thousands when small.
pub fn per_s(count: u64, secs: f64) -> String {
    let r = if secs > 0.0 { count as f64 / secs } else { 0.0 };
    if r >= 1e6 {
        format!("{:.1} M/s", r / 1e6)
    } else {
        format!("{:.1} k/s", r / 1e3)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}

fn say(text: &str) {
    println!("{text}");
    let _ = std::io::stdout().flush();
}

/// Latency quantiles of individually timed operations.
#[derive(Clone, Copy, Default)]
pub struct Lat {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Lat {
    pub fn of(mut d: Vec<Duration>) -> Self {
        d.sort_unstable();
        let q = |p: f64| {
            if d.is_empty() {
                Duration::ZERO
            } else {
                d[((d.len() - 1) as f64 * p).round() as usize]
            }
        };
        Self {
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: d.last().copied().unwrap_or_default(),
        }
    }
}

fn ns(d: Duration) -> String {
    let v = d.as_nanos();
    if v >= 10_000_000 {
        format!("{:.1} ms", v as f64 / 1e6)
    } else if v >= 10_000 {
        format!("{:.1} µs", v as f64 / 1e3)
    } else {
        format!("{v} ns")
    }
}

impl std::fmt::Display for Lat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {}, p99 {}, p99.9 {}, max {}",
            ns(self.p50),
            ns(self.p99),
            ns(self.p999),
            ns(self.max)
        )
    }
}

/// What a phase's CPU window says about other processes, kept for the warning at the end.
struct Disturbance(Vec<(String, f64)>);

impl Disturbance {
    fn note(&mut self, phase: &str, cpu: &sys::CpuUse) -> String {
        let cores = cpu.other_cores();
        self.0.push((phase.to_owned(), cores));
        format!("other processes {:.2} cores", cores)
    }
}

// ---- queries ------------------------------------------------------------------------------

/// Look-ups to make: valid numbers in random order, half of them on a registry made of the
/// first `members` numbers of the plan's order.
pub struct Queries {
    pub single: Vec<u64>,
    pub present: Vec<bool>,
    /// Sorted and without repeats.
    pub batch: Vec<u64>,
}

impl Queries {
    fn make(plan: &Plan, seed: u64, members: u64, count: u64, single: usize, batch: usize) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut draw = |k: usize| -> (Vec<u64>, Vec<bool>) {
            let mut js = Vec::with_capacity(k);
            let mut present = Vec::with_capacity(k);
            for _ in 0..k {
                let p = rng.gen_bool(0.5);
                present.push(p);
                // Absent numbers come from beyond the whole registry, so they are on no peer.
                js.push(if p {
                    rng.gen_range(0..members)
                } else {
                    rng.gen_range(count..plan::VALID)
                });
            }
            let mut numbers = vec![0u64; k];
            plan.map(&js, &mut numbers);
            (numbers, present)
        };
        let (single, present) = draw(single);
        let (mut batch, _) = draw(batch);
        batch.sort_unstable();
        batch.dedup();
        Self {
            single,
            present,
            batch,
        }
    }

    pub fn expected_hits(&self, done: usize) -> u64 {
        self.present.iter().take(done).filter(|p| **p).count() as u64
    }
}

/// Every `k`-th number of a sorted batch, about `want` of them: still sorted, spread over it.
pub fn spaced(batch: &[u64], want: usize) -> Vec<u64> {
    let step = batch.len().div_ceil(want.max(1)).max(1);
    batch.iter().step_by(step).copied().collect()
}

// ---- look-up loops ------------------------------------------------------------------------

pub struct Single {
    pub rate_secs: f64,
    pub done: u64,
    pub hits: u64,
    pub lat: Lat,
}

/// Single look-ups: first the rate of a plain loop over `queries` (each look-up on its own, as
/// a check of one number), then `timed` of them timed one by one.
fn single_lookups(queries: &[u64], timed: usize, mut contains: impl FnMut(u64) -> bool) -> Single {
    // Warm-up: the first pass through the structure.
    let mut warm = 0u64;
    for q in queries.iter().take(queries.len() / 20) {
        warm += u64::from(contains(*q));
    }
    std::hint::black_box(warm);
    let start = Instant::now();
    let mut hits = 0u64;
    for q in queries {
        hits += u64::from(contains(*q));
    }
    let rate_secs = start.elapsed().as_secs_f64();
    let mut d = Vec::with_capacity(timed);
    for q in queries.iter().take(timed) {
        let t = Instant::now();
        let hit = contains(*q);
        d.push(t.elapsed());
        std::hint::black_box(hit);
    }
    Single {
        rate_secs,
        done: queries.len() as u64,
        hits,
        lat: Lat::of(d),
    }
}

/// The scrub of a sorted batch: one answer per number, in order.
fn batch_scrub(batch: &[u64], mut contains: impl FnMut(u64) -> bool) -> (f64, u64) {
    let start = Instant::now();
    let mut hits = 0u64;
    for q in batch {
        hits += u64::from(contains(*q));
    }
    (start.elapsed().as_secs_f64(), hits)
}

/// What an Instant::now() + elapsed() pair costs on its own (in every timed look-up).
fn timer_overhead() -> Duration {
    let mut d = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t = Instant::now();
        d.push(t.elapsed());
    }
    Lat::of(d).p50
}

// ---- one row of the comparison ------------------------------------------------------------

#[derive(Default)]
pub struct Row {
    pub name: String,
    /// Bytes per number in memory (the structure a look-up needs resident).
    pub mem_per: Option<f64>,
    pub disk_per: Option<f64>,
    /// Seconds to build or load the whole registry (extrapolated when `load_note` says so).
    pub load_secs: Option<f64>,
    pub load_note: String,
    /// Single look-ups per second on one core.
    pub single_rate: Option<f64>,
    pub single_note: String,
    /// The same look-ups handed over as one unsorted batch.
    pub many_rate: Option<f64>,
    pub lat: Option<Lat>,
    /// Sorted-batch numbers per second.
    pub batch_rate: Option<f64>,
    /// The sorted batch on every core: (cores, numbers per second).
    pub batch_rate_all: Option<(usize, f64)>,
    pub batch_note: String,
}

fn ratio(ours: Option<f64>, theirs: Option<f64>, higher_is_better: bool) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
            let r = if higher_is_better { a / b } else { b / a };
            if r >= 100.0 {
                format!("{r:.0}x")
            } else if r >= 10.0 {
                format!("{r:.1}x")
            } else {
                format!("{r:.2}x")
            }
        }
        _ => "-".into(),
    }
}

// ---- the run ------------------------------------------------------------------------------

struct Scratch {
    dir: PathBuf,
    pg_db: Option<(String, String)>,
    keep: bool,
}

impl Scratch {
    async fn clean(&mut self) {
        if self.keep {
            println!("\nkept: {}", self.dir.display());
            if let Some((_, db)) = &self.pg_db {
                println!("kept: PostgreSQL database {db}");
            }
            return;
        }
        if let Some((base, db)) = self.pg_db.take() {
            if let Err(e) = peers::drop_pg_database(&base, &db).await {
                eprintln!("could not drop PostgreSQL database {db}: {e}");
            }
        }
        if self.dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                eprintln!("could not remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// The import as the operator runs it: the release binary on a fresh data directory.
struct Import {
    secs: f64,
    peak_rss_kib: u64,
    stdout: String,
    cpu: sys::CpuUse,
}

fn run_import(
    bin: &Path,
    data: &Path,
    file: &Path,
    scratch: &Path,
    database_url: Option<&str>,
) -> Res<Import> {
    let out_path = scratch.join("import.out");
    let err_path = scratch.join("import.err");
    let mut cmd = std::process::Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CALLGUARD_") {
            cmd.env_remove(&k);
        }
    }
    if let Some(url) = database_url {
        cmd.env("CALLGUARD_DATABASE_URL", url);
    }
    cmd.env_remove("RUST_LOG")
        .env("CALLGUARD_DATA_DIR", data)
        .arg("dnc")
        .arg("import")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?);
    let window = CpuWindow::start(None);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id().to_string();
    let mut peak = 0u64;
    let status = loop {
        peak = peak.max(sys::status_kib(&pid, "VmHWM:"));
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = window.stop();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        return Err(format!("`callguard dnc import` failed ({status}): {stderr}{stdout}").into());
    }
    Ok(Import {
        secs,
        peak_rss_kib: peak,
        stdout,
        cpu,
    })
}

/// `callguard dnc import` on PostgreSQL (issue #15): the set stored in the database as a new
/// version, then what one node pays to load it from there (`Dnc::sync_shared`, what every node
/// does at start and when it hears of a new version).
async fn shared_import(
    bin: &Path,
    base: &str,
    file: &Path,
    count: u64,
    scratch: &mut Scratch,
    disturbed: &mut Disturbance,
) -> Res<()> {
    let db = format!(
        "callguard_bench_dnc_shared_{}",
        uuid::Uuid::new_v4().simple()
    );
    peers::create_pg_database(base, &db).await?;
    let url = format!("{base}/{db}");
    let outcome = async {
        let data = scratch.dir.join("data-shared");
        std::fs::create_dir_all(&data)?;
        let import = run_import(bin, &data, file, &scratch.dir, Some(&url))?;
        say(&format!(
            "\n`callguard dnc import` with CALLGUARD_DATABASE_URL on PostgreSQL (the registry stored in the database for every node):\n  \
             wall {:.1} s = {} numbers/s; CPU {:.1} s; peak RSS {}; {}",
            import.secs,
            per_s(count, import.secs),
            import.cpu.own,
            mib(import.peak_rss_kib * 1024),
            disturbed.note("shared import", &import.cpu)
        ));
        let store = callguard_store::PostgresStore::connect(&url)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let stored: i64 = {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(conn);
            let row = client
                .query_one("SELECT pg_total_relation_size('dnc_registry_chunks')", &[])
                .await?;
            drop(client);
            let _ = task.await;
            row.get(0)
        };
        let empty = scratch.dir.join("node-dnc");
        let dnc = Dnc::open(&empty, DncSettings::default())?;
        let before = sys::status_kib("self", "VmRSS:");
        let window = CpuWindow::start(None);
        let t = Instant::now();
        let switched = dnc.sync_shared(&store).await?;
        let secs = t.elapsed().as_secs_f64();
        let cpu = window.stop();
        let after = sys::status_kib("self", "VmRSS:");
        let numbers = dnc.current().map_or(0, |r| r.set.len());
        if !switched || numbers != count {
            return Err(format!("the node loaded {numbers} numbers, {count} were imported").into());
        }
        say(&format!(
            "  stored: {} in dnc_registry_chunks = {:.3} bytes per number\n  \
             a node loading it (Dnc::sync_shared: chunks read, SHA-256 checked, set rebuilt): {:.2} s; VmRSS +{}; {}",
            mib(u64::try_from(stored).unwrap_or(0)),
            stored as f64 / count as f64,
            secs,
            mib(after.saturating_sub(before) * 1024),
            disturbed.note("shared load", &cpu)
        ));
        drop(dnc);
        let _ = std::fs::remove_dir_all(&data);
        Ok::<(), BoxError>(())
    }
    .await;
    if !scratch.keep {
        if let Err(e) = peers::drop_pg_database(base, &db).await {
            eprintln!("could not drop PostgreSQL database {db}: {e}");
        }
    }
    outcome
}

/// Child mode: what loading the registry costs a process, as the server loads it.
fn load_registry(dir: &Path) -> Res<()> {
    let before = sys::status_kib("self", "VmRSS:");
    let start = Instant::now();
    let dnc = Dnc::open(dir, DncSettings::default()).map_err(|e| format!("load: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let numbers = dnc.current().map_or(0, |r| r.set.len());
    let after = sys::status_kib("self", "VmRSS:");
    let hwm = sys::status_kib("self", "VmHWM:");
    println!("{before} {after} {hwm} {secs} {numbers}");
    std::hint::black_box(&dnc);
    Ok(())
}

struct Loaded {
    rss_before_kib: u64,
    rss_after_kib: u64,
    hwm_kib: u64,
    secs: f64,
    numbers: u64,
}

fn measure_load(dnc_dir: &Path) -> Res<Loaded> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--load-registry")
        .arg(dnc_dir)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "the loader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    let get = |i: usize| -> Res<&str> {
        f.get(i)
            .copied()
            .ok_or_else(|| format!("the loader said {text:?}").into())
    };
    Ok(Loaded {
        rss_before_kib: get(0)?.parse()?,
        rss_after_kib: get(1)?.parse()?,
        hwm_kib: get(2)?.parse()?,
        secs: get(3)?.parse()?,
        numbers: get(4)?.parse()?,
    })
}

fn write_registry(numbers: &[u64], path: &Path) -> Res<u64> {
    let mut w = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    let mut line = [0u8; 11];
    for v in numbers {
        plan::line(*v, &mut line);
        w.write_all(&line)?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The registry file the import made, and its size.
fn registry_file(dnc_dir: &Path) -> Res<(PathBuf, u64)> {
    let pointer = std::fs::read_to_string(dnc_dir.join("current.json"))?;
    let file = pointer
        .split("\"file\"")
        .nth(1)
        .and_then(|r| r.split('"').nth(1))
        .ok_or("current.json names no file")?;
    let path = dnc_dir.join(file);
    let size = std::fs::metadata(&path)?.len();
    Ok((path, size))
}

async fn run(opts: &Options, scratch: &mut Scratch) -> Res<()> {
    let machine = sys::machine();
    let bin = opts.bin.clone().ok_or("--bin is needed")?;
    let count = opts.count;
    let peer_count = opts.peer_count.unwrap_or(count);
    let started = Instant::now();
    let mut disturbed = Disturbance(Vec::new());
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    say(&format!(
        "Callguard Do-Not-Call registry benchmark (issue #5), {now}\n\
         machine: {} cores (available_parallelism), {}, {:.1} GiB RAM ({:.1} GiB available at start), Linux {}\n\
         registry: {} synthetic valid NANP numbers (seed {}), 10 digits per line in random order; callguard binary {}\n",
        machine.cores,
        machine.cpu,
        machine.memory_gib,
        sys::meminfo_kib("MemAvailable:") as f64 / 1024.0 / 1024.0,
        machine.kernel,
        n(count),
        opts.seed,
        bin.display()
    ));
    std::fs::create_dir_all(&scratch.dir)?;

    // 1. The registry file.
    let plan = Plan::new(opts.seed);
    let t = Instant::now();
    let mut numbers = vec![0u64; count as usize];
    plan.fill(0, &mut numbers);
    let gen_secs = t.elapsed().as_secs_f64();
    let file = scratch.dir.join("registry.txt");
    let t = Instant::now();
    let file_size = write_registry(&numbers, &file)?;
    say(&format!(
        "generated {} numbers in {:.1} s, wrote {} ({}) in {:.1} s",
        n(count),
        gen_secs,
        file.display(),
        mib(file_size),
        t.elapsed().as_secs_f64()
    ));

    // 2. The import.
    let data = scratch.dir.join("data");
    // `dnc import` works on an existing installation only.
    std::fs::create_dir_all(&data)?;
    let import = run_import(&bin, &data, &file, &scratch.dir, None)?;
    let dnc_dir = data.join("dnc");
    let (reg_path, reg_size) = registry_file(&dnc_dir)?;
    say(&format!(
        "\n`callguard dnc import {}` on a fresh data directory:\n  {}\n  wall {:.1} s = {} numbers/s; CPU {:.1} s; peak RSS {}; {}",
        file.display(),
        import.stdout.trim(),
        import.secs,
        per_s(count, import.secs),
        import.cpu.own,
        mib(import.peak_rss_kib * 1024),
        disturbed.note("import", &import.cpu)
    ));

    // 3. Size on disk and in memory.
    let loaded = measure_load(&dnc_dir)?;
    if loaded.numbers != count {
        return Err(format!(
            "the registry holds {} numbers, {} were generated",
            loaded.numbers, count
        )
        .into());
    }
    let rss_delta = (loaded.rss_after_kib.saturating_sub(loaded.rss_before_kib)) * 1024;
    let mem_per = rss_delta as f64 / count as f64;
    let disk_per = reg_size as f64 / count as f64;
    say(&format!(
        "  on disk: {} ({} bytes) = {:.3} bytes per number\n\
         a fresh process loading it with callguard_server::features::dnc::registry::Dnc::open (what the server does):\n  \
         VmRSS {} before, {} after: +{} = {:.3} bytes per number; VmHWM {} (peak while loading); load {:.2} s",
        reg_path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default(),
        n(reg_size),
        disk_per,
        mib(loaded.rss_before_kib * 1024),
        mib(loaded.rss_after_kib * 1024),
        mib(rss_delta),
        mem_per,
        mib(loaded.hwm_kib * 1024),
        loaded.secs
    ));
    let dnc = Dnc::open(&dnc_dir, DncSettings::default())?;
    let registry = dnc.current().ok_or("no registry after the import")?;
    let set: &EliasFano = &registry.set;
    say(&format!(
        "  the set's own arrays: {} = {:.3} bytes per number (information-theoretic floor for {} of 10^10: {:.3})",
        mib(set.size_in_bytes()),
        set.size_in_bytes() as f64 / count as f64,
        n(count),
        floor_bytes_per(count, UNIVERSE)
    ));

    // 3b. Several nodes: the import stored in PostgreSQL, and a node loading it from there.
    if let Some(base) = &opts.pg {
        shared_import(&bin, base, &file, count, scratch, &mut disturbed).await?;
    }

    // 4. Queries.
    let t = Instant::now();
    let q = Queries::make(
        &plan,
        opts.seed ^ 0x51_6e_67_6c_65,
        count,
        count,
        opts.lookups,
        opts.batch,
    );
    say(&format!(
        "\nqueries: {} single look-ups (random valid numbers, {} of them on the registry), a sorted batch of {} distinct numbers (half drawn from the registry); made in {:.1} s",
        n(q.single.len() as u64),
        n(q.expected_hits(q.single.len())),
        n(q.batch.len() as u64),
        t.elapsed().as_secs_f64()
    ));
    let overhead = timer_overhead();
    say(&format!(
        "single look-ups run on one thread; the latencies are of {} look-ups timed one by one and include the timer's own {} (Instant::now + elapsed)",
        n(opts.latency as u64),
        ns(overhead)
    ));

    // 5. Callguard's registry.
    let mut rows: Vec<Row> = Vec::new();
    let window = CpuWindow::start(None);
    let single = single_lookups(&q.single, opts.latency, |v| set.contains(v));
    let cpu = window.stop();
    check_hits(
        "Callguard single",
        single.hits,
        q.expected_hits(q.single.len()),
    )?;
    // The same look-ups handed over together, in their random order.
    let window_many = CpuWindow::start(None);
    let mut answers = vec![false; q.single.len()];
    let t = Instant::now();
    set.contains_many(&q.single, &mut answers);
    let many_secs = t.elapsed().as_secs_f64();
    let cpu_many = window_many.stop();
    check_hits(
        "Callguard contains_many",
        answers.iter().filter(|a| **a).count() as u64,
        q.expected_hits(q.single.len()),
    )?;
    drop(answers);
    let mut answers = vec![false; q.batch.len()];
    let window2 = CpuWindow::start(None);
    let t = Instant::now();
    set.contains_sorted(&q.batch, &mut answers);
    let batch_secs = t.elapsed().as_secs_f64();
    let cpu2 = window2.stop();
    let batch_hits = answers.iter().filter(|a| **a).count() as u64;
    // The answer every other structure must give (checked against the sorted array below).
    let reference_hits = batch_hits;
    // A scrub may use every core: the batch in one contiguous part per core.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    answers.fill(false);
    let window3 = CpuWindow::start(None);
    let t = Instant::now();
    let part = q.batch.len().div_ceil(cores).max(1);
    std::thread::scope(|s| {
        for (values, out) in q.batch.chunks(part).zip(answers.chunks_mut(part)) {
            s.spawn(move || set.contains_sorted(values, out));
        }
    });
    let all_secs = t.elapsed().as_secs_f64();
    let cpu3 = window3.stop();
    check_hits(
        "Callguard sorted batch on every core",
        answers.iter().filter(|a| **a).count() as u64,
        reference_hits,
    )?;
    drop(answers);
    say(&format!(
        "\nCallguard (Elias-Fano, callguard_core::dnc::elias_fano):\n  single, one at a time (EliasFano::contains): {} look-ups in {:.2} s = {}; {}; {}\n  the same look-ups in one unsorted batch (EliasFano::contains_many, {} at a time): {:.2} s = {}; {}\n  sorted batch (EliasFano::contains_sorted), one thread: {} numbers in {:.3} s = {}, {} on the registry; {}\n  the same batch on {} threads (one per core, a contiguous part each): {:.3} s = {}; {}",
        n(single.done),
        single.rate_secs,
        per_s(single.done, single.rate_secs),
        single.lat,
        disturbed.note("Callguard single look-ups", &cpu),
        32,
        many_secs,
        per_s(q.single.len() as u64, many_secs),
        disturbed.note("Callguard contains_many", &cpu_many),
        n(q.batch.len() as u64),
        batch_secs,
        per_s(q.batch.len() as u64, batch_secs),
        n(batch_hits),
        disturbed.note("Callguard sorted batch", &cpu2),
        cores,
        all_secs,
        per_s(q.batch.len() as u64, all_secs),
        disturbed.note("Callguard sorted batch on every core", &cpu3)
    ));
    // The server's own per-number path: parse what the dialer sent, then look it up.
    let texts: Vec<String> = q
        .single
        .iter()
        .take(1_000_000)
        .map(|v| format!("+1{v}"))
        .collect();
    let t = Instant::now();
    let mut blocked = 0u64;
    for text in &texts {
        blocked += u64::from(!dnc.check(&registry, text).allowed);
    }
    let check_secs = t.elapsed().as_secs_f64();
    check_hits("Dnc::check", blocked, q.expected_hits(texts.len()))?;
    say(&format!(
        "  Dnc::check(registry, \"+1…\") (parse the text, then look up; the per-number path of POST /api/v1/dnc/check): {} in {:.2} s = {}",
        n(texts.len() as u64),
        check_secs,
        per_s(texts.len() as u64, check_secs)
    ));
    drop(texts);
    rows.push(Row {
        name: "Callguard".into(),
        mem_per: Some(mem_per),
        disk_per: Some(disk_per),
        load_secs: Some(import.secs),
        load_note: "callguard dnc import".into(),
        single_rate: Some(single.done as f64 / single.rate_secs),
        many_rate: Some(q.single.len() as f64 / many_secs),
        lat: Some(single.lat),
        batch_rate: Some(q.batch.len() as f64 / batch_secs),
        batch_rate_all: Some((cores, q.batch.len() as f64 / all_secs)),
        ..Row::default()
    });

    // 6. Baselines in this process.
    let t = Instant::now();
    numbers.sort_unstable();
    let sort_secs = t.elapsed().as_secs_f64();
    if opts.baselines {
        rows.extend(baselines(
            opts,
            &numbers,
            &q,
            sort_secs,
            reference_hits,
            &mut disturbed,
        )?);
    }
    drop(registry);
    drop(dnc);

    // 7. The databases.
    let peer_q_owned;
    let peer_q: &Queries = if peer_count == count {
        &q
    } else {
        peer_q_owned = Queries::make(
            &plan,
            opts.seed ^ 0x70_65_65_72,
            peer_count,
            count,
            opts.peer_lookups,
            opts.peer_batch,
        );
        &peer_q_owned
    };
    let peer_single = &peer_q.single[..peer_q.single.len().min(opts.peer_lookups)];
    let peer_batch = spaced(&peer_q.batch, opts.peer_batch);
    let peer_sorted: Vec<u64> = if peer_count == count {
        Vec::new()
    } else {
        let mut p = numbers_of_peer(&plan, peer_count);
        p.sort_unstable();
        p
    };
    let peer_members: &[u64] = if peer_count == count {
        &numbers
    } else {
        &peer_sorted
    };
    let peer_ctx = peers::Ctx {
        opts,
        count,
        peer_count,
        sorted: peer_members,
        file: &file,
        single: peer_single,
        present: &peer_q.present,
        batch: &peer_batch,
        dir: &scratch.dir,
    };
    if peer_count != count || peer_single.len() < q.single.len() || peer_batch.len() < q.batch.len()
    {
        say(&format!(
            "\ndatabases: {} numbers loaded{}; up to {} single look-ups each (time box {} s){}; {} numbers of the sorted batch (every {}th, time box {} s)",
            n(peer_count),
            if peer_count == count {
                " (the whole registry)".to_owned()
            } else {
                format!(
                    " (the first {} lines of the registry file; their load time is extrapolated linearly to {})",
                    n(peer_count),
                    n(count)
                )
            },
            n(peer_single.len() as u64),
            opts.peer_seconds,
            if peer_count == count {
                ", the first of the same single look-ups"
            } else {
                ", their own queries of the same kind"
            },
            n(peer_batch.len() as u64),
            peer_q.batch.len().div_ceil(opts.peer_batch.max(1)).max(1),
            opts.peer_seconds
        ));
    }
    if opts.sqlite {
        let (row, cpus) = peers::sqlite(&peer_ctx)?;
        for (phase, c) in cpus {
            disturbed.note(&phase, &c);
        }
        rows.push(row);
    }
    if let Some(base) = &opts.pg {
        let db = format!(
            "cg_bench_dnc_{}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        peers::create_pg_database(base, &db).await?;
        scratch.pg_db = Some((base.clone(), db.clone()));
        let (row, cpus) = peers::postgres(&peer_ctx, base, &db).await?;
        for (phase, c) in cpus {
            disturbed.note(&phase, &c);
        }
        rows.push(row);
        scratch.clean_pg().await;
    }
    drop(numbers);

    summary(opts, &rows, &disturbed, started.elapsed().as_secs_f64());
    Ok(())
}

fn numbers_of_peer(plan: &Plan, peer_count: u64) -> Vec<u64> {
    let mut v = vec![0u64; peer_count as usize];
    plan.fill(0, &mut v);
    v
}

impl Scratch {
    async fn clean_pg(&mut self) {
        if self.keep {
            return;
        }
        if let Some((base, db)) = self.pg_db.take() {
            if let Err(e) = peers::drop_pg_database(&base, &db).await {
                eprintln!("could not drop PostgreSQL database {db}: {e}");
            }
        }
    }
}

fn check_hits(what: &str, got: u64, expected: u64) -> Res<()> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: {got} numbers found on the registry, {expected} expected").into())
    }
}

/// log2(C(U, n)) / 8 / n: the fewest bytes per number any exact set can average.
fn floor_bytes_per(count: u64, universe: u64) -> f64 {
    let (nn, u) = (count as f64, universe as f64);
    // Stirling: log2 C(u, n) ≈ u H(n/u) - 0.5 log2(2π n (1 - n/u)).
    let p = nn / u;
    let h = -(p * p.log2() + (1.0 - p) * (1.0 - p).log2());
    let bits = u * h - 0.5 * (2.0 * std::f64::consts::PI * nn * (1.0 - p)).log2();
    bits / 8.0 / nn
}

/// A 10^10-bit bitmap and the sorted array, asked the same.
fn baselines(
    opts: &Options,
    sorted: &[u64],
    q: &Queries,
    sort_secs: f64,
    reference_hits: u64,
    disturbed: &mut Disturbance,
) -> Res<Vec<Row>> {
    let count = sorted.len() as u64;
    let mut rows = Vec::new();
    // The bitmap.
    let t = Instant::now();
    let mut bits = vec![0u64; UNIVERSE.div_ceil(64) as usize];
    for v in sorted {
        if let Some(w) = bits.get_mut((v / 64) as usize) {
            *w |= 1 << (v % 64);
        }
    }
    let build = t.elapsed().as_secs_f64();
    let bytes = bits.len() as u64 * 8;
    let has = |v: u64| {
        bits.get((v / 64) as usize)
            .is_some_and(|w| (w >> (v % 64)) & 1 == 1)
    };
    let window = CpuWindow::start(None);
    let single = single_lookups(&q.single, opts.latency, has);
    let (batch_secs, batch_hits) = batch_scrub(&q.batch, has);
    let cpu = window.stop();
    check_hits(
        "bitmap single",
        single.hits,
        q.expected_hits(q.single.len()),
    )?;
    check_hits("bitmap batch", batch_hits, reference_hits)?;
    say(&format!(
        "\nbitmap (10^10 bits, {} = {:.3} bytes per number; built from the sorted numbers in {:.1} s):\n  single: {} = {}; {}\n  sorted batch: {} in {:.3} s = {}; {}",
        mib(bytes),
        bytes as f64 / count as f64,
        build,
        n(single.done),
        per_s(single.done, single.rate_secs),
        single.lat,
        n(q.batch.len() as u64),
        batch_secs,
        per_s(q.batch.len() as u64, batch_secs),
        disturbed.note("bitmap", &cpu)
    ));
    rows.push(Row {
        name: "bitmap".into(),
        mem_per: Some(bytes as f64 / count as f64),
        disk_per: Some(bytes as f64 / count as f64),
        load_secs: Some(sort_secs + build),
        load_note: "sort + set bits, in memory".into(),
        single_rate: Some(single.done as f64 / single.rate_secs),
        lat: Some(single.lat),
        batch_rate: Some(q.batch.len() as f64 / batch_secs),
        ..Row::default()
    });
    drop(bits);

    // The sorted array: binary search, and a galloping merge for the batch.
    let window = CpuWindow::start(None);
    let single = single_lookups(&q.single, opts.latency, |v| {
        sorted.binary_search(&v).is_ok()
    });
    let mut at = 0usize;
    let (batch_secs, batch_hits) = batch_scrub(&q.batch, |v| {
        let mut step = 1;
        let mut hi = at;
        while hi < sorted.len() && sorted[hi] < v {
            at = hi + 1;
            hi += step;
            step *= 2;
        }
        let hi = hi.min(sorted.len());
        at += sorted[at..hi].partition_point(|x| *x < v);
        sorted.get(at) == Some(&v)
    });
    let cpu = window.stop();
    check_hits(
        "sorted array single",
        single.hits,
        q.expected_hits(q.single.len()),
    )?;
    check_hits("sorted array batch", batch_hits, reference_hits)?;
    let bytes = count * 8;
    say(&format!(
        "\nsorted u64 array ({} = 8 bytes per number; sorted in {:.1} s):\n  single (binary search): {} = {}; {}\n  sorted batch (galloping merge): {} in {:.3} s = {}; {}",
        mib(bytes),
        sort_secs,
        n(single.done),
        per_s(single.done, single.rate_secs),
        single.lat,
        n(q.batch.len() as u64),
        batch_secs,
        per_s(q.batch.len() as u64, batch_secs),
        disturbed.note("sorted array", &cpu)
    ));
    rows.push(Row {
        name: "sorted array".into(),
        mem_per: Some(8.0),
        disk_per: Some(8.0),
        load_secs: Some(sort_secs),
        load_note: "sort, in memory".into(),
        single_rate: Some(single.done as f64 / single.rate_secs),
        lat: Some(single.lat),
        batch_rate: Some(q.batch.len() as f64 / batch_secs),
        ..Row::default()
    });
    Ok(rows)
}

fn summary(opts: &Options, rows: &[Row], disturbed: &Disturbance, total: f64) {
    let Some(ours) = rows.first() else {
        return;
    };
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_owned(), f);
    let mut out = String::new();
    out.push_str(&format!(
        "\nSummary at {} numbers (ratio: how many times better Callguard is, below 1 worse; Callguard's unsorted batch is set against the others' one-at-a-time rate)\n",
        n(opts.count)
    ));
    out.push_str(&format!(
        "  {:<13} {:>16} {:>14} {:>15} {:>20} {:>20} {:>18} {:>20}\n",
        "",
        "memory B/number",
        "disk B/number",
        "import/load",
        "single, one by one",
        "single p50 / p99",
        "unsorted batch",
        "sorted batch"
    ));
    out.push_str(&format!(
        "  {:<13} {:>16} {:>14} {:>15} {:>20} {:>20} {:>18} {:>20}\n",
        "", "", "", "", "look-ups/s/core", "", "look-ups/s/core", "numbers/s"
    ));
    for r in rows {
        let mem = opt(r.mem_per, &|v| format!("{v:.3}"));
        let disk = opt(r.disk_per, &|v| format!("{v:.3}"));
        let load = opt(r.load_secs, &|v| format!("{v:.1} s"));
        let single = opt(r.single_rate, &|v| per_s(v as u64, 1.0));
        let lat = r
            .lat
            .map_or("-".to_owned(), |l| format!("{} / {}", ns(l.p50), ns(l.p99)));
        let many = opt(r.many_rate, &|v| per_s(v as u64, 1.0));
        let batch = opt(r.batch_rate, &|v| per_s(v as u64, 1.0));
        out.push_str(&format!(
            "  {:<13} {:>16} {:>14} {:>15} {:>20} {:>20} {:>18} {:>20}\n",
            r.name, mem, disk, load, single, lat, many, batch
        ));
        if r.name != ours.name {
            out.push_str(&format!(
                "  {:<13} {:>16} {:>14} {:>15} {:>20} {:>20} {:>18} {:>20}\n",
                "  ratio",
                ratio(ours.mem_per, r.mem_per, false),
                ratio(ours.disk_per, r.disk_per, false),
                ratio(ours.load_secs, r.load_secs, false),
                ratio(ours.single_rate, r.single_rate, true),
                ratio(
                    ours.lat.map(|l| l.p50.as_secs_f64()),
                    r.lat.map(|l| l.p50.as_secs_f64()),
                    false
                ),
                // Callguard's batch against their best single rate.
                ratio(ours.many_rate, r.many_rate.or(r.single_rate), true),
                ratio(ours.batch_rate, r.batch_rate, true)
            ));
        }
    }
    for r in rows {
        for note in [&r.load_note, &r.single_note, &r.batch_note] {
            if !note.is_empty() && r.name != ours.name {
                out.push_str(&format!("  {}: {note}\n", r.name));
            }
        }
    }
    let scale = if opts.count == NATIONAL {
        String::new()
    } else {
        format!(" (at {}, not the national {})", n(opts.count), n(NATIONAL))
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    out.push_str(&format!("\nGoals (issue #5){scale}:\n"));
    let mut goal = |what: &str, figure: String, target: &str, met: bool| {
        out.push_str(&format!(
            "  {what:<44} {figure:>10}   goal {target:<10} {}\n",
            verdict(met)
        ));
    };
    if let Some(m) = ours.mem_per {
        goal(
            "bytes per number in memory (RSS)",
            format!("{m:.3}"),
            "<= 0.95",
            m <= 0.95,
        );
    }
    if let Some(s) = ours.single_rate {
        goal(
            "single look-ups per core, one at a time",
            per_s(s as u64, 1.0),
            ">= 20 M/s",
            s >= 20e6,
        );
    }
    if let Some(s) = ours.many_rate {
        goal(
            "single look-ups per core, as unsorted batch",
            per_s(s as u64, 1.0),
            ">= 20 M/s",
            s >= 20e6,
        );
    }
    if let Some(b) = ours.batch_rate {
        goal(
            "sorted batch scrub, one core",
            per_s(b as u64, 1.0),
            ">= 100 M/s",
            b >= 100e6,
        );
    }
    if let Some((cores, b)) = ours.batch_rate_all {
        goal(
            &format!("sorted batch scrub, {cores} cores"),
            per_s(b as u64, 1.0),
            ">= 100 M/s",
            b >= 100e6,
        );
    }
    if let Some(l) = ours.load_secs {
        goal(
            "full import (callguard dnc import)",
            format!("{l:.1} s"),
            "< 120 s",
            l < 120.0,
        );
    }
    let noisy: Vec<String> = disturbed
        .0
        .iter()
        .filter(|(_, c)| *c > 0.1)
        .map(|(p, c)| format!("{p} ({c:.2} cores)"))
        .collect();
    if noisy.is_empty() {
        out.push_str("\nother processes used under 0.1 core in every phase\n");
    } else {
        out.push_str(&format!(
            "\nWARNING: other processes used CPU during: {}; rates there are disturbed.\n",
            noisy.join(", ")
        ));
    }
    out.push_str(&format!("total run time {total:.0} s\n"));
    say(&out);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callguard-bench-dnc: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(dir) = &opts.load_registry {
        return match load_registry(dir) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("callguard-bench-dnc: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut scratch = Scratch {
        dir: opts
            .dir
            .join(format!("callguard-bench-dnc-{}-{tag}", std::process::id())),
        pg_db: None,
        keep: opts.keep,
    };
    let result = run(&opts, &mut scratch).await;
    scratch.clean().await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callguard-bench-dnc: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
