//! Stripe's published test cards and what each one does, plus the checks Stripe makes on a card
//! when it is tokenised (number, length by brand, expiry, CVC length). Only the card's behaviour,
//! brand, last four and fingerprint are kept after tokenising: never the number.

use sha2::{Digest, Sha256};

/// What a tokenised test card does when it is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Succeeds,
    /// `card_error` with this `code` and `decline_code`.
    Declines {
        code: &'static str,
        decline_code: Option<&'static str>,
    },
    /// 3-D Secure is required: `requires_action` unless the charge is MOTO.
    RequiresAuthentication,
}

/// Stripe's test-card table (docs.stripe.com/testing): the cards a test can use to reach every
/// outcome.
pub(crate) fn behaviour(number: &str) -> Behaviour {
    let declines = |code, decline_code| Behaviour::Declines { code, decline_code };
    match number {
        "4000000000000002" => declines("card_declined", Some("generic_decline")),
        // Attaches to a customer, but every charge is declined.
        "4000000000000341" => declines("card_declined", Some("generic_decline")),
        "4000000000009995" => declines("card_declined", Some("insufficient_funds")),
        "4000000000009987" => declines("card_declined", Some("lost_card")),
        "4000000000009979" => declines("card_declined", Some("stolen_card")),
        "4100000000000019" => declines("card_declined", Some("fraudulent")),
        "4000000000000069" => declines("expired_card", Some("expired_card")),
        "4000000000000127" => declines("incorrect_cvc", Some("incorrect_cvc")),
        "4000000000000119" => declines("processing_error", Some("processing_error")),
        "4000002500003155" | "4000002760003184" | "4000000000003220" => {
            Behaviour::RequiresAuthentication
        }
        _ => Behaviour::Succeeds,
    }
}

/// Stripe's brand name for a card number, from its issuer identification number.
pub(crate) fn brand(number: &str) -> &'static str {
    let lead = |n: usize| number.get(..n).and_then(|p| p.parse::<u32>().ok());
    let within = |n, lo, hi| lead(n).is_some_and(|v| (lo..=hi).contains(&v));
    if within(2, 34, 34) || within(2, 37, 37) {
        "amex"
    } else if within(2, 51, 55) || within(4, 2221, 2720) {
        "mastercard"
    } else if within(4, 6011, 6011) || within(3, 644, 649) || within(2, 65, 65) {
        "discover"
    } else if within(4, 3528, 3589) {
        "jcb"
    } else if within(3, 300, 305) || within(2, 36, 36) || within(2, 38, 39) {
        "diners"
    } else if within(2, 62, 62) {
        "unionpay"
    } else if within(1, 4, 4) {
        "visa"
    } else {
        "unknown"
    }
}

pub(crate) fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// A card error Stripe raises while tokenising: `(code, param)`.
pub(crate) type CardProblem = (&'static str, &'static str);

/// Checks a card as Stripe does when a PaymentMethod is created.
pub(crate) fn check(
    number: &str,
    exp_month: &str,
    exp_year: &str,
    cvc: Option<&str>,
    this_year: u32,
) -> Result<(), CardProblem> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("invalid_number", "number"));
    }
    let brand = brand(number);
    let length_ok = match brand {
        "amex" => number.len() == 15,
        "diners" => (14..=19).contains(&number.len()),
        "visa" => matches!(number.len(), 13 | 16 | 19),
        _ => (16..=19).contains(&number.len()),
    };
    if !length_ok {
        return Err(("invalid_number", "number"));
    }
    if !luhn_valid(number) {
        return Err(("incorrect_number", "number"));
    }
    match exp_month.parse::<u32>() {
        Ok(1..=12) => {}
        _ => return Err(("invalid_expiry_month", "exp_month")),
    }
    let year = exp_year
        .parse::<u32>()
        .ok()
        .map(|y| if y < 100 { y + 2000 } else { y });
    match year {
        Some(y) if y >= this_year && y <= this_year + 50 => {}
        _ => return Err(("invalid_expiry_year", "exp_year")),
    }
    if let Some(cvc) = cvc {
        let wanted = if brand == "amex" { 4 } else { 3 };
        if cvc.len() != wanted || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(("invalid_cvc", "cvc"));
        }
    }
    Ok(())
}

/// A fingerprint that is the same for the same number on this peer and reveals nothing of it.
pub(crate) fn fingerprint(salt: &[u8], number: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(number.as_bytes())
        .finalize();
    data_encoding::BASE64URL_NOPAD.encode(&digest)[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_are_checked_like_stripe_does() {
        assert_eq!(
            check("4242424242424242", "12", "2030", Some("123"), 2026),
            Ok(())
        );
        assert_eq!(
            check("378282246310005", "12", "2030", Some("1234"), 2026),
            Ok(())
        );
        assert_eq!(
            check("378282246310005", "12", "2030", Some("123"), 2026),
            Err(("invalid_cvc", "cvc"))
        );
        assert_eq!(
            check("4242424242424241", "12", "2030", Some("123"), 2026),
            Err(("incorrect_number", "number"))
        );
        assert_eq!(
            check("42424242424242", "12", "2030", None, 2026),
            Err(("invalid_number", "number"))
        );
        assert_eq!(
            check("4242424242424242", "13", "2030", None, 2026),
            Err(("invalid_expiry_month", "exp_month"))
        );
        assert_eq!(
            check("4242424242424242", "12", "2020", None, 2026),
            Err(("invalid_expiry_year", "exp_year"))
        );
    }

    #[test]
    fn brands_and_fingerprints() {
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("378282246310005"), "amex");
        assert_eq!(brand("4000002500003155"), "visa");
        let a = fingerprint(b"s", "4242424242424242");
        assert_eq!(a, fingerprint(b"s", "4242424242424242"));
        assert_ne!(a, fingerprint(b"s", "5555555555554444"));
        assert!(!a.contains("4242"));
    }
}
