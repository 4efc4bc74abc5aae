//! What the machine is, and CPU time from /proc: per process (the server, the baseline server,
//! this load generator) and machine-wide, so the report can say how much CPU other processes
//! took while a phase ran.

use std::collections::HashMap;
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
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu,
        memory_gib,
        kernel,
    }
}

/// CPU seconds (user + system) of a process so far (`self` for this one); 0 when it is gone.
pub fn process_cpu(pid: &str) -> f64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces; utime is
    // field 14 and stime 15 (proc(5)).
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(14) + field(15)) / CLOCK_TICKS
}

/// Machine-wide CPU seconds, summed over all cores: (user + nice + system, irq + softirq).
/// Interrupt time is charged to no process; on loopback it is mostly our own traffic.
fn machine_busy() -> (f64, f64) {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0.0) / CLOCK_TICKS;
    // user nice system idle iowait irq softirq steal
    (g(0) + g(1) + g(2), g(5) + g(6))
}

/// CPU seconds so far of every process: pid -> (name, seconds).
fn all_processes() -> HashMap<String, (String, f64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cpu = process_cpu(&pid);
            (pid, (comm.trim().to_owned(), cpu))
        })
        .collect()
}

/// CPU seconds of every process named `postgres` (the PostgreSQL server and its backends).
pub fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|e| process_cpu(&e.file_name().to_string_lossy()))
        .sum::<f64>()
        + 0.0
}

/// CPU accounting over one phase: the process that answers (the server or the baseline), the
/// other server process (idle then), this load generator, and the machine.
pub struct CpuWindow {
    pids: Vec<String>,
    before: Vec<f64>,
    client: f64,
    machine: (f64, f64),
    processes: HashMap<String, (String, f64)>,
    /// PostgreSQL's CPU so far, when the phase runs on it.
    postgres: Option<f64>,
    at: Instant,
}

pub struct CpuUse {
    pub wall: f64,
    /// CPU seconds of the process under test.
    pub server: f64,
    /// CPU seconds of this process (the load generator).
    pub client: f64,
    /// CPU seconds of our other server process, idle meanwhile.
    pub idle: f64,
    /// CPU seconds of PostgreSQL, when the phase runs on it (not counted in `others`).
    pub postgres: Option<f64>,
    /// CPU seconds of every other process on the machine (user and system time).
    pub others: f64,
    /// Interrupt CPU seconds, charged to no process (mostly our loopback traffic).
    pub interrupts: f64,
    /// The other processes that used the most CPU: (name, seconds).
    pub top_others: Vec<(String, f64)>,
}

impl CpuWindow {
    /// `pids[0]` is the process under test; the rest are ours too and count as neither.
    pub fn start(pids: &[u32], postgres: bool) -> Self {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        Self {
            postgres: postgres.then(postgres_cpu),
            before: pids.iter().map(|p| process_cpu(p)).collect(),
            pids,
            client: process_cpu("self"),
            machine: machine_busy(),
            processes: all_processes(),
            at: Instant::now(),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let now = machine_busy();
        let machine = now.0 - self.machine.0;
        let interrupts = now.1 - self.machine.1;
        let ours: Vec<String> = self
            .pids
            .iter()
            .cloned()
            .chain([std::process::id().to_string()])
            .collect();
        let mut top_others: Vec<(String, f64)> = all_processes()
            .into_iter()
            .filter(|(pid, _)| !ours.contains(pid))
            .filter(|(_, (name, _))| self.postgres.is_none() || name != "postgres")
            .map(|(pid, (name, cpu))| {
                let before = self.processes.get(&pid).map_or(0.0, |p| p.1);
                (name, cpu - before)
            })
            .filter(|(_, d)| *d > 0.0)
            .collect();
        top_others.sort_by(|a, b| b.1.total_cmp(&a.1));
        top_others.truncate(3);
        let used: Vec<f64> = self
            .pids
            .iter()
            .zip(&self.before)
            .map(|(p, b)| (process_cpu(p) - b).max(0.0))
            .collect();
        let client = process_cpu("self") - self.client;
        let postgres = self.postgres.map(|b| (postgres_cpu() - b).max(0.0));
        let ours: f64 = used.iter().sum::<f64>() + client + postgres.unwrap_or(0.0);
        CpuUse {
            wall: self.at.elapsed().as_secs_f64(),
            server: used.first().copied().unwrap_or(0.0),
            client,
            idle: used.iter().skip(1).sum::<f64>() + 0.0,
            postgres,
            others: (machine - ours).max(0.0),
            interrupts,
            top_others,
        }
    }
}
