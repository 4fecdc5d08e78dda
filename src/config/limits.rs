//! The `[limits]` section: the bounds on memory and connections that hold whatever clients do.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ByteSize;

/// Resource bounds shared by every tier (see the README's Security section for the memory formula).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Bytes of bodies held in memory beyond the segment cache: read from storage, being packaged,
    /// being sent. Bodies are charged when allocated and released when the last response using
    /// them is done. Peak memory <= cache.bytes + vod.index_cache_bytes + this + ingest.max_total_bytes
    /// + a constant.
    pub in_flight_bytes: ByteSize,
    /// How long a request waits for room in the in-flight budget before it gets 503.
    #[serde(with = "humantime_serde")]
    pub in_flight_wait: Duration,
    /// Open connections per listener; past it a new connection gets 503 and is closed.
    pub max_connections: usize,
    /// A client that accepts no bytes of a response for this long is disconnected.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            in_flight_bytes: ByteSize::mib(256),
            in_flight_wait: Duration::from_secs(5),
            max_connections: 8192,
            send_timeout: Duration::from_secs(30),
        }
    }
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), super::ConfigError> {
        let err = |f: &str, m: &str| Err(super::ConfigError::new(f, m));
        if self.in_flight_bytes.0 < 1024 * 1024 {
            return err("limits.in_flight_bytes", "must be at least 1 MiB");
        }
        if self.max_connections == 0 {
            return err("limits.max_connections", "must be at least 1");
        }
        if self.send_timeout.is_zero() {
            return err("limits.send_timeout", "must be more than 0");
        }
        Ok(())
    }
}
