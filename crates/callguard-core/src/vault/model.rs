//! The customer record as the API sends and receives it (SPEC public contract), and the names
//! of its fields. Values here are personal data: none of these types is ever logged, and their
//! `Debug` output is redacted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kinds of national identifier (Poland's for now; more may follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NationalIdKind {
    /// PESEL: 11 digits, checksum, embedded date of birth.
    Pesel,
    /// NIP (tax id): 10 digits with a checksum.
    Nip,
    /// REGON (business register): 9 or 14 digits with a checksum.
    Regon,
}

impl NationalIdKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NationalIdKind::Pesel => "pesel",
            NationalIdKind::Nip => "nip",
            NationalIdKind::Regon => "regon",
        }
    }
}

/// A national identifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NationalId {
    pub kind: NationalIdKind,
    pub value: String,
}

/// A postal address.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, e.g. `PL`.
    pub country: String,
}

macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    )*};
}
redacted_debug!(NationalId, Address);

/// The fields of a customer record that hold personal data, each sealed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    FullName,
    Phones,
    Emails,
    NationalId,
    DateOfBirth,
    Address,
    Services,
    Notes,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::FullName,
        Field::Phones,
        Field::Emails,
        Field::NationalId,
        Field::DateOfBirth,
        Field::Address,
        Field::Services,
        Field::Notes,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Field::FullName => "full_name",
            Field::Phones => "phones",
            Field::Emails => "emails",
            Field::NationalId => "national_id",
            Field::DateOfBirth => "date_of_birth",
            Field::Address => "address",
            Field::Services => "services",
            Field::Notes => "notes",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }
}
