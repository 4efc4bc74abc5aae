//! ISO 4217 currencies with their minor-unit exponent, and amounts in minor units.

use std::fmt;

/// An ISO 4217 currency this system accepts: its alphabetic code and minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

/// ISO 4217 active codes with their minor units (the "E" column of the published list). Funds
/// codes, precious metals and testing codes are left out: they are not charged to callers.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// Why a currency or amount was refused. Says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("currency must be an ISO 4217 code of three capital letters, such as EUR or PLN")]
    Unknown,
    #[error("amount must be a whole number of minor units (e.g. cents) between 1 and {max}")]
    Amount { max: i64 },
}

impl Currency {
    /// The currency for an ISO 4217 alphabetic code (exactly three capital letters).
    pub fn from_code(code: &str) -> Result<Self, CurrencyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, exponent)| Self { code, exponent })
            .ok_or(CurrencyError::Unknown)
    }

    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// How many decimal places the minor unit has (2 for EUR, 0 for JPY, 3 for KWD).
    #[must_use]
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// An amount as a person types it (`12.50`, `12,5`, `1500`) in minor units of this
    /// currency; `None` when it is not one (more decimals than the currency has, a sign, an
    /// exponent, more than 12 whole digits). The inverse of [`Money`]'s display.
    #[must_use]
    pub fn minor_units(&self, typed: &str) -> Option<i64> {
        let a = typed.trim().replace(',', ".");
        let (whole, frac) = a.split_once('.').unwrap_or((&a, ""));
        let exponent = usize::from(self.exponent);
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > exponent
            || whole.len() > 12
        {
            return None;
        }
        let frac_value: i64 = format!("{frac:0<exponent$}").parse().unwrap_or(0);
        whole
            .parse::<i64>()
            .ok()?
            .checked_mul(10_i64.pow(u32::from(self.exponent)))?
            .checked_add(frac_value)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An amount to charge: a positive whole number of minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// The largest amount accepted, in minor units: high enough for any call-center payment and
    /// far below what would overflow a gateway's integer.
    pub const MAX_MINOR: i64 = 99_999_999_999;

    pub fn new(minor: i64, currency: Currency) -> Result<Self, CurrencyError> {
        if (1..=Self::MAX_MINOR).contains(&minor) {
            Ok(Self { minor, currency })
        } else {
            Err(CurrencyError::Amount {
                max: Self::MAX_MINOR,
            })
        }
    }

    #[must_use]
    pub fn minor(&self) -> i64 {
        self.minor
    }

    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    /// `12.34 EUR`, `1500 JPY`, `1.250 KWD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = u32::from(self.currency.exponent);
        if exp == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let scale = 10_i64.pow(exp);
        write!(
            f,
            "{}.{:0width$} {}",
            self.minor / scale,
            self.minor % scale,
            self.currency,
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_carry_their_minor_unit_exponent() {
        assert_eq!(Currency::from_code("EUR").map(|c| c.exponent()), Ok(2));
        assert_eq!(Currency::from_code("JPY").map(|c| c.exponent()), Ok(0));
        assert_eq!(Currency::from_code("KWD").map(|c| c.exponent()), Ok(3));
    }

    #[test]
    fn unknown_or_lowercase_codes_are_refused() {
        for bad in ["eur", "EURO", "", "XXX", "XAU", "E U"] {
            assert_eq!(
                Currency::from_code(bad),
                Err(CurrencyError::Unknown),
                "{bad}"
            );
        }
    }

    #[test]
    fn amounts_must_be_positive_and_bounded() -> Result<(), CurrencyError> {
        let eur = Currency::from_code("EUR")?;
        assert!(Money::new(0, eur).is_err());
        assert!(Money::new(-5, eur).is_err());
        assert!(Money::new(Money::MAX_MINOR + 1, eur).is_err());
        assert_eq!(Money::new(1234, eur)?.to_string(), "12.34 EUR");
        assert_eq!(Money::new(5, eur)?.to_string(), "0.05 EUR");
        assert_eq!(
            Money::new(1500, Currency::from_code("JPY")?)?.to_string(),
            "1500 JPY"
        );
        assert_eq!(
            Money::new(1250, Currency::from_code("KWD")?)?.to_string(),
            "1.250 KWD"
        );
        Ok(())
    }

    #[test]
    fn amounts_typed_by_people_become_minor_units_of_their_currency() -> Result<(), CurrencyError> {
        let (eur, jpy, kwd) = (
            Currency::from_code("EUR")?,
            Currency::from_code("JPY")?,
            Currency::from_code("KWD")?,
        );
        assert_eq!(eur.minor_units("12.50"), Some(1250));
        assert_eq!(eur.minor_units("12,5"), Some(1250));
        assert_eq!(eur.minor_units("7"), Some(700));
        assert_eq!(jpy.minor_units("1500"), Some(1500));
        assert_eq!(kwd.minor_units("1.250"), Some(1250));
        for bad in ["", "1.234", "-3", "1e3", "abc", ".5", "9999999999999"] {
            assert_eq!(eur.minor_units(bad), None, "{bad}");
        }
        assert_eq!(jpy.minor_units("1.5"), None);
        Ok(())
    }
}
