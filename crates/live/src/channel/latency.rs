//! PURE: how long uploads wait before players see them: the newest samples of one delay (a whole
//! segment from its upload to the playlist, a chunk from its arrival to its part), summarised.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Samples kept for the summary.
const SAMPLES: usize = 1024;

pub use super::super::model::PublishLatency;

/// The newest [`SAMPLES`] of one delay.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latencies(VecDeque<Duration>);

impl Latencies {
    pub(crate) fn record(&mut self, from: SystemTime, to: SystemTime) {
        if self.0.len() == SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(to.duration_since(from).unwrap_or_default());
    }

    /// Taken on every publication (a snapshot carries it): three selections, not a sort.
    pub(crate) fn summary(&self) -> PublishLatency {
        let mut ms: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        if ms.is_empty() {
            return PublishLatency::default();
        }
        let last = ms.len() - 1;
        let mut at = |q: f64| *ms.select_nth_unstable_by((last as f64 * q).round() as usize, f64::total_cmp).1;
        let (median_ms, p99_ms, max_ms) = (at(0.5), at(0.99), at(1.0));
        PublishLatency { samples: last + 1, median_ms, p99_ms, max_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_samples_are_summarised() {
        let mut l = Latencies::default();
        assert_eq!(l.summary(), PublishLatency::default());
        let t = SystemTime::UNIX_EPOCH;
        for ms in 0..2000u64 {
            l.record(t, t + Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!((s.samples, s.median_ms, s.max_ms), (SAMPLES, 1488.0, 1999.0), "{s:?}");
        // A clock that went back counts as no delay.
        l.record(t + Duration::from_secs(1), t);
        assert_eq!(l.0.back(), Some(&Duration::ZERO));
    }
}
