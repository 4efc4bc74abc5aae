//! C2SP signed notes and tlog checkpoints, with Ed25519 keys in the golang.org/x/mod/sumdb/note
//! format, so existing transparency-log tooling and witnesses can read Callguard's checkpoints.
//!
//! A checkpoint is the note text `origin\nsize\nbase64(root)\n`; the signed note appends a blank
//! line and `— name base64(keyhash[4] || signature[64])`. The key hash is the first four bytes of
//! SHA-256(name || "\n" || 0x01 || public key); the verifier key is `name+hex(keyhash)+base64(0x01 || public key)`.

use super::merkle::Hash;
use crate::secret::Secret;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

const ALG_ED25519: u8 = 0x01;

/// An Ed25519 note signer.
pub struct NoteSigner {
    name: String,
    pair: Ed25519KeyPair,
    pkcs8: Secret<Vec<u8>>,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({})", self.name)
    }
}

/// A key or note that does not parse or verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("the key name must be non-empty and contain no spaces, '+' or newlines")]
    BadName,
    #[error("the signing key could not be read")]
    BadKey,
    #[error("the note is malformed: {0}")]
    Malformed(&'static str),
    #[error("no valid signature by the expected key")]
    BadSignature,
}

fn key_hash(name: &str, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

impl NoteSigner {
    /// A fresh key; keep [`NoteSigner::pkcs8`] to load it again.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| NoteError::BadKey)?;
        Self::from_pkcs8(name, doc.as_ref())
    }

    /// Loads a key from its PKCS#8 document.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadName);
        }
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| NoteError::BadKey)?;
        Ok(Self {
            name: name.to_owned(),
            pair,
            pkcs8: Secret::new(pkcs8.to_vec()),
        })
    }

    #[must_use]
    pub fn pkcs8(&self) -> &Secret<Vec<u8>> {
        &self.pkcs8
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key: `name+hex(keyhash)+base64(0x01 || public key)`.
    #[must_use]
    pub fn verifier_key(&self) -> String {
        let public = self.pair.public_key().as_ref();
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(public);
        format!(
            "{}+{}+{}",
            self.name,
            data_encoding::HEXLOWER.encode(&key_hash(&self.name, public)),
            data_encoding::BASE64.encode(&key)
        )
    }

    /// Signs `text` (which must end with a newline) into a signed note.
    #[must_use]
    pub fn sign(&self, text: &str) -> String {
        let public = self.pair.public_key().as_ref();
        let sig = self.pair.sign(text.as_bytes());
        let mut blob = key_hash(&self.name, public).to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            data_encoding::BASE64.encode(&blob)
        )
    }
}

/// The text of a C2SP tlog checkpoint.
#[must_use]
pub fn checkpoint_text(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", data_encoding::BASE64.encode(root))
}

/// A checkpoint read back from a signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Verifies a signed note against a verifier key; returns its text (ending with a newline).
pub fn verify_note(note: &str, verifier_key: &str) -> Result<String, NoteError> {
    let mut parts = verifier_key.splitn(3, '+');
    let (Some(name), Some(hash_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(NoteError::Malformed("verifier key"));
    };
    let key = data_encoding::BASE64
        .decode(key_b64.as_bytes())
        .map_err(|_| NoteError::Malformed("verifier key"))?;
    let (Some(&ALG_ED25519), Some(public)) = (key.first(), key.get(1..)) else {
        return Err(NoteError::Malformed("verifier key algorithm"));
    };
    let expected_hash = key_hash(name, public);
    if data_encoding::HEXLOWER.encode(&expected_hash) != hash_hex {
        return Err(NoteError::Malformed("verifier key hash"));
    }
    let (text, sigs) = note
        .split_once("\n\n")
        .ok_or(NoteError::Malformed("no signature block"))?;
    let text = format!("{text}\n");
    let mut verified = false;
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(NoteError::Malformed("signature line"));
        };
        let Some((who, b64)) = rest.split_once(' ') else {
            return Err(NoteError::Malformed("signature line"));
        };
        let blob = data_encoding::BASE64
            .decode(b64.as_bytes())
            .map_err(|_| NoteError::Malformed("signature"))?;
        if who == name && blob.len() == 68 && blob[..4] == expected_hash {
            verified |= UnparsedPublicKey::new(&ED25519, public)
                .verify(text.as_bytes(), &blob[4..])
                .is_ok();
        }
    }
    if !verified {
        return Err(NoteError::BadSignature);
    }
    Ok(text)
}

/// Verifies a signed checkpoint against a verifier key and parses it.
pub fn verify_checkpoint(note: &str, verifier_key: &str) -> Result<Checkpoint, NoteError> {
    let text = verify_note(note, verifier_key)?;
    let mut lines = text.lines();
    let origin = lines
        .next()
        .filter(|l| !l.is_empty())
        .ok_or(NoteError::Malformed("origin"))?;
    let size = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or(NoteError::Malformed("tree size"))?;
    let root: Hash = lines
        .next()
        .and_then(|l| data_encoding::BASE64.decode(l.as_bytes()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or(NoteError::Malformed("root hash"))?;
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_round_trips() {
        let signer = NoteSigner::generate("callguard.example/audit").unwrap();
        let root = super::super::merkle::leaf_hash(b"x");
        let note = signer.sign(&checkpoint_text("callguard.example/audit", 7, &root));
        assert!(note.starts_with("callguard.example/audit\n7\n"));
        assert!(note.contains("\n\n\u{2014} callguard.example/audit "));
        let cp = verify_checkpoint(&note, &signer.verifier_key()).unwrap();
        assert_eq!(
            cp,
            Checkpoint {
                origin: "callguard.example/audit".into(),
                size: 7,
                root
            }
        );
        let again =
            NoteSigner::from_pkcs8("callguard.example/audit", signer.pkcs8().expose()).unwrap();
        assert_eq!(again.verifier_key(), signer.verifier_key());
    }

    #[test]
    fn an_edited_checkpoint_or_another_key_fails() {
        let signer = NoteSigner::generate("log").unwrap();
        let note = signer.sign(&checkpoint_text("log", 7, &[0u8; 32]));
        let edited = note.replacen("\n7\n", "\n8\n", 1);
        assert_eq!(
            verify_checkpoint(&edited, &signer.verifier_key()),
            Err(NoteError::BadSignature)
        );
        let other = NoteSigner::generate("log").unwrap();
        assert_eq!(
            verify_checkpoint(&note, &other.verifier_key()),
            Err(NoteError::BadSignature)
        );
    }

    #[test]
    fn verifier_key_has_the_sumdb_shape() {
        let signer = NoteSigner::generate("example.com/log").unwrap();
        let vk = signer.verifier_key();
        // The base64 key may itself contain '+': only the first two separate fields.
        let parts: Vec<&str> = vk.splitn(3, '+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert_eq!(
            data_encoding::BASE64
                .decode(parts[2].as_bytes())
                .unwrap()
                .len(),
            33
        );
        assert!(NoteSigner::generate("bad name").is_err());
    }
}
