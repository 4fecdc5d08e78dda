//! Probes, metrics, stats and purge: what an operator (or Kubernetes, or Prometheus) asks of a running estuary.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState};
use crate::http::content_type;
use crate::telemetry::metrics::{write_sample, write_value};

/// Liveness: the process answers.
pub(super) async fn healthz() -> Response {
    (StatusCode::OK, [(CACHE_CONTROL, "no-store")], "ok\n").into_response()
}

/// Readiness: started and not shutting down. Storage health does not enter into it (see `Health`).
pub(super) async fn readyz(State(state): State<ApiState>) -> Response {
    let (status, body) = match (state.health.is_ready(), state.health.is_draining()) {
        (true, _) => (StatusCode::OK, "ready\n"),
        (false, true) => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    };
    (status, [(CACHE_CONTROL, "no-store")], body).into_response()
}

/// Prometheus text exposition: request metrics plus cache and storage figures.
pub(super) async fn metrics(State(state): State<ApiState>) -> Response {
    let mut out = state.metrics.render();
    let cache = state.cache.stats().await;
    let counters = [
        ("estuary_cache_hits_total", "Segment cache hits", cache.hits),
        ("estuary_cache_hot_answers_total", "Of the hits, those answered with a pre-rendered head", cache.hot_hits),
        ("estuary_cache_misses_total", "Segment cache misses that loaded the object", cache.misses),
        ("estuary_cache_coalesced_total", "Requests that waited for another request's load", cache.coalesced),
        ("estuary_cache_bypassed_total", "Requests for objects too large to cache", cache.bypassed),
        ("estuary_cache_load_errors_total", "Loads that failed", cache.load_errors),
        ("estuary_cache_evictions_total", "Entries evicted for space", cache.evictions),
    ];
    for (name, help, value) in counters {
        write_sample(&mut out, name, "counter", help, &[], value as f64);
    }
    write_sample(&mut out, "estuary_cache_bytes", "gauge", "Bytes held by the segment cache", &[], cache.bytes as f64);
    write_sample(
        &mut out,
        "estuary_cache_capacity_bytes",
        "gauge",
        "Capacity of the segment cache",
        &[],
        cache.capacity_bytes as f64,
    );
    write_sample(&mut out, "estuary_cache_entries", "gauge", "Objects in the segment cache", &[], cache.entries as f64);

    let s = state.storage.stats();
    let backend = [("backend", s.backend)];
    let storage = [
        ("estuary_storage_reads_total", "Object reads (whole or ranged) sent to storage", s.reads),
        ("estuary_storage_read_bytes_total", "Bytes read from storage", s.read_bytes),
        ("estuary_storage_heads_total", "Metadata requests sent to storage", s.heads),
        ("estuary_storage_writes_total", "Objects written to storage", s.writes),
        ("estuary_storage_not_found_total", "Storage lookups of missing objects", s.not_found),
        ("estuary_storage_errors_total", "Storage failures (I/O, unavailable, timeout)", s.errors),
    ];
    for (name, help, value) in storage {
        write_sample(&mut out, name, "counter", help, &backend, value as f64);
    }
    let duration = "estuary_storage_request_duration_seconds";
    crate::telemetry::metrics::head(&mut out, duration, "histogram", "Storage calls by operation, failures included");
    for f in state.storage.counters().latency.figures() {
        let bounds = crate::storage::latency::BUCKETS.iter().map(f64::to_string).chain(["+Inf".to_owned()]);
        for (le, n) in bounds.zip(f.cumulative.iter().chain([&f.count])) {
            let labels = [("backend", s.backend), ("operation", f.operation.as_str()), ("le", le.as_str())];
            write_value(&mut out, &format!("{duration}_bucket"), &labels, *n as f64);
        }
        let labels = [("backend", s.backend), ("operation", f.operation.as_str())];
        write_value(&mut out, &format!("{duration}_sum"), &labels, f.seconds);
        write_value(&mut out, &format!("{duration}_count"), &labels, f.count as f64);
    }
    write_sample(
        &mut out,
        "estuary_storage_healthy",
        "gauge",
        "1 when the last storage operation succeeded",
        &backend,
        f64::from(u8::from(s.healthy)),
    );
    let open = state.breaker.state() != crate::storage::breaker::BreakerState::Closed;
    write_sample(
        &mut out,
        "estuary_storage_circuit_open",
        "gauge",
        "1 while storage calls fail fast",
        &backend,
        f64::from(u8::from(open)),
    );
    let stale = [
        (
            "estuary_cache_stale_served_total",
            "Expired objects served because storage failed to reload them",
            cache.stale_served,
        ),
        ("estuary_cache_refreshed_total", "Expired objects reloaded from storage", cache.refreshed),
    ];
    for (name, help, value) in stale {
        write_sample(&mut out, name, "counter", help, &[], value as f64);
    }
    crate::live::metrics::render(&mut out, &state.live, &state.blocking);
    crate::keys::metrics::render(&mut out);
    write_sample(
        &mut out,
        "estuary_ready",
        "gauge",
        "1 while this process accepts traffic",
        &[],
        f64::from(u8::from(state.health.is_ready())),
    );
    crate::telemetry::connections::render(&mut out);
    let uptime = std::time::Duration::from_secs_f64(state.health.uptime_seconds());
    let started = std::time::SystemTime::now().checked_sub(uptime).unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    crate::telemetry::process::render(&mut out, started);
    write_sample(
        &mut out,
        "estuary_uptime_seconds",
        "gauge",
        "Seconds since start",
        &[],
        state.health.uptime_seconds().floor(),
    );
    (StatusCode::OK, [(CONTENT_TYPE, content_type::PROMETHEUS_TEXT), (CACHE_CONTROL, "no-store")], out).into_response()
}

/// `GET /api/v1/stats`: everything above, as JSON.
pub(super) async fn stats(State(state): State<ApiState>) -> Response {
    let write_through = crate::live::metrics::write_through();
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.health.uptime_seconds().floor(),
        "ready": state.health.is_ready(),
        "cache": state.cache.stats().await,
        "storage": state.storage.stats(),
        "storage_circuit": state.breaker.state(),
        "live": {
            "channels": state.live.list().len(),
            "blocked_requests": state.blocking.waiting.load(std::sync::atomic::Ordering::Relaxed),
            "blocked_released": state.blocking.released.load(std::sync::atomic::Ordering::Relaxed),
            "blocked_timeouts": state.blocking.timed_out.load(std::sync::atomic::Ordering::Relaxed),
            "segments_stored": write_through.stored,
            "write_retries": write_through.retries,
            "write_abandoned": write_through.abandoned,
        },
    });
    ([(CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PurgeRequest {
    /// Drop entries whose cache path starts with this (`static/sample/hls/`).
    prefix: Option<String>,
    /// Drop everything.
    #[serde(default)]
    all: bool,
}

/// `POST /api/v1/cache/purge` with `{"prefix": "..."}` or `{"all": true}`.
pub(super) async fn purge(
    State(state): State<ApiState>,
    body: Result<Json<PurgeRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let prefix = match (req.prefix, req.all) {
        (Some(_), true) => return Err(ApiError::BadRequest("give either \"prefix\" or \"all\", not both".into())),
        (None, false) => return Err(ApiError::BadRequest("give \"prefix\" or \"all\": true".into())),
        (Some(p), false) if p.is_empty() => return Err(ApiError::BadRequest("empty prefix; use \"all\": true".into())),
        (p, _) => p,
    };
    let purged = state.cache.purge(prefix.as_deref()).await;
    tracing::info!(prefix = prefix.as_deref().unwrap_or("*"), purged, "cache purged");
    Ok(Json(json!({ "purged": purged, "prefix": prefix })).into_response())
}
