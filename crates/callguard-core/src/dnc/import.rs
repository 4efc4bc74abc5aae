//! Turning a published registry file into the compact set: every line is checked; by default one
//! bad line refuses the whole file (naming the lines), or bad lines are reported and skipped.
//! Duplicates collapse. The checksum of the input is kept for the audit log.

use super::call_list::names_a_column;
use super::elias_fano::{BuildError, EliasFano};
use super::nanp::{self, Invalid, Nanp};
use sha2::{Digest, Sha256};

/// The universe of ten-digit numbers.
pub const UNIVERSE: u64 = 10_000_000_000;

/// At most this many bad lines are named in a refusal.
pub const MAX_REPORTED: usize = 20;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub lines: u64,
    pub numbers: u64,
    pub duplicates: u64,
    /// Bad lines skipped (with `skip_invalid`): line numbers (1-based) and reasons, at most
    /// [`MAX_REPORTED`] of them named.
    pub skipped: u64,
    pub skipped_lines: Vec<(u64, Invalid)>,
    /// Hex SHA-256 of the input bytes.
    pub sha256: String,
    /// Whether line 1 was a header (and so not a number).
    pub header: bool,
}

/// Why an import was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{count} bad line(s), the first at line(s) {}: {first}; nothing was imported (use --skip-invalid to skip them)", lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))]
    BadLines {
        count: u64,
        lines: Vec<u64>,
        first: Invalid,
    },
    #[error("the registry could not be built: {0}")]
    Build(#[from] BuildError),
    #[error("the file is empty: no number to import")]
    Empty,
}

/// Collects numbers line by line; call [`Importer::finish`] at the end.
pub struct Importer {
    skip_invalid: bool,
    numbers: Vec<Nanp>,
    lines: u64,
    bad: u64,
    bad_lines: Vec<(u64, Invalid)>,
    hasher: Sha256,
    header: bool,
}

impl Importer {
    #[must_use]
    pub fn new(skip_invalid: bool) -> Self {
        Self {
            skip_invalid,
            numbers: Vec::new(),
            lines: 0,
            bad: 0,
            bad_lines: Vec::new(),
            hasher: Sha256::new(),
            header: false,
        }
    }

    /// Feeds one line (without its newline). The first line may be a CSV header, but only one
    /// that names columns (letters, at most two digits): a line holding a number, even a
    /// garbled one, is checked like every other. A byte-order mark before it is ignored.
    pub fn line(&mut self, line: &str) {
        self.lines += 1;
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        let line = if self.lines == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        match nanp::parse_registry_line(line) {
            Ok(Some(n)) => self.numbers.push(n),
            Ok(None) => {}
            Err(_) if self.lines == 1 && names_a_column(line) => self.header = true,
            Err(e) => {
                self.bad += 1;
                if self.bad_lines.len() < MAX_REPORTED {
                    self.bad_lines.push((self.lines, e));
                }
            }
        }
    }

    /// Lines read so far (for progress).
    #[must_use]
    pub fn lines_read(&self) -> u64 {
        self.lines
    }

    /// Sorts, de-duplicates and encodes.
    pub fn finish(mut self) -> Result<(EliasFano, ImportReport), ImportError> {
        if self.bad > 0 && !self.skip_invalid {
            let first = self.bad_lines.first().map_or(Invalid::Shape, |(_, e)| *e);
            return Err(ImportError::BadLines {
                count: self.bad,
                lines: self.bad_lines.iter().map(|(l, _)| *l).collect(),
                first,
            });
        }
        let read = self.numbers.len() as u64;
        self.numbers.sort_unstable();
        self.numbers.dedup();
        if self.numbers.is_empty() {
            return Err(ImportError::Empty);
        }
        let set = EliasFano::from_sorted(&self.numbers, UNIVERSE)?;
        let report = ImportReport {
            lines: self.lines,
            numbers: set.len(),
            duplicates: read - set.len(),
            skipped: self.bad,
            skipped_lines: self.bad_lines,
            sha256: data_encoding::HEXLOWER.encode(&self.hasher.finalize()),
            header: self.header,
        };
        Ok((set, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str, skip: bool) -> Result<(EliasFano, ImportReport), ImportError> {
        let mut i = Importer::new(skip);
        for l in text.lines() {
            i.line(l);
        }
        i.finish()
    }

    #[test]
    fn both_forms_and_duplicates_make_one_set() {
        let (set, report) = import(
            "AreaCode,PhoneNumber\n202,5550123\n+12025550123\n(303) 555-0100\n\n3035550100\n",
            false,
        )
        .unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![2_025_550_123, 3_035_550_100]
        );
        assert_eq!(
            (
                report.lines,
                report.numbers,
                report.duplicates,
                report.skipped
            ),
            (6, 2, 2, 0)
        );
        assert_eq!(report.sha256.len(), 64);
    }

    #[test]
    fn one_bad_line_refuses_the_file_naming_it_unless_skipping() {
        let text = "2025550123\nnot a number\n3035550100\n1115550100\n";
        match import(text, false) {
            Err(ImportError::BadLines { count, lines, .. }) => {
                assert_eq!(count, 2);
                assert_eq!(lines, vec![2, 4]);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let (set, report) = import(text, true).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(report.skipped, 2);
        assert_eq!(
            report
                .skipped_lines
                .iter()
                .map(|(l, _)| *l)
                .collect::<Vec<_>>(),
            vec![2, 4]
        );
        let msg = import("2025550123\n+44 20 7183 8750\n", false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line(s) 2") && !msg.contains("7183"), "{msg}");
    }

    #[test]
    fn a_first_line_holding_a_number_is_checked_and_never_skipped_as_a_header() {
        // A garbled or annotated number on line 1 is a bad line, as it would be on line 2.
        for first in ["202-555-O123", "tel:+12025550123", "2025550123 ext 5"] {
            match import(&format!("{first}\n3035550100\n"), false) {
                Err(ImportError::BadLines { lines, .. }) => assert_eq!(lines, vec![1], "{first}"),
                other => panic!("{first}: expected line 1 refused, got {other:?}"),
            }
        }
        // A header names columns: it is skipped, and only on line 1.
        for header in ["AreaCode,PhoneNumber", "phone", "Phone 1"] {
            let (set, report) = import(&format!("{header}\n3035550100\n"), false).unwrap();
            assert_eq!((set.len(), report.skipped), (1, 0), "{header}");
        }
        assert!(import("3035550100\nphone\n", false).is_err());
    }

    #[test]
    fn a_byte_order_mark_does_not_hide_the_first_number() {
        let (set, report) = import("\u{feff}2025550123\n3035550100\n", false).unwrap();
        assert_eq!((set.len(), report.skipped), (2, 0));
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert_eq!(import("\n\n", false).unwrap_err(), ImportError::Empty);
    }
}
