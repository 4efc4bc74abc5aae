//! The same look-ups on the databases a dialer's DNC list usually lives in: SQLite (a WITHOUT
//! ROWID table keyed by the number, loaded in one transaction) and PostgreSQL (a BIGINT primary
//! key loaded with COPY, as VICIdial-style systems keep their DNC tables).

use crate::sys::{CpuUse, CpuWindow};
use crate::{mib, n, per_s, say, Lat, Options, Res, Row, API_BATCH};
use futures_util::SinkExt;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the databases are given: the registry's first `peer_count` numbers and queries about
/// them.
pub struct Ctx<'a> {
    pub opts: &'a Options,
    pub count: u64,
    pub peer_count: u64,
    /// The numbers loaded, sorted: the reference answers come from them.
    pub sorted: &'a [u64],
    /// The registry file; the databases load its first `peer_count` lines.
    pub file: &'a Path,
    pub single: &'a [u64],
    /// Whether each single query is on the loaded set.
    pub present: &'a [bool],
    /// Sorted, distinct.
    pub batch: &'a [u64],
    pub dir: &'a Path,
}

impl Ctx<'_> {
    fn expected_single(&self, done: usize) -> u64 {
        self.present.iter().take(done).filter(|p| **p).count() as u64
    }

    fn expected_batch(&self, done: usize) -> u64 {
        self.batch
            .iter()
            .take(done)
            .filter(|v| self.sorted.binary_search(v).is_ok())
            .count() as u64
    }

    fn time_box(&self) -> Duration {
        Duration::from_secs_f64(self.opts.peer_seconds)
    }

    /// Seconds for the whole registry, from a load of `peer_count` numbers.
    fn scaled(&self, secs: f64) -> f64 {
        secs * self.count as f64 / self.peer_count as f64
    }

    fn load_note(&self, what: &str) -> String {
        if self.peer_count == self.count {
            what.to_owned()
        } else {
            format!(
                "{what}; extrapolated linearly from {} numbers",
                n(self.peer_count)
            )
        }
    }
}

fn check(what: &str, got: u64, expected: u64) -> Res<()> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: {got} numbers found, {expected} expected").into())
    }
}

type Phases = Vec<(String, CpuUse)>;

pub fn sqlite(c: &Ctx<'_>) -> Res<(Row, Phases)> {
    let path = c.dir.join("peer.sqlite");
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch("CREATE TABLE dnc (number INTEGER PRIMARY KEY) WITHOUT ROWID;")?;
    let mut phases = Vec::new();
    // Sorted input: appending in key order is the fast way to fill a B-tree.
    let window = CpuWindow::start(None);
    let t = Instant::now();
    conn.execute_batch("BEGIN")?;
    {
        let mut insert = conn.prepare("INSERT INTO dnc (number) VALUES (?1)")?;
        for v in c.sorted {
            insert.execute([*v as i64])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    let load = t.elapsed().as_secs_f64();
    let cpu = window.stop();
    let size = std::fs::metadata(&path)?.len();
    let version = rusqlite::version();
    say(&format!(
        "\nSQLite {version} (rusqlite, bundled), WITHOUT ROWID table, INTEGER PRIMARY KEY, one transaction, sorted input:\n  load {} numbers in {:.1} s = {} ({:.1} s for {} at that rate); file {} = {:.3} bytes per number; other processes {:.2} cores",
        n(c.peer_count),
        load,
        per_s(c.peer_count, load),
        c.scaled(load),
        n(c.count),
        mib(size),
        size as f64 / c.peer_count as f64,
        cpu.other_cores()
    ));
    phases.push(("SQLite load".to_owned(), cpu));
    // A page cache big enough for the index's upper levels and much of the rest; the file is
    // also in the OS page cache after the load.
    conn.execute_batch("PRAGMA cache_size = -1048576;")?;
    let mut stmt = conn.prepare("SELECT EXISTS (SELECT 1 FROM dnc WHERE number = ?1)")?;
    let window = CpuWindow::start(None);
    let (mut hits, mut lat) = (0u64, Vec::with_capacity(c.single.len()));
    let start = Instant::now();
    for (i, v) in c.single.iter().enumerate() {
        let t = Instant::now();
        let hit: bool = stmt.query_row([*v as i64], |r| r.get(0))?;
        lat.push(t.elapsed());
        hits += u64::from(hit);
        if i % 1024 == 1023 && start.elapsed() > c.time_box() {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let done = lat.len();
    let cpu = window.stop();
    check("SQLite single", hits, c.expected_single(done))?;
    let lat = Lat::of(lat);
    say(&format!(
        "  single (prepared SELECT EXISTS … WHERE number = ?1, cache_size 1 GiB): {} in {:.1} s = {}; {}; other processes {:.2} cores",
        n(done as u64),
        secs,
        per_s(done as u64, secs),
        lat,
        cpu.other_cores()
    ));
    phases.push(("SQLite single look-ups".to_owned(), cpu));
    let single_rate = done as f64 / secs;
    // The batch: the same statement in key order, inside one read transaction.
    let window = CpuWindow::start(None);
    let start = Instant::now();
    conn.execute_batch("BEGIN")?;
    let (mut bhits, mut bdone) = (0u64, 0usize);
    for chunk in c.batch.chunks(API_BATCH) {
        for v in chunk {
            let hit: bool = stmt.query_row([*v as i64], |r| r.get(0))?;
            bhits += u64::from(hit);
        }
        bdone += chunk.len();
        if start.elapsed() > c.time_box() {
            break;
        }
    }
    conn.execute_batch("COMMIT")?;
    let bsecs = start.elapsed().as_secs_f64();
    let cpu = window.stop();
    check("SQLite batch", bhits, c.expected_batch(bdone))?;
    say(&format!(
        "  sorted batch (the same statement in order, one read transaction): {} in {:.1} s = {}; other processes {:.2} cores",
        n(bdone as u64),
        bsecs,
        per_s(bdone as u64, bsecs),
        cpu.other_cores()
    ));
    phases.push(("SQLite sorted batch".to_owned(), cpu));
    drop(stmt);
    drop(conn);
    std::fs::remove_file(&path)?;
    Ok((
        Row {
            name: "SQLite".into(),
            mem_per: None,
            disk_per: Some(size as f64 / c.peer_count as f64),
            load_secs: Some(c.scaled(load)),
            load_note: c.load_note("load: sorted INSERTs in one transaction"),
            single_rate: Some(single_rate),
            many_rate: None,
            single_note: format!("single look-ups: {} done in the time box", n(done as u64)),
            lat: Some(lat),
            batch_rate: Some(bdone as f64 / bsecs),
            batch_rate_all: None,
            batch_note: format!(
                "sorted batch: {} numbers done in the time box",
                n(bdone as u64)
            ),
        },
        phases,
    ))
}

async fn connect(url: &str) -> Res<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            format!("PostgreSQL at {url} is not reachable ({e}); use --no-pg to skip it")
        })?;
    tokio::spawn(conn);
    Ok(client)
}

pub async fn create_pg_database(base: &str, db: &str) -> Res<()> {
    let admin = connect(&format!("{base}/postgres")).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    Ok(())
}

pub async fn drop_pg_database(base: &str, db: &str) -> Res<()> {
    let admin = connect(&format!("{base}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    Ok(())
}

pub async fn postgres(c: &Ctx<'_>, base: &str, db: &str) -> Res<(Row, Phases)> {
    let client = connect(&format!("{base}/{db}")).await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let pid = u32::try_from(pid)?;
    let setting = |name: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .map(|r| r.get::<_, String>(0))
                .unwrap_or_default()
        }
    };
    say(&format!(
        "\nPostgreSQL {} at {base} (shared_buffers {}, synchronous_commit {}, wal_level {}, max_parallel_maintenance_workers {}):",
        setting("server_version").await,
        setting("shared_buffers").await,
        setting("synchronous_commit").await,
        setting("wal_level").await,
        setting("max_parallel_maintenance_workers").await
    ));
    let mut phases = Vec::new();
    client
        .batch_execute("CREATE TABLE dnc (number bigint NOT NULL)")
        .await?;
    // COPY the registry file's lines as they are (10 digits per line is COPY's text format),
    // then build the primary key by sorting, the fast way to index a bulk load.
    let window = CpuWindow::start(Some(pid));
    let t = Instant::now();
    let sink = client.copy_in("COPY dnc (number) FROM STDIN").await?;
    futures_util::pin_mut!(sink);
    let mut file = std::fs::File::open(c.file)?;
    let mut remaining = c.peer_count * 11;
    let mut buf = vec![0u8; 4 << 20];
    while remaining > 0 {
        let k = buf.len().min(remaining as usize);
        let part = buf.get_mut(..k).ok_or("buffer")?;
        file.read_exact(part)?;
        sink.send(bytes::Bytes::copy_from_slice(part)).await?;
        remaining -= k as u64;
    }
    let copied = sink.finish().await?;
    let copy_secs = t.elapsed().as_secs_f64();
    if copied != c.peer_count {
        return Err(format!("COPY loaded {copied} rows, {} sent", c.peer_count).into());
    }
    let t = Instant::now();
    client
        .batch_execute("SET maintenance_work_mem = '1GB'; ALTER TABLE dnc ADD PRIMARY KEY (number)")
        .await?;
    let index_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // Sets the visibility map, so look-ups are index-only scans.
    client.batch_execute("VACUUM (ANALYZE) dnc").await?;
    let vacuum_secs = t.elapsed().as_secs_f64();
    let cpu = window.stop();
    let load = copy_secs + index_secs + vacuum_secs;
    let sizes = client
        .query_one(
            "SELECT pg_total_relation_size('dnc'), pg_relation_size('dnc'), pg_indexes_size('dnc')",
            &[],
        )
        .await?;
    let (total, heap, index): (i64, i64, i64) = (sizes.get(0), sizes.get(1), sizes.get(2));
    let total = u64::try_from(total)?;
    say(&format!(
        "  load {} numbers: COPY {:.1} s + ADD PRIMARY KEY (maintenance_work_mem 1GB) {:.1} s + VACUUM ANALYZE {:.1} s = {:.1} s = {} ({:.1} s for {} at that rate)\n  \
         pg_total_relation_size {} = {:.2} bytes per number (table {}, index {}); CPU: this process {:.1} s, its backend {:.1} s, other processes (PostgreSQL's checkpointer, WAL writer and parallel workers among them) {:.2} cores",
        n(c.peer_count),
        copy_secs,
        index_secs,
        vacuum_secs,
        load,
        per_s(c.peer_count, load),
        c.scaled(load),
        n(c.count),
        mib(total),
        total as f64 / c.peer_count as f64,
        mib(u64::try_from(heap)?),
        mib(u64::try_from(index)?),
        cpu.own,
        cpu.backend,
        cpu.other_cores()
    ));
    phases.push(("PostgreSQL load".to_owned(), cpu));
    // Single look-ups: one prepared statement, one at a time, as a per-call check does.
    let stmt = client
        .prepare("SELECT EXISTS (SELECT 1 FROM dnc WHERE number = $1)")
        .await?;
    let plan = client
        .query(
            "EXPLAIN SELECT EXISTS (SELECT 1 FROM dnc WHERE number = 2025550123)",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0).trim().to_owned())
        .filter(|l| l.contains("Scan"))
        .collect::<Vec<_>>()
        .join("; ");
    let window = CpuWindow::start(Some(pid));
    let (mut hits, mut lat) = (0u64, Vec::with_capacity(c.single.len()));
    let start = Instant::now();
    for (i, v) in c.single.iter().enumerate() {
        let t = Instant::now();
        let hit: bool = client.query_one(&stmt, &[&(*v as i64)]).await?.get(0);
        lat.push(t.elapsed());
        hits += u64::from(hit);
        if i % 256 == 255 && start.elapsed() > c.time_box() {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let done = lat.len();
    let cpu = window.stop();
    check("PostgreSQL single", hits, c.expected_single(done))?;
    let lat = Lat::of(lat);
    let cpu_per = (cpu.own + cpu.backend) / done.max(1) as f64;
    say(&format!(
        "  single (prepared SELECT EXISTS … WHERE number = $1, one connection; {plan}): {} in {:.1} s = {} on one connection; {}\n    \
         CPU per look-up {:.1} µs (backend {:.1} s + this process {:.1} s) = {} per core; other processes {:.2} cores",
        n(done as u64),
        secs,
        per_s(done as u64, secs),
        lat,
        cpu_per * 1e6,
        cpu.backend,
        cpu.own,
        per_s(done as u64, cpu.own + cpu.backend),
        cpu.other_cores()
    ));
    phases.push(("PostgreSQL single look-ups".to_owned(), cpu));
    // The batch: `= ANY($1)` with the API's batch size, in order.
    let stmt = client
        .prepare("SELECT number FROM dnc WHERE number = ANY($1)")
        .await?;
    let window = CpuWindow::start(Some(pid));
    let start = Instant::now();
    let (mut bhits, mut bdone) = (0u64, 0usize);
    for chunk in c.batch.chunks(API_BATCH) {
        let values: Vec<i64> = chunk.iter().map(|v| *v as i64).collect();
        bhits += client.query(&stmt, &[&values]).await?.len() as u64;
        bdone += chunk.len();
        if start.elapsed() > c.time_box() {
            break;
        }
    }
    let bsecs = start.elapsed().as_secs_f64();
    let cpu = window.stop();
    check("PostgreSQL batch", bhits, c.expected_batch(bdone))?;
    say(&format!(
        "  sorted batch (SELECT number … WHERE number = ANY($1), {} numbers per query, in order): {} in {:.1} s = {}; CPU backend {:.1} s, this process {:.1} s; other processes {:.2} cores",
        n(API_BATCH as u64),
        n(bdone as u64),
        bsecs,
        per_s(bdone as u64, bsecs),
        cpu.backend,
        cpu.own,
        cpu.other_cores()
    ));
    phases.push(("PostgreSQL sorted batch".to_owned(), cpu));
    Ok((
        Row {
            name: "PostgreSQL".into(),
            mem_per: None,
            disk_per: Some(total as f64 / c.peer_count as f64),
            load_secs: Some(c.scaled(load)),
            load_note: c.load_note("load: COPY, then ADD PRIMARY KEY and VACUUM ANALYZE"),
            single_rate: Some(done as f64 / (cpu_per * done as f64).max(1e-9)),
            many_rate: None,
            single_note: format!(
                "single look-ups: {} done in the time box; per core = per CPU second of backend + client ({} on one connection)",
                n(done as u64),
                per_s(done as u64, secs)
            ),
            lat: Some(lat),
            batch_rate: Some(bdone as f64 / bsecs),
            batch_rate_all: None,
            batch_note: format!(
                "sorted batch: {} numbers done in the time box",
                n(bdone as u64)
            ),
        },
        phases,
    ))
}
