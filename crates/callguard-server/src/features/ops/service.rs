//! What a load balancer and an operator ask of a node: is it ready to serve, and who may read
//! its metrics.

use crate::error::Error;
use callguard_core::Secret;
use callguard_store::{IntegratorState, Store};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Readiness of this node.
pub struct Readiness {
    store: Arc<dyn Store>,
    draining: AtomicBool,
}

/// Why a node is not ready, as a load balancer's health check is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// Stopping: finishing open requests, taking no new ones once the balancer has noticed.
    Draining,
    DatabaseUnavailable,
    /// Audit entries acknowledged long ago still have no index (PostgreSQL): no node's
    /// integrator is working, or it cannot keep up, so new actions would not reach a signed
    /// checkpoint in time.
    AuditBehind,
}

/// Entries waiting longer than this for their index make the node not ready. A takeover after
/// the holder died takes a second or two, far below it, so readiness does not flap then.
const AUDIT_BACKLOG_LIMIT_MS: i64 = 30_000;

/// What `/readyz` says about the audit integrator (PostgreSQL), for operators.
fn describe(st: &IntegratorState) -> String {
    if st.holding {
        format!(
            "this node integrates the audit log; {} entries wait, the oldest for {} ms",
            st.backlog, st.backlog_age_ms
        )
    } else if st.holder.is_empty() {
        format!(
            "no node has integrated the audit log yet; {} entries wait, the oldest for {} ms",
            st.backlog, st.backlog_age_ms
        )
    } else {
        format!(
            "{} integrates the audit log (heartbeat {} ms ago); {} entries wait, the oldest for {} ms",
            st.holder, st.heartbeat_age_ms, st.backlog, st.backlog_age_ms
        )
    }
}

impl NotReady {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draining => "draining",
            Self::DatabaseUnavailable => "database unavailable",
            Self::AuditBehind => "audit log behind",
        }
    }
}

impl Readiness {
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on the node answers "not ready" so that balancers stop sending it new work,
    /// while it goes on serving what still arrives.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the node should get new work: not draining, the database answers (its error is
    /// logged, never returned), and on PostgreSQL the audit integrator keeps up. Either way the
    /// integrator's state comes along (`None` on SQLite, which has none).
    pub async fn ready(&self) -> (Result<(), NotReady>, Option<String>) {
        if self.draining.load(Ordering::Acquire) {
            return (Err(NotReady::Draining), None);
        }
        if let Err(e) = self.store.ping().await {
            tracing::error!(error = %e, "readiness check failed");
            return (Err(NotReady::DatabaseUnavailable), None);
        }
        match self.store.integrator_state().await {
            Ok(None) => (Ok(()), None),
            Ok(Some(st)) => {
                let said = Some(describe(&st));
                if st.backlog_age_ms > AUDIT_BACKLOG_LIMIT_MS {
                    tracing::error!(
                        backlog = st.backlog,
                        oldest_ms = st.backlog_age_ms,
                        "audit entries are not being indexed"
                    );
                    (Err(NotReady::AuditBehind), said)
                } else {
                    (Ok(()), said)
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "readiness check failed");
                (Err(NotReady::DatabaseUnavailable), None)
            }
        }
    }
}

pub use callguard_core::net::Network;

/// Who may read `/metrics`: a peer on the allow-list (by default this machine: exactly
/// 127.0.0.1 and ::1), whatever it sends, or any other peer presenting the metrics token.
#[derive(Debug, Clone)]
pub struct MetricsAccess {
    pub token: Option<Secret<String>>,
    pub allow: Vec<Network>,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        Self {
            token: None,
            allow: vec![
                Network::host(IpAddr::from([127, 0, 0, 1])),
                Network::host(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
        }
    }
}

impl MetricsAccess {
    /// Whether `peer`, sending `bearer` (if any), may read the metrics.
    pub fn check(&self, peer: IpAddr, bearer: Option<&str>) -> Result<(), Error> {
        if self.allow.iter().any(|n| n.contains(peer)) {
            return Ok(());
        }
        match (bearer, &self.token) {
            (Some(sent), Some(token)) if same_token(sent, token.expose()) => Ok(()),
            _ => Err(Error::Unauthenticated),
        }
    }
}

/// Compares the tokens' hashes in constant time, so neither content nor length leaks by timing.
fn same_token(sent: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (
        callguard_core::token::hash(sent),
        callguard_core::token::hash(expected),
    );
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_need_an_allowed_address_or_the_right_token() {
        let access = MetricsAccess {
            token: Some(Secret::new("metrics-token-0123456789".into())),
            ..MetricsAccess::default()
        };
        let local = "127.0.0.1".parse().unwrap();
        let other = "192.0.2.7".parse().unwrap();
        assert!(access.check(local, None).is_ok());
        assert!(access.check(other, None).is_err());
        assert!(access
            .check(other, Some("metrics-token-0123456789"))
            .is_ok());
        assert!(access
            .check(other, Some("metrics-token-012345678"))
            .is_err());
        assert!(access.check(local, Some("an API session token")).is_ok());
        assert!(MetricsAccess::default()
            .check(other, Some("anything"))
            .is_err());
    }
}
