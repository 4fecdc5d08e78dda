//! PURE: who a request came from. The peer address, and `X-Forwarded-For` believed only as far back
//! as the proxies an operator trusts (`log.trusted_proxies`: the load balancer, CloudFront's ranges):
//! the client is the nearest address in the chain that is not one of them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The peer address of a request's connection, as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// An address range: `10.0.0.0/8`, `2600:9000::/28`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a trusted-proxy entry is not an address or a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    Address(String),
    Prefix(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Address(s) => write!(f, "{s:?} is not an address or a CIDR range"),
            CidrError::Prefix(s) => write!(f, "{s:?}: a bad prefix length"),
        }
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (address, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = address.trim().parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.trim().parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(|| CidrError::Prefix(s.to_owned()))?
            }
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The client of a request from `peer` that carried `forwarded_for` (`X-Forwarded-For`): walking
/// back from the peer through the chain, the first address that is not a trusted proxy. Without
/// trusted proxies (or from an untrusted peer) the chain is not believed: the client is the peer.
pub fn client(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or_default().rsplit(',').map(str::trim) {
        let Ok(ip) = hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let lan: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(lan.contains(ip("10.1.2.3")) && !lan.contains(ip("11.0.0.1")));
        assert!(lan.contains(ip("::ffff:10.9.9.9")), "v4-mapped v6 is the v4 address");
        let cloudfront: Cidr = "2600:9000::/28".parse().unwrap();
        assert!(cloudfront.contains(ip("2600:9000:1234::1")) && !cloudfront.contains(ip("2600:a000::1")));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!("10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn the_chain_is_believed_only_through_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "130.176.0.0/16".parse().unwrap()];
        let xff = Some("6.6.6.6, 203.0.113.9, 130.176.1.1");
        // From the load balancer: through CloudFront's hop to the viewer; what the viewer wrote
        // before that (6.6.6.6) is not believed.
        assert_eq!(client(ip("10.0.0.5"), xff, &trusted), ip("203.0.113.9"));
        // Straight from the internet: the header is whatever the client says.
        assert_eq!(client(ip("198.51.100.1"), xff, &trusted), ip("198.51.100.1"));
        // No trust configured: the peer.
        assert_eq!(client(ip("10.0.0.5"), xff, &[]), ip("10.0.0.5"));
        // A malformed hop ends the walk at the last good one.
        assert_eq!(client(ip("10.0.0.5"), Some("junk, 130.176.1.1"), &trusted), ip("130.176.1.1"));
        assert_eq!(client(ip("10.0.0.5"), Some("[2001:db8::1]:443"), &trusted), ip("2001:db8::1"));
    }
}
