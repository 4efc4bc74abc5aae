//! Card details as a caller types them, checked before anything leaves for a gateway: Luhn,
//! brand by IIN range, length by brand, expiry not past, CVC length by brand. Errors name the
//! field and the rule, never the digits.

use crate::UnixTime;
use std::fmt;
use zeroize::Zeroizing;

/// Card schemes told apart by their issuer identification number ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Diners,
    Jcb,
    Unionpay,
    Maestro,
}

impl CardBrand {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
            Self::Diners => "diners",
            Self::Jcb => "jcb",
            Self::Unionpay => "unionpay",
            Self::Maestro => "maestro",
        }
    }

    /// The brand's name as a person reads it.
    #[must_use]
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Visa => "Visa",
            Self::Mastercard => "Mastercard",
            Self::Amex => "American Express",
            Self::Discover => "Discover",
            Self::Diners => "Diners Club",
            Self::Jcb => "JCB",
            Self::Unionpay => "UnionPay",
            Self::Maestro => "Maestro",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Visa,
            Self::Mastercard,
            Self::Amex,
            Self::Discover,
            Self::Diners,
            Self::Jcb,
            Self::Unionpay,
            Self::Maestro,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }

    /// The brand of a card number from its leading digits, once enough of them are known (the
    /// keypad capture shows the brand as soon as this answers).
    #[must_use]
    pub fn from_prefix(digits: &str) -> Option<Self> {
        let lead = |n: usize| -> Option<u32> {
            digits
                .get(..n)
                .filter(|p| p.len() == n)
                .and_then(|p| p.parse().ok())
        };
        let within = |n: usize, lo: u32, hi: u32| lead(n).is_some_and(|v| (lo..=hi).contains(&v));
        if within(2, 34, 34) || within(2, 37, 37) {
            return Some(Self::Amex);
        }
        if within(2, 51, 55) || within(4, 2221, 2720) {
            return Some(Self::Mastercard);
        }
        if within(4, 6011, 6011) || within(3, 644, 649) || within(2, 65, 65) {
            return Some(Self::Discover);
        }
        if within(4, 3528, 3589) {
            return Some(Self::Jcb);
        }
        if within(3, 300, 305) || within(2, 36, 36) || within(2, 38, 39) {
            return Some(Self::Diners);
        }
        if within(2, 62, 62) {
            return Some(Self::Unionpay);
        }
        if within(2, 50, 50) || within(2, 56, 58) || within(2, 63, 63) || within(2, 67, 67) {
            return Some(Self::Maestro);
        }
        if within(1, 4, 4) {
            return Some(Self::Visa);
        }
        None
    }

    /// The card number lengths the scheme issues.
    #[must_use]
    pub fn lengths(self) -> &'static [usize] {
        match self {
            Self::Visa => &[13, 16, 19],
            Self::Mastercard => &[16],
            Self::Amex => &[15],
            Self::Diners => &[14, 15, 16, 17, 18, 19],
            Self::Discover | Self::Jcb | Self::Unionpay => &[16, 17, 18, 19],
            Self::Maestro => &[12, 13, 14, 15, 16, 17, 18, 19],
        }
    }

    /// The length of the security code printed on the card (4 on American Express, else 3).
    #[must_use]
    pub fn cvc_length(self) -> usize {
        if self == Self::Amex {
            4
        } else {
            3
        }
    }

    /// The most digits a number of this brand can have: the keypad capture's "digit 7 of 16".
    #[must_use]
    pub fn max_length(self) -> usize {
        self.lengths().iter().copied().max().unwrap_or(19)
    }
}

impl fmt::Display for CardBrand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// What is wrong with what was typed; never carries the digits themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the card number may hold only digits (spaces and dashes are ignored)")]
    NumberNotDigits,
    #[error("the card number is not one of a card brand this system accepts")]
    NumberUnknownBrand,
    #[error("the card number has the wrong number of digits for its brand")]
    NumberLength,
    #[error("the card number has a typing mistake (its check digit does not match)")]
    NumberChecksum,
    #[error("the expiry month must be 1 to 12")]
    ExpiryMonth,
    #[error("the expiry year must be given as two or four digits")]
    ExpiryYear,
    #[error("the card has expired")]
    Expired,
    #[error("the expiry date is too far in the future to be real")]
    ExpiryTooFar,
    #[error("the security code must be {0} digits for this card")]
    CvcLength(usize),
    #[error("the postal code may hold letters, digits, spaces and dashes, at most 10")]
    PostalCode,
}

impl CardError {
    /// The form field the error belongs to: `number`, `exp_month`, `exp_year`, `cvc`, `postal_code`.
    #[must_use]
    pub fn field(self) -> &'static str {
        match self {
            Self::NumberNotDigits
            | Self::NumberUnknownBrand
            | Self::NumberLength
            | Self::NumberChecksum => "number",
            Self::ExpiryMonth => "exp_month",
            Self::ExpiryYear | Self::Expired | Self::ExpiryTooFar => "exp_year",
            Self::CvcLength(_) => "cvc",
            Self::PostalCode => "postal_code",
        }
    }
}

/// A primary account number: digits only, wiped on drop, printed as nothing.
pub struct CardNumber {
    digits: Zeroizing<String>,
    brand: CardBrand,
}

impl CardNumber {
    /// Checks a typed card number: digits (spaces and dashes ignored), a known brand, a length
    /// that brand issues, and the Luhn check digit.
    pub fn parse(typed: &str) -> Result<Self, CardError> {
        // Room for one digit too many, so the length check never makes the buffer move (an old
        // buffer would be freed without being wiped).
        let mut digits = Zeroizing::new(String::with_capacity(20));
        for c in typed.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(CardError::NumberNotDigits),
            }
            if digits.len() > 19 {
                return Err(CardError::NumberLength);
            }
        }
        if digits.is_empty() {
            return Err(CardError::NumberLength);
        }
        let brand = CardBrand::from_prefix(&digits).ok_or(CardError::NumberUnknownBrand)?;
        if !brand.lengths().contains(&digits.len()) {
            return Err(CardError::NumberLength);
        }
        if !luhn_valid(&digits) {
            return Err(CardError::NumberChecksum);
        }
        Ok(Self { digits, brand })
    }

    #[must_use]
    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    /// The last four digits, which may be kept and shown.
    #[must_use]
    pub fn last4(&self) -> String {
        self.digits[self.digits.len().saturating_sub(4)..].to_owned()
    }

    /// The digits, for the one place that sends them to a gateway.
    #[must_use]
    pub fn expose_digits(&self) -> &str {
        &self.digits
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CardNumber({} ending {})",
            self.brand.as_str(),
            self.last4()
        )
    }
}

/// The Luhn (mod 10) check over a string of ASCII digits.
#[must_use]
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// A card's expiry month and four-digit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub month: u8,
    pub year: u16,
}

impl Expiry {
    /// Checks a month (1–12) and a two- or four-digit year: not past at `now` (a card is valid to
    /// the end of its month) and no more than 20 years ahead.
    pub fn parse(month: &str, year: &str, now: UnixTime) -> Result<Self, CardError> {
        let month: u8 = month
            .trim()
            .parse()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or(CardError::ExpiryMonth)?;
        let y = year.trim();
        if !(y.len() == 2 || y.len() == 4) || !y.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::ExpiryYear);
        }
        let mut year: u16 = y.parse().map_err(|_| CardError::ExpiryYear)?;
        if y.len() == 2 {
            year += 2000;
        }
        let today = time::OffsetDateTime::from_unix_timestamp(now)
            .map_err(|_| CardError::Expired)?
            .date();
        let (this_year, this_month) = (i32::from(year), i32::from(u8::from(today.month())));
        let now_index = today.year() * 12 + this_month;
        let card_index = this_year * 12 + i32::from(month);
        if card_index < now_index {
            return Err(CardError::Expired);
        }
        if card_index > now_index + 20 * 12 {
            return Err(CardError::ExpiryTooFar);
        }
        Ok(Self { month, year })
    }
}

/// A card security code, wiped on drop, printed as nothing.
pub struct Cvc(Zeroizing<String>);

impl Cvc {
    /// Checks the code's length against the card's brand.
    pub fn parse(typed: &str, brand: CardBrand) -> Result<Self, CardError> {
        let t = typed.trim();
        if t.len() != brand.cvc_length() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::CvcLength(brand.cvc_length()));
        }
        Ok(Self(Zeroizing::new(t.to_owned())))
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(<redacted>)")
    }
}

/// Everything a gateway needs to tokenise a card; lives only in memory.
#[derive(Debug)]
pub struct CardDetails {
    pub number: CardNumber,
    pub expiry: Expiry,
    pub cvc: Cvc,
    pub postal_code: Option<Zeroizing<String>>,
}

impl CardDetails {
    /// Checks every field as typed; the first problem found is returned, naming its field.
    pub fn parse(
        number: &str,
        exp_month: &str,
        exp_year: &str,
        cvc: &str,
        postal_code: Option<&str>,
        now: UnixTime,
    ) -> Result<Self, CardError> {
        let number = CardNumber::parse(number)?;
        let expiry = Expiry::parse(exp_month, exp_year, now)?;
        let cvc = Cvc::parse(cvc, number.brand())?;
        let postal_code = match postal_code.map(str::trim) {
            None | Some("") => None,
            Some(p) => {
                if p.len() > 10
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
                {
                    return Err(CardError::PostalCode);
                }
                Some(Zeroizing::new(p.to_owned()))
            }
        };
        Ok(Self {
            number,
            expiry,
            cvc,
            postal_code,
        })
    }

    /// What may be kept of the card.
    #[must_use]
    pub fn summary(&self) -> CardSummary {
        CardSummary {
            brand: self.number.brand(),
            last4: self.number.last4(),
            exp_month: self.expiry.month,
            exp_year: self.expiry.year,
        }
    }
}

/// What is kept and shown of a card: brand, last four digits, expiry month and year.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CardSummary {
    pub brand: CardBrand,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-05T00:00:00Z
    const NOW: UnixTime = 1_796_428_800;

    #[test]
    fn stripe_test_cards_are_told_apart_by_brand() {
        for (pan, brand) in [
            ("4242424242424242", CardBrand::Visa),
            ("5555555555554444", CardBrand::Mastercard),
            ("2223003122003222", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("3056930009020004", CardBrand::Diners),
            ("3566002020360505", CardBrand::Jcb),
            ("6200000000000005", CardBrand::Unionpay),
        ] {
            assert_eq!(
                CardNumber::parse(pan).map(|n| n.brand()),
                Ok(brand),
                "{pan}"
            );
        }
    }

    #[test]
    fn a_typing_mistake_is_caught_by_the_check_digit() {
        assert_eq!(
            CardNumber::parse("4242424242424241").err(),
            Some(CardError::NumberChecksum)
        );
        assert_eq!(
            CardNumber::parse("4242 4242-4242 4242").map(|n| n.last4()),
            Ok("4242".to_owned())
        );
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused_without_echoing_the_digits() {
        let e = CardNumber::parse("42424242424242").err();
        assert_eq!(e, Some(CardError::NumberLength));
        let e = CardNumber::parse("4242x24242424242").err();
        assert_eq!(e, Some(CardError::NumberNotDigits));
        let shown = format!("{:?} {}", e, CardError::NumberChecksum);
        assert!(!shown.contains("4242"));
        assert_eq!(
            CardNumber::parse("9999999999999995").err(),
            Some(CardError::NumberUnknownBrand)
        );
    }

    #[test]
    fn debug_never_shows_the_number_or_the_code() -> Result<(), CardError> {
        let card = CardDetails::parse("4242424242424242", "12", "2030", "123", None, NOW)?;
        let shown = format!("{card:?}");
        assert!(!shown.contains("424242424242"), "{shown}");
        assert!(!shown.contains("123"), "{shown}");
        Ok(())
    }

    #[test]
    fn amex_takes_four_digit_codes_and_others_three() {
        assert!(CardDetails::parse("378282246310005", "12", "30", "1234", None, NOW).is_ok());
        assert_eq!(
            CardDetails::parse("378282246310005", "12", "30", "123", None, NOW).err(),
            Some(CardError::CvcLength(4))
        );
        assert_eq!(
            CardDetails::parse("4242424242424242", "12", "30", "1234", None, NOW).err(),
            Some(CardError::CvcLength(3))
        );
    }

    #[test]
    fn a_card_is_valid_to_the_end_of_its_month() {
        assert!(Expiry::parse("12", "2026", NOW).is_ok());
        assert_eq!(Expiry::parse("11", "2026", NOW), Err(CardError::Expired));
        assert_eq!(
            Expiry::parse("13", "2027", NOW),
            Err(CardError::ExpiryMonth)
        );
        assert_eq!(Expiry::parse("1", "27x", NOW), Err(CardError::ExpiryYear));
        assert_eq!(
            Expiry::parse("1", "2060", NOW),
            Err(CardError::ExpiryTooFar)
        );
    }

    #[test]
    fn the_brand_is_known_from_the_first_digits() {
        assert_eq!(CardBrand::from_prefix("4"), Some(CardBrand::Visa));
        assert_eq!(CardBrand::from_prefix("3"), None);
        assert_eq!(CardBrand::from_prefix("37"), Some(CardBrand::Amex));
        assert_eq!(CardBrand::Amex.max_length(), 15);
    }
}
