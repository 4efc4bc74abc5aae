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

/// An address or a network (`10.0.0.0/8`, `::1`) that may read the metrics without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; `None` when it is neither.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self {
            addr: addr.to_canonical(),
            prefix,
        })
    }

    #[must_use]
    pub fn contains(&self, peer: IpAddr) -> bool {
        match (self.addr, peer.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(p)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(p) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(p)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(p) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

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
                Network {
                    addr: IpAddr::from([127, 0, 0, 1]),
                    prefix: 32,
                },
                Network {
                    addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
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
    fn networks_match_their_prefix_only() {
        let net = Network::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Network::parse("::1")
            .unwrap()
            .contains("::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("192.0.2.1".parse().unwrap()));
        assert_eq!(Network::parse("10.0.0.0/33"), None);
        assert_eq!(Network::parse("example.com"), None);
    }

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
