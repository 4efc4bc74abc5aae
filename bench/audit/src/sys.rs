//! What the machine is, and CPU time from /proc (for the profile lines of the report).

use crate::Res;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// USER_HZ: the unit of CPU times in /proc (100 on every Linux ABI).
const CLOCK_TICKS: f64 = 100.0;

pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let flags = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let sha = if flags.split_whitespace().any(|f| f == "sha_ni") {
        ", SHA extensions"
    } else {
        ""
    };
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu: format!("{cpu}{sha}"),
        memory_gib,
        kernel,
    }
}

/// The mean time of one 4 KiB write + fdatasync in `dir`: the floor under every group commit.
pub fn fdatasync_probe(dir: &Path, rounds: u32) -> Res<Duration> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let start = Instant::now();
    for _ in 0..rounds {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    let per = start.elapsed() / rounds.max(1);
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(per)
}

fn ticks_of_stat(stat: &str) -> Option<u64> {
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of this process so far.
pub fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks_of_stat(&s))
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS)
}

/// CPU time of this process's threads whose name starts with `name`.
pub fn thread_cpu(name: &str) -> Duration {
    let mut ticks = 0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end().starts_with(name) {
                ticks += std::fs::read_to_string(task.path().join("stat"))
                    .ok()
                    .and_then(|s| ticks_of_stat(&s))
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS)
}
