//! A minimal PDF 1.4 writer for the report: A4 pages of text lines in the standard Helvetica
//! and Courier fonts (no embedded fonts, no dependency). Text outside Latin-1 is transliterated.

use std::fmt::Write;

const LINES_PER_PAGE: usize = 64;
const TOP: usize = 800;
const LEADING: usize = 12;

/// Builds a document: each line `(bold, text)`.
#[must_use]
pub fn document(lines: &[(bool, String)]) -> Vec<u8> {
    let pages: Vec<&[(bool, String)]> = lines.chunks(LINES_PER_PAGE).collect();
    let n = pages.len().max(1);
    // Objects: 1 catalog, 2 pages, 3 font regular, 4 font bold, then per page: page, content.
    let mut objects: Vec<String> = Vec::new();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {n} >>",
        kids.join(" ")
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".into(),
    );
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier-Bold /Encoding /WinAnsiEncoding >>"
            .into(),
    );
    let empty: &[(bool, String)] = &[];
    for (i, page) in pages
        .iter()
        .copied()
        .chain(std::iter::repeat_n(empty, n - pages.len()))
        .enumerate()
    {
        let mut content = String::new();
        for (j, (bold, text)) in page.iter().enumerate() {
            let _ = writeln!(
                content,
                "BT /{} 8 Tf 36 {} Td ({}) Tj ET",
                if *bold { "F2" } else { "F1" },
                TOP - j * LEADING,
                escape(text)
            );
        }
        let _ = writeln!(
            content,
            "BT /F1 7 Tf 500 20 Td (page {} of {n}) Tj ET",
            i + 1
        );
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
            6 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            latin1(&content).len()
        ));
    }
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(&latin1(o));
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(tail, "{off:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Escapes a PDF string literal and maps text to what WinAnsi shows.
fn escape(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            '≤' => o.push_str("<="),
            '≥' => o.push_str(">="),
            '–' | '—' | '‑' => o.push('-'),
            '✓' => o.push_str("ok"),
            '✗' => o.push('x'),
            c if (c as u32) < 0x20 => o.push(' '),
            c if (c as u32) <= 0xff => o.push(c),
            _ => o.push('?'),
        }
    }
    o
}

/// Latin-1 bytes of text that `escape` already limited to Latin-1.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(c as u32).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_has_a_page_per_sixty_four_lines_and_a_valid_xref() {
        let lines: Vec<(bool, String)> = (0..100)
            .map(|i| (i % 2 == 0, format!("line (x) {i} ≤ é")))
            .collect();
        let pdf = document(&lines);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.contains("/Count 2"));
        assert!(
            text.contains("(line \\(x\\) 3 <= \u{fffd})") || text.contains("line \\(x\\) 3 <=")
        );
        let xref = text.rfind("startxref\n").unwrap();
        let at: usize = text[xref + 10..].lines().next().unwrap().parse().unwrap();
        assert_eq!(&pdf[at..at + 4], b"xref");
    }
}
