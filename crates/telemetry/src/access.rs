//! Access middleware: one log event and one set of metric samples per request, on every tier.
//!
//! A line says who asked (the client address, believed through `X-Forwarded-For` only from trusted
//! proxies; the user agent; CloudFront's request id), what (method, route, object kind, path and
//! query), the answer (status, bytes, time, cache outcome, why it failed) and the request id, which
//! the response echoes as `X-Request-Id`. Successes and 4xx are `info`; 5xx are `warn`, and 500
//! `error`.

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{CONTENT_LENGTH, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::Body as _;

use super::Metrics;
use estuary_cache::CacheOutcome;
use estuary_http::forwarded::{self, Cidr, PeerAddr};

/// Why a request failed, attached to the response by the error type so the log line can say it.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub Arc<str>);

/// How long a request waited on storage, put in its response's extensions by whoever counted it.
#[derive(Debug, Clone, Copy)]
pub struct StorageTime(pub std::time::Duration);

/// The header a request id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const CLOUDFRONT_ID: &str = "x-amz-cf-id";
const FORWARDED_FOR: &str = "x-forwarded-for";

/// What the access middleware needs: which tier it runs on, where to count, whether to log, and
/// which proxies' `X-Forwarded-For` to believe.
#[derive(Clone)]
pub struct AccessLog {
    pub tier: &'static str,
    pub metrics: Metrics,
    pub log: bool,
    pub trusted_proxies: Arc<[Cidr]>,
}

/// Who sent a request, as its head says.
#[derive(Debug, Default, Clone, Copy)]
pub struct Client<'a> {
    pub peer: Option<IpAddr>,
    pub forwarded_for: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub cloudfront_id: Option<&'a str>,
    /// The id an upstream (a load balancer) gave the request.
    pub request_id: Option<&'a str>,
}

impl<'a> Client<'a> {
    pub fn of(headers: &'a HeaderMap, peer: Option<IpAddr>) -> Client<'a> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Client {
            peer,
            forwarded_for: text(FORWARDED_FOR),
            user_agent: text(USER_AGENT.as_str()),
            cloudfront_id: text(CLOUDFRONT_ID),
            request_id: text(REQUEST_ID.as_str()),
        }
    }

    /// From a raw head (the edge's hot answers).
    pub fn of_raw(headers: &'a [httparse::Header<'a>], peer: Option<IpAddr>) -> Client<'a> {
        let mut client = Client { peer, ..Client::default() };
        for h in headers {
            let is = |name: &str| h.name.eq_ignore_ascii_case(name);
            let slot = if is(FORWARDED_FOR) {
                &mut client.forwarded_for
            } else if is(USER_AGENT.as_str()) {
                &mut client.user_agent
            } else if is(CLOUDFRONT_ID) {
                &mut client.cloudfront_id
            } else if is(REQUEST_ID.as_str()) {
                &mut client.request_id
            } else {
                continue;
            };
            *slot = slot.or(std::str::from_utf8(h.value).ok());
        }
        client
    }
}

/// A request's id: the upstream's when it is a sane token (up to 64 of `[A-Za-z0-9._-]`), else one
/// made here, unique in the process: a per-process prefix, the thread and its count.
pub fn request_id(upstream: Option<&str>) -> String {
    if let Some(id) = upstream.filter(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }) {
        return id.to_owned();
    }
    static THREADS: AtomicU16 = AtomicU16::new(0);
    thread_local! {
        static MINE: (u16, Cell<u64>) = (THREADS.fetch_add(1, Ordering::Relaxed), Cell::new(0));
    }
    let process = *PROCESS;
    MINE.with(|(thread, count)| {
        let n = count.get() + 1;
        count.set(n);
        format!("{process:08x}-{thread:04x}-{n:x}")
    })
}

/// Tells this process's request ids from those of its earlier runs and its sibling pods.
static PROCESS: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
});

/// Records method, route template, status, bytes, duration and cache outcome of each request.
pub async fn record(State(ctx): State<AccessLog>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    // MatchedPath is an `Arc<str>` inside: cloning it copies no text.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let kind = super::metrics::object_kind(request.uri().path());
    let seen = ctx.log.then(|| Seen::of(&request));
    ctx.metrics.started(ctx.tier);
    let mut response = if ctx.log {
        let (mut response, spent) = estuary_storage::latency::timing_storage(next.run(request)).await;
        response.extensions_mut().insert(StorageTime(spent));
        response
    } else {
        next.run(request).await
    };
    ctx.metrics.finished(ctx.tier);
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    ctx.observe(&method, (route, kind), seen.as_ref().map(Seen::request), start, &mut response);
    response
}

/// What the log line keeps of a request that is handed on (owned: the request moves): its path,
/// query and the four headers a line names, not the whole header map.
struct Seen {
    path: String,
    query: Option<String>,
    peer: Option<IpAddr>,
    /// Forwarded-for, user agent, CloudFront id, request id.
    headers: [Option<String>; 4],
}

impl Seen {
    fn of(request: &Request) -> Seen {
        let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
        let c = Client::of(request.headers(), peer);
        let own = |v: Option<&str>| v.map(str::to_owned);
        Seen {
            path: request.uri().path().to_owned(),
            query: request.uri().query().map(str::to_owned),
            peer,
            headers: [own(c.forwarded_for), own(c.user_agent), own(c.cloudfront_id), own(c.request_id)],
        }
    }

    fn request(&self) -> Logged<'_> {
        let [forwarded_for, user_agent, cloudfront_id, request_id] = self.headers.each_ref().map(Option::as_deref);
        let client = Client { peer: self.peer, forwarded_for, user_agent, cloudfront_id, request_id };
        Logged { path: &self.path, query: self.query.as_deref(), client }
    }
}

/// The request as a log line names it.
#[derive(Debug, Clone, Copy)]
pub struct Logged<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub client: Client<'a>,
}

impl AccessLog {
    /// Counts one answered request of `(route template, object kind)`; when given the request
    /// (callers pass it when `log` is on), logs it and gives the response its `X-Request-Id`.
    pub fn observe(
        &self,
        method: &http::Method,
        route: (&str, &'static str),
        request: Option<Logged<'_>>,
        start: Instant,
        response: &mut Response,
    ) {
        let bytes = if method == http::Method::HEAD {
            0
        } else {
            response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .or_else(|| response.body().size_hint().exact())
                .unwrap_or(0)
        };
        let id = request.map(|r| request_id(r.client.request_id));
        if let Some(value) = id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        let answer = Answer {
            status: response.status().as_u16(),
            bytes,
            cache: response.extensions().get::<CacheOutcome>().copied(),
            error: response.extensions().get::<ErrorDetail>().map(|e| &*e.0),
            storage: response.extensions().get::<StorageTime>().map(|t| t.0),
        };
        self.record(method, route, request.zip(id.as_deref()), start, answer);
    }

    /// [`AccessLog::observe`] for an answer that was never a `Response` (the edge's hot answers),
    /// whose request id the caller has already sent.
    pub fn record(
        &self,
        method: &http::Method,
        (route, kind): (&str, &'static str),
        request: Option<(Logged<'_>, &str)>,
        start: Instant,
        answer: Answer<'_>,
    ) {
        let elapsed = start.elapsed();
        let Answer { status, bytes, cache, error, storage } = answer;
        let storage_us = storage.map(|s| s.as_micros() as u64);
        self.metrics.observe(self.tier, route, kind, status, elapsed.as_secs_f64(), bytes);
        let Some((Logged { path, query, client }, request_id)) = request else { return };
        let client_ip = client.peer.map(|peer| forwarded::client(peer, client.forwarded_for, &self.trusted_proxies));
        let forwarded_for = client.forwarded_for.filter(|_| !self.trusted_proxies.is_empty());
        let cache = cache.map(CacheOutcome::as_str);
        macro_rules! line {
            ($level:ident, $message:literal) => {
                tracing::$level!(
                    target: "estuary::access",
                    tier = self.tier,
                    method = %method,
                    route,
                    kind,
                    path,
                    query,
                    status,
                    bytes,
                    duration_us = elapsed.as_micros() as u64,
                    storage_us,
                    cache,
                    error,
                    client_ip = client_ip.map(tracing::field::display),
                    forwarded_for,
                    user_agent = client.user_agent,
                    cf_id = client.cloudfront_id,
                    request_id,
                    $message
                )
            };
        }
        match status {
            500 => line!(error, "request failed: server error"),
            501.. => line!(warn, "request failed"),
            400..=499 => line!(info, "request refused"),
            _ => line!(info, "request served"),
        }
    }
}

/// What an access log line says of the answer.
pub struct Answer<'a> {
    pub status: u16,
    /// Body bytes sent (0 for HEAD).
    pub bytes: u64,
    pub cache: Option<CacheOutcome>,
    pub error: Option<&'a str>,
    /// Time the request waited on storage before its response headers, when counted.
    pub storage: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_taken_when_sane_and_made_unique_otherwise() {
        assert_eq!(request_id(Some("lb-7f3a.1")), "lb-7f3a.1");
        let made: Vec<String> = (0..3).map(|_| request_id(Some("evil\nid"))).collect();
        assert!(made.iter().all(|id| id.len() > 10 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')));
        assert!(made[0] != made[1] && made[1] != made[2]);
        let other = std::thread::spawn(|| request_id(None)).join().unwrap();
        assert!(!made.contains(&other));
    }

    #[test]
    fn a_raw_head_gives_the_same_client() {
        let raw = [
            httparse::Header { name: "User-Agent", value: b"AppleCoreMedia/1.0" },
            httparse::Header { name: "X-Amz-Cf-Id", value: b"abc==" },
            httparse::Header { name: "X-Forwarded-For", value: b"203.0.113.9" },
        ];
        let c = Client::of_raw(&raw, None);
        assert_eq!(
            (c.user_agent, c.cloudfront_id, c.forwarded_for),
            (Some("AppleCoreMedia/1.0"), Some("abc=="), Some("203.0.113.9"))
        );
    }
}
