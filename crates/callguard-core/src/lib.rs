//! Callguard's domain: who may do what, how staff prove who they are, and the small pieces of
//! cryptography those rules rest on. Pure logic with no I/O, so most unit tests live here.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
pub mod dnc;
pub mod identity;
pub mod kek;
pub mod net;
pub mod pan_scan;
pub mod password;
pub mod payments;
pub mod recording;
pub mod role;
pub mod secret;
pub mod throttle;
pub mod token;
pub mod totp;
pub mod vault;

pub use role::{Permission, Role};
pub use secret::Secret;

/// Seconds since the Unix epoch; the one clock type the domain uses.
pub type UnixTime = i64;

/// The current time in seconds since the Unix epoch.
#[must_use]
pub fn now() -> UnixTime {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 rendering of a Unix time, for JSON and pages.
#[must_use]
pub fn rfc3339(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
