//! What a load balancer and an operator ask of a node: is it ready to serve, and who may read
//! its metrics.

use crate::error::Error;
use crate::features::dnc::registry::Dnc;
use callguard_core::Secret;
use callguard_store::{IntegratorState, Store};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Readiness of this node.
pub struct Readiness {
    store: Arc<dyn Store>,
    registry: Option<Arc<Dnc>>,
    draining: AtomicBool,
}

/// One thing a node needs before it takes work, as `/readyz` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCheck {
    /// `not_draining`, `database`, `audit_integrator` (PostgreSQL) or `registry_loaded`.
    pub name: &'static str,
    pub ok: bool,
    /// In a few words: what was found.
    pub detail: String,
}

/// The verdict, and every check behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyReport {
    pub verdict: Result<(), NotReady>,
    pub checks: Vec<ReadyCheck>,
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
    /// The national DNC registry in force in the database is still loading (at start).
    RegistryLoading,
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
            Self::RegistryLoading => "registry loading",
        }
    }
}

impl Readiness {
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            registry: None,
            draining: AtomicBool::new(false),
        }
    }

    /// The node is ready only once `registry` holds what it must at start.
    #[must_use]
    pub fn with_registry(mut self, registry: Arc<Dnc>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// From now on the node answers "not ready" so that balancers stop sending it new work,
    /// while it goes on serving what still arrives.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the node should get new work: not draining, the database answers (the
    /// database's error is logged, never returned), on PostgreSQL the audit integrator keeps up,
    /// and the national DNC registry in force is loaded. Every check is run and listed; the
    /// first failing one names the verdict.
    pub async fn check(&self) -> ReadyReport {
        let draining = self.draining.load(Ordering::Acquire);
        let database = match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "readiness check failed");
                false
            }
        };
        // The integrator's state: `None` on SQLite (which has none) or when the database did
        // not answer.
        let integrator = if database {
            match self.store.integrator_state().await {
                Ok(st) => st,
                Err(e) => {
                    tracing::error!(error = %e, "readiness check failed");
                    None
                }
            }
        } else {
            None
        };
        let audit = integrator.as_ref().is_none_or(|st| {
            let keeping_up = st.backlog_age_ms <= AUDIT_BACKLOG_LIMIT_MS;
            if !keeping_up {
                tracing::error!(
                    backlog = st.backlog,
                    oldest_ms = st.backlog_age_ms,
                    "audit entries are not being indexed"
                );
            }
            keeping_up
        });
        let registry = self.registry.as_ref().is_none_or(|r| r.settled());
        let verdict = if draining {
            Err(NotReady::Draining)
        } else if !database {
            Err(NotReady::DatabaseUnavailable)
        } else if !audit {
            Err(NotReady::AuditBehind)
        } else if !registry {
            Err(NotReady::RegistryLoading)
        } else {
            Ok(())
        };
        let check = |name, ok, yes: &str, no: &str| ReadyCheck {
            name,
            ok,
            detail: if ok { yes.into() } else { no.into() },
        };
        let mut checks = vec![
            check("not_draining", !draining, "serving", "draining"),
            check("database", database, "reachable", "unavailable"),
        ];
        if let Some(st) = &integrator {
            checks.push(ReadyCheck {
                name: "audit_integrator",
                ok: audit,
                detail: describe(st),
            });
        }
        checks.push(check(
            "registry_loaded",
            registry,
            "loaded or none in force",
            "loading",
        ));
        ReadyReport { verdict, checks }
    }

    /// [`Readiness::check`]'s verdict alone.
    pub async fn ready(&self) -> Result<(), NotReady> {
        self.check().await.verdict
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
