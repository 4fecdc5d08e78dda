//! Prometheus metrics: request counts, latency and bytes by tier and route template, plus text for gauges owned elsewhere.

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

/// One thread's figures, one series per (tier, route, status). Only the owning thread adds series
/// and counts; a scrape reads.
#[derive(Default)]
struct Shard {
    series: Mutex<Vec<(SeriesKey, Arc<Series>)>>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    route: Box<str>,
    tier: &'static str,
    status: u16,
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

    pub fn observe(&self, tier: &'static str, route: &str, status: u16, seconds: f64, bytes: u64) {
        thread_local! {
            static SERIES: RefCell<ThreadSeries> = Default::default();
        }
        SERIES.with_borrow_mut(|mine| {
            let by_route = mine.series.entry((self.0.id, tier, status)).or_default();
            let series = match by_route.get(route) {
                Some(series) => series,
                None => {
                    let shard = mine.shards.entry(self.0.id).or_insert_with(|| {
                        let shard = Arc::<Shard>::default();
                        self.0.shards.lock().unwrap_or_else(PoisonError::into_inner).push(shard.clone());
                        shard
                    });
                    let series = Arc::<Series>::default();
                    let key = SeriesKey { route: route.into(), tier, status };
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
        let mut timing: BTreeMap<(Box<str>, &'static str), Timing> = BTreeMap::new();
        for shard in self.0.shards.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            for (key, series) in shard.series.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                let count = series.requests.load(Ordering::Relaxed);
                *requests.entry(key.clone()).or_default() += count;
                let t = timing.entry((key.route.clone(), key.tier)).or_default();
                t.count += count;
                t.bytes += series.bytes.load(Ordering::Relaxed);
                t.nanos += series.nanos.load(Ordering::Relaxed);
                for (sum, bucket) in t.buckets.iter_mut().zip(&series.buckets) {
                    *sum += bucket.load(Ordering::Relaxed);
                }
            }
        }
        let mut out = String::new();
        if requests.is_empty() {
            return out;
        }
        let requests_total = "estuary_http_requests_total";
        head(&mut out, requests_total, "counter", "HTTP requests by tier, route template and status");
        for (key, count) in &requests {
            let status = key.status.to_string();
            let labels = [("route", &*key.route), ("status", status.as_str()), ("tier", key.tier)];
            write_value(&mut out, requests_total, &labels, *count as f64);
        }
        let duration = "estuary_http_request_duration_seconds";
        head(&mut out, duration, "histogram", "Time to response headers");
        for ((route, tier), t) in &timing {
            let mut cumulative = 0;
            for (le, n) in LATENCY_BUCKETS.iter().zip(&t.buckets) {
                cumulative += n;
                let le = le.to_string();
                let labels = [("route", &**route), ("tier", *tier), ("le", le.as_str())];
                write_value(&mut out, &format!("{duration}_bucket"), &labels, cumulative as f64);
            }
            let labels = [("route", &**route), ("tier", *tier), ("le", "+Inf")];
            write_value(&mut out, &format!("{duration}_bucket"), &labels, t.count as f64);
            let labels = [("route", &**route), ("tier", *tier)];
            write_value(&mut out, &format!("{duration}_sum"), &labels, t.nanos as f64 / 1e9);
            write_value(&mut out, &format!("{duration}_count"), &labels, t.count as f64);
        }
        let bytes_total = "estuary_http_response_bytes_total";
        head(&mut out, bytes_total, "counter", "Response body bytes by tier and route template");
        for ((route, tier), t) in &timing {
            write_value(&mut out, bytes_total, &[("route", route), ("tier", tier)], t.bytes as f64);
        }
        out
    }
}

/// What one thread has counted into: its shard per metrics instance, and its series found by
/// (instance, tier, status), then route.
#[derive(Default)]
struct ThreadSeries {
    shards: HashMap<u64, Arc<Shard>>,
    series: HashMap<(u64, &'static str, u16), ByRoute>,
}

type ByRoute = HashMap<Box<str>, Arc<Series>>;

#[derive(Default)]
struct Timing {
    count: u64,
    bytes: u64,
    nanos: u64,
    buckets: [u64; LATENCY_BUCKETS.len()],
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends one gauge or counter sample in the text format, with its HELP and TYPE lines.
pub fn write_sample(out: &mut String, name: &str, kind: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    head(out, name, kind, help);
    write_value(out, name, labels, value);
}

/// Appends one more sample of a metric whose HELP and TYPE were already written.
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
        m.observe("edge", "/static/{*key}", 200, 0.002, 1000);
        m.observe("edge", "/static/{*key}", 404, 0.001, 0);
        let text = m.render();
        assert!(
            text.contains(r#"estuary_http_requests_total{route="/static/{*key}",status="200",tier="edge"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"estuary_http_response_bytes_total{route="/static/{*key}",tier="edge"} 1000"#));
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
                        m.observe("edge", "/vod/{*path}", 200, 0.0002 * f64::from(i + 1), 100);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        m.observe("edge", "/vod/{*path}", 200, 45.0, 0);
        let text = m.render();
        let value = |line: &str| -> f64 {
            let found = text.lines().find_map(|l| l.strip_prefix(line)).unwrap_or_else(|| panic!("{line}\n{text}"));
            found.trim().parse().unwrap()
        };
        assert_eq!(value(r#"estuary_http_requests_total{route="/vod/{*path}",status="200",tier="edge"}"#), 1001.0);
        assert_eq!(value(r#"estuary_http_response_bytes_total{route="/vod/{*path}",tier="edge"}"#), 100_000.0);
        // 0.2 and 0.4 ms are under 0.5 ms; 0.6 and 0.8 ms under 1 ms; 45 s only in +Inf.
        let bucket = |le: &str| {
            value(&format!(
                r#"estuary_http_request_duration_seconds_bucket{{route="/vod/{{*path}}",tier="edge",le="{le}"}}"#
            ))
        };
        assert_eq!((bucket("0.0005"), bucket("0.001"), bucket("30"), bucket("+Inf")), (500.0, 1000.0, 1000.0, 1001.0));
        assert_eq!(value(r#"estuary_http_request_duration_seconds_count{route="/vod/{*path}",tier="edge"}"#), 1001.0);
        let sum = value(r#"estuary_http_request_duration_seconds_sum{route="/vod/{*path}",tier="edge"}"#);
        assert!((sum - (45.0 + 250.0 * 0.0002 * 10.0)).abs() < 1e-6, "{sum}");
        // Another instance counts apart.
        assert!(Metrics::new().render().is_empty());
    }
}
