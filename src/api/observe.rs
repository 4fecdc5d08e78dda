//! Probes, metrics, stats and purge: what an operator (or Kubernetes, or Prometheus) asks of a running estuary.

use std::fmt::Write as _;

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
use crate::live::WRITE_THROUGH;
use crate::live::channel::PublishLatency;
use crate::live::model::ChannelSnapshot;
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
    live_metrics(&state, &mut out);
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

/// A counter with one sample per value of `label`.
fn write_counters<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, count) in values {
        write_value(out, name, &[(label, value)], count);
    }
}

/// Blocking reloads and per-channel media sequence numbers.
fn live_metrics(state: &ApiState, out: &mut String) {
    let b = &state.blocking;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let samples = [
        ("estuary_live_blocked_requests", "gauge", "Playlist requests held for _HLS_msn right now", load(&b.waiting)),
        (
            "estuary_live_blocked_released_total",
            "counter",
            "Held playlist requests answered when their segment arrived",
            load(&b.released),
        ),
        ("estuary_live_blocked_timeouts_total", "counter", "Held playlist requests answered 503", load(&b.timed_out)),
        (
            "estuary_live_segments_stored_total",
            "counter",
            "Live segments written through to storage",
            load(&WRITE_THROUGH.stored),
        ),
        (
            "estuary_live_write_retries_total",
            "counter",
            "Live write-through attempts that failed and are tried again",
            load(&WRITE_THROUGH.retries),
        ),
        (
            "estuary_live_timeline_writes_refused_total",
            "counter",
            "Timeline writes refused because the stored timeline got further (another process writes the channel)",
            load(&crate::live::STALE_TIMELINES),
        ),
        (
            "estuary_live_write_abandoned_total",
            "counter",
            "Live segments that left the DVR window before storage took them",
            load(&WRITE_THROUGH.abandoned),
        ),
    ];
    let (redis, follow) = (&crate::cluster::REDIS, &crate::live::follower::FOLLOW);
    let owned = state.live.list().iter().filter(|h| h.is_owner()).count() as f64;
    let secs = |micros: &std::sync::atomic::AtomicU64| load(micros) / 1e6;
    let cluster = [
        ("estuary_cluster_redis_calls_total", "counter", "Calls to the control store (Redis)", load(&redis.calls)),
        (
            "estuary_cluster_redis_errors_total",
            "counter",
            "Control-store calls that failed or timed out",
            load(&redis.errors),
        ),
        ("estuary_cluster_redis_seconds_total", "counter", "Time spent in control-store calls", secs(&redis.micros)),
        ("estuary_live_channels_owned", "gauge", "Live channels this pod writes (holds the lease of)", owned),
        (
            "estuary_live_channels_followed",
            "gauge",
            "Live channels this pod follows from the control store",
            load(&follow.followed),
        ),
        ("estuary_cluster_follow_delay_max_seconds", "gauge", "Longest follow delay", secs(&follow.max_delay_micros)),
        (
            "estuary_cluster_timeline_full_reads_total",
            "counter",
            "Shared timelines read whole (first follow, missed announcements)",
            load(&follow.full_reads),
        ),
        (
            "estuary_cluster_timeline_tail_reads_total",
            "counter",
            "Shared timelines read as their newest slots only, on an announcement",
            load(&follow.tail_reads),
        ),
    ];
    for (name, kind, help, value) in samples.into_iter().chain(cluster) {
        write_sample(out, name, kind, help, &[], value);
    }
    // From an owner taking an upload to this pod publishing the playlist with it.
    let delay = "estuary_cluster_follow_delay_seconds";
    let _ =
        writeln!(out, "# HELP {delay} From an owner's upload to this pod's playlist with it\n# TYPE {delay} histogram");
    let mut cumulative = 0.0;
    let bounds = crate::live::follower::DELAY_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]);
    for (bound, count) in bounds.zip(&follow.buckets) {
        cumulative += load(count);
        write_value(out, &format!("{delay}_bucket"), &[("le", &bound)], cumulative);
    }
    write_value(out, &format!("{delay}_sum"), &[], secs(&follow.delay_micros));
    write_value(out, &format!("{delay}_count"), &[], load(&follow.delays));
    let fetches = &crate::live::owner::FETCHES;
    let by_source = [("owner", &fetches.owner), ("owner_failed", &fetches.owner_failed), ("storage", &fetches.storage)];
    write_counters(
        out,
        "estuary_live_segment_reads_total",
        "Live segments read on a cache miss: from the owner's memory (pod to pod), a failed try of it, or storage",
        "source",
        by_source.map(|(source, count)| (source, load(count))),
    );
    write_counters(
        out,
        "estuary_live_segments_dropped_total",
        "Pushed live segments never committed, by reason",
        "reason",
        crate::live::channel::DropReason::ALL.map(|r| (r.as_str(), crate::live::dropped(r) as f64)),
    );
    let channels = state.live.list();
    write_sample(out, "estuary_live_channels", "gauge", "Live channels", &[], channels.len() as f64);
    let snaps: Vec<_> = channels.iter().map(|h| h.snapshot()).collect();
    // A gauge per channel.
    let each = |out: &mut String, name: &str, help: &str, value: &dyn Fn(&ChannelSnapshot) -> Option<f64>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for snap in &snaps {
            if let Some(v) = value(snap) {
                write_value(out, name, &[("channel", snap.id.as_str())], v);
            }
        }
    };
    each(out, "estuary_live_media_sequence", "Newest media sequence number per channel", &|s| {
        Some(s.last_msn().map_or(-1.0, |m| m as f64))
    });
    let now = std::time::SystemTime::now();
    each(
        out,
        "estuary_live_seconds_since_upload",
        "Seconds since each live channel's encoder last uploaded (only channels that are live)",
        &|s| {
            let last = s.last_upload.filter(|_| s.status == crate::live::model::Status::Live)?;
            Some(now.duration_since(last).unwrap_or_default().as_secs_f64())
        },
    );
    each(
        out,
        "estuary_live_edge_age_seconds",
        "How far each live channel's newest media (segment or part) is behind the clock",
        &|s| super::channels::live_edge_age(s, now).map(|ms| ms as f64 / 1000.0),
    );
    // Summaries of the newest 1,024 publications per channel.
    write_delays(
        out,
        "estuary_live_segment_publish_seconds",
        "From a segment's upload to the playlist listing it, newest 1,024",
        &snaps,
        |s| &s.publish_latency,
    );
    write_delays(
        out,
        "estuary_live_part_publish_seconds",
        "From a chunk's arrival at ingest to its part's publication, newest 1,024",
        &snaps,
        |s| &s.part_publish_latency,
    );
}

/// One delay's median, 99th percentile and maximum per channel, as gauges with a `quantile` label.
fn write_delays(
    out: &mut String,
    name: &str,
    help: &str,
    snaps: &[std::sync::Arc<ChannelSnapshot>],
    latency: fn(&ChannelSnapshot) -> &PublishLatency,
) {
    // A summary of quantiles only: over a window of publications, so no monotonic count or sum.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
    for snap in snaps.iter().filter(|s| latency(s).samples > 0) {
        let l = latency(snap);
        for (quantile, ms) in [("0.5", l.median_ms), ("0.99", l.p99_ms), ("1", l.max_ms)] {
            write_value(out, name, &[("channel", snap.id.as_str()), ("quantile", quantile)], ms / 1000.0);
        }
    }
}

/// `GET /api/v1/stats`: everything above, as JSON.
pub(super) async fn stats(State(state): State<ApiState>) -> Response {
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
            "segments_stored": WRITE_THROUGH.stored.load(std::sync::atomic::Ordering::Relaxed),
            "write_retries": WRITE_THROUGH.retries.load(std::sync::atomic::Ordering::Relaxed),
            "write_abandoned": WRITE_THROUGH.abandoned.load(std::sync::atomic::Ordering::Relaxed),
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
