//! Validation and normalisation of what a customer record holds (SPEC C3): national identifiers
//! by their checksums (and PESEL's embedded birth date), phone numbers as E.164, e-mail, dates of
//! birth, addresses, service names and knowledge-question answers. The normalised forms are what
//! the blind indexes are computed over, so two spellings of one value find the same customer.
//!
//! Every value checked here is personal data: a refusal names the field and what is wrong with
//! it, never the value itself, so an error can be logged or shown without leaking anything.

use super::model::{Address, NationalId, NationalIdKind};
use time::{Date, Month, OffsetDateTime};

/// Why a value was refused. The reason is a fixed sentence that names the field and the
/// problem; it never contains the value that was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);

/// The `N` decimal digits of `s`, or `None` unless `s` is exactly `N` ASCII digits.
fn digits<const N: usize>(s: &str) -> Option<[u32; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != N || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u32; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = u32::from(b - b'0');
    }
    Some(out)
}

/// Sum of digit × weight over the shorter of the two.
fn weighted(digits: &[u32], weights: &[u32]) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum()
}

/// `s` without surrounding whitespace and without the spaces and hyphens people write inside
/// tax and business numbers.
fn without_separators(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect()
}

/// Checks a PESEL (exactly 11 digits, surrounding whitespace ignored): its check digit and its
/// embedded date of birth, which must be a real calendar date. Returns that birth date.
///
/// The month carries the century: +80 for the 1800s, +0 for the 1900s, +20 for the 2000s, +40
/// for the 2100s and +60 for the 2200s.
pub fn pesel(value: &str) -> Result<Date, Invalid> {
    const WEIGHTS: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let d = digits::<11>(value.trim()).ok_or(Invalid("PESEL must be exactly 11 digits"))?;
    if (10 - weighted(&d, &WEIGHTS) % 10) % 10 != d[10] {
        return Err(Invalid("PESEL check digit does not match"));
    }
    let bad_date = Invalid("PESEL's embedded birth date is not a real calendar date");
    let encoded_month = d[2] * 10 + d[3];
    let century = match encoded_month / 20 {
        0 => 1900,
        1 => 2000,
        2 => 2100,
        3 => 2200,
        _ => 1800,
    };
    let year = century + (d[0] * 10 + d[1]) as i32;
    let month = u8::try_from(encoded_month % 20)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or(bad_date)?;
    let day = u8::try_from(d[4] * 10 + d[5]).map_err(|_| bad_date)?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad_date)
}

/// Checks a NIP (Polish tax id) and returns its 10 digits. Spaces, hyphens and a `PL` prefix
/// (any case) are accepted and dropped, as python-stdnum does.
pub fn nip(value: &str) -> Result<String, Invalid> {
    const WEIGHTS: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];
    let compact = without_separators(value);
    let number = match compact.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("PL") => &compact[2..],
        _ => compact.as_str(),
    };
    let d = digits::<10>(number).ok_or(Invalid("NIP must be 10 digits"))?;
    // A remainder of 10 has no check digit: no valid NIP starts with those nine digits.
    if weighted(&d, &WEIGHTS) % 11 != d[9] {
        return Err(Invalid("NIP check digit does not match"));
    }
    Ok(number.to_owned())
}

/// The REGON check digit over `digits` (8 for a REGON-9, 13 for a REGON-14).
fn regon_check(digits: &[u32], weights: &[u32]) -> u32 {
    weighted(digits, weights) % 11 % 10
}

/// Checks a REGON (Polish business register number) of 9 or 14 digits and returns its digits.
/// Spaces and hyphens are accepted and dropped. A REGON-14 (a local unit) must end with its own
/// check digit and begin with a valid REGON-9 (its parent), as python-stdnum checks.
pub fn regon(value: &str) -> Result<String, Invalid> {
    const WEIGHTS_9: [u32; 8] = [8, 9, 2, 3, 4, 5, 6, 7];
    const WEIGHTS_14: [u32; 13] = [2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8];
    let compact = without_separators(value);
    if let Some(d) = digits::<9>(&compact) {
        if regon_check(&d, &WEIGHTS_9) != d[8] {
            return Err(Invalid("REGON check digit does not match"));
        }
    } else if let Some(d) = digits::<14>(&compact) {
        if regon_check(&d, &WEIGHTS_14) != d[13] {
            return Err(Invalid("REGON check digit does not match"));
        }
        if regon_check(&d, &WEIGHTS_9) != d[8] {
            return Err(Invalid(
                "REGON-14 does not begin with a valid 9-digit REGON (its ninth digit is wrong)",
            ));
        }
    } else {
        return Err(Invalid("REGON must be 9 or 14 digits"));
    }
    Ok(compact)
}

/// Checks a national identifier of any kind and returns its normalised form (digits only).
/// For a PESEL, a known `date_of_birth` must equal the one embedded in the number.
pub fn national_id(id: &NationalId, date_of_birth: Option<Date>) -> Result<String, Invalid> {
    match id.kind {
        NationalIdKind::Pesel => {
            let embedded = pesel(&id.value)?;
            if date_of_birth.is_some_and(|d| d != embedded) {
                return Err(Invalid(
                    "the PESEL's embedded birth date differs from date_of_birth",
                ));
            }
            Ok(id.value.trim().to_owned())
        }
        NationalIdKind::Nip => nip(&id.value),
        NationalIdKind::Regon => regon(&id.value),
    }
}

/// Characters RFC 5322 allows in a dot-atom besides letters and digits.
const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// Checks an e-mail address pragmatically (one `@`, a dot-atom local part of at most 64
/// characters, a domain of letter-digit-hyphen labels with at least one dot, at most 254
/// characters, ASCII only, no whitespace) and returns it trimmed and lower-cased, the form
/// exact-match search uses.
pub fn email(value: &str) -> Result<String, Invalid> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Invalid("e-mail address is empty"));
    }
    if v.chars().any(char::is_whitespace) {
        return Err(Invalid("e-mail address contains whitespace"));
    }
    if !v.is_ascii() {
        return Err(Invalid(
            "e-mail address must be ASCII (an international domain in its xn-- form)",
        ));
    }
    if v.len() > 254 {
        return Err(Invalid("e-mail address is longer than 254 characters"));
    }
    let Some((local, domain)) = v.split_once('@') else {
        return Err(Invalid("e-mail address has no @"));
    };
    if domain.contains('@') {
        return Err(Invalid("e-mail address has more than one @"));
    }
    if local.is_empty() {
        return Err(Invalid("e-mail address has an empty local part"));
    }
    if local.len() > 64 {
        return Err(Invalid(
            "e-mail address local part is longer than 64 characters",
        ));
    }
    let atom_ok = |atom: &str| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
    };
    if !local.split('.').all(atom_ok) {
        return Err(Invalid(
            "e-mail address local part has a character or dot that is not allowed",
        ));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !domain.contains('.') || !domain.split('.').all(label_ok) {
        return Err(Invalid(
            "e-mail address domain is not a dotted name of letters, digits and hyphens",
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// Checks a phone number written in E.164 (`+`, the country calling code, the number; spaces and
/// hyphens between digits are tolerated), validates it against the numbering plan of its country
/// and returns the plain E.164 form, e.g. `+48600123456`.
pub fn phone(value: &str) -> Result<String, Invalid> {
    let Some(rest) = value.trim().strip_prefix('+') else {
        return Err(Invalid(
            "phone number must be in E.164 form: + then the country code and number",
        ));
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return Err(Invalid(
            "phone number may contain only digits (and spaces or hyphens) after the +",
        ));
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if !(2..=15).contains(&digits.len()) {
        return Err(Invalid(
            "phone number must have between 2 and 15 digits after the +",
        ));
    }
    let parsed = phonenumber::parse(None, format!("+{digits}"))
        .map_err(|_| Invalid("phone number is not a recognisable E.164 number"))?;
    if !parsed.is_valid() {
        return Err(Invalid(
            "phone number is not a valid number for its country code",
        ));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Checks a date of birth written `YYYY-MM-DD`: a real date, not before 1900-01-01 and not in
/// the future.
pub fn date_of_birth(value: &str) -> Result<Date, Invalid> {
    // The latest date it already is somewhere on Earth (UTC+14), so that a child born today in
    // any time zone is accepted whatever the server's clock zone.
    let latest = (OffsetDateTime::now_utc() + time::Duration::hours(14)).date();
    date_of_birth_not_after(value, latest)
}

fn date_of_birth_not_after(value: &str, latest: Date) -> Result<Date, Invalid> {
    let shape = Invalid("date_of_birth must be written YYYY-MM-DD");
    let b = value.trim().as_bytes();
    let is_shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !is_shaped {
        return Err(shape);
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
    let not_a_date = Invalid("date_of_birth is not a real calendar date");
    let year = i32::try_from(num(0..4)).map_err(|_| not_a_date)?;
    let month = u8::try_from(num(5..7))
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or(not_a_date)?;
    let day = u8::try_from(num(8..10)).map_err(|_| not_a_date)?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| not_a_date)?;
    if year < 1900 {
        return Err(Invalid("date_of_birth is before 1900-01-01"));
    }
    if date > latest {
        return Err(Invalid("date_of_birth is in the future"));
    }
    Ok(date)
}

/// Checks one text part of an address: not blank, at most 200 characters, no control
/// characters. `reasons` are the refusals for those three cases, in that order.
fn address_part(value: &str, reasons: [&'static str; 3]) -> Result<(), Invalid> {
    let [blank, long, control] = reasons;
    if value.trim().is_empty() {
        return Err(Invalid(blank));
    }
    if value.chars().count() > 200 {
        return Err(Invalid(long));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid(control));
    }
    Ok(())
}

/// Checks a postal address: line1, postal code and city present, every part at most 200
/// characters without control characters, the country an ISO 3166-1 alpha-2 code in upper case,
/// and for `PL` a postal code of the form `NN-NNN`.
pub fn address(a: &Address) -> Result<(), Invalid> {
    address_part(
        &a.line1,
        [
            "address line1 is empty",
            "address line1 is longer than 200 characters",
            "address line1 contains control characters",
        ],
    )?;
    if let Some(line2) = &a.line2 {
        if line2.chars().count() > 200 {
            return Err(Invalid("address line2 is longer than 200 characters"));
        }
        if line2.chars().any(char::is_control) {
            return Err(Invalid("address line2 contains control characters"));
        }
    }
    address_part(
        &a.postal_code,
        [
            "address postal_code is empty",
            "address postal_code is longer than 200 characters",
            "address postal_code contains control characters",
        ],
    )?;
    address_part(
        &a.city,
        [
            "address city is empty",
            "address city is longer than 200 characters",
            "address city contains control characters",
        ],
    )?;
    let c = a.country.as_bytes();
    if c.len() != 2 || !c.iter().all(u8::is_ascii_uppercase) {
        return Err(Invalid(
            "address country must be two upper-case letters (ISO 3166-1 alpha-2)",
        ));
    }
    if a.country == "PL" {
        let p = a.postal_code.as_bytes();
        let is_polish = p.len() == 6
            && p.iter().enumerate().all(|(i, c)| {
                if i == 2 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !is_polish {
            return Err(Invalid("address postal_code must be NN-NNN for country PL"));
        }
    }
    Ok(())
}

/// Checks a service or account name (a hosting login, a contract number): 1 to 100 characters,
/// no control characters. Returns it trimmed, lower-cased and with inner whitespace collapsed to
/// single spaces, the form exact-match search uses.
pub fn service(value: &str) -> Result<String, Invalid> {
    if value.chars().any(char::is_control) {
        return Err(Invalid("service name contains control characters"));
    }
    let normalised = value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    match normalised.chars().count() {
        0 => Err(Invalid("service name is empty")),
        1..=100 => Ok(normalised),
        _ => Err(Invalid("service name is longer than 100 characters")),
    }
}

/// Normalises a knowledge-question answer before it is hashed, so that what a caller says is
/// matched however the agent types it: lower-cased (Unicode-aware), apostrophes dropped
/// (`O'Brien` = `OBrien`), every other punctuation or symbol character and every run of
/// whitespace turned into one space (`Nowy-Sącz` = `nowy sącz`, `Warszawa.` = ` warszawa`),
/// trimmed. Refuses nothing.
///
/// Stored answer hashes depend on this exact mapping: changing it makes them unmatchable.
/// Input is not Unicode-normalised (no NFC); browsers send precomposed letters.
pub fn security_answer(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.chars().flat_map(char::to_lowercase) {
        if matches!(
            c,
            '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}'
        ) {
            continue;
        }
        // Letters, digits and combining accents (kept so a decomposed accent is not turned
        // into a word break) carry the answer; everything else separates words.
        if c.is_alphanumeric() || ('\u{0300}'..='\u{036F}').contains(&c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn pl_address() -> Address {
        Address {
            line1: "ul. Marszałkowska 1".into(),
            line2: None,
            postal_code: "00-624".into(),
            city: "Warszawa".into(),
            country: "PL".into(),
        }
    }

    /// Asserts `r` is a refusal that repeats no 4-character piece of the input (shorter inputs,
    /// such as a lone `+`, may well appear in any sentence and carry nothing personal).
    fn refuses_without_echo<T: std::fmt::Debug>(input: &str, r: Result<T, Invalid>) {
        let err = match r {
            Err(e) => e.to_string(),
            Ok(v) => panic!("accepted an invalid value: {v:?}"),
        };
        let chars: Vec<char> = input.trim().chars().collect();
        for w in chars.windows(4) {
            let piece: String = w.iter().collect();
            assert!(
                !err.contains(&piece),
                "the refusal {err:?} repeats part of the input"
            );
        }
    }

    #[test]
    fn a_valid_pesel_gives_its_birth_date() {
        assert_eq!(pesel("44051401359"), Ok(date!(1944 - 05 - 14)));
        assert_eq!(pesel(" 44051401359 "), Ok(date!(1944 - 05 - 14)));
        assert_eq!(pesel("02070803628"), Ok(date!(1902 - 07 - 08)));
        // Month +20: born in the 2000s (python-stdnum's examples).
        assert_eq!(pesel("02211307589"), Ok(date!(2002 - 01 - 13)));
        assert_eq!(pesel("02122401358"), Ok(date!(1902 - 12 - 24)));
    }

    #[test]
    fn pesel_century_offsets_are_decoded() {
        // Built from a date and a serial with the check digit computed.
        fn with_check(ten: &str) -> String {
            let d: Vec<u32> = ten.bytes().map(|b| u32::from(b - b'0')).collect();
            let s = weighted(&d, &[1, 3, 7, 9, 1, 3, 7, 9, 1, 3]);
            format!("{ten}{}", (10 - s % 10) % 10)
        }
        assert_eq!(pesel(&with_check("9992311234")), Ok(date!(1899 - 12 - 31)));
        assert_eq!(pesel(&with_check("0001011234")), Ok(date!(1900 - 01 - 01)));
        assert_eq!(pesel(&with_check("0227081234")), Ok(date!(2002 - 07 - 08)));
        assert_eq!(pesel(&with_check("0041011234")), Ok(date!(2100 - 01 - 01)));
        assert_eq!(pesel(&with_check("9972311234")), Ok(date!(2299 - 12 - 31)));
        // 29 February: 2000 is a leap year, 1900 and 2100 are not.
        assert_eq!(pesel(&with_check("0022291234")), Ok(date!(2000 - 02 - 29)));
        for no_such_day in [
            "0002291234",
            "0042291234",
            "2302291234",
            "0013011234",
            "0000011234",
        ] {
            let p = with_check(no_such_day);
            assert_eq!(
                pesel(&p),
                Err(Invalid(
                    "PESEL's embedded birth date is not a real calendar date"
                ))
            );
            refuses_without_echo(&p, pesel(&p));
        }
    }

    #[test]
    fn invalid_pesels_are_refused_without_echo() {
        for bad in [
            "44051401358", // check digit
            "4405140135",  // short
            "440514013590",
            "4405140135a",
            "44051401359\u{0661}",
            "",
            "02381307589", // month 38 (stdnum's example)
        ] {
            refuses_without_echo(bad, pesel(bad));
        }
    }

    #[test]
    fn nip_accepts_separators_and_prefix_and_checks_digits() {
        assert_eq!(nip("8567346215").as_deref(), Ok("8567346215"));
        assert_eq!(nip("PL 8567346215").as_deref(), Ok("8567346215"));
        assert_eq!(nip("pl856-734-62-15").as_deref(), Ok("8567346215"));
        assert_eq!(nip(" 856 734 62 15 ").as_deref(), Ok("8567346215"));
        for bad in [
            "8567346216",
            "856734621",
            "85673462150",
            "DE8567346215",
            "856734621X",
        ] {
            refuses_without_echo(bad, nip(bad));
        }
        // 1234567890: weighted sum % 11 = 10, which no check digit can match.
        for last in 0..10 {
            let n = format!("123456789{last}");
            assert!(nip(&n).is_err());
        }
    }

    #[test]
    fn regon_nine_and_fourteen_digits() {
        assert_eq!(regon("192598184").as_deref(), Ok("192598184"));
        assert_eq!(regon("123456785").as_deref(), Ok("123456785"));
        assert_eq!(regon("12345678512347").as_deref(), Ok("12345678512347"));
        assert_eq!(regon("123-456-785").as_deref(), Ok("123456785"));
        refuses_without_echo("192598183", regon("192598183"));
        // Last check digit right, but the parent REGON-9 inside is wrong (stdnum's example).
        assert!(regon("12345678612342").is_err());
        refuses_without_echo("12345678512348", regon("12345678512348"));
        refuses_without_echo("1234567851234", regon("1234567851234"));
    }

    #[test]
    fn national_id_dispatches_and_compares_the_birth_date() {
        let p = NationalId {
            kind: NationalIdKind::Pesel,
            value: "44051401359".into(),
        };
        assert_eq!(national_id(&p, None).as_deref(), Ok("44051401359"));
        assert_eq!(
            national_id(&p, Some(date!(1944 - 05 - 14))).as_deref(),
            Ok("44051401359")
        );
        assert_eq!(
            national_id(&p, Some(date!(1944 - 05 - 15))),
            Err(Invalid(
                "the PESEL's embedded birth date differs from date_of_birth"
            ))
        );
        let n = NationalId {
            kind: NationalIdKind::Nip,
            value: "PL 856-734-62-15".into(),
        };
        assert_eq!(national_id(&n, None).as_deref(), Ok("8567346215"));
        let r = NationalId {
            kind: NationalIdKind::Regon,
            value: "192598183".into(),
        };
        refuses_without_echo("192598183", national_id(&r, None));
    }

    #[test]
    fn email_is_checked_and_lower_cased() {
        assert_eq!(
            email("  Jan.Kowalski+Faktury@Example.COM ").as_deref(),
            Ok("jan.kowalski+faktury@example.com")
        );
        assert!(email("a@b.pl").is_ok());
        assert!(email("o'brien@mail.example-host.ie").is_ok());
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", vec!["b".repeat(63); 4].join("."));
        for bad in [
            "",
            "jan.kowalski",
            "jan@@example.com",
            "jan@kowalski@example.com",
            "@example.com",
            "jan@example",
            "jan kowalski@example.com",
            "jan.@example.com",
            ".jan@example.com",
            "jan..k@example.com",
            "jan(k)@example.com",
            "jan@-example.com",
            "jan@example-.com",
            "jan@exa_mple.com",
            "jan@example..com",
            "jań@example.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            refuses_without_echo(bad, email(bad));
        }
    }

    #[test]
    fn phone_must_be_valid_e164() {
        assert_eq!(phone("+48600123456").as_deref(), Ok("+48600123456"));
        assert_eq!(phone(" +48 600-123-456 ").as_deref(), Ok("+48600123456"));
        assert_eq!(phone("+14155552671").as_deref(), Ok("+14155552671"));
        assert_eq!(phone("+442079460958").as_deref(), Ok("+442079460958"));
        for bad in [
            "600123456",      // no country code
            "0048600123456",  // international prefix instead of +
            "+48 600 123 45", // too short for Poland
            "+48600123456789",
            "+4860012345678901",
            "+48 (600) 123456",
            "+48600123456 ext 12",
            "+1-800-FLOWERS",
            "+",
            "",
        ] {
            refuses_without_echo(bad, phone(bad));
        }
    }

    #[test]
    fn date_of_birth_range_and_shape() {
        let today = date!(2026 - 05 - 01);
        assert_eq!(
            date_of_birth_not_after("1980-02-29", today),
            Ok(date!(1980 - 02 - 29))
        );
        assert_eq!(
            date_of_birth_not_after("1900-01-01", today),
            Ok(date!(1900 - 01 - 01))
        );
        assert_eq!(date_of_birth_not_after("2026-05-01", today), Ok(today));
        assert_eq!(
            date_of_birth_not_after("2026-05-02", today),
            Err(Invalid("date_of_birth is in the future"))
        );
        assert_eq!(
            date_of_birth_not_after("1899-12-31", today),
            Err(Invalid("date_of_birth is before 1900-01-01"))
        );
        for bad in [
            "1981-02-29",
            "1980-13-01",
            "1980-00-10",
            "1980-1-01",
            "01.02.1980",
            "19800201",
            "",
        ] {
            refuses_without_echo(bad, date_of_birth_not_after(bad, today));
        }
        assert!(date_of_birth("1980-02-29").is_ok());
        assert!(date_of_birth("9999-01-01").is_err());
    }

    #[test]
    fn address_parts_and_polish_postal_codes() {
        assert_eq!(address(&pl_address()), Ok(()));
        let de = Address {
            postal_code: "10115".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            ..pl_address()
        };
        assert_eq!(address(&de), Ok(()));
        let cases: Vec<(Address, &str)> = vec![
            (
                Address {
                    line1: "  ".into(),
                    ..pl_address()
                },
                "address line1 is empty",
            ),
            (
                Address {
                    city: String::new(),
                    ..pl_address()
                },
                "address city is empty",
            ),
            (
                Address {
                    postal_code: String::new(),
                    ..pl_address()
                },
                "address postal_code is empty",
            ),
            (
                Address {
                    line1: "x".repeat(201),
                    ..pl_address()
                },
                "address line1 is longer than 200 characters",
            ),
            (
                Address {
                    line2: Some("a\nb".into()),
                    ..pl_address()
                },
                "address line2 contains control characters",
            ),
            (
                Address {
                    country: "pl".into(),
                    ..pl_address()
                },
                "address country must be two upper-case letters (ISO 3166-1 alpha-2)",
            ),
            (
                Address {
                    country: "POL".into(),
                    ..pl_address()
                },
                "address country must be two upper-case letters (ISO 3166-1 alpha-2)",
            ),
            (
                Address {
                    postal_code: "00624".into(),
                    ..pl_address()
                },
                "address postal_code must be NN-NNN for country PL",
            ),
            (
                Address {
                    postal_code: "00-6245".into(),
                    ..pl_address()
                },
                "address postal_code must be NN-NNN for country PL",
            ),
        ];
        for (a, reason) in cases {
            assert_eq!(address(&a), Err(Invalid(reason)));
            for part in [&a.line1, &a.postal_code, &a.city] {
                refuses_without_echo(part, address(&a));
            }
        }
    }

    #[test]
    fn service_names_are_normalised() {
        assert_eq!(
            service("  Hosting   PRO-1234\u{a0}Kowalski ").as_deref(),
            Ok("hosting pro-1234 kowalski")
        );
        assert_eq!(service("ŻÓŁW").as_deref(), Ok("żółw"));
        assert!(service(&"a".repeat(100)).is_ok());
        for bad in ["", "   ", "abc\tdef", "abc\u{0}", &"a".repeat(101)] {
            refuses_without_echo(bad, service(bad));
        }
    }

    #[test]
    fn security_answers_match_however_typed() {
        assert_eq!(security_answer("Warszawa."), security_answer(" warszawa"));
        assert_eq!(security_answer("Warszawa."), "warszawa");
        assert_eq!(security_answer("  ŁÓDŹ!!  "), "łódź");
        assert_eq!(security_answer("Nowy-Sącz"), security_answer("nowy   sącz"));
        assert_eq!(security_answer("O'Brien"), security_answer("obrien"));
        assert_eq!(security_answer("Burek, the dog"), "burek the dog");
        assert_eq!(security_answer("«Reksio»"), "reksio");
        assert_eq!(security_answer("..."), "");
        assert_ne!(security_answer("kot"), security_answer("kod"));
    }
}
