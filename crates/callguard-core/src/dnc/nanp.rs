//! North American Numbering Plan numbers as the national Do-Not-Call registry publishes them:
//! ten digits (area code, exchange, line number), written bare, in E.164 (`+1…`), with a
//! leading `1`, with the usual punctuation, or as the FTC's `area code,number` CSV. A number is
//! kept as the integer of its ten digits, which is what the compact registry stores.

/// Why a line or number was refused; the message says what was expected, never echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not a ten-digit NANP number (expected e.g. 2025550123, +12025550123 or 202,5550123)")]
    Shape,
    #[error("the area code must be 2-9, then 0-8, then a digit, and not an N11 service code")]
    AreaCode,
    #[error("the exchange must start with 2-9 and not be an N11 service code")]
    Exchange,
}

/// The ten digits of a valid NANP number as an integer below 10^10.
pub type Nanp = u64;

fn check(digits: &[u8; 10]) -> Result<Nanp, Invalid> {
    let d = |i: usize| digits[i] - b'0';
    // NPA: first digit 2-9; second digit 9 is reserved for expansion; N11 codes are services.
    if d(0) < 2 || d(1) == 9 || (d(1) == 1 && d(2) == 1) {
        return Err(Invalid::AreaCode);
    }
    if d(3) < 2 || (d(4) == 1 && d(5) == 1) {
        return Err(Invalid::Exchange);
    }
    Ok(digits
        .iter()
        .fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0')))
}

/// Normalises one written number. Spaces, `-`, `.`, `(` and `)` are ignored; a leading `+1`
/// or `1` is the country code.
pub fn normalise(text: &str) -> Result<Nanp, Invalid> {
    let mut digits = [0u8; 11];
    let mut n = 0usize;
    let mut plus = false;
    for (i, c) in text.trim().bytes().enumerate() {
        match c {
            b'0'..=b'9' => {
                if n == 11 {
                    return Err(Invalid::Shape);
                }
                digits[n] = c;
                n += 1;
            }
            b'+' if i == 0 => plus = true,
            b' ' | b'-' | b'.' | b'(' | b')' => {}
            _ => return Err(Invalid::Shape),
        }
    }
    let ten: [u8; 10] = match (n, plus) {
        (10, false) => digits[..10].try_into().map_err(|_| Invalid::Shape)?,
        (11, _) if digits[0] == b'1' => digits[1..11].try_into().map_err(|_| Invalid::Shape)?,
        _ => return Err(Invalid::Shape),
    };
    check(&ten)
}

/// One line of a registry file: a number in any accepted form, or the FTC's
/// `area code,number` CSV. Blank lines give `None`.
pub fn parse_registry_line(line: &str) -> Result<Option<Nanp>, Invalid> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    match line.split_once(',') {
        Some((area, number)) => {
            let (area, number) = (area.trim(), number.trim());
            if area.len() != 3
                || number.len() != 7
                || !area
                    .bytes()
                    .chain(number.bytes())
                    .all(|b| b.is_ascii_digit())
            {
                return Err(Invalid::Shape);
            }
            let mut ten = [0u8; 10];
            ten[..3].copy_from_slice(area.as_bytes());
            ten[3..].copy_from_slice(number.as_bytes());
            check(&ten).map(Some)
        }
        None => normalise(line).map(Some),
    }
}

/// E.164 text of a stored number.
#[must_use]
pub fn to_e164(n: Nanp) -> String {
    format!("+1{n:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_form_normalises_to_the_same_number() {
        for form in [
            "2025550123",
            "+12025550123",
            "12025550123",
            "(202) 555-0123",
            "202.555.0123",
            " +1 202 555 0123 ",
        ] {
            assert_eq!(normalise(form), Ok(2_025_550_123), "{form}");
        }
        assert_eq!(parse_registry_line("202,5550123"), Ok(Some(2_025_550_123)));
        assert_eq!(
            parse_registry_line(" 202 , 5550123 "),
            Ok(Some(2_025_550_123))
        );
        assert_eq!(parse_registry_line(""), Ok(None));
        assert_eq!(to_e164(2_025_550_123), "+12025550123");
    }

    #[test]
    fn garbage_and_invalid_plan_numbers_are_refused() {
        for bad in [
            "",
            "abc",
            "202555012",
            "202555012345",
            "+442071838750",
            "+2025550123",
            "202-555-012x",
            "2025550123,",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalise("1025550123"),
            Err(Invalid::AreaCode),
            "area code starting with 1"
        );
        assert_eq!(
            normalise("2925550123"),
            Err(Invalid::AreaCode),
            "reserved second digit 9"
        );
        assert_eq!(
            normalise("9115550123"),
            Err(Invalid::AreaCode),
            "N11 area code"
        );
        assert_eq!(
            normalise("2021550123"),
            Err(Invalid::Exchange),
            "exchange starting with 1"
        );
        assert_eq!(
            normalise("2024110123"),
            Err(Invalid::Exchange),
            "N11 exchange"
        );
        assert!(parse_registry_line("20,25550123").is_err());
        assert!(parse_registry_line("202,555012a").is_err());
    }

    #[test]
    fn errors_never_repeat_the_input() {
        let msg = normalise("+48 601 234 567").unwrap_err().to_string();
        assert!(!msg.contains("601"));
    }
}
