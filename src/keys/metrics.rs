//! The key server's metrics: requests by outcome and the time they took, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static FETCHED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static MICROS: AtomicU64 = AtomicU64::new(0);
static HELD: AtomicU64 = AtomicU64::new(0);

/// One request to the key server: how long it took and whether it gave a key.
pub fn observe_fetch(took: Duration, ok: bool) {
    let counter = if ok { &FETCHED } else { &FAILED };
    counter.fetch_add(1, Ordering::Relaxed);
    MICROS.fetch_add(took.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
}

/// Keys held in memory now.
pub fn set_held(n: u64) {
    HELD.store(n, Ordering::Relaxed);
}

/// Appends the key server's metrics.
pub fn render(out: &mut String) {
    use crate::telemetry::metrics::{write_counters, write_sample};
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    let help = "Requests to the key server (SPEKE), by outcome";
    write_counters(
        out,
        "estuary_key_server_requests_total",
        help,
        "result",
        [("ok", load(&FETCHED)), ("error", load(&FAILED))],
    );
    let help = "Seconds spent waiting for the key server, all requests";
    write_sample(out, "estuary_key_server_seconds_total", "counter", help, &[], load(&MICROS) / 1e6);
    let help = "Content keys held in memory";
    write_sample(out, "estuary_keys_held", "gauge", help, &[], load(&HELD));
}
