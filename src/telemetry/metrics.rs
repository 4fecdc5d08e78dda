//! Prometheus metrics: request counts, latency and bytes by tier and route template, plus text for gauges owned elsewhere.

use std::fmt::Write;
use std::sync::Arc;

use std::cell::RefCell;
use std::collections::HashMap;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

/// Latency buckets in seconds: sub-millisecond cache hits up to blocking playlist reloads.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Request metrics. Labels are the tier, the route template (never the raw URI) and the status.
/// Cloned for every request (middleware state), so it is one `Arc`.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

struct Families {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    bytes: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("estuary_http_requests_total", "HTTP requests by tier, route template and status"),
            &["tier", "route", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new("estuary_http_request_duration_seconds", "Time to response headers")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["tier", "route"],
        )
        .expect("valid metric");
        let bytes = IntCounterVec::new(
            Opts::new("estuary_http_response_bytes_total", "Response body bytes by tier and route template"),
            &["tier", "route"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(bytes.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics(Arc::new(Families { registry, requests, duration, bytes }))
    }

    pub fn observe(&self, tier: &'static str, route: &str, status: u16, seconds: f64, bytes: u64) {
        // Label lookups hash and lock; each thread keeps the handles it has used.
        thread_local! {
            static HANDLES: RefCell<HandleCache> = Default::default();
        }
        let id = Arc::as_ptr(&self.0) as usize;
        HANDLES.with(|handles| {
            let mut handles = handles.borrow_mut();
            let by_route = handles.entry((id, tier, status)).or_default();
            if !by_route.contains_key(route) {
                let code = status.to_string();
                let h = Handles {
                    requests: self.0.requests.with_label_values(&[tier, route, code.as_str()]),
                    duration: self.0.duration.with_label_values(&[tier, route]),
                    bytes: self.0.bytes.with_label_values(&[tier, route]),
                };
                by_route.insert(route.into(), h);
            }
            if let Some(h) = by_route.get(route) {
                h.requests.inc();
                h.duration.observe(seconds);
                if bytes > 0 {
                    h.bytes.inc_by(bytes);
                }
            }
        });
    }

    /// The registry's metrics in the text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.0.registry.gather()).unwrap_or_default()
    }
}

/// (metrics instance, tier, status) → route → handles.
type HandleCache = HashMap<(usize, &'static str, u16), HashMap<Box<str>, Handles>>;

struct Handles {
    requests: IntCounter,
    duration: Histogram,
    bytes: IntCounter,
}

/// Appends one gauge or counter sample in the text format, with its HELP and TYPE lines.
pub fn write_sample(out: &mut String, name: &str, kind: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
        let mut extra = String::new();
        write_sample(&mut extra, "estuary_cache_hits_total", "counter", "Cache hits", &[], 3.0);
        write_value(&mut extra, "estuary_x", &[("a", "q\"")], 1.0);
        assert_eq!(
            extra,
            "# HELP estuary_cache_hits_total Cache hits\n# TYPE estuary_cache_hits_total counter\nestuary_cache_hits_total 3\nestuary_x{a=\"q\\\"\"} 1\n"
        );
    }
}
