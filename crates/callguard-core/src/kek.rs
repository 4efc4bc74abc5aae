//! The key-encryption key: 256 bits kept outside the database (a file in the data directory, a
//! configured file or the environment). It seals small secrets at rest — TOTP secrets now, the
//! per-customer data keys of the vault later — with XChaCha20-Poly1305. The associated data binds
//! each ciphertext to its owner and purpose, so a ciphertext copied to another row fails to open.

use crate::secret::Secret;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Version byte at the start of every sealed value, for future key rotation.
const VERSION: u8 = 1;

/// A 256-bit key-encryption key.
pub struct KeyEncryptionKey(Secret<Vec<u8>>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

/// Opening failed: wrong key, wrong owner or purpose, or a damaged value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a sealed value could not be opened (wrong key, wrong owner, or damaged)")]
pub struct OpenError;

impl KeyEncryptionKey {
    /// A fresh random key.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Secret::new(bytes))
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() == 32).then(|| Self(Secret::new(bytes)))
    }

    /// The key as text for its file: base64.
    #[must_use]
    pub fn to_text(&self) -> Secret<String> {
        Secret::new(data_encoding::BASE64.encode(self.0.expose()))
    }

    /// Parses the file form (base64 of 32 bytes, surrounding whitespace ignored).
    #[must_use]
    pub fn from_text(text: &str) -> Option<Self> {
        data_encoding::BASE64
            .decode(text.trim().as_bytes())
            .ok()
            .and_then(Self::from_bytes)
    }

    /// A short public fingerprint naming this key (stored beside what it sealed, so rotation
    /// knows what is left to re-wrap): hex of 8 bytes of SHA-256 over a label and the key.
    #[must_use]
    pub fn id(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"callguard-kek-id\0");
        h.update(self.0.expose());
        data_encoding::HEXLOWER.encode(&h.finalize()[..8])
    }

    fn cipher(&self) -> Option<XChaCha20Poly1305> {
        XChaCha20Poly1305::new_from_slice(self.0.expose()).ok()
    }

    /// Seals `plaintext` bound to `aad` (owner and purpose). Output: version, nonce, ciphertext.
    #[must_use]
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let Some(cipher) = self.cipher() else {
            return Vec::new();
        };
        let Ok(ct) = cipher.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        ) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed with [`KeyEncryptionKey::seal`] under the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Secret<Vec<u8>>, OpenError> {
        if sealed.len() < 1 + 24 + 16 || sealed[0] != VERSION {
            return Err(OpenError);
        }
        let cipher = self.cipher().ok_or(OpenError)?;
        cipher
            .decrypt(
                XNonce::from_slice(&sealed[1..25]),
                Payload {
                    msg: &sealed[25..],
                    aad: aad.as_bytes(),
                },
            )
            .map(Secret::new)
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_owner_and_key() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal(b"totp secret bytes", "totp:user-1");
        assert_eq!(
            kek.open(&sealed, "totp:user-1").unwrap().expose(),
            b"totp secret bytes"
        );
        assert_eq!(kek.open(&sealed, "totp:user-2"), Err(OpenError));
        assert_eq!(
            KeyEncryptionKey::generate().open(&sealed, "totp:user-1"),
            Err(OpenError)
        );
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(kek.open(&damaged, "totp:user-1"), Err(OpenError));
    }

    #[test]
    fn the_key_survives_its_text_form_and_never_prints() {
        let kek = KeyEncryptionKey::generate();
        let back = KeyEncryptionKey::from_text(kek.to_text().expose()).unwrap();
        let sealed = kek.seal(b"x", "a");
        assert!(back.open(&sealed, "a").is_ok());
        assert!(!format!("{kek:?}").contains(kek.to_text().expose().as_str()));
        assert!(KeyEncryptionKey::from_text("c2hvcnQ=").is_none());
    }
}
