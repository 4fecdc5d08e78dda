//! What a run measured: requests, bytes, time to first byte by request kind, errors, stalls, live latency.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// What a request fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Master,
    Playlist,
    Manifest,
    Init,
    Segment,
    /// An LL-HLS part (a hinted one is held by the server until it exists: its time to first byte
    /// includes that wait).
    Part,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Master, Kind::Playlist, Kind::Manifest, Kind::Init, Kind::Segment, Kind::Part];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Playlist => "playlist",
            Kind::Manifest => "manifest",
            Kind::Init => "init",
            Kind::Segment => "segment",
            Kind::Part => "part",
        }
    }
}

#[derive(Default)]
struct PerKind {
    /// Time to first byte of successful requests, in microseconds.
    ttfb_us: Vec<u32>,
    bytes: u64,
    errors: BTreeMap<String, u64>,
}

/// Shared by every player of a run.
#[derive(Default)]
pub struct Stats {
    kinds: Mutex<BTreeMap<Kind, PerKind>>,
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub stalls: AtomicU64,
    pub started: AtomicU64,
    latency_ms: Mutex<Vec<u32>>,
}

impl Stats {
    pub fn record(&self, kind: Kind, ttfb: Duration, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Ok(mut kinds) = self.kinds.lock() {
            let k = kinds.entry(kind).or_default();
            k.ttfb_us.push(u32::try_from(ttfb.as_micros()).unwrap_or(u32::MAX));
            k.bytes += bytes;
        }
    }

    /// `what` is the HTTP status, or `connect`/`io`/`timeout`.
    pub fn error(&self, kind: Kind, what: String) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut kinds) = self.kinds.lock() {
            *kinds.entry(kind).or_default().errors.entry(what).or_default() += 1;
        }
    }

    pub fn stall(&self) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
    }

    /// A player received its first media segment.
    pub fn player_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn live_latency(&self, latency: Duration) {
        if let Ok(mut l) = self.latency_ms.lock() {
            l.push(u32::try_from(latency.as_millis()).unwrap_or(u32::MAX));
        }
    }

    pub fn report(&self, scenario: &str, players: u64, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut by_kind = Vec::new();
        let mut errors_by_status: BTreeMap<String, u64> = BTreeMap::new();
        if let Ok(mut kinds) = self.kinds.lock() {
            for kind in Kind::ALL {
                let Some(k) = kinds.get_mut(&kind) else { continue };
                k.ttfb_us.sort_unstable();
                let q = |p: f64| percentile_ms(&k.ttfb_us, p);
                let errors: u64 = k.errors.values().sum();
                for (status, n) in &k.errors {
                    *errors_by_status.entry(status.clone()).or_default() += n;
                }
                by_kind.push(KindReport {
                    kind,
                    requests: k.ttfb_us.len() as u64 + errors,
                    errors,
                    mib: k.bytes as f64 / 1048576.0,
                    ttfb_ms: Percentiles { p50: q(0.50), p90: q(0.90), p99: q(0.99), max: q(1.0) },
                });
            }
        }
        let mut latency = self.latency_ms.lock().map(|l| l.clone()).unwrap_or_default();
        latency.sort_unstable();
        let started = self.started.load(Ordering::Relaxed);
        let requests = self.requests.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        Report {
            scenario: scenario.to_owned(),
            players,
            seconds: secs,
            requests,
            requests_per_sec: requests as f64 / secs,
            mib_per_sec: bytes as f64 / 1048576.0 / secs,
            errors: self.errors.load(Ordering::Relaxed),
            errors_by_status,
            stalls: self.stalls.load(Ordering::Relaxed),
            players_never_started: players.saturating_sub(started),
            live_latency_ms: (!latency.is_empty()).then(|| Percentiles {
                p50: percentile(&latency, 0.5) as f64,
                p90: percentile(&latency, 0.9) as f64,
                p99: percentile(&latency, 0.99) as f64,
                max: percentile(&latency, 1.0) as f64,
            }),
            by_kind,
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    f64::from(percentile(sorted_us, p)) / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub kind: Kind,
    pub requests: u64,
    pub errors: u64,
    pub mib: f64,
    pub ttfb_ms: Percentiles,
}

/// The summary of a run (also its `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub players: u64,
    pub seconds: f64,
    pub requests: u64,
    pub requests_per_sec: f64,
    pub mib_per_sec: f64,
    pub errors: u64,
    pub errors_by_status: BTreeMap<String, u64>,
    pub stalls: u64,
    pub players_never_started: u64,
    pub live_latency_ms: Option<Percentiles>,
    pub by_kind: Vec<KindReport>,
}

impl Report {
    /// The summary table for people.
    pub fn table(&self) -> String {
        let mut t = format!(
            "{} players={} {:.1}s  requests={} ({:.0}/s)  {:.1} MiB/s  errors={}  stalls={}  never started={}\n",
            self.scenario,
            self.players,
            self.seconds,
            self.requests,
            self.requests_per_sec,
            self.mib_per_sec,
            self.errors,
            self.stalls,
            self.players_never_started
        );
        t.push_str(&format!(
            "{:<10} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "kind", "requests", "errors", "MiB", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ));
        for k in &self.by_kind {
            t.push_str(&format!(
                "{:<10} {:>9} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                k.kind.name(),
                k.requests,
                k.errors,
                k.mib,
                k.ttfb_ms.p50,
                k.ttfb_ms.p90,
                k.ttfb_ms.p99,
                k.ttfb_ms.max
            ));
        }
        if !self.errors_by_status.is_empty() {
            let errs: Vec<String> = self.errors_by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            t.push_str(&format!("errors by status: {}\n", errs.join(", ")));
        }
        if let Some(l) = &self.live_latency_ms {
            t.push_str(&format!(
                "latency behind the live edge: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms\n",
                l.p50, l.p99, l.max
            ));
        }
        t
    }
}
