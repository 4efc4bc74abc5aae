//! Which addresses may place calls: the carriers' networks from `sip.trunks`. Anything else is
//! refused with 403 before a dialog or any media port exists.

use callguard_server::features::ops::service::Network;
use std::net::IpAddr;

/// The carriers' networks.
#[derive(Clone, Debug, Default)]
pub struct Trunks {
    networks: Vec<Network>,
}

impl Trunks {
    /// Parses a comma-separated list of addresses or CIDR networks; an error names the bad item.
    pub fn parse(list: &str) -> Result<Self, String> {
        let networks = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                Network::parse(item).ok_or_else(|| {
                    format!("{item:?} is not an address or network like 192.0.2.0/24")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { networks })
    }

    /// Whether a call from `peer` comes from a carrier.
    #[must_use]
    pub fn admits(&self, peer: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(peer))
    }

    /// No carrier configured: every call is refused.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_inside_a_listed_network_are_admitted() {
        let t = Trunks::parse("127.0.0.1, 192.0.2.0/24,2001:db8::/32").unwrap();
        assert!(t.admits("127.0.0.1".parse().unwrap()));
        assert!(t.admits("192.0.2.77".parse().unwrap()));
        assert!(t.admits("2001:db8::5".parse().unwrap()));
        assert!(!t.admits("127.0.0.2".parse().unwrap()));
        assert!(!t.admits("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn a_bad_item_is_named_and_an_empty_list_admits_nobody() {
        let e = Trunks::parse("127.0.0.1, carrier.example").unwrap_err();
        assert!(e.contains("carrier.example"), "{e}");
        let none = Trunks::parse("").unwrap();
        assert!(none.is_empty());
        assert!(!none.admits("127.0.0.1".parse().unwrap()));
    }
}
