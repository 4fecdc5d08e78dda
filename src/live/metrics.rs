//! Live's metrics, rendered where they are counted: blocking reloads, write-through, the cluster's
//! control store and following, segment reads, dropped segments, and each channel's gauges and
//! publication delays. The counters behind them stay private to live's modules; the API asks for
//! this text (and `write_through` for its JSON stats) and reads no static of live's.

use std::fmt::Write as _;

use super::LiveRegistry;
use super::blocking::BlockingStats;
use super::model::{ChannelSnapshot, PublishLatency};
use crate::telemetry::metrics::{write_counters, write_sample, write_value};

/// Live segments written through to storage, retried, and abandoned, since start.
#[derive(Debug, Clone, Copy)]
pub struct WriteThrough {
    pub stored: u64,
    pub retries: u64,
    pub abandoned: u64,
}

/// [`WriteThrough`] now.
pub fn write_through() -> WriteThrough {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let w = &super::actor::WRITE_THROUGH;
    WriteThrough { stored: load(&w.stored), retries: load(&w.retries), abandoned: load(&w.abandoned) }
}

/// Appends live's metrics: blocking reloads, write-through, the cluster's control store and
/// following, segment reads, drops, and per-channel gauges and publication delays.
pub fn render(out: &mut String, live: &LiveRegistry, blocking: &BlockingStats) {
    let b = blocking;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let written = write_through();
    let channels = live.list();
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
            written.stored as f64,
        ),
        (
            "estuary_live_write_retries_total",
            "counter",
            "Live write-through attempts that failed and are tried again",
            written.retries as f64,
        ),
        (
            "estuary_live_timeline_writes_refused_total",
            "counter",
            "Timeline writes refused because the stored timeline got further (another process writes the channel)",
            load(&super::actor::STALE_TIMELINES),
        ),
        (
            "estuary_live_write_abandoned_total",
            "counter",
            "Live segments that left the DVR window before storage took them",
            written.abandoned as f64,
        ),
    ];
    let (redis, follow) = (crate::cluster::control_store_totals(), &super::follower::FOLLOW);
    let owned = channels.iter().filter(|h| h.is_owner()).count() as f64;
    let secs = |micros: &std::sync::atomic::AtomicU64| load(micros) / 1e6;
    let cluster = [
        ("estuary_cluster_redis_calls_total", "counter", "Calls to the control store (Redis)", redis.calls as f64),
        (
            "estuary_cluster_redis_errors_total",
            "counter",
            "Control-store calls that failed or timed out",
            redis.errors as f64,
        ),
        (
            "estuary_cluster_redis_seconds_total",
            "counter",
            "Time spent in control-store calls",
            redis.micros as f64 / 1e6,
        ),
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
    let bounds = super::follower::DELAY_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]);
    for (bound, count) in bounds.zip(&follow.buckets) {
        cumulative += load(count);
        write_value(out, &format!("{delay}_bucket"), &[("le", &bound)], cumulative);
    }
    write_value(out, &format!("{delay}_sum"), &[], secs(&follow.delay_micros));
    write_value(out, &format!("{delay}_count"), &[], load(&follow.delays));
    let fetches = &super::owner::FETCHES;
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
        super::channel::DropReason::ALL.map(|r| (r.as_str(), super::actor::dropped(r) as f64)),
    );
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
            let last = s.last_upload.filter(|_| s.status == super::model::Status::Live)?;
            Some(now.duration_since(last).unwrap_or_default().as_secs_f64())
        },
    );
    each(
        out,
        "estuary_live_edge_age_seconds",
        "How far each live channel's newest media (segment or part) is behind the clock",
        &|s| s.live_edge_age_ms(now).map(|ms| ms as f64 / 1000.0),
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
