//! The registrar for agents' softphones: REGISTER is challenged with digest (SHA-256 and MD5,
//! `qop=auth`), a wrong password or a replayed nonce-count gets 403 and binds nothing.

use super::digest::{self, Algorithm, Credentials, NonceCheck, Nonces};
use callguard_core::secret::Secret;
use callguard_server::features::softphones::service::Softphones;
use callguard_server::metrics::Metrics;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::{Name, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the registrar finds an agent's digest secret.
#[async_trait::async_trait]
pub trait SipAccounts: Send + Sync {
    /// H(username:realm:password) for `alg`, when `username` holds SIP credentials that may
    /// register now; `None` otherwise (unknown, revoked, disabled).
    async fn ha1(&self, username: &str, realm: &str, alg: Algorithm) -> Option<Secret<String>>;
}

/// The agents' SIP credentials issued by the softphones service.
pub struct IssuedCredentials(pub Arc<Softphones>);

#[async_trait::async_trait]
impl SipAccounts for IssuedCredentials {
    async fn ha1(&self, username: &str, realm: &str, alg: Algorithm) -> Option<Secret<String>> {
        match self.0.password_for(username).await {
            Ok(Some(p)) => Some(Secret::new(digest::ha1(alg, username, realm, p.expose()))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "SIP credentials could not be read");
                None
            }
        }
    }
}

/// Binding lifetimes a softphone may ask for.
const MIN_EXPIRES: u64 = 60;
const MAX_EXPIRES: u64 = 3600;

struct Binding {
    contact: String,
    until: Instant,
    /// When this softphone registered (refreshes keep it).
    since: Instant,
}

/// The registrar: challenges, verifies, and keeps the current bindings in memory.
pub struct Registrar {
    realm: String,
    nonces: Nonces,
    accounts: Arc<dyn SipAccounts>,
    bindings: Mutex<HashMap<String, Binding>>,
    metrics: Arc<Metrics>,
    algorithms: Vec<Algorithm>,
}

/// What to answer a REGISTER with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 401 with fresh challenges (`stale` when the old nonce only expired).
    Challenge { stale: bool },
    /// 403: wrong password, unknown user, replay.
    Refused(&'static str),
    /// 400: an Authorization header that cannot be read.
    Malformed,
    /// 200: bound (or unbound when `expires` is 0) for `expires` seconds.
    Registered { contact: String, expires: u64 },
}

impl Registrar {
    #[must_use]
    pub fn new(realm: String, accounts: Arc<dyn SipAccounts>, metrics: Arc<Metrics>) -> Self {
        Self {
            realm,
            nonces: Nonces::new(Duration::from_secs(300), 10_000),
            accounts,
            bindings: Mutex::new(HashMap::new()),
            metrics,
            algorithms: Algorithm::ALL.to_vec(),
        }
    }

    /// Challenges with these algorithms only, in this order (`sip.digest_algorithms`); a
    /// response with another algorithm is challenged again. Some softphones (baresip 1.0, on
    /// libre before 2.0) give up when any challenge names an algorithm they lack.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// The current contact of `username`, when registered.
    #[must_use]
    pub fn contact_of(&self, username: &str) -> Option<String> {
        let m = self.bindings.lock().ok()?;
        m.get(username)
            .filter(|b| b.until > Instant::now())
            .map(|b| b.contact.clone())
    }

    /// The usernames with a live registration, the longest registered first.
    #[must_use]
    pub fn registered(&self) -> Vec<String> {
        let now = Instant::now();
        let Ok(m) = self.bindings.lock() else {
            return Vec::new();
        };
        let mut live: Vec<(&String, Instant)> = m
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(u, b)| (u, b.since))
            .collect();
        live.sort_by_key(|&(_, since)| since);
        live.into_iter().map(|(u, _)| u.clone()).collect()
    }

    /// Decides a REGISTER from its Authorization, Contact and Expires header values.
    pub async fn decide(
        &self,
        authorization: Option<&str>,
        contact: Option<&str>,
        expires: Option<u64>,
    ) -> Outcome {
        let Some(header) = authorization else {
            return Outcome::Challenge { stale: false };
        };
        let Ok(c) = Credentials::parse(header) else {
            return Outcome::Malformed;
        };
        if c.realm != self.realm || !self.algorithms.contains(&c.algorithm) {
            return Outcome::Challenge { stale: false };
        }
        match self.nonces.check(&c.nonce, c.nc) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale => return Outcome::Challenge { stale: true },
            NonceCheck::Unknown => return Outcome::Challenge { stale: false },
            NonceCheck::Replayed => return Outcome::Refused("replay"),
        }
        let secret = self
            .accounts
            .ha1(&c.username, &self.realm, c.algorithm)
            .await;
        if !secret.is_some_and(|h| c.verify("REGISTER", h.expose())) {
            return Outcome::Refused("auth");
        }
        let Some(contact) = contact.map(contact_uri) else {
            return Outcome::Malformed;
        };
        let expires = expires.map_or(MAX_EXPIRES, |e| {
            if e == 0 {
                0
            } else {
                e.clamp(MIN_EXPIRES, MAX_EXPIRES)
            }
        });
        if let Ok(mut m) = self.bindings.lock() {
            if expires == 0 {
                m.remove(&c.username);
            } else {
                let now = Instant::now();
                let since = m
                    .get(&c.username)
                    .filter(|b| b.until > now)
                    .map_or(now, |b| b.since);
                m.insert(
                    c.username.clone(),
                    Binding {
                        contact: contact.clone(),
                        until: now + Duration::from_secs(expires),
                        since,
                    },
                );
            }
            self.metrics
                .sip_registrations(m.values().filter(|b| b.until > Instant::now()).count());
        }
        Outcome::Registered { contact, expires }
    }

    /// Answers one REGISTER request.
    pub async fn handle(&self, endpoint: &Endpoint, mut request: IncomingRequest) {
        let first = |name: &Name| {
            request
                .headers
                .get_raw(name)
                .next()
                .map(|v| v.as_str().to_owned())
        };
        let authorization = first(&Name::AUTHORIZATION);
        let contact = first(&Name::CONTACT);
        let expires = first(&Name::EXPIRES)
            .and_then(|e| e.trim().parse().ok())
            .or_else(|| contact.as_deref().and_then(contact_expires));
        let outcome = self
            .decide(authorization.as_deref(), contact.as_deref(), expires)
            .await;
        let code = match &outcome {
            Outcome::Challenge { .. } => StatusCode::UNAUTHORIZED,
            Outcome::Refused(reason) => {
                self.metrics.sip_refused(reason);
                tracing::info!(reason, source = %request.tp_info.source, "SIP registration refused");
                StatusCode::FORBIDDEN
            }
            Outcome::Malformed => StatusCode::BAD_REQUEST,
            Outcome::Registered { .. } => StatusCode::OK,
        };
        let mut response = endpoint.create_response(&request, code, None);
        match outcome {
            Outcome::Challenge { stale } => {
                for &alg in &self.algorithms {
                    let Some(nonce) = self.nonces.issue() else {
                        continue;
                    };
                    let value = digest::challenge(&self.realm, &nonce, alg, stale);
                    response.msg.headers.insert(Name::WWW_AUTHENTICATE, value);
                }
            }
            Outcome::Registered { contact, expires } if expires > 0 => {
                response
                    .msg
                    .headers
                    .insert(Name::CONTACT, format!("<{contact}>;expires={expires}"));
            }
            _ => {}
        }
        let tsx = endpoint.create_server_tsx(&mut request);
        if let Err(e) = tsx.respond(response).await {
            tracing::debug!(error = %e, "could not answer a REGISTER");
        }
    }
}

/// The URI inside a Contact header value (`"Name" <sip:...>;expires=60` or a bare URI).
fn contact_uri(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_owned(),
        _ => value.split(';').next().unwrap_or(value).trim().to_owned(),
    }
}

/// The `expires` parameter of a Contact header value.
fn contact_expires(value: &str) -> Option<u64> {
    let params = value.rsplit('>').next().unwrap_or(value);
    params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("expires"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneAgent;

    #[async_trait::async_trait]
    impl SipAccounts for OneAgent {
        async fn ha1(&self, username: &str, realm: &str, alg: Algorithm) -> Option<Secret<String>> {
            (username == "agent1")
                .then(|| Secret::new(digest::ha1(alg, username, realm, "s3cret-pass")))
        }
    }

    fn registrar() -> Registrar {
        Registrar::new(
            "callguard.test".into(),
            Arc::new(OneAgent),
            Arc::new(Metrics::default()),
        )
    }

    /// What a softphone sends back for `nonce` with `password`.
    fn authorization(alg: Algorithm, nonce: &str, nc: u32, password: &str) -> String {
        let uri = "sip:callguard.test";
        let h1 = digest::ha1(alg, "agent1", "callguard.test", password);
        let h2 = alg.hex(&format!("REGISTER:{uri}"));
        let response = alg.hex(&format!("{h1}:{nonce}:{nc:08x}:c0ffee:auth:{h2}"));
        format!(
            "Digest username=\"agent1\", realm=\"callguard.test\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={nc:08x}",
            alg.name()
        )
    }

    const CONTACT: &str = "<sip:agent1-0x1@127.0.0.1:5080>;expires=120";

    #[tokio::test]
    async fn the_right_password_registers_with_either_algorithm() {
        for alg in Algorithm::ALL {
            let r = registrar();
            assert_eq!(
                r.decide(None, Some(CONTACT), None).await,
                Outcome::Challenge { stale: false }
            );
            let nonce = r.nonces.issue().unwrap();
            let a = authorization(alg, &nonce, 1, "s3cret-pass");
            let out = r.decide(Some(&a), Some(CONTACT), Some(120)).await;
            assert_eq!(
                out,
                Outcome::Registered {
                    contact: "sip:agent1-0x1@127.0.0.1:5080".into(),
                    expires: 120
                }
            );
            assert_eq!(
                r.contact_of("agent1").as_deref(),
                Some("sip:agent1-0x1@127.0.0.1:5080")
            );
        }
    }

    #[tokio::test]
    async fn an_algorithm_left_out_of_the_configured_list_is_challenged_again() {
        let r = registrar().with_algorithms(vec![Algorithm::Md5]);
        let nonce = r.nonces.issue().unwrap();
        let a = authorization(Algorithm::Sha256, &nonce, 1, "s3cret-pass");
        assert_eq!(
            r.decide(Some(&a), Some(CONTACT), None).await,
            Outcome::Challenge { stale: false }
        );
        assert_eq!(r.contact_of("agent1"), None);
    }

    #[tokio::test]
    async fn a_wrong_password_is_refused_and_binds_nothing() {
        let r = registrar();
        let nonce = r.nonces.issue().unwrap();
        let a = authorization(Algorithm::Sha256, &nonce, 1, "guess");
        assert_eq!(
            r.decide(Some(&a), Some(CONTACT), None).await,
            Outcome::Refused("auth")
        );
        assert_eq!(r.contact_of("agent1"), None);
    }

    #[tokio::test]
    async fn a_replayed_register_is_refused_and_an_unknown_nonce_is_challenged_again() {
        let r = registrar();
        let nonce = r.nonces.issue().unwrap();
        let a = authorization(Algorithm::Md5, &nonce, 1, "s3cret-pass");
        assert!(matches!(
            r.decide(Some(&a), Some(CONTACT), None).await,
            Outcome::Registered { .. }
        ));
        assert_eq!(
            r.decide(Some(&a), Some(CONTACT), None).await,
            Outcome::Refused("replay")
        );
        let forged = authorization(Algorithm::Md5, "never-issued", 1, "s3cret-pass");
        assert_eq!(
            r.decide(Some(&forged), Some(CONTACT), None).await,
            Outcome::Challenge { stale: false }
        );
    }

    #[tokio::test]
    async fn expires_zero_unregisters_and_lifetimes_are_clamped() {
        let r = registrar();
        let n = r.nonces.issue().unwrap();
        let a = authorization(Algorithm::Md5, &n, 1, "s3cret-pass");
        let out = r.decide(Some(&a), Some(CONTACT), Some(999_999)).await;
        assert!(matches!(
            out,
            Outcome::Registered {
                expires: MAX_EXPIRES,
                ..
            }
        ));
        let a = authorization(Algorithm::Md5, &n, 2, "s3cret-pass");
        assert!(matches!(
            r.decide(Some(&a), Some(CONTACT), Some(0)).await,
            Outcome::Registered { expires: 0, .. }
        ));
        assert_eq!(r.contact_of("agent1"), None);
        assert_eq!(contact_expires(CONTACT), Some(120));
    }
}
