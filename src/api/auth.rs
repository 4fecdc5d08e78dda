//! Who may use the operator API: the `Host` check (DNS rebinding) and the bearer token.

use std::net::IpAddr;

use axum::extract::{Request, State};
use http::header::{AUTHORIZATION, HOST};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};

/// Passes the request on when no token is configured or `Authorization: Bearer <token>` matches.
pub async fn require_token(State(state): State<ApiState>, request: Request) -> Result<Request, ApiError> {
    let Some(token) = &state.token else {
        return Ok(request);
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if bool::from(p.as_bytes().ct_eq(token.as_bytes())) => Ok(request),
        Some(_) => Err(ApiError::Forbidden),
        None => Err(ApiError::Unauthorized),
    }
}

/// Refuses a `Host` that names a host this API was not told about: a web page whose name was
/// rebound to this address (DNS rebinding) cannot drive the API from a browser.
pub async fn require_known_host(State(state): State<ApiState>, request: Request) -> Result<Request, ApiError> {
    // Every `Host` the request carries must pass (a second one must not smuggle a name in).
    let known = request
        .headers()
        .get_all(HOST)
        .iter()
        .all(|h| h.to_str().is_ok_and(|host| host_allowed(host, &state.allowed_hosts)));
    if known { Ok(request) } else { Err(ApiError::MisdirectedHost) }
}

/// IP literals (no name to rebind), `localhost` and its subdomains, and the configured names, each
/// with or without a port.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        return true;
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => return v6.split_once(']').is_some_and(|(ip, _)| ip.parse::<IpAddr>().is_ok()),
        None => host
            .rsplit_once(':')
            .map_or(host.as_str(), |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { "" }),
    };
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_addresses_localhost_and_configured_names() {
        let allowed = vec!["estuary-api.internal".to_owned()];
        for ok in [
            "127.0.0.1:9090",
            "10.1.2.3:9090",
            "[::1]:9090",
            "localhost:9090",
            "LOCALHOST",
            "estuary-api.internal:9090",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in
            ["evil.example", "evil.example:9090", "127.0.0.1.evil.example:9090", "localhost.evil.example", "[evil]:1"]
        {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
