//! Prometheus metrics: request counts, latency and bytes by tier, route template and object kind,
//! requests in flight per tier, plus text for gauges owned elsewhere.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Latency buckets in seconds: sub-millisecond cache hits up to blocking playlist reloads.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Request metrics. Labels are the tier, the route template (never the raw URI) and the status.
/// Cloned for every request (middleware state), so it is one `Arc`.
///
/// Each thread counts into its own shard, which only that thread writes: a request costs a few
/// plain loads and stores on cache lines no other core touches, where shared counters would move
/// their lines between cores on every request. A scrape sums the shards.
#[derive(Clone)]
pub struct Metrics(Arc<Shards>);

#[derive(Default)]
struct Shards {
    /// Tells this instance's shards apart in each thread's table.
    id: u64,
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// One thread's figures, one series per (tier, route, kind, status), and requests started and
/// finished per tier. Only the owning thread adds series and counts; a scrape reads.
#[derive(Default)]
struct Shard {
    series: Mutex<Vec<(SeriesKey, Arc<Series>)>>,
    flows: Mutex<Vec<(&'static str, Arc<Flow>)>>,
}

/// Requests of one tier that one thread started and finished: a scrape's in-flight figure is the
/// difference of the sums (a request may finish on another thread than it started).
#[derive(Default)]
struct Flow {
    started: AtomicU64,
    finished: AtomicU64,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    route: Box<str>,
    tier: &'static str,
    kind: &'static str,
    status: u16,
}

/// What a request asked for, from its path's file name: what latency is compared within.
pub fn object_kind(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or_default();
    let Some((stem, extension)) = name.rsplit_once('.') else { return "other" };
    let mut buf = [0u8; 8];
    match estuary_http::content_type::lower_ascii(extension, &mut buf).unwrap_or_default() {
        "m3u8" => "playlist",
        "mpd" => "manifest",
        "mp4" | "m4s" if stem.starts_with("init") => "init",
        // `{msn}.{part}.m4s`: an LL-HLS part.
        "m4s" if stem.contains('.') => "part",
        "m4s" | "ts" | "cmfv" | "cmfa" | "aac" | "m4a" | "m4v" | "mp4" => "segment",
        "vtt" | "webvtt" => "subtitles",
        _ => "other",
    }
}

#[derive(Default)]
struct Series {
    requests: AtomicU64,
    bytes: AtomicU64,
    nanos: AtomicU64,
    /// Requests per latency bucket (not cumulative); slower than the last bucket: the rest.
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

/// Adds to a counter only its thread writes: a load and a store, no locked instruction.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Metrics(Arc::new(Shards { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), ..Shards::default() }))
    }

    /// A request of `tier` begins (the in-flight gauge); [`Metrics::finished`] when it is answered.
    pub fn started(&self, tier: &'static str) {
        self.with_flow(tier, |flow| bump(&flow.started, 1));
    }

    pub fn finished(&self, tier: &'static str) {
        self.with_flow(tier, |flow| bump(&flow.finished, 1));
    }

    fn with_flow(&self, tier: &'static str, count: impl FnOnce(&Flow)) {
        SERIES.with_borrow_mut(|mine| {
            if let Some(flow) = mine.flows.get(&(self.0.id, tier)) {
                return count(flow);
            }
            let flow = Arc::<Flow>::default();
            let shard = shard_of(&mut mine.shards, &self.0);
            shard.flows.lock().unwrap_or_else(PoisonError::into_inner).push((tier, flow.clone()));
            count(&flow);
            mine.flows.insert((self.0.id, tier), flow);
        });
    }

    pub fn observe(&self, tier: &'static str, route: &str, kind: &'static str, status: u16, seconds: f64, bytes: u64) {
        SERIES.with_borrow_mut(|mine| {
            let by_route = mine.series.entry((self.0.id, tier, kind, status)).or_default();
            let series = match by_route.get(route) {
                Some(series) => series,
                None => {
                    let shard = shard_of(&mut mine.shards, &self.0);
                    let series = Arc::<Series>::default();
                    let key = SeriesKey { route: route.into(), tier, kind, status };
                    shard.series.lock().unwrap_or_else(PoisonError::into_inner).push((key, series.clone()));
                    by_route.entry(route.into()).or_insert(series)
                }
            };
            bump(&series.requests, 1);
            bump(&series.bytes, bytes);
            bump(&series.nanos, (seconds * 1e9) as u64);
            if let Some(bucket) = LATENCY_BUCKETS.iter().position(|&le| seconds <= le) {
                bump(&series.buckets[bucket], 1);
            }
        });
    }

    /// The request metrics in the text exposition format.
    pub fn render(&self) -> String {
        let mut requests: BTreeMap<SeriesKey, u64> = BTreeMap::new();
        let mut timing: BTreeMap<(Box<str>, &'static str, &'static str), Timing> = BTreeMap::new();
        let mut flows: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for shard in self.0.shards.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            for (tier, flow) in shard.flows.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                let f = flows.entry(tier).or_default();
                f.0 += flow.started.load(Ordering::Relaxed);
                f.1 += flow.finished.load(Ordering::Relaxed);
            }
            for (key, series) in shard.series.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                let count = series.requests.load(Ordering::Relaxed);
                *requests.entry(key.clone()).or_default() += count;
                let t = timing.entry((key.route.clone(), key.tier, key.kind)).or_default();
                t.count += count;
                t.bytes += series.bytes.load(Ordering::Relaxed);
                t.nanos += series.nanos.load(Ordering::Relaxed);
                for (sum, bucket) in t.buckets.iter_mut().zip(&series.buckets) {
                    *sum += bucket.load(Ordering::Relaxed);
                }
            }
        }
        let mut out = String::new();
        let in_flight = "estuary_http_requests_in_flight";
        head(&mut out, in_flight, "gauge", "Requests being answered, by tier (the autoscaler's signal)");
        for (tier, (started, finished)) in &flows {
            write_value(&mut out, in_flight, &[("tier", tier)], started.saturating_sub(*finished) as f64);
        }
        if requests.is_empty() {
            return out;
        }
        let requests_total = "estuary_http_requests_total";
        head(&mut out, requests_total, "counter", "HTTP requests by tier, route template, object kind and status");
        for (key, count) in &requests {
            let status = key.status.to_string();
            let labels = [("kind", key.kind), ("route", &*key.route), ("status", status.as_str()), ("tier", key.tier)];
            write_value(&mut out, requests_total, &labels, *count as f64);
        }
        let duration = "estuary_http_request_duration_seconds";
        head(&mut out, duration, "histogram", "Time to response headers, by tier, route template and object kind");
        for ((route, tier, kind), t) in &timing {
            let mut cumulative = 0;
            for (le, n) in LATENCY_BUCKETS.iter().zip(&t.buckets) {
                cumulative += n;
                let le = le.to_string();
                let labels = [("kind", *kind), ("route", &**route), ("tier", *tier), ("le", le.as_str())];
                write_value(&mut out, &format!("{duration}_bucket"), &labels, cumulative as f64);
            }
            let labels = [("kind", *kind), ("route", &**route), ("tier", *tier), ("le", "+Inf")];
            write_value(&mut out, &format!("{duration}_bucket"), &labels, t.count as f64);
            let labels = [("kind", *kind), ("route", &**route), ("tier", *tier)];
            write_value(&mut out, &format!("{duration}_sum"), &labels, t.nanos as f64 / 1e9);
            write_value(&mut out, &format!("{duration}_count"), &labels, t.count as f64);
        }
        let bytes_total = "estuary_http_response_bytes_total";
        head(&mut out, bytes_total, "counter", "Response body bytes by tier, route template and object kind");
        for ((route, tier, kind), t) in &timing {
            write_value(&mut out, bytes_total, &[("kind", kind), ("route", route), ("tier", tier)], t.bytes as f64);
        }
        out
    }
}

thread_local! {
    static SERIES: RefCell<ThreadSeries> = Default::default();
}

/// What one thread has counted into: its shard per metrics instance, its series found by
/// (instance, tier, kind, status), then route, and its flows by (instance, tier).
#[derive(Default)]
struct ThreadSeries {
    shards: HashMap<u64, Arc<Shard>>,
    series: HashMap<(u64, &'static str, &'static str, u16), ByRoute>,
    flows: HashMap<(u64, &'static str), Arc<Flow>>,
}

/// This thread's shard of the instance `shards` (made and registered on first use).
fn shard_of(mine: &mut HashMap<u64, Arc<Shard>>, shards: &Shards) -> Arc<Shard> {
    mine.entry(shards.id)
        .or_insert_with(|| {
            let shard = Arc::<Shard>::default();
            shards.shards.lock().unwrap_or_else(PoisonError::into_inner).push(shard.clone());
            shard
        })
        .clone()
}

type ByRoute = HashMap<Box<str>, Arc<Series>>;

#[derive(Default)]
struct Timing {
    count: u64,
    bytes: u64,
    nanos: u64,
    buckets: [u64; LATENCY_BUCKETS.len()],
}

/// Appends a metric's HELP and TYPE lines.
pub fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends one gauge or counter sample in the text format, with its HELP and TYPE lines.
pub fn write_sample(out: &mut String, name: &str, kind: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    head(out, name, kind, help);
    write_value(out, name, labels, value);
}

/// Appends one more sample of a metric whose HELP and TYPE were already written.
/// A counter with one sample per value of `label`.
pub fn write_counters<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, f64)>,
) {
    head(out, name, "counter", help);
    for (value, count) in values {
        write_value(out, name, &[(label, value)], count);
    }
}

pub fn write_value(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let _ = write!(out, "{k}=\"{v}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_by_route_template() {
        let m = Metrics::new();
        m.observe("edge", "/static/{*key}", "other", 200, 0.002, 1000);
        m.observe("edge", "/static/{*key}", "other", 404, 0.001, 0);
        let text = m.render();
        assert!(
            text.contains(
                r#"estuary_http_requests_total{kind="other",route="/static/{*key}",status="200",tier="edge"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"estuary_http_response_bytes_total{kind="other",route="/static/{*key}",tier="edge"} 1000"#)
        );
        assert!(text.contains("# TYPE estuary_http_request_duration_seconds histogram\n"), "{text}");
        let mut extra = String::new();
        write_sample(&mut extra, "estuary_cache_hits_total", "counter", "Cache hits", &[], 3.0);
        write_value(&mut extra, "estuary_x", &[("a", "q\"")], 1.0);
        assert_eq!(
            extra,
            "# HELP estuary_cache_hits_total Cache hits\n# TYPE estuary_cache_hits_total counter\nestuary_cache_hits_total 3\nestuary_x{a=\"q\\\"\"} 1\n"
        );
    }

    #[test]
    fn threads_count_apart_and_a_scrape_sums_them() {
        let m = Metrics::new();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        m.observe("edge", "/vod/{*path}", "segment", 200, 0.0002 * f64::from(i + 1), 100);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        m.observe("edge", "/vod/{*path}", "segment", 200, 45.0, 0);
        let text = m.render();
        let value = |line: &str| -> f64 {
            let found = text.lines().find_map(|l| l.strip_prefix(line)).unwrap_or_else(|| panic!("{line}\n{text}"));
            found.trim().parse().unwrap()
        };
        assert_eq!(
            value(r#"estuary_http_requests_total{kind="segment",route="/vod/{*path}",status="200",tier="edge"}"#),
            1001.0
        );
        assert_eq!(
            value(r#"estuary_http_response_bytes_total{kind="segment",route="/vod/{*path}",tier="edge"}"#),
            100_000.0
        );
        // 0.2 and 0.4 ms are under 0.5 ms; 0.6 and 0.8 ms under 1 ms; 45 s only in +Inf.
        let bucket = |le: &str| {
            value(&format!(
                r#"estuary_http_request_duration_seconds_bucket{{kind="segment",route="/vod/{{*path}}",tier="edge",le="{le}"}}"#
            ))
        };
        assert_eq!((bucket("0.0005"), bucket("0.001"), bucket("30"), bucket("+Inf")), (500.0, 1000.0, 1000.0, 1001.0));
        assert_eq!(
            value(r#"estuary_http_request_duration_seconds_count{kind="segment",route="/vod/{*path}",tier="edge"}"#),
            1001.0
        );
        let sum =
            value(r#"estuary_http_request_duration_seconds_sum{kind="segment",route="/vod/{*path}",tier="edge"}"#);
        assert!((sum - (45.0 + 250.0 * 0.0002 * 10.0)).abs() < 1e-6, "{sum}");
        // Another instance counts apart.
        assert!(!Metrics::new().render().contains("estuary_http_requests_total"));
    }

    #[test]
    fn requests_in_flight_are_started_less_finished_across_threads() {
        let m = Metrics::new();
        m.started("edge");
        m.started("edge");
        let other = m.clone();
        std::thread::spawn(move || other.finished("edge")).join().unwrap();
        m.started("api");
        let text = m.render();
        assert!(text.contains("estuary_http_requests_in_flight{tier=\"edge\"} 1\n"), "{text}");
        assert!(text.contains("estuary_http_requests_in_flight{tier=\"api\"} 1\n"), "{text}");
    }

    #[test]
    fn object_kinds_come_from_the_file_name() {
        for (path, kind) in [
            ("/live/news/v0.m3u8", "playlist"),
            ("/vod/a.mp4/manifest.mpd", "manifest"),
            ("/vod/a.mp4/v0/init.mp4", "init"),
            ("/live/news/v0/17/init.mp4", "init"),
            ("/vod/a.mp4/v0/3.m4s", "segment"),
            ("/live/news/v0/17/42.3.m4s", "part"),
            ("/vod/a.mp4/ts/v0/1.TS", "segment"),
            ("/vod/a.json/s0/1.vtt", "subtitles"),
            ("/healthz", "other"),
            ("/api/v1/channels", "other"),
        ] {
            assert_eq!(object_kind(path), kind, "{path}");
        }
    }
}
