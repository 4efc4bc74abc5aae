//! Finding card numbers where none may be (PCI DSS 3.5.1): a run of 13 to 19 digits, optionally
//! grouped by single spaces or dashes, with a card network's first digit and a right Luhn check
//! digit. Used by the compliance
//! report to scan stored data, log files and audit details. It only counts: the digits found are
//! never returned, so a hit cannot leak through the report that found it.

use crate::payments::card::luhn_valid;

/// How many card numbers `text` holds.
#[must_use]
pub fn count_pans(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut hits = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Collect one run of digits with single separators between them.
        let mut digits: Vec<u8> = Vec::with_capacity(24);
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(b);
                j += 1;
            } else if (b == b' ' || b == b'-')
                && j + 1 < bytes.len()
                && bytes[j + 1].is_ascii_digit()
                && j > i
                && bytes[j - 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        if digits.len() >= 13 && run_has_pan(&digits) && !inside_an_identifier(bytes, i, j) {
            hits += 1;
        }
        i = j.max(i + 1);
    }
    hits
}

/// The whole run is one number: 13 to 19 digits, a major network's first digit (2 to 6: Mastercard,
/// Amex, Diners, JCB, Visa, Discover), the Luhn check digit right, not one digit repeated. Parts
/// of longer runs are not tried: a 13-digit window of a long number is Luhn-valid one time in ten.
fn run_has_pan(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len())
        && (b'2'..=b'6').contains(&digits[0])
        && !all_same(digits)
        && std::str::from_utf8(digits).is_ok_and(luhn_valid)
}

/// Whether the run `bytes[start..end]` is part of a machine identifier rather than text: a UUID
/// (8-4-4-4-12 hex digits) or a hex string of 32 or more characters (a hash, a key id). Random
/// identifiers hold digit runs that pass the Luhn check one time in ten; a card number written
/// by a person is not glued into one.
#[must_use]
pub fn inside_an_identifier(bytes: &[u8], start: usize, end: usize) -> bool {
    let hexish = |b: u8| b.is_ascii_hexdigit() || b == b'-';
    let mut from = start;
    while from > 0 && hexish(bytes[from - 1]) {
        from -= 1;
    }
    let mut to = end;
    while to < bytes.len() && hexish(bytes[to]) {
        to += 1;
    }
    let token = &bytes[from..to];
    let groups: Vec<usize> = token.split(|b| *b == b'-').map(<[u8]>::len).collect();
    let uuid = groups.windows(5).any(|w| w == [8, 4, 4, 4, 12]);
    let long_hex = token.split(|b| *b == b'-').any(|g| g.len() >= 32);
    uuid || long_hex
}

fn all_same(w: &[u8]) -> bool {
    w.iter().all(|&b| b == w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_card_numbers_in_any_grouping() {
        assert_eq!(count_pans("card 4111111111111111 paid"), 1);
        assert_eq!(count_pans("card 4111 1111 1111 1111 paid"), 1);
        assert_eq!(
            count_pans("card 5555-5555-5555-4444, amex 378282246310005"),
            2
        );
        assert_eq!(count_pans("{\"note\":\"x4000056655665556y\"}"), 1);
    }

    #[test]
    fn ignores_numbers_that_are_not_cards() {
        assert_eq!(count_pans("4111111111111112"), 0, "wrong check digit");
        assert_eq!(count_pans("411111111111"), 0, "too short");
        assert_eq!(
            count_pans("2026-12-05T10:00:00Z 1733400000 +44 20 7946 0958"),
            0
        );
        assert_eq!(count_pans("0000000000000000"), 0);
        assert_eq!(
            count_pans("ms 1733400000123 id 41111111111111110"),
            0,
            "timestamp, 17 digits"
        );
        assert_eq!(count_pans(""), 0);
    }

    #[test]
    fn digit_runs_inside_uuids_and_hashes_are_not_cards() {
        // The 4-12 tail of this UUID reads as 4111 111111111111 (Luhn-valid), and the hash holds
        // a Luhn-valid run: identifiers, not card numbers.
        assert_eq!(
            count_pans("interaction 0c3f9a2e-7b1d-4e5a-4111-111111111111 ended"),
            0
        );
        assert_eq!(
            count_pans("leaf ab4111111111111111cdef0123456789abcdef0123456789abcdef012345"),
            0
        );
        // A card number next to an identifier is still found.
        assert_eq!(
            count_pans("0c3f9a2e-7b1d-4e5a-9c1d-2e3f4a5b6c7d paid with 4111 1111 1111 1111"),
            1
        );
    }
}
