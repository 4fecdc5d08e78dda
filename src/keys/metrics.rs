//! Encryption's metrics, for `/metrics`: segments and bytes encrypted by scheme, keys handed out,
//! and the key server's requests by outcome and the time they took.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Segments encrypted and their bytes, for one scheme.
pub struct Encrypted {
    segments: AtomicU64,
    bytes: AtomicU64,
}

impl Encrypted {
    const fn new() -> Encrypted {
        Encrypted { segments: AtomicU64::new(0), bytes: AtomicU64::new(0) }
    }

    /// One segment of `bytes` encrypted.
    pub fn count(&self, bytes: usize) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

pub static CENC: Encrypted = Encrypted::new();
pub static CBCS: Encrypted = Encrypted::new();
pub static AES128: Encrypted = Encrypted::new();
pub static SAMPLE_AES: Encrypted = Encrypted::new();
/// Keys handed out at `/keys/` (AES-128 keys, and each key a ClearKey licence gives).
pub static KEYS_DELIVERED: AtomicU64 = AtomicU64::new(0);

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

/// Appends encryption's metrics: segments and bytes encrypted by scheme (each built once, then
/// served from the segment cache), keys handed out, and the key server's.
pub fn render(out: &mut String) {
    use crate::telemetry::metrics::{write_counters, write_sample};
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    let schemes = [("cenc", &CENC), ("cbcs", &CBCS), ("aes-128", &AES128), ("sample-aes", &SAMPLE_AES)];
    let help = "Media segments encrypted on the fly, by scheme";
    let segments = schemes.map(|(s, e)| (s, load(&e.segments)));
    write_counters(out, "estuary_encrypted_segments_total", help, "scheme", segments);
    let help = "Bytes of the media segments encrypted on the fly, by scheme";
    write_counters(out, "estuary_encrypted_bytes_total", help, "scheme", schemes.map(|(s, e)| (s, load(&e.bytes))));
    let help = "Keys handed out at /keys/ (AES-128 keys, and the keys of ClearKey licences)";
    write_sample(out, "estuary_keys_delivered_total", "counter", help, &[], load(&KEYS_DELIVERED));
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
