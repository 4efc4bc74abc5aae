//! Digest authentication for the registrar (RFC 7616 with SIP's RFC 8760 algorithms): MD5 and
//! SHA-256, `qop=auth` only. Nonces are random, issued and remembered here, expire after a
//! lifetime, and each nonce-count is accepted once, so a captured REGISTER cannot be replayed.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The digest algorithms offered, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// The algorithm of a name as written in challenges (`SHA-256`, `MD5`, any case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Lower-case hex of the hash of `data`.
    #[must_use]
    pub fn hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Sha256 => Sha256::digest(data.as_bytes()).to_vec(),
            Algorithm::Md5 => Md5::digest(data.as_bytes()).to_vec(),
        };
        data_encoding::HEXLOWER.encode(&bytes)
    }
}

/// H(username:realm:password), the secret digest needs (password-equivalent for this realm).
#[must_use]
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hex(&format!("{username}:{realm}:{password}"))
}

/// The parameters of an `Authorization: Digest ...` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: String,
    pub nc: u32,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why an Authorization header is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest authorization")]
    NotDigest,
    #[error("the authorization lacks {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm (use SHA-256 or MD5)")]
    Algorithm,
    #[error("only qop=auth is supported")]
    Qop,
    #[error("nc is not 8 hex digits")]
    NonceCount,
}

/// `key=value` and `key="quoted, value"` pairs, keys lower-cased.
fn params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &q[end.min(q.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.insert(key, value);
    }
    out
}

impl Credentials {
    /// Parses an `Authorization` header value.
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let h = header.trim();
        let body = match h.split_once(char::is_whitespace) {
            Some((scheme, body)) if scheme.eq_ignore_ascii_case("digest") => body,
            _ => return Err(DigestError::NotDigest),
        };
        let mut p = params(body);
        let mut take = |k: &'static str| p.remove(k).ok_or(DigestError::Missing(k));
        let username = take("username")?;
        let realm = take("realm")?;
        let nonce = take("nonce")?;
        let uri = take("uri")?;
        let response = take("response")?;
        let algorithm = match p.remove("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::from_name(&a).ok_or(DigestError::Algorithm)?,
        };
        if p.remove("qop").as_deref() != Some("auth") {
            return Err(DigestError::Qop);
        }
        let cnonce = p.remove("cnonce").ok_or(DigestError::Missing("cnonce"))?;
        let nc = p
            .remove("nc")
            .filter(|n| n.len() == 8)
            .and_then(|n| u32::from_str_radix(&n, 16).ok())
            .ok_or(DigestError::NonceCount)?;
        Ok(Self {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            nc,
        })
    }

    /// Whether `response` is right for `method` given the user's H(A1) for this algorithm.
    #[must_use]
    pub fn verify(&self, method: &str, ha1: &str) -> bool {
        let a = self.algorithm;
        let ha2 = a.hex(&format!("{method}:{}", self.uri));
        let expected = a.hex(&format!(
            "{ha1}:{}:{:08x}:{}:auth:{ha2}",
            self.nonce, self.nc, self.cnonce
        ));
        expected
            .as_bytes()
            .ct_eq(self.response.to_ascii_lowercase().as_bytes())
            .into()
    }
}

/// One challenge header value (`WWW-Authenticate`).
#[must_use]
pub fn challenge(realm: &str, nonce: &str, alg: Algorithm, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
        alg.name()
    )
}

/// What the nonce store says about a presented nonce and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued here, in time, and the count is higher than any used before.
    Fresh,
    /// Issued here but expired: challenge again with `stale=true`.
    Stale,
    /// Not issued here (or forgotten).
    Unknown,
    /// This count (or a higher one) was already used with this nonce.
    Replayed,
}

struct Issued {
    at: Instant,
    last_nc: u32,
}

/// The nonces handed out, each usable until `lifetime` with increasing counts.
pub struct Nonces {
    issued: Mutex<HashMap<String, Issued>>,
    lifetime: Duration,
    capacity: usize,
}

impl Nonces {
    #[must_use]
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        Self {
            issued: Mutex::new(HashMap::new()),
            lifetime,
            capacity,
        }
    }

    /// A new random nonce; `None` when `capacity` unexpired nonces are outstanding.
    pub fn issue(&self) -> Option<String> {
        let nonce = data_encoding::BASE64URL_NOPAD.encode(&rand::random::<[u8; 18]>());
        let mut m = self.issued.lock().ok()?;
        if m.len() >= self.capacity {
            let lifetime = self.lifetime;
            m.retain(|_, i| i.at.elapsed() < lifetime);
            if m.len() >= self.capacity {
                return None;
            }
        }
        m.insert(
            nonce.clone(),
            Issued {
                at: Instant::now(),
                last_nc: 0,
            },
        );
        Some(nonce)
    }

    /// Checks `nonce` with count `nc`, and uses the count up when it is fresh.
    pub fn check(&self, nonce: &str, nc: u32) -> NonceCheck {
        let Ok(mut m) = self.issued.lock() else {
            return NonceCheck::Unknown;
        };
        let Some(i) = m.get_mut(nonce) else {
            return NonceCheck::Unknown;
        };
        if i.at.elapsed() >= self.lifetime {
            m.remove(nonce);
            return NonceCheck::Stale;
        }
        if nc <= i.last_nc {
            return NonceCheck::Replayed;
        }
        i.last_nc = nc;
        NonceCheck::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
    fn rfc7616(alg: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    #[test]
    fn the_rfc_7616_examples_verify_with_md5_and_sha256() {
        for (alg, a, response) in [
            ("MD5", Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let c = Credentials::parse(&rfc7616(alg, response)).unwrap();
            assert_eq!(c.algorithm, a);
            let h = ha1(a, "Mufasa", "http-auth@example.org", "Circle of Life");
            assert!(c.verify("GET", &h), "{alg}");
            let wrong = ha1(a, "Mufasa", "http-auth@example.org", "Circle of Death");
            assert!(!c.verify("GET", &wrong), "{alg} with a wrong password");
            assert!(!c.verify("POST", &h), "{alg} for another method");
        }
    }

    #[test]
    fn authorizations_without_qop_auth_or_with_odd_algorithms_are_refused() {
        let md5 = rfc7616("MD5", "x");
        assert_eq!(
            Credentials::parse(&md5.replace("qop=auth, ", "")),
            Err(DigestError::Qop)
        );
        assert_eq!(
            Credentials::parse(&md5.replace("qop=auth", "qop=auth-int")),
            Err(DigestError::Qop)
        );
        assert_eq!(
            Credentials::parse(&md5.replace("MD5", "SHA-512-256")),
            Err(DigestError::Algorithm)
        );
        assert_eq!(
            Credentials::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Credentials::parse(&md5.replace("nc=00000001", "nc=1")),
            Err(DigestError::NonceCount)
        );
    }

    #[test]
    fn a_nonce_count_is_accepted_once_and_unknown_nonces_are_refused() {
        let n = Nonces::new(Duration::from_secs(60), 10);
        let nonce = n.issue().unwrap();
        assert_eq!(n.check(&nonce, 1), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1), NonceCheck::Replayed);
        assert_eq!(n.check(&nonce, 2), NonceCheck::Fresh);
        assert_eq!(n.check("made-up", 1), NonceCheck::Unknown);
    }

    #[test]
    fn an_expired_nonce_is_stale_and_the_store_is_bounded() {
        let n = Nonces::new(Duration::ZERO, 2);
        let nonce = n.issue().unwrap();
        assert_eq!(n.check(&nonce, 1), NonceCheck::Stale);
        let full = Nonces::new(Duration::from_secs(60), 2);
        assert!(full.issue().is_some() && full.issue().is_some());
        assert_eq!(full.issue(), None);
    }

    #[test]
    fn the_debug_form_hides_the_user_and_response() {
        let c = Credentials::parse(&rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec")).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("Mufasa") && !d.contains("8ca523"), "{d}");
    }
}
