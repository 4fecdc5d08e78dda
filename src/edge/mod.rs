//! The edge tier, estuary's hot path: everything players and the CDN fetch (GET/HEAD), plus `/healthz` for load balancers.
//!
//! Invariant: handlers only read; they never wait on a lock held by the API
//! or ingest tiers for longer than a pointer swap.

mod error;
mod fast;
mod guard;
pub mod live;
pub mod respond;
mod static_files;
mod vod;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, options};
use http::StatusCode;
use http::header::CACHE_CONTROL;
use tower::util::MapResponseLayer;

pub use error::EdgeError;
pub use fast::EdgeService;
pub use guard::OriginLock;

use crate::cache::SegmentCache;
use crate::config::StaticFilesConfig;
use crate::live::LiveRegistry;
use crate::server::Health;
use crate::storage::Storage;
use crate::telemetry::{AccessLog, access};
use crate::vod::Vod;

/// What edge handlers share. Cloned for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct EdgeState(Arc<EdgeShared>);

impl EdgeState {
    pub fn new(shared: EdgeShared) -> Self {
        EdgeState(Arc::new(shared))
    }
}

impl std::ops::Deref for EdgeState {
    type Target = EdgeShared;

    fn deref(&self) -> &EdgeShared {
        &self.0
    }
}

pub struct EdgeShared {
    pub storage: Arc<dyn Storage>,
    pub cache: SegmentCache,
    pub static_files: StaticFilesConfig,
    pub vod: Vod,
    pub live: LiveRegistry,
    pub blocking: Arc<live::BlockingStats>,
    /// `edge.public_url`, for absolute URLs in manifests.
    pub public_url: Arc<str>,
    pub health: Health,
}

/// The edge tier's service: `GET`/`HEAD` of static and VOD objects on the fast path, the rest through
/// [`edge_router`].
pub fn edge_service(state: EdgeState, origin_lock: Option<OriginLock>, access_log: AccessLog) -> EdgeService {
    let router = edge_router(state.clone(), origin_lock.clone(), access_log.clone());
    EdgeService::new(state, origin_lock, access_log, router)
}

/// The edge router: routes, then CORS, the origin lock (when configured) and the access log. `GET` and
/// `HEAD` under `/static/` and `/vod/` never reach it ([`EdgeService`] serves them); their preflights do.
fn edge_router(state: EdgeState, origin_lock: Option<OriginLock>, access_log: AccessLog) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz).options(guard::preflight))
        .route("/static/{*key}", options(guard::preflight))
        .route("/vod/{*path}", options(guard::preflight))
        .route("/live/{channel}/{*rest}", get(live::serve).options(guard::preflight))
        .route("/time", get(live::time).options(guard::preflight))
        .fallback(not_found)
        .with_state(state)
        .layer(MapResponseLayer::new(guard::cors_headers));
    let router = match origin_lock {
        Some(lock) => router.layer(from_fn_with_state(lock, guard::origin_lock)),
        None => router,
    };
    router.layer(from_fn_with_state(access_log, access::record))
}

/// Load-balancer probe: 200 while this pod should get traffic, 503 once it is draining.
async fn healthz(State(state): State<EdgeState>) -> Response {
    let (status, body) = if state.health.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    };
    (status, [(CACHE_CONTROL, "no-store")], body).into_response()
}

/// Unknown paths: 404, except CORS preflights, which any path answers.
async fn not_found(method: http::Method, headers: http::HeaderMap) -> Response {
    if method == http::Method::OPTIONS {
        return guard::preflight(headers).await;
    }
    EdgeError::NotFound.into_response()
}
