//! Envelope encryption. Each customer has a random 256-bit data key; it is stored only wrapped
//! (sealed) by the key-encryption key, which never enters the database. Every field is sealed on
//! its own with the data key and XChaCha20-Poly1305 (random 192-bit nonces, so no nonce
//! bookkeeping), with associated data naming the customer and the field: a ciphertext copied to
//! another customer or another field fails to open. Destroying the wrapped data key destroys
//! every field at once; because half of it lives in a key store outside the database (see
//! [`KeyShare`]), a copy of the database made before the erasure cannot bring it back either.
//!
//! Exact-match search goes through blind indexes: HMAC-SHA256 under an index key (itself sealed
//! by the key-encryption key) over the normalised value, prefixed with its kind, so equal phone
//! numbers match while the database holds nothing that can be reversed without the key.

use crate::kek::{OpenError, Sealing};
use crate::secret::Secret;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Format byte at the start of every sealed field.
const FIELD_VERSION: u8 = 1;

/// A customer's data key, in memory only while a request needs it.
pub struct DataKey {
    cipher: XChaCha20Poly1305,
    customer_id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

fn dek_aad(customer_id: &str) -> String {
    format!("callguard:dek:{customer_id}")
}

fn field_aad(customer_id: &str, field: &str) -> String {
    format!("callguard:field:{customer_id}:{field}")
}

/// The half of a data key kept outside the database, in the key store. The database holds the
/// other half wrapped by the key-encryption key; the data key is the XOR of both. Deleting the
/// share at erasure makes the customer's fields unrecoverable even from a copy of the database
/// taken earlier, because that copy never held the share.
pub struct KeyShare(Secret<Vec<u8>>);

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyShare(<redacted>)")
    }
}

impl KeyShare {
    /// The stored form of a share (32 bytes).
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() == 32).then(|| Self(Secret::new(bytes)))
    }

    /// The share's bytes, for the key store.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.0.expose()
    }
}

fn random32() -> Secret<Vec<u8>> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let out = Secret::new(bytes.to_vec());
    zeroize::Zeroize::zeroize(&mut bytes);
    out
}

fn xor(a: &[u8], b: &[u8]) -> Secret<Vec<u8>> {
    Secret::new(a.iter().zip(b).map(|(x, y)| x ^ y).collect())
}

impl DataKey {
    /// A fresh key for a new customer: the key, the database half wrapped by the KEK, and the
    /// share for the key store.
    #[must_use]
    pub fn generate(customer_id: &str, kek: &impl Sealing) -> (Self, Vec<u8>, KeyShare) {
        let raw = random32();
        let share = random32();
        let half = xor(raw.expose(), share.expose());
        let wrapped = kek.seal(half.expose(), &dek_aad(customer_id));
        (
            Self::from_raw(customer_id, raw.expose()),
            wrapped,
            KeyShare(share),
        )
    }

    fn from_raw(customer_id: &str, raw: &[u8]) -> Self {
        let key = chacha20poly1305::Key::from_slice(raw);
        Self {
            cipher: XChaCha20Poly1305::new(key),
            customer_id: customer_id.to_owned(),
        }
    }

    /// Rebuilds a data key from its wrapped half and its share; fails for another customer's
    /// key, a wrong KEK or damage. (A wrong share gives a wrong key, which then opens nothing.)
    pub fn unwrap(
        customer_id: &str,
        wrapped: &[u8],
        share: &KeyShare,
        kek: &impl Sealing,
    ) -> Result<Self, OpenError> {
        let half = kek.open(wrapped, &dek_aad(customer_id))?;
        if half.expose().len() != 32 {
            return Err(OpenError);
        }
        let raw = xor(half.expose(), share.bytes());
        Ok(Self::from_raw(customer_id, raw.expose()))
    }

    /// Re-wraps the database half under another key-encryption key (rotation); the data key
    /// and the share stay as they are, so every field stays as it is.
    pub fn rewrap(
        customer_id: &str,
        wrapped: &[u8],
        old: &impl Sealing,
        new: &impl Sealing,
    ) -> Result<Vec<u8>, OpenError> {
        let half = old.open(wrapped, &dek_aad(customer_id))?;
        Ok(new.seal(half.expose(), &dek_aad(customer_id)))
    }

    /// Seals one field's plaintext. Output: format byte, nonce, ciphertext and tag.
    #[must_use]
    pub fn seal(&self, field: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = field_aad(&self.customer_id, field);
        let Ok(ct) = self.cipher.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        ) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(FIELD_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens one field sealed by [`DataKey::seal`] for this customer and field.
    pub fn open(&self, field: &str, sealed: &[u8]) -> Result<Secret<Vec<u8>>, OpenError> {
        if sealed.len() < 1 + 24 + 16 || sealed[0] != FIELD_VERSION {
            return Err(OpenError);
        }
        let aad = field_aad(&self.customer_id, field);
        self.cipher
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

/// What a blind index is over. The kind is part of the HMAC input, so equal text under two
/// kinds gives unrelated hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    Phone,
    Email,
    NationalId,
    Service,
}

impl IndexKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::Phone => "phone",
            IndexKind::Email => "email",
            IndexKind::NationalId => "national_id",
            IndexKind::Service => "service",
        }
    }
}

/// The key of the blind indexes: 256 bits, stored sealed by the key-encryption key.
pub struct IndexKey(Secret<Vec<u8>>);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(<redacted>)")
    }
}

/// Associated data of the sealed index key.
pub const INDEX_KEY_AAD: &str = "callguard:index-key";

impl IndexKey {
    /// A fresh key and its sealed form.
    #[must_use]
    pub fn generate(kek: &impl Sealing) -> (Self, Vec<u8>) {
        let mut raw = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let sealed = kek.seal(&raw, INDEX_KEY_AAD);
        (Self(Secret::new(raw)), sealed)
    }

    /// Opens the stored index key.
    pub fn unseal(sealed: &[u8], kek: &impl Sealing) -> Result<Self, OpenError> {
        let raw = kek.open(sealed, INDEX_KEY_AAD)?;
        if raw.expose().len() != 32 {
            return Err(OpenError);
        }
        Ok(Self(raw))
    }

    /// The blind index of an already normalised value: base64 of the first 16 bytes of
    /// HMAC-SHA256(key, kind || 0x00 || value). 128 bits keep collisions out of reach.
    #[must_use]
    pub fn blind(&self, kind: IndexKind, normalised: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose()) else {
            return String::new();
        };
        mac.update(kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(normalised.as_bytes());
        let tag = mac.finalize().into_bytes();
        data_encoding::BASE64.encode(&tag[..16])
    }

    /// A keyed hash of a one-time code, so stored codes cannot be brute-forced from a copy of
    /// the database: base64 HMAC-SHA256(key, "code" || 0x00 || purpose || 0x00 || code).
    #[must_use]
    pub fn code_hash(&self, purpose: &str, code: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose()) else {
            return String::new();
        };
        mac.update(b"code\0");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        data_encoding::BASE64.encode(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kek::KeyEncryptionKey;

    #[test]
    fn a_field_opens_only_for_its_customer_and_field() {
        let kek = KeyEncryptionKey::generate();
        let (k1, w1, s1) = DataKey::generate("c1", &kek);
        let sealed = k1.seal("full_name", b"Jan Kowalski");
        let again = DataKey::unwrap("c1", &w1, &s1, &kek).unwrap();
        assert_eq!(
            again.open("full_name", &sealed).unwrap().expose(),
            b"Jan Kowalski"
        );
        assert!(again.open("address", &sealed).is_err(), "another field");
        let (k2, _, s2) = DataKey::generate("c2", &kek);
        assert!(
            k2.open("full_name", &sealed).is_err(),
            "another customer's key"
        );
        assert!(
            DataKey::unwrap("c2", &w1, &s1, &kek).is_err(),
            "a wrapped key moved to another row"
        );
        assert!(DataKey::unwrap("c1", &w1, &s1, &KeyEncryptionKey::generate()).is_err());
        let wrong_share = DataKey::unwrap("c1", &w1, &s2, &kek).unwrap();
        assert!(
            wrong_share.open("full_name", &sealed).is_err(),
            "without its share the key is gone"
        );
        let mut damaged = sealed.clone();
        damaged[30] ^= 1;
        assert!(again.open("full_name", &damaged).is_err());
        assert!(!format!("{again:?}").contains("Jan"));
    }

    #[test]
    fn rewrapping_keeps_the_data_key_and_drops_the_old_kek() {
        let old = KeyEncryptionKey::generate();
        let new = KeyEncryptionKey::generate();
        let (k, w, share) = DataKey::generate("c1", &old);
        let sealed = k.seal("phones", b"+48600100200");
        let w2 = DataKey::rewrap("c1", &w, &old, &new).unwrap();
        assert!(DataKey::unwrap("c1", &w2, &share, &old).is_err());
        let k2 = DataKey::unwrap("c1", &w2, &share, &new).unwrap();
        assert_eq!(
            k2.open("phones", &sealed).unwrap().expose(),
            b"+48600100200"
        );
    }

    #[test]
    fn blind_indexes_match_equal_values_only_under_the_same_key_and_kind() {
        let kek = KeyEncryptionKey::generate();
        let (key, sealed) = IndexKey::generate(&kek);
        let same = IndexKey::unseal(&sealed, &kek).unwrap();
        let a = key.blind(IndexKind::Phone, "+48600100200");
        assert_eq!(a, same.blind(IndexKind::Phone, "+48600100200"));
        assert_ne!(a, key.blind(IndexKind::Phone, "+48600100201"));
        assert_ne!(a, key.blind(IndexKind::Service, "+48600100200"));
        let (other, _) = IndexKey::generate(&kek);
        assert_ne!(a, other.blind(IndexKind::Phone, "+48600100200"));
        assert!(!a.contains("600100200"));
        assert_ne!(
            key.code_hash("portal", "ABCD2345"),
            key.code_hash("otp", "ABCD2345")
        );
    }
}
