//! Clients behind a load balancer: only from peers on `http.trusted_proxies` is the client's
//! address taken from the PROXY protocol (v1 or v2, as HAProxy's `send-proxy`/`send-proxy-v2`
//! write it before the TLS handshake) or from `X-Forwarded-For`. From every other peer both are
//! ignored, so nobody chooses the address they are throttled and audited under.

use callguard_core::net::Network;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The peers that may speak for a client (`http.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[Network]>);

impl TrustedProxies {
    #[must_use]
    pub fn new(networks: Vec<Network>) -> Self {
        Self(networks.into())
    }

    #[must_use]
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(peer))
    }

    /// The client of a request that came from `peer` with these `X-Forwarded-For` headers.
    #[must_use]
    pub fn client_of(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        callguard_core::net::client_address(peer, forwarded, &self.0)
    }
}

/// The first bytes of a PROXY protocol v2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header the specification allows, CRLF included.
const V1_MAX: usize = 107;

/// Why a trusted peer's PROXY header was refused (the connection is closed).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the PROXY header did not arrive in time")]
    Timeout,
    #[error("the PROXY header is malformed")]
    Malformed,
    #[error("the connection closed during the PROXY header")]
    Closed,
}

/// Reads a PROXY protocol header from a trusted peer, if it sent one: `Ok(Some(client))` for a
/// proxied connection, `Ok(None)` when the connection starts straight with TLS (or is the
/// proxy's own health check, `LOCAL` / `UNKNOWN`). Call only for trusted peers.
pub async fn read_proxy_header(
    stream: &mut TcpStream,
    within: Duration,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    tokio::time::timeout(within, read_header(stream))
        .await
        .map_err(|_| ProxyHeaderError::Timeout)?
}

async fn read_header(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut first = [0u8; 12];
    // Peek until we can tell TLS (0x16 …) from "PROXY " or the v2 signature.
    loop {
        let seen = stream
            .peek(&mut first)
            .await
            .map_err(|_| ProxyHeaderError::Closed)?;
        if seen == 0 {
            return Err(ProxyHeaderError::Closed);
        }
        let v1 = b"PROXY ".starts_with(&first[..seen.min(6)]);
        let v2 = V2_SIGNATURE.starts_with(&first[..seen]);
        if !v1 && !v2 {
            return Ok(None);
        }
        if (v1 && seen >= 6) || seen == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if first.starts_with(b"PROXY ") {
        read_v1(stream).await
    } else {
        read_v2(stream).await
    }
}

async fn read_v1(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut line = Vec::with_capacity(V1_MAX);
    loop {
        let byte = stream
            .read_u8()
            .await
            .map_err(|_| ProxyHeaderError::Closed)?;
        line.push(byte);
        if line.ends_with(b"\r\n") {
            break;
        }
        if line.len() >= V1_MAX {
            return Err(ProxyHeaderError::Malformed);
        }
    }
    parse_v1(&line)
}

/// `PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n`, `PROXY TCP6 …`, `PROXY UNKNOWN …`.
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let text = std::str::from_utf8(line).map_err(|_| ProxyHeaderError::Malformed)?;
    let text = text
        .strip_suffix("\r\n")
        .ok_or(ProxyHeaderError::Malformed)?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            if (*family == "TCP4") != ip.is_ipv4() {
                return Err(ProxyHeaderError::Malformed);
            }
            let port: u16 = sport.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyHeaderError::Malformed),
    }
}

async fn read_v2(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut fixed = [0u8; 16];
    stream
        .read_exact(&mut fixed)
        .await
        .map_err(|_| ProxyHeaderError::Closed)?;
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let mut rest = vec![0u8; len];
    stream
        .read_exact(&mut rest)
        .await
        .map_err(|_| ProxyHeaderError::Closed)?;
    parse_v2(&fixed, &rest)
}

/// The binary form: signature, version 2 + command, family + protocol, length, addresses
/// (TLVs after them are ignored).
fn parse_v2(fixed: &[u8; 16], rest: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    if fixed[..12] != V2_SIGNATURE || fixed[12] >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed);
    }
    match fixed[12] & 0x0f {
        0 => return Ok(None), // LOCAL: the proxy's own connection (health check)
        1 => {}
        _ => return Err(ProxyHeaderError::Malformed),
    }
    let addr = match fixed[13] {
        0x11 | 0x12 => {
            let b: [u8; 12] = rest
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyHeaderError::Malformed)?;
            let ip = IpAddr::from([b[0], b[1], b[2], b[3]]);
            SocketAddr::new(ip, u16::from_be_bytes([b[8], b[9]]))
        }
        0x21 | 0x22 => {
            let b: [u8; 36] = rest
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyHeaderError::Malformed)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            SocketAddr::new(IpAddr::from(ip), u16::from_be_bytes([b[32], b[33]]))
        }
        0x00 => return Ok(None), // UNSPEC
        _ => return Err(ProxyHeaderError::Malformed),
    };
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_headers_give_the_client_address() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
            Ok(Some("192.0.2.1:56324".parse().unwrap()))
        );
        assert_eq!(
            parse_v1(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n"),
            Ok(Some("[2001:db8::1]:4000".parse().unwrap()))
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n"), Ok(None));
    }

    #[test]
    fn malformed_v1_headers_are_refused() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 99999 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 443",
        ] {
            assert_eq!(parse_v1(bad), Err(ProxyHeaderError::Malformed));
        }
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> ([u8; 16], Vec<u8>) {
        let mut fixed = [0u8; 16];
        fixed[..12].copy_from_slice(&V2_SIGNATURE);
        fixed[12] = 0x20 | command;
        fixed[13] = family;
        fixed[14..].copy_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        (fixed, body.to_vec())
    }

    #[test]
    fn v2_headers_give_the_client_address() {
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2];
        body.extend(56324u16.to_be_bytes());
        body.extend(443u16.to_be_bytes());
        body.extend([0x04, 0, 1, 0]); // a TLV after the addresses is ignored
        let (fixed, rest) = v2(1, 0x11, &body);
        assert_eq!(
            parse_v2(&fixed, &rest),
            Ok(Some("192.0.2.1:56324".parse().unwrap()))
        );
        let (fixed, rest) = v2(0, 0x11, &body);
        assert_eq!(parse_v2(&fixed, &rest), Ok(None), "LOCAL is a health check");
        let (fixed, rest) = v2(1, 0x11, &body[..6]);
        assert_eq!(parse_v2(&fixed, &rest), Err(ProxyHeaderError::Malformed));
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_peers() {
        let proxies = TrustedProxies::new(vec![Network::parse("127.0.0.7").unwrap()]);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        let trusted: IpAddr = "127.0.0.7".parse().unwrap();
        let other: IpAddr = "127.0.0.8".parse().unwrap();
        assert_eq!(
            proxies.client_of(trusted, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(proxies.client_of(other, &headers), other);
    }
}
