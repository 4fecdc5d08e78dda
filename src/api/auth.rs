//! Who may use the operator API: the `Host` check (DNS rebinding), the cross-site check (a web page
//! driving the API through the operator's browser) and the bearer token.

use std::net::IpAddr;

use axum::extract::{Request, State};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Method};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};

/// Passes the request on when no token is configured or `Authorization: Bearer <token>` matches.
pub(super) async fn require_token(State(state): State<ApiState>, request: Request) -> Result<Request, ApiError> {
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
pub(super) async fn require_known_host(State(state): State<ApiState>, request: Request) -> Result<Request, ApiError> {
    // Every `Host` the request carries must pass (a second one must not smuggle a name in).
    let known = request
        .headers()
        .get_all(HOST)
        .iter()
        .all(|h| h.to_str().is_ok_and(|host| host_allowed(host, &state.allowed_hosts)));
    if known { Ok(request) } else { Err(ApiError::MisdirectedHost) }
}

/// Refuses what a page of another site could make the operator's browser send. The API has no
/// CORS, so such a page cannot read an answer, but a "simple" request (a form POST, or a `fetch` in
/// `no-cors` mode) is still sent, and on loopback with no token it would act. So:
/// - a browser's own word that the call is not same-origin (`Sec-Fetch-Site` other than
///   `same-origin` or `none`), or an `Origin` that is not the API's own, is 403 on every call;
/// - a state-changing call whose body is one a form can send (`application/x-www-form-urlencoded`,
///   `multipart/form-data`, `text/plain`) is 415, for browsers that send neither header.
///
/// Tools (curl, scripts, the operator's own `/ui`, Kubernetes) send none of these, or same-origin.
pub(super) async fn refuse_cross_site(request: Request) -> Result<Request, ApiError> {
    cross_site_verdict(request.method(), request.headers())?;
    Ok(request)
}

fn cross_site_verdict(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    for site in headers.get_all("sec-fetch-site") {
        let site = site.to_str().unwrap_or("?").trim().to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return Err(ApiError::CrossSite(format!("Sec-Fetch-Site: {site}")));
        }
    }
    for origin in headers.get_all(ORIGIN) {
        let origin = origin.to_str().unwrap_or("?").trim();
        let host = origin.split_once("://").map(|(_, authority)| authority);
        let same = host
            .is_some_and(|h| headers.get_all(HOST).iter().all(|own| own.as_bytes().eq_ignore_ascii_case(h.as_bytes())));
        if !same {
            return Err(ApiError::CrossSite(format!("Origin {origin} is not this API")));
        }
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && let Some(kind) = headers.get(CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("?").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if matches!(kind.as_str(), "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain") {
            return Err(ApiError::NotJson(kind));
        }
    }
    Ok(())
}

/// IP literals (no name to rebind), `localhost` and its subdomains, and the configured names, each
/// with or without a port.
pub(super) fn host_allowed(host: &str, allowed: &[String]) -> bool {
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
    use super::{cross_site_verdict, host_allowed};
    use http::{HeaderMap, HeaderValue, Method};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn a_page_of_another_site_cannot_act_through_the_browser() {
        let host = ("host", "127.0.0.1:9090");
        for ok in [
            vec![host],
            vec![host, ("sec-fetch-site", "same-origin"), ("origin", "http://127.0.0.1:9090")],
            vec![host, ("sec-fetch-site", "none")],
            vec![host, ("content-type", "application/json")],
        ] {
            assert!(cross_site_verdict(&Method::POST, &headers(&ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://127.0.0.1:8080")],
            vec![host, ("content-type", "application/x-www-form-urlencoded")],
            vec![host, ("content-type", "text/plain;charset=UTF-8")],
            vec![host, ("content-type", "Multipart/Form-Data; boundary=x")],
        ] {
            assert!(cross_site_verdict(&Method::POST, &headers(&bad)).is_err(), "{bad:?}");
        }
        let form = headers(&[host, ("content-type", "text/plain")]);
        assert!(cross_site_verdict(&Method::GET, &form).is_ok(), "a read changes nothing");
    }

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
