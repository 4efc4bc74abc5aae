//! What the machine is, memory and CPU time from /proc: this process with its finished children
//! (the import), the PostgreSQL backend it talks to, and the machine as a whole, so the report can
//! say how much CPU other processes took while a phase ran.

use std::time::Instant;

/// USER_HZ: the unit of CPU times in /proc (100 on every Linux ABI).
const CLOCK_TICKS: f64 = 100.0;

pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let memory_gib = meminfo_kib("MemTotal:") as f64 / 1024.0 / 1024.0;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu,
        memory_gib,
        kernel,
    }
}

/// A line of /proc/meminfo, in KiB.
pub fn meminfo_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A `VmRSS:`-style line of /proc/PID/status, in KiB (0 when the process is gone).
pub fn status_kib(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Fields of /proc/PID/stat after the command name (which may hold spaces), numbered as in
/// proc(5).
fn stat_fields(pid: &str) -> Vec<f64> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Vec::new();
    };
    let Some((_, rest)) = text.rsplit_once(')') else {
        return Vec::new();
    };
    rest.split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0))
        .collect()
}

fn field(f: &[f64], n: usize) -> f64 {
    f.get(n - 3).copied().unwrap_or(0.0) / CLOCK_TICKS
}

/// CPU seconds (user + system) of a process so far; 0 when it is gone.
pub fn process_cpu(pid: &str) -> f64 {
    let f = stat_fields(pid);
    field(&f, 14) + field(&f, 15)
}

/// CPU seconds of this process and of its children that have been waited for.
fn own_cpu() -> f64 {
    let f = stat_fields("self");
    field(&f, 14) + field(&f, 15) + field(&f, 16) + field(&f, 17)
}

/// Machine-wide busy CPU seconds, summed over all cores.
fn machine_busy() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0.0) / CLOCK_TICKS;
    // user nice system idle iowait irq softirq steal
    g(0) + g(1) + g(2) + g(5) + g(6)
}

/// CPU accounting over one phase: this process (with its finished children), a PostgreSQL
/// backend when one answers, and everything else.
pub struct CpuWindow {
    at: Instant,
    own: f64,
    backend: Option<(String, f64)>,
    machine: f64,
}

pub struct CpuUse {
    pub wall: f64,
    pub own: f64,
    pub backend: f64,
    pub others: f64,
}

impl CpuWindow {
    pub fn start(backend: Option<u32>) -> Self {
        let backend = backend.map(|p| {
            let p = p.to_string();
            let cpu = process_cpu(&p);
            (p, cpu)
        });
        Self {
            at: Instant::now(),
            own: own_cpu(),
            backend,
            machine: machine_busy(),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let own = own_cpu() - self.own;
        let backend = self
            .backend
            .as_ref()
            .map_or(0.0, |(p, before)| (process_cpu(p) - before).max(0.0));
        let machine = machine_busy() - self.machine;
        CpuUse {
            wall: self.at.elapsed().as_secs_f64(),
            own,
            backend,
            others: (machine - own - backend).max(0.0),
        }
    }
}

impl CpuUse {
    /// Cores' worth of CPU other processes used.
    pub fn other_cores(&self) -> f64 {
        if self.wall > 0.0 {
            self.others / self.wall
        } else {
            0.0
        }
    }
}
