//! The report as text, as HTML (the same table the `/compliance` page shows) and as PDF.

use super::model::{Control, Framework, Report, Status};
use std::fmt::Write;

fn label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::NotApplicable => "N/A",
        Status::Manual => "MANUAL",
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn summary(r: &Report) -> String {
    format!(
        "{} pass, {} fail, {} manual, {} not applicable",
        r.count(Status::Pass),
        r.count(Status::Fail),
        r.count(Status::Manual),
        r.count(Status::NotApplicable)
    )
}

fn header_lines(r: &Report) -> Vec<String> {
    let mut lines = vec![
        "Callguard compliance report".to_owned(),
        format!("generated {}", r.generated_at),
    ];
    match &r.checkpoint {
        Some(c) => lines.push(format!("audit checkpoint {} (root {})", c.size, c.root)),
        None => lines.push("audit checkpoint: none (the log is empty)".into()),
    }
    lines.push(summary(r));
    lines
}

fn frameworks(r: &Report) -> Vec<(Framework, Vec<&Control>)> {
    Framework::ALL
        .into_iter()
        .map(|f| {
            (
                f,
                r.controls
                    .iter()
                    .filter(|c| c.framework == f)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, cs)| !cs.is_empty())
        .collect()
}

fn signature_lines(r: &Report) -> Vec<String> {
    match &r.signature {
        Some(s) => vec![
            format!("signed: sha256 {} by {}", s.digest, s.verifier_key),
            "verify the JSON form: callguard compliance verify REPORT.json --verifier-key KEY"
                .into(),
        ],
        None => vec!["unsigned".into()],
    }
}

/// Plain text, one control per line followed by its evidence.
#[must_use]
pub fn text(r: &Report) -> String {
    let mut out = header_lines(r).join("\n");
    out.push('\n');
    for (f, controls) in frameworks(r) {
        let _ = write!(out, "\n{}\n", f.title());
        for c in controls {
            let _ = writeln!(out, "  [{:<6}] {:<10} {}", label(c.status), c.id, c.title);
            for (k, v) in &c.evidence {
                let _ = writeln!(out, "             {k}: {}", value_text(v));
            }
        }
    }
    out.push('\n');
    out.push_str(&signature_lines(r).join("\n"));
    out.push('\n');
    out
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The control table as HTML (escaped), each control expandable to its evidence.
#[must_use]
pub fn html_table(r: &Report) -> String {
    let mut out = String::new();
    for (f, controls) in frameworks(r) {
        let _ = write!(
            out,
            "<section class=\"framework\"><h2>{}</h2>",
            esc(f.title())
        );
        for c in controls {
            let _ = write!(
                out,
                "<details class=\"control {}\" data-control=\"{} {}\"><summary><span class=\"status\">{}</span> <strong>{}</strong> {}</summary><dl>",
                c.status.as_str(),
                f.as_str(),
                esc(&c.id),
                label(c.status),
                esc(&c.id),
                esc(&c.title)
            );
            for (k, v) in &c.evidence {
                let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&value_text(v)));
            }
            out.push_str("</dl></details>");
        }
        out.push_str("</section>");
    }
    out
}

/// A standalone HTML document.
#[must_use]
pub fn html(r: &Report) -> String {
    let head: String = header_lines(r)
        .iter()
        .map(|l| format!("<p>{}</p>", esc(l)))
        .collect();
    let sig: String = signature_lines(r)
        .iter()
        .map(|l| format!("<p><code>{}</code></p>", esc(l)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Callguard compliance report</title>\
<style>body{{font-family:sans-serif;max-width:70em;margin:auto}}.fail .status{{color:#b00}}.pass .status{{color:#070}}dt{{font-weight:bold}}</style></head>\
<body><h1>Compliance report</h1>{head}{}{sig}</body></html>\n",
        html_table(r)
    )
}

/// The report as PDF: the control table and each control's evidence.
#[must_use]
pub fn pdf(r: &Report) -> Vec<u8> {
    let mut lines: Vec<(bool, String)> = header_lines(r).into_iter().map(|l| (true, l)).collect();
    for (f, controls) in frameworks(r) {
        lines.push((false, String::new()));
        lines.push((true, f.title().to_owned()));
        for c in controls {
            lines.push((
                true,
                format!("{:<7} {:<10} {}", label(c.status), c.id, c.title),
            ));
            for (k, v) in &c.evidence {
                for chunk in wrap(&format!("{k}: {}", value_text(v)), 100) {
                    lines.push((false, format!("          {chunk}")));
                }
            }
        }
    }
    lines.push((false, String::new()));
    for l in signature_lines(r) {
        for chunk in wrap(&l, 100) {
            lines.push((false, chunk));
        }
    }
    super::pdf::document(&lines)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

/// The pass/fail trend of past runs (oldest left) as an SVG bar chart, drawn on the server.
#[must_use]
pub fn trend_svg(runs: &[super::model::RunView]) -> String {
    const H: i64 = 120;
    const BAR: usize = 14;
    let width = (runs.len().max(1) * (BAR + 4) + 40) as i64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"pass and fail counts of the last {} report runs\" data-testid=\"trend\">",
        H + 30,
        runs.len()
    );
    let max = runs
        .iter()
        .map(|r| r.passed + r.failed + r.manual + r.not_applicable)
        .max()
        .unwrap_or(1)
        .max(1);
    for (i, r) in runs.iter().rev().enumerate() {
        let x = 30 + i * (BAR + 4);
        let mut y = H;
        for (n, color, what) in [
            (r.passed, "#2e7d32", "pass"),
            (r.failed, "#c62828", "fail"),
            (r.manual, "#757575", "manual"),
            (r.not_applicable, "#bdbdbd", "n/a"),
        ] {
            let h = n * H / max;
            if h == 0 {
                continue;
            }
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{BAR}\" height=\"{h}\" fill=\"{color}\" class=\"bar-{what}\"><title>{} {}: {n} {what}</title></rect>",
                esc(&r.at),
                esc(&r.framework)
            );
        }
        if r.failed > 0 {
            let _ = write!(
                out,
                "<text x=\"{x}\" y=\"{}\" font-size=\"10\" fill=\"#c62828\">{}</text>",
                H + 12,
                r.failed
            );
        }
    }
    let _ = write!(
        out,
        "<text x=\"0\" y=\"{}\" font-size=\"10\">older → newer; green pass, red fail, grey manual</text></svg>",
        H + 26
    );
    out
}
