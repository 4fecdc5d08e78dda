//! Telemetry: log setup, the per-request access middleware shared by every tier, and Prometheus metrics.

pub mod access;
pub mod connections;
pub mod logging;
pub mod metrics;
pub mod process;

pub use access::{AccessLog, ErrorDetail};
pub use metrics::{Metrics, object_kind};
