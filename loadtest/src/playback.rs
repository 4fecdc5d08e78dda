//! A player's playback clock: what is buffered against what has been played, for pacing and stalls.

use std::time::{Duration, Instant};

use crate::Pace;
use crate::stats::Stats;

/// Segments ahead a paced player keeps in its buffer.
const BUFFER_AHEAD_SECS: f64 = 12.0;

pub struct Playback {
    pace: Pace,
    /// When playback (re)started.
    started: Option<Instant>,
    /// Seconds of media downloaded since `started`.
    buffered: f64,
    /// Seconds played before the last restart.
    played_before: f64,
    /// Seconds of media buffered before playback starts.
    startup: f64,
}

impl Playback {
    pub fn new(pace: Pace) -> Self {
        Playback { pace, started: None, buffered: 0.0, played_before: 0.0, startup: 0.0 }
    }

    /// Playback starts once `secs` of media are buffered (a live player joining behind the edge).
    pub fn with_startup(self, secs: f64) -> Self {
        Playback { startup: secs, ..self }
    }

    fn played_since_start(&self) -> f64 {
        self.started.map_or(0.0, |s| s.elapsed().as_secs_f64().min(self.buffered))
    }

    /// Total seconds of media played.
    pub fn played(&self) -> f64 {
        self.played_before + self.played_since_start()
    }

    /// A segment of `duration` seconds arrived. If the buffer had run dry before it did, that is a stall.
    pub fn arrived(&mut self, duration: f64, stats: &Stats) {
        match self.started {
            None if self.buffered + duration < self.startup => {}
            None => {
                self.started = Some(Instant::now());
                stats.player_started();
            }
            Some(s) if self.pace == Pace::Realtime && s.elapsed().as_secs_f64() > self.buffered => {
                stats.stall();
                self.played_before += self.buffered;
                self.started = Some(Instant::now());
                self.buffered = 0.0;
            }
            Some(_) => {}
        }
        self.buffered += duration;
    }

    /// A paced player waits while its buffer is full; a fast one never waits.
    pub async fn pace(&self, deadline: Instant) {
        if self.pace != Pace::Realtime {
            return;
        }
        let ahead = self.buffered - self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if ahead > BUFFER_AHEAD_SECS {
            let wait = Duration::from_secs_f64(ahead - BUFFER_AHEAD_SECS);
            tokio::time::sleep_until(tokio::time::Instant::from_std((Instant::now() + wait).min(deadline))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn playback_waits_for_its_startup_buffer() {
        let stats = Stats::default();
        let mut p = Playback::new(Pace::Realtime).with_startup(1.5);
        p.arrived(0.5, &stats);
        p.arrived(0.5, &stats);
        assert_eq!(stats.started.load(Ordering::Relaxed), 0, "1 s buffered, 1.5 s wanted");
        p.arrived(0.5, &stats);
        assert_eq!(stats.started.load(Ordering::Relaxed), 1);
        assert_eq!(stats.stalls.load(Ordering::Relaxed), 0);
    }
}
