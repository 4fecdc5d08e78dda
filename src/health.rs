//! `Health`: whether this process should receive traffic, shared by the probes of every tier.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug)]
struct Inner {
    ready: AtomicBool,
    draining: AtomicBool,
    started: Instant,
}

/// Readiness: false while starting, true once every listener is up, false
/// again as soon as shutdown begins. A shared dependency's outage (storage)
/// is reported in stats, never here: failing readiness on every pod at once
/// would turn a partial outage into a total one.
#[derive(Debug, Clone)]
pub struct Health(Arc<Inner>);

impl Default for Health {
    fn default() -> Self {
        Health(Arc::new(Inner {
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started: Instant::now(),
        }))
    }
}

impl Health {
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
    }

    pub(crate) fn begin_drain(&self) {
        self.0.draining.store(true, Ordering::Release);
    }

    pub fn uptime_seconds(&self) -> f64 {
        self.0.started.elapsed().as_secs_f64()
    }
}
