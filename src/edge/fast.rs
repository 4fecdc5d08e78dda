//! The edge's service: `GET`/`HEAD` of `/static/` objects go straight to their handler; everything
//! else goes through the axum router.
//!
//! Why: callgrind counted 34,000 instructions per cached playlist, about 16,000 of them in the router's
//! extractors, extension maps, boxed middleware and its clone of the service; this path takes 24,000
//! (`docs/benchmarks.md`). The fast path keeps every behaviour of the routed one (origin lock,
//! percent-decoding, CORS, the access log and metrics under the same route template) without that cost.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::response::{IntoResponse, Response};
use http::{Method, Request};
use hyper::body::Incoming;
use tower::{Service, ServiceExt};

use super::{EdgeError, EdgeState, OriginLock, guard, static_files};
use crate::telemetry::AccessLog;

/// The route template the fast path reports, the same as the router's.
const STATIC_ROUTE: &str = "/static/{*key}";

/// The edge tier's service: the fast path, then the router.
#[derive(Clone)]
pub struct EdgeService {
    state: EdgeState,
    lock: Option<OriginLock>,
    access: AccessLog,
    router: Router,
}

impl EdgeService {
    pub fn new(state: EdgeState, lock: Option<OriginLock>, access: AccessLog, router: Router) -> Self {
        EdgeService { state, lock, access, router }
    }
}

/// The part of `path` a `/static/{*key}` route would capture, when the fast path can take the request.
fn static_key<'p>(method: &Method, path: &'p str) -> Option<&'p str> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    path.strip_prefix("/static/").filter(|rest| !rest.is_empty())
}

impl Service<Request<Incoming>> for EdgeService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        if static_key(request.method(), request.uri().path()).is_none() {
            return Box::pin(self.router.clone().oneshot(request));
        }
        let this = self.clone();
        Box::pin(async move {
            let start = Instant::now();
            let response = this.serve_static(&request).await;
            let path = this.access.log.then(|| request.uri().path());
            this.access.observe(request.method(), STATIC_ROUTE, path, start, &response);
            Ok(response)
        })
    }
}

impl EdgeService {
    async fn serve_static(&self, request: &Request<Incoming>) -> Response {
        if let Some(lock) = &self.lock
            && !lock.admits(request.headers())
        {
            return EdgeError::Forbidden.into_response();
        }
        let raw = static_key(request.method(), request.uri().path()).unwrap_or_default();
        let response = match percent_encoding::percent_decode_str(raw).decode_utf8() {
            Ok(key) => static_files::respond_to(&self.state, &key, request.method(), request.headers()).await,
            Err(_) => Err(EdgeError::BadRequest("the path is not valid percent-encoded UTF-8".into())),
        };
        guard::cors_headers(response.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gets_and_heads_of_static_keys_take_the_fast_path() {
        assert_eq!(static_key(&Method::GET, "/static/a/b.m3u8"), Some("a/b.m3u8"));
        assert_eq!(static_key(&Method::HEAD, "/static/%2e%2e/x"), Some("%2e%2e/x"));
        assert_eq!(static_key(&Method::GET, "/static/"), None);
        assert_eq!(static_key(&Method::GET, "/static"), None);
        assert_eq!(static_key(&Method::OPTIONS, "/static/a"), None);
        assert_eq!(static_key(&Method::POST, "/static/a"), None);
        assert_eq!(static_key(&Method::GET, "/vod/a.mp4/master.m3u8"), None);
        assert_eq!(static_key(&Method::GET, "/staticx/a"), None);
    }
}
