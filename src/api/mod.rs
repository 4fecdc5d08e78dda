//! The API tier, estuary's control plane: health and readiness probes, Prometheus metrics, stats, cache purge and live channels.
//!
//! Invariant: nothing here is on the streaming path; the edge never waits on it.

mod auth;
mod channels;
mod error;
mod observe;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn_with_state, map_request_with_state};
use axum::routing::{get, post};

pub use error::ApiError;

use crate::cache::SegmentCache;
use crate::health::Health;
use crate::live::{ChannelSettings, LiveRegistry};
use crate::storage::metered::MeteredStorage;
use crate::telemetry::{AccessLog, Metrics, access};

/// What API handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub health: Health,
    pub cache: SegmentCache,
    pub storage: Arc<MeteredStorage>,
    pub metrics: Metrics,
    /// Bearer token for `/api/v1/*`; open when `None`.
    pub token: Option<Arc<str>>,
    pub live: LiveRegistry,
    pub channel_defaults: ChannelSettings,
    pub ingest: Endpoint,
    /// Where players reach the edge (the preview page's player).
    pub edge: Endpoint,
    pub blocking: Arc<crate::live::blocking::BlockingStats>,
    pub breaker: Arc<crate::storage::breaker::CircuitBreaker>,
    /// `Host` names `/api/v1/*` answers besides IP literals and `localhost` (`api.allowed_hosts`).
    pub allowed_hosts: Arc<[String]>,
    /// `[encryption]` has keys: channels can be made `"encrypted"`.
    pub encryption: bool,
}

/// Where clients reach a tier (encoders the ingest tier, players the edge), for the URLs the API
/// hands out: its public URL, else the API request's host on the tier's port.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub public_url: String,
    pub port: u16,
}

impl Endpoint {
    pub fn base(&self, headers: &http::HeaderMap) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_owned();
        }
        let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        format!("http://{host}:{}", self.port)
    }
}

/// The API router. Probes and `/metrics` are open; `/api/v1/*` needs a known `Host` and, when one is
/// configured, the bearer token.
pub fn api_router(state: ApiState, access_log: AccessLog) -> Router {
    let v1 = Router::new()
        .route("/stats", get(observe::stats))
        .route("/cache/purge", post(observe::purge))
        .route("/channels", get(channels::list).post(channels::create))
        .route("/channels/{id}", get(channels::show).delete(channels::delete))
        .route("/channels/{id}/stop", post(channels::stop))
        .route("/channels/{id}/start", post(channels::start))
        .route("/channels/{id}/rotate-key", post(channels::rotate_key))
        .route("/assets", get(ui::assets))
        .route_layer(map_request_with_state(state.clone(), auth::require_token))
        .route_layer(map_request_with_state(state.clone(), auth::require_known_host))
        .route_layer(axum::middleware::map_request(auth::refuse_cross_site));
    Router::new()
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        .route("/ui", get(ui::page))
        .route("/ui/{script}", get(ui::script))
        .nest("/api/v1", v1)
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(from_fn_with_state(access_log, access::record))
}
