//! Masked views of personal data, shown to staff who may see that a field exists but not its
//! value (SPEC C3: views are masked by role). Each mask keeps just enough to tell two values
//! apart in conversation (`+48 *** *** 567`, `j***@e***.com`) and never the whole value: a
//! value too short to keep a part of is masked completely.

use super::model::{Address, NationalIdKind};

/// What stands for a hidden part.
const HIDDEN: &str = "***";

/// The first character of `s` followed by `***`, or just `***` when `s` has fewer than two
/// characters (showing its first would show all of it).
fn initial(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(_)) => format!("{first}{HIDDEN}"),
        _ => HIDDEN.to_owned(),
    }
}

/// A phone number: the `+`, the country calling code and the last three digits, the rest
/// masked in groups of three from the right: `+48 *** *** 567`.
pub fn phone(e164: &str) -> String {
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return HIDDEN.to_owned();
    }
    let from_plan = phonenumber::parse(None, format!("+{digits}"))
        .ok()
        .map(|p| p.code().value().to_string())
        .filter(|code| digits.starts_with(code.as_str()) && code.len() < digits.len());
    let code_len = from_plan.map_or(2.min(digits.len()), |code| code.len());
    let (code, national) = digits.split_at(code_len);
    // With three digits or fewer after the code, showing three would show the whole number.
    let shown = if national.len() > 3 { 3 } else { 0 };
    let hidden = national.len() - shown;
    let mut groups: Vec<String> = Vec::new();
    let first = hidden % 3;
    if first > 0 {
        groups.push("*".repeat(first));
    }
    groups.extend(std::iter::repeat_n(HIDDEN.to_owned(), hidden / 3));
    if shown > 0 {
        groups.push(national[hidden..].to_owned());
    }
    if groups.is_empty() {
        format!("+{code}")
    } else {
        format!("+{code} {}", groups.join(" "))
    }
}

/// An e-mail address: the first character of the local part and of the domain, and the
/// top-level domain: `j***@e***.com`.
pub fn email(e: &str) -> String {
    let Some((local, domain)) = e.trim().rsplit_once('@') else {
        return HIDDEN.to_owned();
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let tld = match domain.rsplit_once('.') {
        Some((_, tld)) if !tld.is_empty() => format!(".{tld}"),
        _ => String::new(),
    };
    format!("{}{HIDDEN}@{}{HIDDEN}{tld}", first(local), first(domain))
}

/// A name: the first letter of each word, then `***`: `J*** K***`, `Ł*** Ż***`.
pub fn name(n: &str) -> String {
    let words: Vec<String> = n
        .split_whitespace()
        .map(|word| match word.chars().find(|c| c.is_alphabetic()) {
            Some(letter) if word.chars().count() > 1 => format!("{letter}{HIDDEN}"),
            _ => HIDDEN.to_owned(),
        })
        .collect();
    if words.is_empty() {
        HIDDEN.to_owned()
    } else {
        words.join(" ")
    }
}

/// A national identifier: its kind and only the last two characters, e.g. `PESEL *********59`.
pub fn national_id(kind: NationalIdKind, normalised: &str) -> String {
    let label = match kind {
        NationalIdKind::Pesel => "PESEL",
        NationalIdKind::Nip => "NIP",
        NationalIdKind::Regon => "REGON",
    };
    let chars: Vec<char> = normalised.trim().chars().collect();
    if chars.len() < 5 {
        return format!("{label} {HIDDEN}");
    }
    let (hidden, shown) = chars.split_at(chars.len() - 2);
    format!(
        "{label} {}{}",
        "*".repeat(hidden.len()),
        shown.iter().collect::<String>()
    )
}

/// A date of birth, fully masked: `****-**-**`.
pub fn date_of_birth(_: time::Date) -> String {
    "****-**-**".to_owned()
}

/// An address: only the first character of the city and the country: `***, W***, PL`.
pub fn address(a: &Address) -> String {
    let country = if a.country.len() == 2 && a.country.bytes().all(|b| b.is_ascii_alphabetic()) {
        a.country.as_str()
    } else {
        "**"
    };
    format!("{HIDDEN}, {}, {country}", initial(a.city.trim()))
}

/// A service or account name: its first two characters, then `***` (fewer for names too short
/// to keep two without giving most of them away).
pub fn service(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    let shown = chars.len().saturating_sub(2).min(2);
    let mut out: String = chars.iter().take(shown).collect();
    out.push_str(HIDDEN);
    out
}

/// Free text (notes): nothing of it.
pub fn text(_: &str) -> String {
    HIDDEN.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    /// No 4-character piece of `value` appears in `masked`, nor `value` itself.
    fn leaks(masked: &str, value: &str) -> Option<String> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if masked.contains(value) {
            return Some(value.to_owned());
        }
        let chars: Vec<char> = value.chars().collect();
        chars
            .windows(4)
            .map(|w| w.iter().collect::<String>())
            .find(|piece| masked.contains(piece.as_str()))
    }

    #[test]
    fn phone_keeps_the_country_code_and_last_three_digits() {
        assert_eq!(phone("+48600123567"), "+48 *** *** 567");
        assert_eq!(phone("+14155552671"), "+1 * *** *** 671");
        assert_eq!(phone("+442079460958"), "+44 * *** *** 958");
        assert_eq!(phone("+380441234567"), "+380 *** *** 567");
        // Not a known country code: the first two digits stand for it.
        assert_eq!(phone("+99912345678"), "+99 *** *** 678");
        // Too short to keep three digits.
        assert_eq!(phone("+48123"), "+48 ***");
        assert_eq!(phone(""), "***");
    }

    #[test]
    fn email_keeps_two_initials_and_the_top_level_domain() {
        assert_eq!(email("jan.kowalski@example.com"), "j***@e***.com");
        assert_eq!(email("anna@poczta.onet.pl"), "a***@p***.pl");
        assert_eq!(email("x@localhost"), "x***@l***");
        assert_eq!(email("no-at-sign"), "***");
    }

    #[test]
    fn names_keep_the_first_letter_of_each_word() {
        assert_eq!(name("Jan Kowalski"), "J*** K***");
        assert_eq!(name("Łucja  Żak"), "Ł*** Ż***");
        assert_eq!(name("Anna Kowalska-Nowak"), "A*** K***");
        assert_eq!(name("J. Kowalski"), "J*** K***");
        assert_eq!(name("X"), "***");
        assert_eq!(name(""), "***");
    }

    #[test]
    fn national_ids_keep_the_last_two_characters() {
        assert_eq!(
            national_id(NationalIdKind::Pesel, "44051401359"),
            "PESEL *********59"
        );
        assert_eq!(
            national_id(NationalIdKind::Nip, "8567346215"),
            "NIP ********15"
        );
        assert_eq!(
            national_id(NationalIdKind::Regon, "192598184"),
            "REGON *******84"
        );
        assert_eq!(national_id(NationalIdKind::Regon, "123"), "REGON ***");
    }

    #[test]
    fn the_rest() {
        assert_eq!(date_of_birth(date!(1944 - 05 - 14)), "****-**-**");
        let a = Address {
            line1: "ul. Marszałkowska 1".into(),
            line2: Some("m. 5".into()),
            postal_code: "00-624".into(),
            city: "Warszawa".into(),
            country: "PL".into(),
        };
        assert_eq!(address(&a), "***, W***, PL");
        assert_eq!(service("hosting-kowalski"), "ho***");
        assert_eq!(service("abc"), "a***");
        assert_eq!(service("ab"), "***");
        assert_eq!(text("Caller prefers mornings."), "***");
    }

    #[test]
    fn masks_never_show_a_value_or_four_characters_of_it() {
        for p in [
            "+48600123567",
            "+48221234567",
            "+14155552671",
            "+442079460958",
            "+4930123456",
        ] {
            // The last three digits are meant to show; that is under four.
            let m = phone(p);
            assert_eq!(leaks(&m, p), None, "{m}");
            assert_eq!(leaks(&m, &p[1..]), None, "{m}");
        }
        for e in [
            "jan.kowalski@example.com",
            "a.b@wp.pl",
            "info@firma-kowalski.info",
            "zz@zz.museum",
        ] {
            let m = email(e);
            // The top-level domain is meant to show, and may be four characters or more.
            let tld = e
                .rsplit_once('.')
                .map(|(_, t)| format!(".{t}"))
                .unwrap_or_default();
            let without_tld = m.strip_suffix(tld.as_str()).unwrap_or(&m);
            assert_eq!(leaks(without_tld, e), None, "{m}");
            let (local, domain) = e.split_once('@').unwrap();
            assert_eq!(leaks(without_tld, local), None, "{m}");
            assert_eq!(leaks(without_tld, domain), None, "{m}");
        }
        for n in [
            "Jan Kowalski",
            "Łucja Żak",
            "Anna Maria Kowalska-Nowak",
            "Li Na",
            "Ed",
        ] {
            let m = name(n);
            assert_eq!(leaks(&m, n), None, "{m}");
            for word in n.split_whitespace() {
                assert_eq!(leaks(&m, word), None, "{m}");
            }
        }
        for (kind, id) in [
            (NationalIdKind::Pesel, "44051401359"),
            (NationalIdKind::Nip, "8567346215"),
            (NationalIdKind::Regon, "12345678512347"),
        ] {
            let m = national_id(kind, id);
            assert_eq!(leaks(&m, id), None, "{m}");
        }
        let m = date_of_birth(date!(1944 - 05 - 14));
        assert_eq!(leaks(&m, "1944-05-14"), None, "{m}");
        let a = Address {
            line1: "ul. Marszałkowska 1".into(),
            line2: Some("m. 5".into()),
            postal_code: "00-624".into(),
            city: "Warszawa".into(),
            country: "PL".into(),
        };
        let m = address(&a);
        for part in [&a.line1, "m. 5", &a.postal_code, &a.city, "00-624 Warszawa"] {
            assert_eq!(leaks(&m, part), None, "{m}");
        }
        for s in [
            "hosting-kowalski",
            "UM/2024/00123",
            "abcd",
            "xyz",
            "ab",
            "a",
        ] {
            let m = service(s);
            assert_eq!(leaks(&m, s), None, "{m}");
        }
        let note = "Caller prefers mornings.";
        assert_eq!(leaks(&text(note), note), None);
    }
}
