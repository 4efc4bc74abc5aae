//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps, six
//! digits — what every authenticator app speaks. Verification returns the matched time step so
//! the caller can refuse any step at or before the last one accepted (each code works once).

use crate::secret::Secret;
use crate::UnixTime;
use hmac::{Hmac, Mac};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of now, for clock drift between the phone and the server.
pub const SKEW_STEPS: i64 = 1;
/// Wrong codes allowed within one time step before TOTP is locked for the rest of it.
pub const MAX_FAILURES_PER_STEP: i64 = 3;

/// A TOTP shared secret: 20 random bytes (160 bits, RFC 4226's recommendation).
#[derive(Clone)]
pub struct TotpSecret(Secret<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Secret::new(bytes))
    }

    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Secret::new(bytes))
    }

    /// Parses the base32 form shown to people (spaces and case ignored).
    #[must_use]
    pub fn from_base32(text: &str) -> Option<Self> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        data_encoding::BASE32_NOPAD
            .decode(clean.as_bytes())
            .ok()
            .filter(|b| b.len() >= 10)
            .map(Self::from_bytes)
    }

    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.0.expose()
    }

    /// The base32 form authenticator apps expect.
    #[must_use]
    pub fn to_base32(&self) -> Secret<String> {
        Secret::new(data_encoding::BASE32_NOPAD.encode(self.0.expose()))
    }

    /// The `otpauth://` URI for QR enrolment.
    #[must_use]
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Secret<String> {
        let label = format!("{}:{}", pct(issuer), pct(account));
        Secret::new(format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            self.to_base32().expose(),
            pct(issuer)
        ))
    }

    /// The code for a given time step.
    #[must_use]
    pub fn code_at_step(&self, step: i64) -> String {
        hotp(self.0.expose(), step as u64)
    }

    /// The code for a given time.
    #[must_use]
    pub fn code_at(&self, t: UnixTime) -> String {
        self.code_at_step(step_of(t))
    }

    /// Checks `code` at time `now` within the allowed skew, refusing any step at or before
    /// `last_step` (replay). Returns the matched step.
    #[must_use]
    pub fn verify(&self, code: &str, now: UnixTime, last_step: Option<i64>) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_of(now);
        let mut matched = None;
        // Compare every candidate so timing does not reveal which step matched.
        for step in (current - SKEW_STEPS)..=(current + SKEW_STEPS) {
            let expected = self.code_at_step(step);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched.filter(|step| last_step.is_none_or(|last| *step > last))
    }
}

/// The time step containing `t`.
#[must_use]
pub fn step_of(t: UnixTime) -> i64 {
    t.div_euclid(STEP_SECONDS)
}

/// The first second after the step containing `t`: when a per-step TOTP lock ends.
#[must_use]
pub fn end_of_step(t: UnixTime) -> UnixTime {
    (step_of(t) + 1) * STEP_SECONDS
}

fn hotp(key: &[u8], counter: u64) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_6238_test_vectors_truncated_to_six_digits() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890"; the RFC shows 8 digits.
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(s.code_at(59), "287082");
        assert_eq!(s.code_at(1_111_111_109), "081804");
        assert_eq!(s.code_at(1_234_567_890), "005924");
        assert_eq!(s.code_at(2_000_000_000), "279037");
    }

    #[test]
    fn agrees_with_an_independent_implementation() {
        let s = TotpSecret::generate();
        for t in [0u64, 59, 1_700_000_000, 1_800_000_017] {
            let theirs = totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, s.bytes(), t);
            assert_eq!(s.code_at(t as i64), theirs);
        }
    }

    #[test]
    fn a_code_is_accepted_once() {
        let s = TotpSecret::generate();
        let now = 1_700_000_000;
        let code = s.code_at(now);
        let step = s.verify(&code, now, None).unwrap();
        assert_eq!(s.verify(&code, now, Some(step)), None);
    }

    #[test]
    fn codes_from_the_neighbouring_steps_are_accepted_but_not_older() {
        let s = TotpSecret::generate();
        let now = 1_700_000_000;
        assert!(s.verify(&s.code_at(now - 30), now, None).is_some());
        assert!(s.verify(&s.code_at(now + 30), now, None).is_some());
        assert!(s.verify(&s.code_at(now - 90), now, None).is_none());
    }

    #[test]
    fn malformed_codes_are_refused() {
        let s = TotpSecret::generate();
        for bad in ["", "12345", "1234567", "abcdef", "12 456"] {
            assert!(s.verify(bad, 1_700_000_000, None).is_none());
        }
    }

    #[test]
    fn base32_round_trips_and_uri_names_issuer_and_account() {
        let s = TotpSecret::generate();
        let b32 = s.to_base32();
        let back = TotpSecret::from_base32(&b32.expose().to_lowercase()).unwrap();
        assert_eq!(back.bytes(), s.bytes());
        let uri = s.otpauth_uri("Callguard", "alice");
        assert!(uri
            .expose()
            .starts_with("otpauth://totp/Callguard:alice?secret="));
        assert!(!format!("{s:?}").contains(b32.expose().as_str()));
    }

    #[test]
    fn step_ends_on_the_next_boundary() {
        assert_eq!(end_of_step(60), 90);
        assert_eq!(end_of_step(89), 90);
    }
}
