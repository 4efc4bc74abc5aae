//! Password rules and hashing (SPEC C1): at least 12 characters, long passphrases welcome, no
//! composition rules, refused when on a list of common passwords (NIST SP 800-63B); hashed with
//! Argon2id at OWASP's parameters. Hashing is CPU- and memory-heavy, so callers run it off the
//! async runtime behind a semaphore.

use crate::secret::Secret;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Shortest accepted password, in characters (PCI DSS 8.3.6).
pub const MIN_CHARS: usize = 12;
/// Longest accepted password, in characters: well past the 64 NIST asks to accept, short enough
/// that hashing cost stays bounded.
pub const MAX_CHARS: usize = 256;

/// Argon2id memory cost in KiB (OWASP: 19 MiB).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_T: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// The 30,000 most common passwords of the zxcvbn frequency list (MIT licence), lower-cased.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// Why a password was refused. The messages say what to do and never repeat the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("the password is too short: use at least {MIN_CHARS} characters (a passphrase of several words works well)")]
    TooShort,
    #[error("the password is too long: use at most {MAX_CHARS} characters")]
    TooLong,
    #[error("the password is on a list of commonly used passwords: choose another")]
    Common,
    #[error("the password must not contain the username")]
    ContainsUsername,
    #[error("the password repeats a single character: choose another")]
    Repetitive,
}

/// Checks a new password against the policy. `username` is refused as a part of the password.
pub fn check_new_password(
    password: &Secret<String>,
    username: &str,
) -> Result<(), PasswordRejected> {
    let pw = password.expose();
    let chars = pw.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordRejected::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordRejected::TooLong);
    }
    let lower = pw.to_lowercase();
    if COMMON.contains(lower.as_str()) {
        return Err(PasswordRejected::Common);
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(PasswordRejected::ContainsUsername);
    }
    let mut it = pw.chars();
    if let Some(first) = it.next() {
        if it.all(|c| c == first) {
            return Err(PasswordRejected::Repetitive);
        }
    }
    Ok(())
}

/// Hashing failed inside the Argon2 library (never because of the password's content).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).map_err(|_| HashError)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with Argon2id and a random salt into a PHC string. Blocking: call it from a
/// blocking thread.
pub fn hash(password: &Secret<String>) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|_| HashError)?;
    Ok(hash.to_string())
}

/// Verifies a password against a PHC string. Blocking: call it from a blocking thread. A
/// malformed stored hash verifies as false.
#[must_use]
pub fn verify(password: &Secret<String>, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Verify with the parameters stored in the hash so that older hashes keep working.
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

/// A hashing worker that owns its Argon2 memory and reuses it for every hash, so memory stays
/// at one buffer per worker however many passwords pass through (allocating 19 MiB per hash
/// lets the allocator's per-thread pools grow without bound, and costs page faults and zeroing
/// each time).
pub struct HashWorker {
    blocks: Vec<argon2::Block>,
}

impl Default for HashWorker {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of a hash output and of a salt.
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

impl HashWorker {
    #[must_use]
    pub fn new() -> Self {
        let blocks = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(OUTPUT_LEN))
            .map_or(0, |p| p.block_count());
        Self {
            blocks: vec![argon2::Block::default(); blocks],
        }
    }

    fn compute(
        &mut self,
        params: Params,
        version: Version,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        if self.blocks.len() < params.block_count() {
            // A stored hash with a larger memory cost: grow once and keep the larger buffer.
            self.blocks
                .resize(params.block_count(), argon2::Block::default());
        }
        Argon2::new(Algorithm::Argon2id, version, params)
            .hash_password_into_with_memory(password, salt, out, &mut self.blocks[..])
            .map_err(|_| HashError)
    }

    /// Hashes a new password with a random salt into a PHC string, like [`hash`].
    pub fn hash(&mut self, password: &Secret<String>) -> Result<String, HashError> {
        use rand::RngCore;
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(OUTPUT_LEN))
            .map_err(|_| HashError)?;
        let mut out = [0u8; OUTPUT_LEN];
        self.compute(
            params,
            Version::V0x13,
            password.expose().as_bytes(),
            &salt,
            &mut out,
        )?;
        Ok(format!(
            "$argon2id$v=19$m={ARGON2_M_KIB},t={ARGON2_T},p={ARGON2_P}${}${}",
            data_encoding::BASE64_NOPAD.encode(&salt),
            data_encoding::BASE64_NOPAD.encode(&out)
        ))
    }

    /// Verifies a password against an Argon2id PHC string with the parameters stored in it,
    /// comparing in constant time. Anything malformed verifies as false.
    #[must_use]
    pub fn verify(&mut self, password: &Secret<String>, phc: &str) -> bool {
        use subtle::ConstantTimeEq;
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let version = parsed
            .version
            .and_then(|v| Version::try_from(v).ok())
            .unwrap_or(Version::V0x13);
        let expected = expected.as_bytes();
        let Ok(params) = Params::new(
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            Some(expected.len()),
        ) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        if self
            .compute(
                params,
                version,
                password.expose().as_bytes(),
                salt,
                &mut out,
            )
            .is_err()
        {
            return false;
        }
        bool::from(out.ct_eq(expected))
    }
}

/// A fixed hash to verify against when the user does not exist, so that an unknown username
/// costs the same time as a wrong password.
pub static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash(&Secret::new(String::from(
        "callguard-timing-equaliser-not-a-password",
    )))
    .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Secret<String> {
        Secret::new(v.to_owned())
    }

    #[test]
    fn short_passwords_are_refused() {
        assert_eq!(
            check_new_password(&s("eleven char"), "bob"),
            Err(PasswordRejected::TooShort)
        );
    }

    #[test]
    fn a_64_character_passphrase_is_accepted() {
        let p = "correct horse battery staple and then some more words to reach 64";
        assert!(p.chars().count() >= 64);
        assert_eq!(check_new_password(&s(p), "bob"), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_whatever_the_case() {
        assert_eq!(
            check_new_password(&s("QWERTY123456"), "bob"),
            Err(PasswordRejected::Common)
        );
        assert_eq!(
            check_new_password(&s("1qaz2wsx3edc"), "bob"),
            Err(PasswordRejected::Common)
        );
    }

    #[test]
    fn the_username_inside_the_password_is_refused() {
        assert_eq!(
            check_new_password(&s("my name is Alice-the-agent"), "alice"),
            Err(PasswordRejected::ContainsUsername)
        );
    }

    #[test]
    fn no_composition_rules_apply() {
        assert_eq!(
            check_new_password(&s("all lower case words here"), "bob"),
            Ok(())
        );
    }

    #[test]
    fn repeated_characters_are_refused() {
        assert_eq!(
            check_new_password(&s("zzzzzzzzzzzzzz"), "bob"),
            Err(PasswordRejected::Repetitive)
        );
    }

    #[test]
    fn a_reused_worker_agrees_with_the_argon2_crate_both_ways() {
        let mut w = HashWorker::new();
        let pw = s("correct horse battery staple");
        let ours = w.hash(&pw).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(verify(&pw, &ours), "the crate's verifier accepts our hash");
        let theirs = hash(&pw).unwrap();
        assert!(
            w.verify(&pw, &theirs),
            "our verifier accepts the crate's hash"
        );
        assert!(!w.verify(&s("correct horse battery stapler"), &theirs));
        assert!(
            !w.verify(&pw, "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
            "other variants are refused"
        );
        assert!(!w.verify(&pw, "garbage"));
        for _ in 0..3 {
            assert!(w.verify(&pw, &ours), "the buffer is reused without harm");
        }
    }

    #[test]
    fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let h = hash(&s("a long enough passphrase")).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&s("a long enough passphrase"), &h));
        assert!(!verify(&s("a long enough passphrasE"), &h));
        assert!(!verify(&s("x"), "not a phc string"));
    }
}
