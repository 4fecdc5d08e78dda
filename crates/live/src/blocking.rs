//! Blocking playlist reload (`_HLS_msn`): how long a request may wait, which requests are too far
//! ahead to wait for, and the figures of waiting, released and timed-out requests.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::model::{ChannelSnapshot, Status};

/// Blocking-reload figures for stats and metrics.
#[derive(Debug, Default)]
pub struct BlockingStats {
    pub waiting: AtomicU64,
    pub released: AtomicU64,
    pub timed_out: AtomicU64,
}

/// How long a blocked `_HLS_msn` request may wait before 503: about three target durations,
/// well inside CloudFront's 30 s origin timeout.
pub fn blocking_timeout(snap: &ChannelSnapshot) -> Duration {
    Duration::from_secs(u64::from(snap.settings.target_secs() * 3).clamp(3, 20))
}

/// Whether `_HLS_msn` asks for something too far ahead to wait for (RFC 8216bis: more than two ahead).
pub fn too_far_ahead(snap: &ChannelSnapshot, msn: u64) -> bool {
    match snap.last_msn() {
        Some(last) => snap.status != Status::Ended && msn > last + 2,
        None => msn > 2,
    }
}
