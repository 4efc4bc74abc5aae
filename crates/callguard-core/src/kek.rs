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

/// What seals and opens small secrets: one key-encryption key, or a [`Keyring`] during and
/// after rotation.
pub trait Sealing {
    /// Seals under the current key.
    fn seal(&self, plaintext: &[u8], aad: &str) -> Vec<u8>;
    /// Opens a value sealed by any key this holds.
    fn open(&self, sealed: &[u8], aad: &str) -> Result<Secret<Vec<u8>>, OpenError>;
    /// The id of the key new values are sealed with.
    fn id(&self) -> String;
}

impl Sealing for KeyEncryptionKey {
    fn seal(&self, plaintext: &[u8], aad: &str) -> Vec<u8> {
        KeyEncryptionKey::seal(self, plaintext, aad)
    }
    fn open(&self, sealed: &[u8], aad: &str) -> Result<Secret<Vec<u8>>, OpenError> {
        KeyEncryptionKey::open(self, sealed, aad)
    }
    fn id(&self) -> String {
        KeyEncryptionKey::id(self)
    }
}

struct Keys {
    current: std::sync::Arc<KeyEncryptionKey>,
    previous: Vec<std::sync::Arc<KeyEncryptionKey>>,
}

/// The key-encryption keys a node holds: the current one, which seals, and the previous ones
/// still being rotated away from, which only open. A running server swaps the whole ring when
/// `callguard keys rotate` writes new key files, so rotation needs no restart.
pub struct Keyring {
    keys: std::sync::RwLock<Keys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

impl Keyring {
    #[must_use]
    pub fn new(current: KeyEncryptionKey, previous: Vec<KeyEncryptionKey>) -> Self {
        Self {
            keys: std::sync::RwLock::new(Keys {
                current: std::sync::Arc::new(current),
                previous: previous.into_iter().map(std::sync::Arc::new).collect(),
            }),
        }
    }

    /// Replaces the keys (after a rotation wrote new key files).
    pub fn replace(&self, current: KeyEncryptionKey, previous: Vec<KeyEncryptionKey>) {
        if let Ok(mut k) = self.keys.write() {
            *k = Keys {
                current: std::sync::Arc::new(current),
                previous: previous.into_iter().map(std::sync::Arc::new).collect(),
            };
        }
    }

    /// The key that seals.
    #[must_use]
    pub fn current(&self) -> Option<std::sync::Arc<KeyEncryptionKey>> {
        self.keys.read().ok().map(|k| k.current.clone())
    }

    /// Ids of every key held, current first.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        self.keys.read().map_or_else(
            |_| Vec::new(),
            |k| {
                std::iter::once(&k.current)
                    .chain(k.previous.iter())
                    .map(|x| x.id())
                    .collect()
            },
        )
    }

    /// Opens `sealed`, saying whether the current key did it (false: a previous key did, so
    /// the value is due for re-sealing).
    pub fn open_noting(
        &self,
        sealed: &[u8],
        aad: &str,
    ) -> Result<(Secret<Vec<u8>>, bool), OpenError> {
        let k = self.keys.read().map_err(|_| OpenError)?;
        if let Ok(v) = k.current.open(sealed, aad) {
            return Ok((v, true));
        }
        for p in &k.previous {
            if let Ok(v) = p.open(sealed, aad) {
                return Ok((v, false));
            }
        }
        Err(OpenError)
    }
}

impl Sealing for Keyring {
    fn seal(&self, plaintext: &[u8], aad: &str) -> Vec<u8> {
        self.current()
            .map(|k| k.seal(plaintext, aad))
            .unwrap_or_default()
    }
    fn open(&self, sealed: &[u8], aad: &str) -> Result<Secret<Vec<u8>>, OpenError> {
        self.open_noting(sealed, aad).map(|(v, _)| v)
    }
    fn id(&self) -> String {
        self.current().map(|k| k.id()).unwrap_or_default()
    }
}

/// How a value sealed by the key-encryption key is kept in a text column: this prefix, then
/// the sealed bytes in base64. A value without it was written in the clear before such columns
/// were sealed, and is sealed on the next start or rotation.
pub const SEALED_TEXT_PREFIX: &str = "sealed:";

/// Seals free text for a text column (`sealed:` + base64).
#[must_use]
pub fn seal_text<K: Sealing + ?Sized>(keys: &K, plain: &str, aad: &str) -> String {
    format!(
        "{SEALED_TEXT_PREFIX}{}",
        data_encoding::BASE64.encode(&keys.seal(plain.as_bytes(), aad))
    )
}

/// The sealed bytes of a value written by [`seal_text`]; `None` for text kept in the clear.
#[must_use]
pub fn sealed_bytes(stored: &str) -> Option<Vec<u8>> {
    stored
        .strip_prefix(SEALED_TEXT_PREFIX)
        .and_then(|b| data_encoding::BASE64.decode(b.as_bytes()).ok())
}

/// Opens a value written by [`seal_text`]; `None` when it is not sealed, or not for `aad`.
#[must_use]
pub fn open_text<K: Sealing + ?Sized>(keys: &K, stored: &str, aad: &str) -> Option<String> {
    let sealed = sealed_bytes(stored)?;
    let plain = keys.open(&sealed, aad).ok()?;
    String::from_utf8(plain.expose().clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_for_its_owner_and_hides_its_words() {
        let k = KeyEncryptionKey::generate();
        let stored = seal_text(
            &k,
            "Mozilla/5.0 (X11; Linux)",
            "callguard:session-user-agent:s1",
        );
        assert!(stored.starts_with(SEALED_TEXT_PREFIX) && !stored.contains("Mozilla"));
        assert_eq!(
            open_text(&k, &stored, "callguard:session-user-agent:s1").as_deref(),
            Some("Mozilla/5.0 (X11; Linux)")
        );
        assert_eq!(
            open_text(&k, &stored, "callguard:session-user-agent:s2"),
            None
        );
        assert_eq!(
            open_text(
                &KeyEncryptionKey::generate(),
                &stored,
                "callguard:session-user-agent:s1"
            ),
            None
        );
        assert_eq!(
            open_text(&k, "Mozilla/5.0", "callguard:session-user-agent:s1"),
            None
        );
    }

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
    fn a_keyring_seals_with_the_current_key_and_opens_with_any() {
        let old = KeyEncryptionKey::generate();
        let sealed_old = old.seal(b"x", "a");
        let old_id = old.id();
        let ring = Keyring::new(KeyEncryptionKey::generate(), vec![old]);
        let (v, current) = ring.open_noting(&sealed_old, "a").unwrap();
        assert_eq!(v.expose(), b"x");
        assert!(!current, "opened by the previous key");
        let sealed_new = Sealing::seal(&ring, b"y", "a");
        assert!(ring.open_noting(&sealed_new, "a").unwrap().1);
        assert_ne!(Sealing::id(&ring), old_id);
        assert_eq!(ring.ids().len(), 2);
        ring.replace(KeyEncryptionKey::generate(), Vec::new());
        assert!(
            Sealing::open(&ring, &sealed_old, "a").is_err(),
            "a retired key opens nothing"
        );
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
