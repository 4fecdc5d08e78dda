//! Access middleware: one log event and one set of metric samples per request, on every tier.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::CONTENT_LENGTH;
use http_body::Body as _;

use super::Metrics;
use crate::cache::CacheOutcome;

/// Why a request failed, attached to the response by the error type so the log line can say it.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub Arc<str>);

/// What the access middleware needs: which tier it runs on, where to count, whether to log.
#[derive(Clone)]
pub struct AccessLog {
    pub tier: &'static str,
    pub metrics: Metrics,
    pub log: bool,
}

/// Records method, route template, status, bytes, duration and cache outcome of each request.
pub async fn record(State(ctx): State<AccessLog>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    // MatchedPath is an `Arc<str>` inside: cloning it copies no text.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let kind = super::metrics::object_kind(request.uri().path());
    let path = ctx.log.then(|| request.uri().path().to_owned());
    ctx.metrics.started(ctx.tier);
    let response = next.run(request).await;
    ctx.metrics.finished(ctx.tier);
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    ctx.observe(&method, (route, kind), path.as_deref(), start, &response);
    response
}

impl AccessLog {
    /// Counts one answered request of `(route template, object kind)`, and logs it when given its
    /// `path` (callers pass one when `log` is on).
    pub fn observe(
        &self,
        method: &http::Method,
        route: (&str, &'static str),
        path: Option<&str>,
        start: Instant,
        response: &Response,
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
        let answer = Answer {
            status: response.status().as_u16(),
            bytes,
            cache: response.extensions().get::<CacheOutcome>().copied(),
            error: response.extensions().get::<ErrorDetail>().map(|e| &*e.0),
        };
        self.record(method, route, path, start, answer);
    }

    /// [`AccessLog::observe`] for an answer that was never a `Response` (the edge's hot answers).
    pub fn record(
        &self,
        method: &http::Method,
        (route, kind): (&str, &'static str),
        path: Option<&str>,
        start: Instant,
        answer: Answer<'_>,
    ) {
        let elapsed = start.elapsed();
        let Answer { status, bytes, cache, error } = answer;
        self.metrics.observe(self.tier, route, kind, status, elapsed.as_secs_f64(), bytes);
        if let Some(path) = path {
            let cache = cache.map(CacheOutcome::as_str);
            tracing::info!(
                target: "estuary::access",
                tier = self.tier,
                method = %method,
                route,
                kind,
                path,
                status,
                bytes,
                duration_us = elapsed.as_micros() as u64,
                cache,
                error,
                "request"
            );
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
}
