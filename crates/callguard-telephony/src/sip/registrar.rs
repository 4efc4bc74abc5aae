//! The registrar for agents' softphones: REGISTER is challenged with digest (SHA-256 and MD5,
//! `qop=auth`), a wrong password or a replayed nonce-count gets 403 and binds nothing.
//!
//! Password guessing is limited per account name and per source address ([`GuessLimits`]):
//! each digest answer is admitted before it is checked and counts as a failure until it is
//! settled, so a burst of simultaneous REGISTERs cannot have more answers checked than the
//! limit allows. After the limit, that name (or address) is refused for a while, even with the
//! right password, and a `sip.register.locked` audit entry raises an alert.
//!
//! A softphone registered over TLS is called back over the same connection (its Contact names
//! a port it may not even listen on); with `sip.agents_require_tls` a REGISTER over UDP or
//! TCP is refused with 403 before any challenge.

use super::digest::{self, Algorithm, Credentials, NonceCheck, Nonces};
use callguard_core::secret::Secret;
use callguard_server::features::softphones::service::Softphones;
use callguard_server::metrics::Metrics;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::{Name, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the registrar finds an agent's digest secret.
#[async_trait::async_trait]
pub trait SipAccounts: Send + Sync {
    /// H(username:realm:password) for `alg`, when `username` holds SIP credentials that may
    /// register now; `None` otherwise (unknown, revoked, disabled).
    async fn ha1(&self, username: &str, realm: &str, alg: Algorithm) -> Option<Secret<String>>;

    /// Registrations for `username` (or, when `None`, from `source`) were just refused for
    /// `lock` after `failures` wrong answers: raise the alarm.
    async fn locked(&self, username: Option<&str>, source: IpAddr, failures: u32, lock: Duration) {
        let _ = (username, source, failures, lock);
    }
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

    async fn locked(&self, username: Option<&str>, source: IpAddr, failures: u32, lock: Duration) {
        if let Err(e) = self
            .0
            .registration_locked(username, source, failures, lock.as_secs())
            .await
        {
            tracing::error!(error = %e, "a SIP registration lock could not be audited");
        }
    }
}

/// How many wrong digest answers the registrar takes before refusing for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimits {
    /// Wrong answers for one account name within `window`.
    pub per_account: u32,
    /// Wrong answers from one source address within `window` (any names).
    pub per_address: u32,
    pub window: Duration,
    /// How long registrations stay refused once a limit is reached.
    pub lock: Duration,
}

impl Default for GuessLimits {
    fn default() -> Self {
        Self {
            per_account: 10,
            per_address: 30,
            window: Duration::from_secs(15 * 60),
            lock: Duration::from_secs(15 * 60),
        }
    }
}

/// Most names and addresses tracked at once; beyond it, quiet ones are forgotten and, if that
/// is not enough, new ones are refused (never let through uncounted).
const MAX_TALLIES: usize = 50_000;

/// Wrong answers of one name or address.
struct Tally {
    failures: u32,
    window_start: Instant,
    /// Answers admitted and not yet settled: counted as failures until they are.
    pending: u32,
    locked_until: Option<Instant>,
}

impl Tally {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            window_start: now,
            pending: 0,
            locked_until: None,
        }
    }

    fn is_quiet(&self, now: Instant, limits: &GuessLimits) -> bool {
        self.pending == 0
            && self.locked_until.is_none_or(|u| u <= now)
            && (self.failures == 0 || now.duration_since(self.window_start) >= limits.window)
    }

    /// Whether another answer may be checked under `max`.
    fn admits(&mut self, now: Instant, max: u32, limits: &GuessLimits) -> bool {
        if self.locked_until.is_some_and(|u| u > now) {
            return false;
        }
        if self.locked_until.is_some() || now.duration_since(self.window_start) >= limits.window {
            self.locked_until = None;
            self.failures = 0;
            self.window_start = now;
        }
        self.failures + self.pending < max
    }

    /// Settles one answer; true when this failure starts a lock.
    fn settle(&mut self, now: Instant, failed: bool, max: u32, limits: &GuessLimits) -> bool {
        self.pending = self.pending.saturating_sub(1);
        if !failed {
            return false;
        }
        self.failures += 1;
        if self.failures >= max && self.locked_until.is_none() {
            self.locked_until = Some(now + limits.lock);
            return true;
        }
        false
    }
}

/// The tallies of names and addresses.
struct Guesses {
    limits: GuessLimits,
    accounts: HashMap<String, Tally>,
    addresses: HashMap<IpAddr, Tally>,
}

/// Which limits a settled failure reached.
#[derive(Debug, Default, PartialEq, Eq)]
struct NewLocks {
    account: bool,
    address: bool,
}

impl Guesses {
    fn prune(&mut self, now: Instant) {
        if self.accounts.len() + self.addresses.len() >= MAX_TALLIES {
            let l = self.limits;
            self.accounts.retain(|_, t| !t.is_quiet(now, &l));
            self.addresses.retain(|_, t| !t.is_quiet(now, &l));
        }
    }

    /// Admits one answer for `name` from `source`, or refuses it.
    fn admit(&mut self, name: &str, source: IpAddr, now: Instant) -> bool {
        self.prune(now);
        let full = self.accounts.len() + self.addresses.len() >= MAX_TALLIES;
        if full && !(self.accounts.contains_key(name) && self.addresses.contains_key(&source)) {
            return false;
        }
        let l = self.limits;
        let account = self
            .accounts
            .entry(name.to_owned())
            .or_insert_with(|| Tally::new(now));
        if !account.admits(now, l.per_account, &l) {
            return false;
        }
        let address = self
            .addresses
            .entry(source)
            .or_insert_with(|| Tally::new(now));
        if !address.admits(now, l.per_address, &l) {
            return false;
        }
        address.pending += 1;
        if let Some(a) = self.accounts.get_mut(name) {
            a.pending += 1;
        }
        true
    }

    fn settle(&mut self, name: &str, source: IpAddr, now: Instant, failed: bool) -> NewLocks {
        let l = self.limits;
        let mut out = NewLocks::default();
        if let Some(t) = self.accounts.get_mut(name) {
            out.account = t.settle(now, failed, l.per_account, &l);
            if !failed {
                // The right password: earlier typos of this person no longer count.
                t.failures = 0;
            }
        }
        if let Some(t) = self.addresses.get_mut(&source) {
            out.address = t.settle(now, failed, l.per_address, &l);
        }
        out
    }
}

/// Binding lifetimes a softphone may ask for.
const MIN_EXPIRES: u64 = 60;
const MAX_EXPIRES: u64 = 3600;

struct Binding {
    contact: String,
    /// The TLS connection the softphone registered over: it is called back through it.
    over_tls: Option<SocketAddr>,
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
    guesses: Mutex<Guesses>,
    algorithms: Vec<Algorithm>,
    require_tls: bool,
}

/// One admitted digest answer; released (as not failed) if dropped unsettled.
struct Admitted<'a> {
    registrar: &'a Registrar,
    name: String,
    source: IpAddr,
    settled: bool,
}

impl Admitted<'_> {
    async fn settle(mut self, failed: bool) {
        self.settled = true;
        let locks = match self.registrar.guesses.lock() {
            Ok(mut g) => g.settle(&self.name, self.source, Instant::now(), failed),
            Err(_) => NewLocks::default(),
        };
        let r = self.registrar;
        let (l, source) = (r.limits(), self.source);
        if locks.account {
            tracing::warn!(%source, "SIP registrations for an account refused after repeated wrong passwords");
            r.accounts
                .locked(Some(&self.name), source, l.per_account, l.lock)
                .await;
        }
        if locks.address {
            tracing::warn!(%source, "SIP registrations from an address refused after repeated wrong passwords");
            r.accounts.locked(None, source, l.per_address, l.lock).await;
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if !self.settled {
            if let Ok(mut g) = self.registrar.guesses.lock() {
                g.settle(&self.name, self.source, Instant::now(), false);
            }
        }
    }
}

/// What to answer a REGISTER with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 401 with fresh challenges (`stale` when the old nonce only expired).
    Challenge { stale: bool },
    /// 403: wrong password, unknown user, replay, or refused for a while after guessing.
    Refused(&'static str),
    /// 400: an Authorization header that cannot be read.
    Malformed,
    /// 200: bound (or unbound when `expires` is 0) for `expires` seconds.
    Registered { contact: String, expires: u64 },
}

impl Registrar {
    #[must_use]
    pub fn new(realm: String, accounts: Arc<dyn SipAccounts>, metrics: Arc<Metrics>) -> Self {
        Self::with_limits(realm, accounts, metrics, GuessLimits::default())
    }

    #[must_use]
    pub fn with_limits(
        realm: String,
        accounts: Arc<dyn SipAccounts>,
        metrics: Arc<Metrics>,
        limits: GuessLimits,
    ) -> Self {
        Self {
            realm,
            nonces: Nonces::new(Duration::from_secs(300), 10_000),
            accounts,
            bindings: Mutex::new(HashMap::new()),
            metrics,
            guesses: Mutex::new(Guesses {
                limits,
                accounts: HashMap::new(),
                addresses: HashMap::new(),
            }),
            algorithms: Algorithm::ALL.to_vec(),
            require_tls: false,
        }
    }

    fn limits(&self) -> GuessLimits {
        self.guesses.lock().map(|g| g.limits).unwrap_or_default()
    }

    /// Admits one digest answer for `name` from `source` under the guessing limits.
    fn admit(&self, name: &str, source: IpAddr) -> Option<Admitted<'_>> {
        let ok = self
            .guesses
            .lock()
            .is_ok_and(|mut g| g.admit(name, source, Instant::now()));
        ok.then(|| Admitted {
            registrar: self,
            name: name.to_owned(),
            source,
            settled: false,
        })
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

    /// Refuses registrations that do not come over TLS (`sip.agents_require_tls`).
    #[must_use]
    pub fn requiring_tls(mut self, require: bool) -> Self {
        self.require_tls = require;
        self
    }

    /// Where `username` is called, when registered: its contact, or for a softphone
    /// registered over TLS the connection it registered over (`;transport=tls`).
    #[must_use]
    pub fn contact_of(&self, username: &str) -> Option<String> {
        let m = self.bindings.lock().ok()?;
        m.get(username)
            .filter(|b| b.until > Instant::now())
            .map(|b| match b.over_tls {
                Some(addr) => over_connection(&b.contact, addr),
                None => b.contact.clone(),
            })
    }

    /// Whether `username`'s softphone registered over TLS.
    #[must_use]
    pub fn registered_over_tls(&self, username: &str) -> bool {
        self.bindings.lock().is_ok_and(|m| {
            m.get(username)
                .is_some_and(|b| b.until > Instant::now() && b.over_tls.is_some())
        })
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

    /// Decides a REGISTER from `source` by its Authorization, Contact and Expires values.
    pub async fn decide(
        &self,
        source: IpAddr,
        authorization: Option<&str>,
        contact: Option<&str>,
        expires: Option<u64>,
    ) -> Outcome {
        self.decide_over(source, None, authorization, contact, expires)
            .await
    }

    /// [`Registrar::decide`] for a REGISTER that came over the TLS connection `over_tls`.
    async fn decide_over(
        &self,
        source: IpAddr,
        over_tls: Option<SocketAddr>,
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
        let Some(admitted) = self.admit(&c.username, source) else {
            return Outcome::Refused("locked");
        };
        let secret = self
            .accounts
            .ha1(&c.username, &self.realm, c.algorithm)
            .await;
        let right = secret.is_some_and(|h| c.verify("REGISTER", h.expose()));
        admitted.settle(!right).await;
        if !right {
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
                        over_tls,
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

    /// Answers one REGISTER request; `over_tls` says whether it came over the TLS listener.
    pub async fn handle(&self, endpoint: &Endpoint, mut request: IncomingRequest, over_tls: bool) {
        if self.require_tls && !over_tls {
            self.metrics.sip_refused("plain_sip");
            tracing::info!(source = %request.tp_info.source, "SIP registration refused: not over TLS (sip.agents_require_tls)");
            let response = endpoint.create_response(&request, StatusCode::FORBIDDEN, None);
            let tsx = endpoint.create_server_tsx(&mut request);
            if let Err(e) = tsx.respond(response).await {
                tracing::debug!(error = %e, "could not answer a REGISTER");
            }
            return;
        }
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
            .decide_over(
                request.tp_info.source.ip(),
                over_tls.then_some(request.tp_info.source),
                authorization.as_deref(),
                contact.as_deref(),
                expires,
            )
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

/// The contact URI `contact` reached through the connection from `addr`: its scheme and user
/// part at `addr`, `;transport=tls`.
fn over_connection(contact: &str, addr: SocketAddr) -> String {
    let rest = contact
        .strip_prefix("sips:")
        .or_else(|| contact.strip_prefix("sip:"))
        .unwrap_or(contact);
    let user = rest
        .split_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("sip:{user}{addr};transport=tls")
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
    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    #[test]
    fn a_softphone_registered_over_tls_is_called_back_over_its_connection() {
        let from: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(
            over_connection("sip:agent1-0x55d5@127.0.0.1:5081;transport=tls", from),
            "sip:agent1-0x55d5@127.0.0.1:40123;transport=tls"
        );
        assert_eq!(
            over_connection("sips:agent1@phone.example", from),
            "sip:agent1@127.0.0.1:40123;transport=tls"
        );
    }

    #[tokio::test]
    async fn the_right_password_registers_with_either_algorithm() {
        for alg in Algorithm::ALL {
            let r = registrar();
            assert_eq!(
                r.decide(SRC, None, Some(CONTACT), None).await,
                Outcome::Challenge { stale: false }
            );
            let nonce = r.nonces.issue().unwrap();
            let a = authorization(alg, &nonce, 1, "s3cret-pass");
            let out = r.decide(SRC, Some(&a), Some(CONTACT), Some(120)).await;
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
            r.decide(SRC, Some(&a), Some(CONTACT), None).await,
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
            r.decide(SRC, Some(&a), Some(CONTACT), None).await,
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
            r.decide(SRC, Some(&a), Some(CONTACT), None).await,
            Outcome::Registered { .. }
        ));
        assert_eq!(
            r.decide(SRC, Some(&a), Some(CONTACT), None).await,
            Outcome::Refused("replay")
        );
        let forged = authorization(Algorithm::Md5, "never-issued", 1, "s3cret-pass");
        assert_eq!(
            r.decide(SRC, Some(&forged), Some(CONTACT), None).await,
            Outcome::Challenge { stale: false }
        );
    }

    #[tokio::test]
    async fn expires_zero_unregisters_and_lifetimes_are_clamped() {
        let r = registrar();
        let n = r.nonces.issue().unwrap();
        let a = authorization(Algorithm::Md5, &n, 1, "s3cret-pass");
        let out = r.decide(SRC, Some(&a), Some(CONTACT), Some(999_999)).await;
        assert!(matches!(
            out,
            Outcome::Registered {
                expires: MAX_EXPIRES,
                ..
            }
        ));
        let a = authorization(Algorithm::Md5, &n, 2, "s3cret-pass");
        assert!(matches!(
            r.decide(SRC, Some(&a), Some(CONTACT), Some(0)).await,
            Outcome::Registered { expires: 0, .. }
        ));
        assert_eq!(r.contact_of("agent1"), None);
        assert_eq!(contact_expires(CONTACT), Some(120));
    }

    /// One agent whose digest lookups take a while (so a burst really overlaps), counting the
    /// lookups and the alarms.
    #[derive(Default)]
    struct Watched {
        lookups: std::sync::atomic::AtomicU32,
        alarms: Mutex<Vec<(Option<String>, IpAddr)>>,
    }

    #[async_trait::async_trait]
    impl SipAccounts for Watched {
        async fn ha1(&self, username: &str, realm: &str, alg: Algorithm) -> Option<Secret<String>> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            OneAgent.ha1(username, realm, alg).await
        }

        async fn locked(&self, username: Option<&str>, source: IpAddr, _: u32, _: Duration) {
            if let Ok(mut a) = self.alarms.lock() {
                a.push((username.map(str::to_owned), source));
            }
        }
    }

    fn watched(limits: GuessLimits) -> (Arc<Registrar>, Arc<Watched>) {
        let w = Arc::new(Watched::default());
        let r = Registrar::with_limits(
            "callguard.test".into(),
            w.clone(),
            Arc::new(Metrics::default()),
            limits,
        );
        (Arc::new(r), w)
    }

    fn limits(per_account: u32, per_address: u32, lock: Duration) -> GuessLimits {
        GuessLimits {
            per_account,
            per_address,
            window: Duration::from_secs(900),
            lock,
        }
    }

    async fn attempt(r: &Registrar, from: IpAddr, user: &str, password: &str) -> Outcome {
        let nonce = r.nonces.issue().unwrap();
        let a = authorization(Algorithm::Sha256, &nonce, 1, password)
            .replace("username=\"agent1\"", &format!("username=\"{user}\""));
        r.decide(from, Some(&a), Some(CONTACT), None).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_wrong_passwords_gets_only_the_limit_checked_then_even_the_right_one_is_refused(
    ) {
        let (r, w) = watched(limits(5, 1_000, Duration::from_secs(900)));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { attempt(&r, SRC, "agent1", "guess").await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let auth = outcomes
            .iter()
            .filter(|o| **o == Outcome::Refused("auth"))
            .count();
        let locked = outcomes
            .iter()
            .filter(|o| **o == Outcome::Refused("locked"))
            .count();
        assert_eq!(
            (auth, locked),
            (5, 195),
            "five answers checked, the rest refused unchecked"
        );
        assert_eq!(w.lookups.load(std::sync::atomic::Ordering::SeqCst), 5);
        assert_eq!(
            attempt(&r, SRC, "agent1", "s3cret-pass").await,
            Outcome::Refused("locked"),
            "the right password waits out the lock too"
        );
        assert_eq!(r.contact_of("agent1"), None);
        assert_eq!(
            w.alarms.lock().unwrap().as_slice(),
            [(Some("agent1".to_owned()), SRC)],
            "one alarm for the account"
        );
    }

    #[tokio::test]
    async fn guessing_from_one_address_locks_that_address_for_every_name_but_not_others() {
        let (r, w) = watched(limits(100, 3, Duration::from_secs(900)));
        for name in ["alice", "bob", "carol"] {
            assert_eq!(
                attempt(&r, SRC, name, "guess").await,
                Outcome::Refused("auth")
            );
        }
        assert_eq!(
            attempt(&r, SRC, "agent1", "s3cret-pass").await,
            Outcome::Refused("locked")
        );
        let elsewhere = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
        assert!(matches!(
            attempt(&r, elsewhere, "agent1", "s3cret-pass").await,
            Outcome::Registered { .. }
        ));
        assert_eq!(w.alarms.lock().unwrap().as_slice(), [(None, SRC)]);
    }

    #[tokio::test]
    async fn the_right_password_forgives_earlier_typos_and_a_lock_ends_after_its_time() {
        let (r, _) = watched(limits(3, 1_000, Duration::ZERO));
        for _ in 0..2 {
            assert_eq!(
                attempt(&r, SRC, "agent1", "typo").await,
                Outcome::Refused("auth")
            );
        }
        assert!(matches!(
            attempt(&r, SRC, "agent1", "s3cret-pass").await,
            Outcome::Registered { .. }
        ));
        for _ in 0..2 {
            assert_eq!(
                attempt(&r, SRC, "agent1", "typo").await,
                Outcome::Refused("auth")
            );
        }
        assert!(
            matches!(
                attempt(&r, SRC, "agent1", "s3cret-pass").await,
                Outcome::Registered { .. }
            ),
            "two typos after a success are under the limit of three"
        );
        for _ in 0..3 {
            assert_eq!(
                attempt(&r, SRC, "agent1", "typo").await,
                Outcome::Refused("auth")
            );
        }
        // A lock of zero seconds is over at once: the next answer is checked again.
        assert!(matches!(
            attempt(&r, SRC, "agent1", "s3cret-pass").await,
            Outcome::Registered { .. }
        ));
    }
}
