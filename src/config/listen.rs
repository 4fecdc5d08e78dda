//! Listening addresses as operators write them: `0.0.0.0:8080`, `[::]:8080`, `127.0.0.1:9090`, and
//! `localhost:9090` (loopback). Other host names are refused with a message that says what to
//! write instead: a listener binds an address, and resolving names at start-up hides which one.

use std::net::{Ipv4Addr, SocketAddr};

/// Why a listening address was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenError {
    #[error("{0:?}: the port must be a number from 0 to 65535")]
    Port(String),
    #[error(
        "{0:?} is not IP:port: write 0.0.0.0:8080 (every interface), 127.0.0.1:8080 or localhost:8080 \
         (this machine only), or [::]:8080; host names other than localhost are not resolved"
    )]
    NotIpPort(String),
}

/// Parses a listening address.
pub fn parse(s: &str) -> Result<SocketAddr, ListenError> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = |p: &str| p.parse::<u16>().map_err(|_| ListenError::Port(s.to_owned()));
    match s.rsplit_once(':') {
        Some((host, p)) if host.eq_ignore_ascii_case("localhost") => {
            Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port(p)?)))
        }
        Some(("", p)) => Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port(p)?))),
        _ => Err(ListenError::NotIpPort(s.to_owned())),
    }
}

/// `#[serde(deserialize_with)]` for listening addresses.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_operators_write_them() {
        assert_eq!(parse("0.0.0.0:8080").unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(parse("[::]:8080").unwrap(), "[::]:8080".parse().unwrap());
        assert_eq!(parse("localhost:9090").unwrap(), "127.0.0.1:9090".parse().unwrap());
        assert_eq!(parse("LOCALHOST:1").unwrap(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(parse(":8081").unwrap(), "0.0.0.0:8081".parse().unwrap());
        assert!(parse("localhost:99999").unwrap_err().to_string().contains("port"));
        assert!(parse("example.com:80").unwrap_err().to_string().contains("not resolved"));
        assert!(parse("8080").is_err());
    }
}
