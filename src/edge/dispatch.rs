//! The edge's one dispatcher: every request is routed by the URL grammar ([`EdgeRoute`]) straight to
//! its handler, with the origin lock, percent-decoding, CORS, the access log and metrics applied here
//! once for all routes.
//!
//! Why not axum's router: callgrind counted 34,000 instructions per cached playlist through it, about
//! 16,000 of them in its extractors, extension maps, boxed middleware and its clone of the service;
//! this path takes 24,000 (`docs/benchmarks.md`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use http::header::{ALLOW, CACHE_CONTROL};
use http::{HeaderValue, Method, Request, StatusCode};
use tower::Service;

use super::route::EdgeRoute;
use super::{EdgeError, EdgeState, OriginLock, guard, live, shortcut, static_files, vod};
use crate::http::forwarded::PeerAddr;
use crate::http::raw::{AnswerBody, RawHead, Shortcut};
use crate::storage::latency::timing_storage;
use crate::telemetry::AccessLog;
use crate::telemetry::access::{Client, Logged, StorageTime};

/// The edge tier's service. Cloned per connection: one `Arc`.
#[derive(Clone)]
pub struct EdgeService(Arc<Dispatcher>);

struct Dispatcher {
    state: EdgeState,
    lock: Option<OriginLock>,
    access: AccessLog,
}

impl EdgeService {
    pub fn new(state: EdgeState, lock: Option<OriginLock>, access: AccessLog) -> Self {
        EdgeService(Arc::new(Dispatcher { state, lock, access }))
    }
}

impl<B: Send + Sync + 'static> Service<Request<B>> for EdgeService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let edge = self.0.clone();
        Box::pin(async move {
            let start = Instant::now();
            let route = EdgeRoute::of(request.uri().path());
            let template = route.map_or("unmatched", |(route, _)| route.template());
            let generation = edge.state.cache.hot().generation();
            let metrics = &edge.access.metrics;
            metrics.started(edge.access.tier);
            let response = if edge.access.log {
                let (mut response, spent) = timing_storage(edge.serve(route, &request)).await;
                response.extensions_mut().insert(StorageTime(spent));
                guard::cors_headers(response)
            } else {
                guard::cors_headers(edge.serve(route, &request).await)
            };
            metrics.finished(edge.access.tier);
            // Offered before the request id is added: a hot answer's head is shared by every request.
            let mut response = shortcut::offer(response, &request, &edge.state, template, generation);
            let kind = crate::telemetry::object_kind(request.uri().path());
            let logged = edge.access.log.then(|| {
                let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
                let client = Client::of(request.headers(), peer);
                Logged { path: request.uri().path(), query: request.uri().query(), client }
            });
            edge.access.observe(request.method(), (template, kind), logged, start, &mut response);
            Ok(response)
        })
    }
}

impl Shortcut for EdgeService {
    fn answer(&self, request: &RawHead<'_, '_>, head: &mut Vec<u8>, body: &mut Vec<u8>) -> Option<AnswerBody> {
        let edge = &self.0;
        shortcut::answer(&edge.state, edge.lock.as_ref(), &edge.access, request, (head, body))
    }
}

impl Dispatcher {
    async fn serve<B>(&self, route: Option<(EdgeRoute, &str)>, request: &Request<B>) -> Response {
        let (method, headers) = (request.method(), request.headers());
        // `/healthz` stays open for load-balancer probes.
        if let Some(lock) = &self.lock
            && route.is_none_or(|(route, _)| route != EdgeRoute::Health)
            && !lock.admits(headers)
        {
            return EdgeError::Forbidden.into_response();
        }
        if method == Method::OPTIONS {
            return guard::preflight(headers, route.is_some_and(|(route, _)| route == EdgeRoute::Key));
        }
        let Some((route, raw)) = route else {
            return EdgeError::NotFound.into_response();
        };
        // The one request with a body: a ClearKey licence request to `/keys/`.
        let licence = method == Method::POST && route == EdgeRoute::Key;
        if method != Method::GET && method != Method::HEAD && !licence {
            let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return response;
        }
        let path = match percent_encoding::percent_decode_str(raw).decode_utf8() {
            Ok(path) => path,
            Err(_) => {
                return EdgeError::BadRequest("the path is not valid percent-encoded UTF-8".into()).into_response();
            }
        };
        let state = &self.state;
        let response = match route {
            EdgeRoute::Static => static_files::serve(state, &path, method, headers).await,
            EdgeRoute::Vod => vod::serve(state, &path, method, headers).await,
            EdgeRoute::Live => live::serve(state, &path, request.uri().query().unwrap_or(""), method, headers).await,
            EdgeRoute::Time => Ok(live::time()),
            EdgeRoute::Health => Ok(healthz(state)),
            EdgeRoute::Key => {
                let body = request.extensions().get::<crate::http::raw::SmallBody>().map(|b| &b.0);
                super::keys::serve(state, &path, method, body).await
            }
        };
        response.into_response()
    }
}

/// Load-balancer probe: 200 while this pod should get traffic, 503 once it is draining.
fn healthz(state: &EdgeState) -> Response {
    let (status, body) = if state.health.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    };
    (status, [(CACHE_CONTROL, "no-store")], body).into_response()
}
