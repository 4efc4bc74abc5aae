//! What a load balancer and an operator ask of a node: is it ready to serve, and who may read
//! its metrics.

use crate::error::Error;
use callguard_core::Secret;
use callguard_store::Store;
use std::net::IpAddr;
use std::sync::Arc;

/// Readiness of this node.
pub struct Readiness {
    store: Arc<dyn Store>,
}

impl Readiness {
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Whether the database answers; the reason is logged, never returned.
    pub async fn ready(&self) -> bool {
        match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "readiness check failed");
                false
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
