//! `callguard dnc import` and `callguard dnc scrub`: the national registry from the published
//! files, and call lists cleaned against it. Both show progress on stderr and are audited with
//! counts and checksums, never numbers.

use callguard_core::audit::AuditRecord;
use callguard_core::dnc::call_list::{self, neutralise, write_record, Layout};
use callguard_core::dnc::import::{ImportError, Importer};
use callguard_core::dnc::number::Callee;
use callguard_server::features::dnc::registry::Reason;
use callguard_server::Runtime;
use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::Path;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Rows of a call list checked together.
const SCRUB_CHUNK: usize = 10_000;

/// Progress on stderr: a rewritten line on a terminal, a line per tenth otherwise.
struct Progress {
    total: u64,
    tty: bool,
    last_tenth: u64,
    what: &'static str,
    unit: &'static str,
}

impl Progress {
    fn new(total: u64, what: &'static str) -> Self {
        Self {
            total: total.max(1),
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            last_tenth: 0,
            what,
            unit: "lines",
        }
    }

    fn show(&mut self, done: u64, items: u64) {
        let pct = (done.min(self.total) * 100) / self.total;
        if self.tty {
            eprint!("\r  {}: {pct:>3}% ({items} {})", self.what, self.unit);
        } else if pct / 10 > self.last_tenth {
            self.last_tenth = pct / 10;
            eprintln!("  {}: {pct}% ({items} {})", self.what, self.unit);
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

pub async fn import(
    rt: &Runtime,
    file: &Path,
    skip_invalid: bool,
    source: Option<String>,
) -> Result<(), AnyError> {
    let source = source.unwrap_or_else(|| {
        file.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string())
    });
    let f =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
    let mut importer = Importer::new(skip_invalid);
    let mut progress = Progress::new(total, "reading");
    let (mut buf, mut read) = (Vec::with_capacity(64), 0u64);
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        let line = String::from_utf8_lossy(&buf);
        importer.line(line.trim_end_matches(['\n', '\r']));
        if importer.lines_read().is_multiple_of(1_000_000) {
            progress.show(read, importer.lines_read());
        }
    }
    progress.show(total, importer.lines_read());
    progress.done();
    eprintln!("  sorting and encoding …");
    let outcome = tokio::task::spawn_blocking(move || importer.finish()).await?;
    let (set, report) = match outcome {
        Ok(x) => x,
        Err(e) => {
            let mut audit = AuditRecord::new("dnc.import", "cli")
                .failure()
                .detail("source", source.clone());
            audit = match &e {
                ImportError::BadLines { count, lines, .. } => audit
                    .detail("reason", "bad_lines")
                    .detail("bad_lines", *count)
                    .detail("first_bad_lines", lines.clone()),
                ImportError::Empty => audit.detail("reason", "empty"),
                ImportError::Build(_) => audit.detail("reason", "build_failed"),
            };
            rt.store.append(vec![audit]).await?;
            return Err(format!("{e}; the registry in force is unchanged").into());
        }
    };
    // On PostgreSQL the registry goes to the database, for every node; on SQLite to this
    // node's data directory.
    let shared = rt.store.shares_registry();
    let staged = if shared {
        let mut progress = Progress::new(set.size_in_bytes(), "storing in the database");
        progress.unit = "MiB";
        let staged = rt
            .dnc
            .stage_shared(
                rt.store.as_ref(),
                &set,
                &report.sha256,
                &source,
                |done, total| {
                    progress.total = total.max(1);
                    progress.show(done, done >> 20);
                },
            )
            .await?;
        progress.done();
        staged
    } else {
        rt.dnc.stage(&set, &report.sha256, &source)?
    };
    // The import is recorded before it takes effect: no registry is in force without its entry.
    let audit = AuditRecord::new("dnc.import", "cli")
        .target(format!("dnc-registry:{}", staged.file))
        .detail("source", source.clone())
        .detail("sha256", report.sha256.clone())
        .detail("numbers", report.numbers)
        .detail("duplicates", report.duplicates)
        .detail("skipped_lines", report.skipped);
    match staged.version {
        // In force with its entry, in one transaction; every node hears of it.
        Some(version) => rt.store.registry_publish(version, audit).await?,
        None => {
            rt.store.append(vec![audit]).await?;
            rt.dnc.commit(&staged)?;
        }
    }
    if report.header {
        eprintln!("  line 1 names columns: read as a header, not a number");
    }
    for (line, why) in &report.skipped_lines {
        eprintln!("  skipped line {line}: {why}");
    }
    println!(
        "imported {} numbers from {} ({} lines, {} duplicates, {} invalid lines skipped; sha256 {}); {} bytes, {:.3} bytes per number",
        report.numbers,
        source,
        report.lines,
        report.duplicates,
        report.skipped,
        report.sha256,
        set.size_in_bytes(),
        set.size_in_bytes() as f64 / report.numbers.max(1) as f64
    );
    Ok(())
}

/// A row's cells as the scrub writes them. The number column holds the E.164 number that was
/// checked (`+12025550123`): the dialer calls exactly what was checked, and a cell of `+` and
/// digits only is, to a spreadsheet, at most a number (shown as such), never a function,
/// reference or command, so it gets no `'` (which would break dialers reading the file). Every
/// other cell, and a number column that did not hold a valid number, is neutralised (OWASP).
fn output_cells<'a>(
    record: &'a csv::StringRecord,
    column: usize,
    callee: Option<&Callee>,
) -> Vec<Cow<'a, str>> {
    record
        .iter()
        .enumerate()
        .map(|(i, cell)| match callee {
            Some(c) if i == column => Cow::Owned(c.e164()),
            _ => neutralise(cell),
        })
        .collect()
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, AnyError> {
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(std::io::BufWriter::with_capacity(1 << 20, file))
}

fn put(w: &mut impl Write, path: &Path, line: &str) -> Result<(), AnyError> {
    w.write_all(line.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

pub async fn scrub(
    rt: &Runtime,
    input: &Path,
    out: &Path,
    report_path: Option<&Path>,
    column: Option<&str>,
    purpose: Option<&str>,
) -> Result<(), AnyError> {
    if let Some(p) = purpose {
        callguard_server::features::dnc::lists::valid_purpose(p)?;
    }
    if rt.store.shares_registry() {
        rt.dnc.sync_shared(rt.store.as_ref()).await?;
    }
    let registry = rt
        .dnc
        .current()
        .ok_or("no national registry is loaded: run `callguard dnc import FILE` first")?;
    let total = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    // Every line is read as a record; whether the first one is a header is decided from it.
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let mut first = csv::StringRecord::new();
    let has_first = rdr
        .read_record(&mut first)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let layout = if has_first {
        let cells: Vec<&str> = first.iter().collect();
        call_list::layout(&cells, column).map_err(|e| format!("{}: {e}", input.display()))?
    } else {
        Layout {
            column: 0,
            header: false,
        }
    };
    let col = layout.column;
    let default_report = out.with_extension("removed.csv");
    let report_path = report_path.unwrap_or(&default_report);
    let mut kept_w = create(out)?;
    let mut removed_w = create(report_path)?;
    let mut line = String::with_capacity(256);
    // The first row is checked like every other unless it is a header.
    let mut pending = None;
    if layout.header {
        let mut cells: Vec<Cow<'_, str>> = first.iter().map(neutralise).collect();
        write_record(&mut line, cells.iter().map(AsRef::as_ref));
        put(&mut kept_w, out, &line)?;
        cells.push(Cow::Borrowed("removed_because"));
        line.clear();
        write_record(&mut line, cells.iter().map(AsRef::as_ref));
        put(&mut removed_w, report_path, &line)?;
        eprintln!(
            "  line 1 is a header; the numbers are in column {}",
            col + 1
        );
    } else if has_first {
        eprintln!(
            "  no header line: every line is a row to check, the numbers in column {}",
            col + 1
        );
        pending = Some(first);
    }
    let (mut kept, mut rows) = (0u64, 0u64);
    let (mut national, mut internal, mut no_consent, mut invalid) = (0u64, 0u64, 0u64, 0u64);
    let mut progress = Progress::new(total, "scrubbing");
    let lists = rt.dnc_lists();
    // Rows go in chunks, so that the internal list and the consent ledger are asked once per
    // chunk rather than once per row.
    let mut chunk: Vec<csv::StringRecord> = Vec::with_capacity(SCRUB_CHUNK);
    loop {
        chunk.clear();
        chunk.extend(pending.take());
        while chunk.len() < SCRUB_CHUNK {
            let mut record = csv::StringRecord::new();
            if !rdr
                .read_record(&mut record)
                .map_err(|e| format!("{}: {e}", input.display()))?
            {
                break;
            }
            chunk.push(record);
        }
        let Some(last) = chunk.last() else {
            break;
        };
        let position = last.position().map_or(0, |p| p.byte());
        let callees: Vec<Option<Callee>> = chunk
            .iter()
            .map(|r| Callee::parse(r.get(col).unwrap_or("")))
            .collect();
        let facts = lists.facts(&callees, purpose).await?;
        for (record, callee) in chunk.iter().zip(&callees) {
            rows += 1;
            // A call list is scrubbed ahead of the calls: calling windows are the dialer's, at
            // dialling time.
            let verdict = rt.dnc.verdict(&registry, callee.as_ref(), &facts, None);
            let mut cells = output_cells(record, col, callee.as_ref());
            line.clear();
            if verdict.allowed {
                kept += 1;
                write_record(&mut line, cells.iter().map(AsRef::as_ref));
                put(&mut kept_w, out, &line)?;
                continue;
            }
            for r in &verdict.reasons {
                match r {
                    Reason::NationalDnc => national += 1,
                    Reason::InternalDnc => internal += 1,
                    Reason::NoConsent => no_consent += 1,
                    Reason::InvalidNumber => invalid += 1,
                    Reason::OutsideCallingHours => {}
                }
            }
            let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.as_str()).collect();
            cells.push(Cow::Owned(reasons.join(" ")));
            write_record(&mut line, cells.iter().map(AsRef::as_ref));
            put(&mut removed_w, report_path, &line)?;
        }
        progress.show(position, rows);
    }
    progress.show(total, rows);
    progress.done();
    kept_w
        .flush()
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    removed_w
        .flush()
        .map_err(|e| format!("cannot write {}: {e}", report_path.display()))?;
    let mut audit = AuditRecord::new("dnc.scrub", "cli")
        .detail("rows", rows)
        .detail("kept", kept)
        .detail("removed_national_dnc", national)
        .detail("removed_internal_dnc", internal)
        .detail("removed_invalid", invalid)
        .detail("registry_sha256", registry.info.sha256.clone());
    if let Some(p) = purpose {
        audit = audit
            .detail("purpose", p)
            .detail("removed_no_consent", no_consent);
    }
    rt.store.append(vec![audit]).await?;
    let consent = match purpose {
        Some(p) => format!(", {no_consent} without consent for {p}"),
        None => String::new(),
    };
    println!(
        "{rows} rows: {kept} kept in {}, {} removed ({national} on the national registry, {internal} on the internal list{consent}, {invalid} invalid) listed with reasons in {}",
        out.display(),
        rows - kept,
        report_path.display()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}
