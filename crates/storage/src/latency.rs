//! Storage latency: one histogram per operation, counted by [`MeteredStorage`](super::metered) on every
//! call that reached the backend (failures included) and rendered by the API's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

tokio::task_local! {
    /// Microseconds the current request has waited on storage, when the request counts them (the
    /// access log's `storage_us`): every storage call made from the request's task adds its time.
    static REQUEST_STORAGE_MICROS: std::cell::Cell<u64>;
}

/// Runs `request` counting the time its task spends in storage calls; gives its output and that time.
pub async fn timing_storage<F: std::future::Future>(request: F) -> (F::Output, Duration) {
    REQUEST_STORAGE_MICROS
        .scope(std::cell::Cell::new(0), async {
            let output = request.await;
            (output, Duration::from_micros(REQUEST_STORAGE_MICROS.with(std::cell::Cell::get)))
        })
        .await
}

/// Bucket bounds in seconds: a local disk's page-cache hit up to an S3 read near its deadline.
pub const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A storage call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    GetRange,
    GetRanges,
    Read,
    Head,
    Put,
    Delete,
    List,
    Probe,
}

impl Operation {
    pub const ALL: [Operation; 9] = [
        Operation::Get,
        Operation::GetRange,
        Operation::GetRanges,
        Operation::Read,
        Operation::Head,
        Operation::Put,
        Operation::Delete,
        Operation::List,
        Operation::Probe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::GetRange => "get_range",
            Operation::GetRanges => "get_ranges",
            Operation::Read => "read",
            Operation::Head => "head",
            Operation::Put => "put",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Probe => "probe",
        }
    }
}

#[derive(Debug, Default)]
struct Histogram {
    /// Calls per bucket (not cumulative); slower than the last bound: only in `count`.
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    micros: AtomicU64,
}

/// The histograms of every operation.
#[derive(Debug, Default)]
pub struct Latencies {
    ops: [Histogram; Operation::ALL.len()],
}

/// One operation's figures at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub operation: Operation,
    /// Cumulative counts, one per bound of [`BUCKETS`].
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub seconds: f64,
}

impl Latencies {
    pub fn observe(&self, operation: Operation, elapsed: Duration) {
        // The request this call is made for, when it counts (a load shared by coalesced requests
        // counts for the one that made it).
        let _ = REQUEST_STORAGE_MICROS.try_with(|spent| spent.set(spent.get() + elapsed.as_micros() as u64));
        let h = &self.ops[operation as usize];
        let secs = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|&le| secs <= le) {
            h.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The operations called at least once.
    pub fn figures(&self) -> Vec<Figures> {
        Operation::ALL
            .iter()
            .zip(&self.ops)
            .filter(|(_, h)| h.count.load(Ordering::Relaxed) > 0)
            .map(|(&operation, h)| {
                let mut sum = 0;
                let cumulative = h
                    .buckets
                    .iter()
                    .map(|b| {
                        sum += b.load(Ordering::Relaxed);
                        sum
                    })
                    .collect();
                let (count, micros) = (h.count.load(Ordering::Relaxed), h.micros.load(Ordering::Relaxed));
                Figures { operation, cumulative, count, seconds: micros as f64 / 1e6 }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_counts_the_storage_time_of_its_own_task() {
        let l = Latencies::default();
        let ((), spent) = timing_storage(async {
            l.observe(Operation::Head, Duration::from_millis(3));
            l.observe(Operation::GetRange, Duration::from_millis(4));
        })
        .await;
        assert_eq!(spent, Duration::from_millis(7));
        // Outside a counting request, nothing is counted for anyone.
        l.observe(Operation::Head, Duration::from_millis(1));
        let ((), none) = timing_storage(async {}).await;
        assert_eq!(none, Duration::ZERO);
    }

    #[test]
    fn counts_by_operation_into_cumulative_buckets() {
        let l = Latencies::default();
        l.observe(Operation::GetRange, Duration::from_micros(300));
        l.observe(Operation::GetRange, Duration::from_millis(30));
        l.observe(Operation::GetRange, Duration::from_secs(9));
        let figures = l.figures();
        assert_eq!(figures.len(), 1, "only what was called");
        let f = &figures[0];
        assert_eq!((f.operation.as_str(), f.count), ("get_range", 3));
        assert_eq!((f.cumulative[0], f.cumulative[5], f.cumulative[6], f.cumulative[11]), (1, 1, 2, 2));
        assert!((f.seconds - 9.0303).abs() < 1e-6, "{}", f.seconds);
    }
}
