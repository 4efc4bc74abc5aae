//! `callguard compliance`: the signed control-by-control report (text, JSON, HTML, PDF), its
//! offline verification, and the retention purge run on demand.

use callguard_server::features::compliance::model::{Framework, Status};
use callguard_server::features::compliance::{render, service};
use callguard_server::principal::Actor;
use std::path::{Path, PathBuf};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// The report's output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
    Pdf,
}

/// Runs the report; `Ok(false)` when a control fails (the exit status is then 1).
pub async fn report(
    settings: &callguard_server::Settings,
    framework: Option<&str>,
    format: Format,
    out: Option<&Path>,
    timings: bool,
) -> Result<bool, AnyError> {
    let framework = match framework {
        None | Some("all") => None,
        Some(f) => Some(
            Framework::parse(f)
                .ok_or_else(|| format!("--framework {f:?}: use pci, gdpr, iso27001 or all"))?,
        ),
    };
    let rt = callguard_server::Runtime::open(settings).await?;
    let compliance = rt.compliance(settings);
    let (report, spent) = compliance
        .report(&Actor::cli(), framework)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = match format {
        Format::Text => render::text(&report).into_bytes(),
        Format::Json => {
            let mut j = serde_json::to_vec_pretty(&report)?;
            j.push(b'\n');
            j
        }
        Format::Html => render::html(&report).into_bytes(),
        Format::Pdf => render::pdf(&report),
    };
    match out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None if format == Format::Pdf => {
            return Err("a PDF goes to a file: add --out FILE.pdf".into());
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), &bytes)?,
    }
    if timings {
        let total: f64 = spent.iter().map(|(_, d)| d.as_secs_f64()).sum();
        eprintln!("time per control (total {total:.2} s):");
        let mut sorted = spent.clone();
        sorted.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
        for (id, d) in sorted {
            let s = d.as_secs_f64();
            eprintln!(
                "  {id:<22} {s:>8.3} s {:>5.1} %",
                100.0 * s / total.max(1e-9)
            );
        }
    }
    let failing: Vec<String> = report
        .controls
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{} {}", c.framework.as_str(), c.id))
        .collect();
    if !failing.is_empty() {
        eprintln!(
            "compliance report: failing controls: {}",
            failing.join(", ")
        );
    }
    Ok(failing.is_empty())
}

/// Verifies a JSON report offline.
pub fn verify(file: &PathBuf, verifier_key: Option<&str>) -> Result<(), AnyError> {
    let json = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let v = service::verify_report(&json, verifier_key).map_err(|e| format!("FAILED: {e}"))?;
    println!(
        "compliance verify: OK — {} controls ({} failing) signed at audit checkpoint {} by {}",
        v.controls, v.failing, v.checkpoint, v.verifier_key
    );
    if verifier_key.is_none() {
        println!("note: checked with the key named in the report; pass --verifier-key (from `GET /api/v1/audit/verifier-key`) to check it is the log's");
    }
    Ok(())
}

/// Runs the retention purge now.
pub async fn retention(settings: &callguard_server::Settings) -> Result<(), AnyError> {
    let rt = callguard_server::Runtime::open(settings).await?;
    let n = rt
        .compliance(settings)
        .run_retention()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "retention: removed {} interactions, {} resolved alerts, {} sessions, {} recordings; crypto-shredded {} customers",
        n.interactions, n.alerts, n.sessions, n.recordings, n.customers
    );
    Ok(())
}
