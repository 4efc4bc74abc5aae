//! Bearer secrets: session tokens, setup tokens, sign-in challenges and recovery codes. Each is
//! at least 80 random bits, shown to its holder once and stored only as a SHA-256 hash, so a copy
//! of the database yields nothing that can be presented back to the server.

use crate::secret::Secret;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a token is for; the prefix lets secret scanners and people recognise a leaked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Setup,
    Challenge,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "cgs_",
            TokenKind::Setup => "cgu_",
            TokenKind::Challenge => "cgc_",
        }
    }
}

/// A fresh 256-bit token of the given kind.
#[must_use]
pub fn generate(kind: TokenKind) -> Secret<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(format!(
        "{}{}",
        kind.prefix(),
        data_encoding::BASE64URL_NOPAD.encode(&bytes)
    ))
}

/// The first characters of every service-account API token (the telephony edge's), so that the
/// server knows where to look it up and a secret scanner knows what it found.
pub const SERVICE_TOKEN_PREFIX: &str = "cgtel_";

/// The stored form of a token: hex SHA-256 of its text.
#[must_use]
pub fn hash(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// Number of recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;

/// A fresh recovery code: 80 random bits as 16 base32 characters in groups of four.
#[must_use]
pub fn recovery_code() -> Secret<String> {
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let text = data_encoding::BASE32_NOPAD.encode(&bytes);
    let grouped: Vec<&str> = [&text[0..4], &text[4..8], &text[8..12], &text[12..16]].to_vec();
    Secret::new(grouped.join("-"))
}

/// The stored form of a recovery code; case, dashes and spaces do not matter when typed.
#[must_use]
pub fn hash_recovery_code(code: &str) -> String {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hash(&format!("recovery:{clean}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_unique_and_long() {
        let a = generate(TokenKind::Session);
        let b = generate(TokenKind::Session);
        assert!(a.expose().starts_with("cgs_"));
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 4 + 43);
    }

    #[test]
    fn recovery_codes_carry_80_bits_and_hash_whatever_the_typing() {
        let code = recovery_code();
        assert_eq!(code.expose().len(), 19);
        let typed = code.expose().to_lowercase().replace('-', " ");
        assert_eq!(
            hash_recovery_code(code.expose()),
            hash_recovery_code(&typed)
        );
        assert_ne!(
            hash_recovery_code(code.expose()),
            hash_recovery_code(recovery_code().expose())
        );
    }

    #[test]
    fn hashes_differ_from_the_token() {
        let t = generate(TokenKind::Setup);
        assert!(!hash(t.expose()).contains(t.expose().as_str()));
        assert_eq!(hash(t.expose()).len(), 64);
    }
}
