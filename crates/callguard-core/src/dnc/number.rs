//! A number to be called, as every Do-Not-Call check sees it: a NANP number (what the national
//! registry and the calling-hour table know), or another valid international number in E.164.
//! Garbage is neither, so it can never be allowed.

use super::nanp::{self, Nanp};

/// A valid number to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callee {
    /// A number of the North American plan (ten digits after +1).
    Nanp(Nanp),
    /// A valid number elsewhere, in E.164 (`+48601234567`).
    Other(String),
}

impl Callee {
    /// Reads a number written as ten NANP digits (with the usual punctuation), `+1…`, or an
    /// international number in E.164. `None` for anything that is not a valid number.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match nanp::normalise(raw) {
            Ok(n) => Some(Callee::Nanp(n)),
            // A +1 number that fails the plan's rules is not rescued by the generic parser.
            Err(_) if raw.trim_start().starts_with("+1") => None,
            Err(_) => {
                let text = raw.trim();
                if !text.starts_with('+') {
                    return None;
                }
                match phonenumber::parse(None, text) {
                    Ok(p) if phonenumber::is_valid(&p) => Some(Callee::Other(
                        p.format().mode(phonenumber::Mode::E164).to_string(),
                    )),
                    _ => None,
                }
            }
        }
    }

    /// The E.164 text: what blind indexes and sealed copies are made of.
    #[must_use]
    pub fn e164(&self) -> String {
        match self {
            Callee::Nanp(n) => nanp::to_e164(*n),
            Callee::Other(s) => s.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_number_give_one_e164_form() {
        for s in ["2025550123", "+1 (202) 555-0123", "1-202-555-0123"] {
            assert_eq!(Callee::parse(s), Some(Callee::Nanp(2_025_550_123)), "{s}");
        }
        assert_eq!(Callee::parse("2025550123").unwrap().e164(), "+12025550123");
        let pl = Callee::parse("+48 601 234 567").unwrap();
        assert_eq!(pl, Callee::Other("+48601234567".into()));
        assert_eq!(pl.e164(), "+48601234567");
    }

    #[test]
    fn garbage_is_no_number_at_all() {
        for bad in [
            "",
            "hello",
            "+1 111 555 0123",
            "12",
            "+999999",
            "48601234567",
            "+48 601",
        ] {
            assert_eq!(Callee::parse(bad), None, "{bad:?}");
        }
    }
}
