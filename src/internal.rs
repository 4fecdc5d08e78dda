//! The internal tier, pod to pod in a cluster: `GET /internal/v1/live/{channel}/{object}` answers the
//! media segments this pod holds in memory for the channels it writes, so the pods following a
//! channel read its newest segments from here rather than storage (one request per object per pod).
//!
//! Invariant: only what the edge itself serves, and only from memory: anything else is 404 without a
//! storage read, so this listener can neither reach estuary's records nor multiply storage traffic.
//! It belongs on the pod network only (a NetworkPolicy admits estuary's own pods).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::http::content_type;
use crate::live::service::Live;
use crate::packaging::url::LivePath;
use crate::telemetry::{AccessLog, access};

pub fn internal_router(live: Live, access_log: AccessLog) -> Router {
    Router::new()
        .route("/internal/v1/live/{channel}/{*object}", get(segment))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(live)
        .layer(axum::middleware::from_fn_with_state(access_log, access::record))
}

async fn segment(State(live): State<Live>, Path((channel, object)): Path<(String, String)>) -> Response {
    let Some(path) = LivePath::parse(&object) else { return StatusCode::NOT_FOUND.into_response() };
    let Some(bytes) = live.held(&channel, path) else { return StatusCode::NOT_FOUND.into_response() };
    let media_type = match path {
        LivePath::Segment(_, _, _, container) => container.media_type(),
        _ => content_type::MEDIA_SEGMENT,
    };
    (StatusCode::OK, [(CONTENT_TYPE, media_type), (CACHE_CONTROL, "no-store")], bytes).into_response()
}
