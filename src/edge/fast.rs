//! The edge's service: `GET`/`HEAD` of `/static/` and `/vod/` objects go straight to their handlers;
//! everything else goes through the axum router.
//!
//! Why: callgrind counted 34,000 instructions per cached playlist, about 16,000 of them in the router's
//! extractors, extension maps, boxed middleware and its clone of the service; this path takes 24,000
//! (`docs/benchmarks.md`). The fast path keeps every behaviour of the routed one (origin lock,
//! percent-decoding, CORS, the access log and metrics under the same route template) without that cost.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::response::{IntoResponse, Response};
use http::{Method, Request};
use hyper::body::Incoming;
use tower::{Service, ServiceExt};

use super::{EdgeError, EdgeState, OriginLock, guard, static_files, vod};
use crate::telemetry::AccessLog;

/// The routes the fast path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FastRoute {
    Static,
    Vod,
}

impl FastRoute {
    const ALL: [FastRoute; 2] = [FastRoute::Static, FastRoute::Vod];

    fn prefix(self) -> &'static str {
        match self {
            FastRoute::Static => "/static/",
            FastRoute::Vod => "/vod/",
        }
    }

    /// The route template reported in metrics and logs, the same as the router's.
    fn template(self) -> &'static str {
        match self {
            FastRoute::Static => "/static/{*key}",
            FastRoute::Vod => "/vod/{*path}",
        }
    }
}

/// The route and the part of `path` its wildcard captures, when the fast path takes the request.
fn fast_route<'p>(method: &Method, path: &'p str) -> Option<(FastRoute, &'p str)> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    FastRoute::ALL.into_iter().find_map(|route| {
        let rest = path.strip_prefix(route.prefix())?;
        (!rest.is_empty()).then_some((route, rest))
    })
}

/// The edge tier's service: the fast path, then the router. Cloned per connection.
#[derive(Clone)]
pub struct EdgeService {
    /// What the fast path needs, one `Arc` so that a request clones one pointer.
    fast: Arc<FastPath>,
    router: Router,
}

struct FastPath {
    state: EdgeState,
    lock: Option<OriginLock>,
    access: AccessLog,
}

impl EdgeService {
    pub fn new(state: EdgeState, lock: Option<OriginLock>, access: AccessLog, router: Router) -> Self {
        EdgeService { fast: Arc::new(FastPath { state, lock, access }), router }
    }
}

impl Service<Request<Incoming>> for EdgeService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let Some((route, _)) = fast_route(request.method(), request.uri().path()) else {
            return Box::pin(self.router.clone().oneshot(request));
        };
        let fast = self.fast.clone();
        Box::pin(async move {
            let start = Instant::now();
            let response = fast.serve(route, &request).await;
            let path = fast.access.log.then(|| request.uri().path());
            fast.access.observe(request.method(), route.template(), path, start, &response);
            Ok(response)
        })
    }
}

impl FastPath {
    async fn serve(&self, route: FastRoute, request: &Request<Incoming>) -> Response {
        let (method, headers) = (request.method(), request.headers());
        if let Some(lock) = &self.lock
            && !lock.admits(headers)
        {
            return EdgeError::Forbidden.into_response();
        }
        let raw = request.uri().path().strip_prefix(route.prefix()).unwrap_or_default();
        let response = match percent_encoding::percent_decode_str(raw).decode_utf8() {
            Ok(path) => match route {
                FastRoute::Static => static_files::serve(&self.state, &path, method, headers).await,
                FastRoute::Vod => vod::serve(&self.state, &path, method, headers).await,
            },
            Err(_) => Err(EdgeError::BadRequest("the path is not valid percent-encoded UTF-8".into())),
        };
        guard::cors_headers(response.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gets_and_heads_of_static_and_vod_objects_take_the_fast_path() {
        assert_eq!(fast_route(&Method::GET, "/static/a/b.m3u8"), Some((FastRoute::Static, "a/b.m3u8")));
        assert_eq!(fast_route(&Method::HEAD, "/static/%2e%2e/x"), Some((FastRoute::Static, "%2e%2e/x")));
        assert_eq!(fast_route(&Method::GET, "/vod/a.mp4/master.m3u8"), Some((FastRoute::Vod, "a.mp4/master.m3u8")));
        assert_eq!(fast_route(&Method::GET, "/static/"), None);
        assert_eq!(fast_route(&Method::GET, "/vod/"), None);
        assert_eq!(fast_route(&Method::GET, "/static"), None);
        assert_eq!(fast_route(&Method::OPTIONS, "/static/a"), None);
        assert_eq!(fast_route(&Method::POST, "/vod/a.mp4/master.m3u8"), None);
        assert_eq!(fast_route(&Method::GET, "/live/news/master.m3u8"), None);
        assert_eq!(fast_route(&Method::GET, "/staticx/a"), None);
        assert_eq!(FastRoute::Vod.template(), "/vod/{*path}");
    }
}
