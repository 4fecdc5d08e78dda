//! What the edge applies to every route: the CDN origin lock and CORS for browser players.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, CACHE_CONTROL, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use subtle::ConstantTimeEq;

/// Headers a browser player may read from our responses.
const EXPOSED: &str = "Content-Length, Content-Range, ETag, Last-Modified, Date, Age";
/// Request headers allowed when the preflight names none.
const ALLOWED: &str = "Range, If-None-Match, If-Modified-Since, If-Range, Accept-Encoding";

/// The shared secret header a CDN adds to every origin request.
#[derive(Clone)]
pub struct OriginLock {
    pub header: HeaderName,
    pub secret: Arc<[u8]>,
    /// While a new secret is rolled out to the CDN, the one it replaces (`origin_lock_previous_secret`).
    pub previous: Option<Arc<[u8]>>,
}

impl OriginLock {
    /// Whether `headers` carry the secret (compared in constant time).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        self.admits_value(headers.get(&self.header).map(HeaderValue::as_bytes))
    }

    /// Whether the value presented (the first of the lock's header) is the secret or the previous one.
    /// Both are compared, so the time taken does not say which matched.
    pub fn admits_value(&self, presented: Option<&[u8]>) -> bool {
        let Some(p) = presented else { return false };
        let current = p.ct_eq(&self.secret);
        let previous = self.previous.as_deref().map_or(subtle::Choice::from(0), |prev| p.ct_eq(prev));
        bool::from(current | previous)
    }
}

/// Answers a CORS preflight (`OPTIONS`, on any path); `post`: the path takes a POST too (a
/// ClearKey licence request at `/keys/`).
pub(super) fn preflight(headers: &HeaderMap, post: bool) -> Response {
    let allow = headers.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned().unwrap_or(HeaderValue::from_static(ALLOWED));
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    let methods = if post { "GET, HEAD, POST, OPTIONS" } else { "GET, HEAD, OPTIONS" };
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow);
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    h.insert(VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
}

/// Marks every response readable by any origin (a plain response map: no boxed future per request).
pub(super) fn cors_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
    response
}
