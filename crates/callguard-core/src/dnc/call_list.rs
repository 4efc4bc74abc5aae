//! Call lists as `callguard dnc scrub` reads and writes them: whether the first row is a header
//! (never a row that holds a number), which column holds the number, and cells written so that a
//! spreadsheet opening the output runs no formula (OWASP, "CSV Injection").

use super::number::Callee;
use std::borrow::Cow;

/// Where the number is, and whether the first row names the columns rather than being a row to
/// check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// 0-based index of the number column.
    pub column: usize,
    /// Whether the first row is a header.
    pub header: bool,
}

/// Why a call list's layout cannot be settled. Messages name columns by position, never echo a
/// row's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("no column named {name:?} in the header line (its columns: {columns}); name one of them or give a 1-based index with --column N")]
    NoSuchColumn { name: String, columns: String },
    #[error("the first line holds a phone number, so the list has no header line and a column cannot be named: give it as a 1-based index with --column N")]
    NoHeader,
    #[error("there is no column {index}: the first line has {columns} column(s), numbered from 1")]
    OutOfRange { index: usize, columns: usize },
    #[error("the list has no header line and its first line holds numbers in columns {columns}: say which one to check with --column N")]
    Ambiguous { columns: String },
}

/// Whether a cell reads like a column name: it has a letter and at most two digits ("phone",
/// "Phone 2", "AreaCode"), so a mistyped number ("202-555-O123", "tel:+12025550123") is not one.
#[must_use]
pub fn names_a_column(cell: &str) -> bool {
    let cell = cell.trim();
    cell.chars().any(char::is_alphabetic)
        && cell.bytes().filter(u8::is_ascii_digit).count() <= 2
        && Callee::parse(cell).is_none()
}

/// Settles the layout from the first row and the `--column` option (a 1-based index or a header
/// name). The first row is a header only if no cell of it is a valid number and its number
/// column reads like a column name; otherwise it is checked like every other row.
pub fn layout(first: &[&str], column: Option<&str>) -> Result<Layout, LayoutError> {
    let numbers: Vec<usize> = first
        .iter()
        .enumerate()
        .filter(|(_, c)| Callee::parse(c).is_some())
        .map(|(i, _)| i)
        .collect();
    let header_at =
        |col: usize| numbers.is_empty() && first.get(col).is_some_and(|c| names_a_column(c));
    match column.map(str::trim) {
        Some(c) => match c.parse::<usize>() {
            Ok(i) if i >= 1 && i <= first.len() => Ok(Layout {
                column: i - 1,
                header: header_at(i - 1),
            }),
            Ok(i) => Err(LayoutError::OutOfRange {
                index: i,
                columns: first.len(),
            }),
            _ if !numbers.is_empty() => Err(LayoutError::NoHeader),
            _ => first
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(c))
                .map(|column| Layout {
                    column,
                    header: true,
                })
                .ok_or_else(|| LayoutError::NoSuchColumn {
                    name: c.to_owned(),
                    columns: first.join(", "),
                }),
        },
        None => match numbers.as_slice() {
            [only] => Ok(Layout {
                column: *only,
                header: false,
            }),
            [] => {
                let column = first
                    .iter()
                    .position(|h| {
                        let h = h.to_lowercase();
                        (h.contains("phone") || h.contains("number") || h.contains("tel"))
                            && names_a_column(&h)
                    })
                    .unwrap_or(0);
                Ok(Layout {
                    column,
                    header: header_at(column),
                })
            }
            several => Err(LayoutError::Ambiguous {
                columns: several
                    .iter()
                    .map(|i| (i + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        },
    }
}

/// What a spreadsheet reads as the start of a formula: OWASP's list (`=`, `+`, `-`, `@`, tab,
/// carriage return) and the full-width forms some spreadsheets fold into them.
const FORMULA_STARTS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

/// A cell as it may be written into a CSV that a person opens in a spreadsheet: one that would
/// start a formula gets a leading `'`, which makes spreadsheets read it as text. Leading blanks
/// do not hide a formula (spreadsheets may trim them on import), so they are looked past.
#[must_use]
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['\t', '\r']) || cell.trim_start().starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Appends one CSV record (comma-separated, `\n`-terminated) to `out`. A field is quoted when it
/// holds a comma, a semicolon (the separator of spreadsheets in many locales, which would
/// otherwise split `a;=cmd` into a second, formula cell), a tab, a quote or a line break; a
/// record of one empty field is written `""` so that it is not a blank line. Fields are written
/// as given: neutralise them first.
pub fn write_record<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    let start = out.len();
    let mut count = 0usize;
    for field in fields {
        if count > 0 {
            out.push(',');
        }
        count += 1;
        if field.contains([',', ';', '\t', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    if count == 1 && out.len() == start {
        out.push_str("\"\"");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str) -> Vec<&str> {
        text.split(',').collect()
    }

    #[test]
    fn a_first_row_holding_a_number_is_never_a_header() {
        let l = |text: &str, col: Option<&str>| layout(&row(text), col);
        assert_eq!(
            l("+1 202 555 0123", None),
            Ok(Layout {
                column: 0,
                header: false
            })
        );
        assert_eq!(
            l("Ada,2025550123,vip", None),
            Ok(Layout {
                column: 1,
                header: false
            })
        );
        // A name that happens to contain "tel" does not make the row a header.
        assert_eq!(
            l("2025550123,Telford", Some("1")),
            Ok(Layout {
                column: 0,
                header: false
            })
        );
        assert_eq!(
            l("Telford,2025550123", None),
            Ok(Layout {
                column: 1,
                header: false
            })
        );
        assert_eq!(l("2025550123", Some("phone")), Err(LayoutError::NoHeader));
        assert!(matches!(
            l("2025550123,3035550100", None),
            Err(LayoutError::Ambiguous { .. })
        ));
        // Neither a header nor a number: a row to check (and remove as invalid).
        for garbled in ["202-555-O123", "tel:+12025550123", "", "12345"] {
            assert_eq!(
                l(garbled, None),
                Ok(Layout {
                    column: 0,
                    header: false
                }),
                "{garbled:?}"
            );
        }
    }

    #[test]
    fn headers_are_found_by_name_or_by_the_usual_words() {
        let l = |text: &str, col: Option<&str>| layout(&row(text), col);
        let header = |column| {
            Ok(Layout {
                column,
                header: true,
            })
        };
        assert_eq!(l("name,phone,notes", None), header(1));
        assert_eq!(l("Name,Phone 1,Phone 2", None), header(1));
        assert_eq!(l("name,Numer telefonu", None), header(1));
        assert_eq!(l("name,mobile", None), header(0));
        assert_eq!(l("name,mobile", Some("Mobile")), header(1));
        assert_eq!(l("name,mobile", Some("2")), header(1));
        assert!(matches!(
            l("name,mobile", Some("fax")),
            Err(LayoutError::NoSuchColumn { .. })
        ));
        assert_eq!(
            l("name,mobile", Some("3")),
            Err(LayoutError::OutOfRange {
                index: 3,
                columns: 2
            })
        );
    }

    #[test]
    fn cells_that_would_start_a_formula_get_a_quote_mark() {
        for (cell, safe) in [
            ("=1+1", "'=1+1"),
            ("+SUM(1)", "'+SUM(1)"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\r=x", "'\r=x"),
            ("  =1+1", "'  =1+1"),
            ("＝1+1", "'＝1+1"),
            ("Ada", "Ada"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), safe, "{cell:?}");
        }
    }

    #[test]
    fn records_are_quoted_where_a_spreadsheet_would_split_or_misread_them() {
        let mut out = String::new();
        write_record(&mut out, ["a", "b,c", "d;=e", "say \"hi\"", "x\ny", "'\tt"]);
        write_record(&mut out, [""]);
        write_record(&mut out, ["", ""]);
        assert_eq!(
            out,
            "a,\"b,c\",\"d;=e\",\"say \"\"hi\"\"\",\"x\ny\",\"'\tt\"\n\"\"\n,\n"
        );
    }
}
