//! Addresses and networks: CIDR lists from configuration, and the rule that finds a client's
//! address behind trusted proxies.

use std::net::IpAddr;

/// An address or a network (`10.0.0.0/8`, `::1`): who may read the metrics without a token,
/// which peers are trusted proxies, which carriers may send calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// The network holding exactly one address.
    #[must_use]
    pub fn host(addr: IpAddr) -> Self {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

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

/// The client's address for a request that arrived from `peer`.
///
/// Only a peer on `trusted` (a load balancer or reverse proxy) may speak for someone else: its
/// `X-Forwarded-For` list is read from the right (the hop nearest to us) and the first address
/// that is not itself a trusted proxy is the client. Anything from an untrusted peer is ignored,
/// so a client cannot choose the address it is throttled and audited under. An entry that is not
/// an address stops the walk at the last trusted hop, never further left (where a client could
/// have written anything).
#[must_use]
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[Network],
) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|n| n.contains(a));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(addr) = parse_hop(hop) else {
            return client;
        };
        client = addr;
        if !is_trusted(addr) {
            return addr;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(a) = hop.parse::<IpAddr>() {
        return Some(a.to_canonical());
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    None
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = [Network::parse("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_address(ip("192.0.2.50"), ["203.0.113.9"], &trusted),
            ip("192.0.2.50")
        );
        assert_eq!(
            client_address(ip("192.0.2.50"), ["203.0.113.9"], &[]),
            ip("192.0.2.50")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = [Network::parse("10.0.0.0/8").unwrap()];
        // The client wrote a fake first entry; the balancer appended the real one.
        assert_eq!(
            client_address(ip("10.0.0.2"), ["1.2.3.4, 203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        // Two trusted hops, headers split over two lines.
        assert_eq!(
            client_address(ip("10.0.0.2"), ["198.51.100.7", "10.0.0.3"], &trusted),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(client_address(ip("10.0.0.2"), [], &trusted), ip("10.0.0.2"));
        // Ports and brackets are accepted.
        assert_eq!(
            client_address(ip("10.0.0.2"), ["[2001:db8::1]:4711"], &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_in_the_header_stops_at_the_last_trusted_hop() {
        let trusted = [Network::parse("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_address(ip("10.0.0.2"), ["203.0.113.9, unknown, 10.0.0.3"], &trusted),
            ip("10.0.0.3")
        );
    }
}
