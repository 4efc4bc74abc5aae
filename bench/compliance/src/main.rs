//! Compliance report benchmark (issue #14): builds a SQLite installation with a large audit log
//! (appended through the store, so the Merkle tree and the signed checkpoints are real) and many
//! customers (sealed-looking fields written straight into the table), starts the real alert
//! engine, then times `callguard compliance report` (the service behind it) twice: the first run
//! scans the whole log for card numbers, the second resumes after it. Prints the share of time
//! per control.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use callguard_core::audit::note::NoteSigner;
use callguard_server::features::alerts::service::{AlertSettings, Alerts};
use callguard_server::features::audit::service::{AuditLog, WitnessSettings};
use callguard_server::features::compliance::model::ComplianceSettings;
use callguard_server::features::compliance::service::Compliance;
use callguard_server::principal::Actor;
use callguard_store::{AuditRecord, Store};
use rand::RngCore;
use std::sync::Arc;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn record(i: u64, base: i64) -> AuditRecord {
    let who = format!("user:{:08x}-0000-4000-8000-{:012x}", i % 997, i % 997);
    let mut r = AuditRecord::new("auth.sign_in", who.clone());
    r.time = base + (i / 2000) as i64;
    r.source = Some(format!("198.51.100.{}", i % 250));
    match i % 8 {
        0..=3 => r.target(who).detail("method", "totp"),
        4 => r.target(who).failure().detail("reason", "wrong_password"),
        5 => {
            r.action = "customer.read".into();
            r.target(format!("customer:{:012}", i % 1_000_000))
        }
        6 => {
            r.action = "customer.reveal".into();
            r.target(format!("customer:{:012}", i % 1_000_000))
                .detail("field", "phones")
                .detail("reason", "callback")
        }
        _ => {
            r.action = "interaction.end".into();
            r.target(format!("interaction:{i}"))
        }
    }
}

async fn build_log(store: &Arc<dyn Store>, log: &AuditLog, entries: u64) -> Res<()> {
    let base = callguard_core::now() - (entries / 2000) as i64 - 10;
    let started = Instant::now();
    let (batch, mut next, mut done) = (10_000u64, 0u64, 0u64);
    let mut set = tokio::task::JoinSet::new();
    while done < entries {
        if next < entries && set.len() < 2 {
            let count = (entries - next).min(batch);
            let (store, first) = (store.clone(), next);
            set.spawn(async move {
                let records = (first..first + count).map(|i| record(i, base)).collect();
                store.append(records).await.map(|_| count)
            });
            next += count;
            continue;
        }
        let Some(finished) = set.join_next().await else {
            break;
        };
        done += finished??;
        if done % (entries / 10).max(batch) < batch {
            log.checkpoint().await?;
            eprintln!(
                "  log: {done} entries ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    log.checkpoint().await?;
    Ok(())
}

fn add_customers(path: &std::path::Path, n: u64) -> Res<()> {
    let mut c = rusqlite::Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(30))?;
    let tx = c.transaction()?;
    {
        let now = callguard_core::now();
        let mut st = tx.prepare(
            "INSERT INTO customers (id, status, version, wrapped_key, kek_id, fields, created_at, updated_at, verify_failures)
             VALUES (?1, 'active', 1, ?2, 'bench', ?3, ?4, ?4, 0)",
        )?;
        let mut rng = rand::thread_rng();
        let mut buf = [0u8; 48];
        for i in 0..n {
            rng.fill_bytes(&mut buf);
            let sealed = data_encoding::BASE64.encode(&buf);
            let fields = format!(
                "{{\"full_name\":\"{sealed}\",\"phones\":\"{sealed}\",\"emails\":\"{sealed}\"}}"
            );
            st.execute(rusqlite::params![
                format!("{i:012}"),
                &buf[..40],
                fields,
                now - 86_400
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let entries = arg("--entries", 10_000_000);
    let customers = arg("--customers", 1_000_000);
    let dir =
        std::env::temp_dir().join(format!("callguard-bench-compliance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("callguard.db");
    let store = callguard_store::open(None, &db).await?;
    let witness = WitnessSettings {
        dir: dir.join("witness"),
        syslog: None,
        url: None,
    };
    let log = Arc::new(AuditLog::new(
        store.clone(),
        NoteSigner::generate("bench/compliance")?,
        witness,
    )?);
    eprintln!(
        "building: {entries} audit entries, {customers} customers in {}",
        dir.display()
    );
    let t = Instant::now();
    build_log(&store, &log, entries).await?;
    let log_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    add_customers(&db, customers)?;
    let customer_secs = t.elapsed().as_secs_f64();
    eprintln!("built in {log_secs:.1} s (log) + {customer_secs:.1} s (customers)");

    let kek = callguard_core::kek::Keyring::new(
        callguard_core::kek::KeyEncryptionKey::generate(),
        Vec::new(),
    );
    let alerts = Arc::new(Alerts::new(
        store.clone(),
        Arc::new(kek),
        AlertSettings::default(),
        Arc::default(),
    ));
    tokio::spawn(alerts.run_engine());
    let mut settings = ComplianceSettings::defaults(&dir);
    settings.witness_file = dir.join("witness").join("checkpoints.jsonl");
    settings.key_files = Vec::new();
    let compliance = Compliance::new(store.clone(), log.clone(), settings);
    for run in ["first run (whole log scanned)", "second run (scan resumes)"] {
        let t = Instant::now();
        let (report, timings) = compliance.report(&Actor::cli(), None).await?;
        let total = t.elapsed().as_secs_f64();
        let failing: Vec<String> = report
            .controls
            .iter()
            .filter(|c| c.status == callguard_server::features::compliance::model::Status::Fail)
            .map(|c| format!("{} {}", c.framework.as_str(), c.id))
            .collect();
        println!(
            "\n{run}: {total:.2} s for {} controls over {entries} entries and {customers} customers (failing: {})",
            report.controls.len(),
            if failing.is_empty() { "none".to_owned() } else { failing.join(", ") }
        );
        let mut sorted = timings.clone();
        sorted.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
        for (id, d) in sorted.iter().take(8) {
            let s = d.as_secs_f64();
            println!("  {id:<20} {s:>8.3} s {:>5.1} %", 100.0 * s / total);
        }
        let rest: f64 = sorted.iter().skip(8).map(|(_, d)| d.as_secs_f64()).sum();
        println!(
            "  {:<20} {rest:>8.3} s {:>5.1} %",
            "all other controls",
            100.0 * rest / total
        );
    }
    if std::env::args().all(|a| a != "--keep") {
        drop(compliance);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
