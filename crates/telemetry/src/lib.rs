//! Telemetry: the per-request access middleware shared by every tier, Prometheus metrics, the
//! connection gauges and the process's own figures. Log setup is the binary's (`server::logging`).

pub mod access;
pub mod connections;
pub mod metrics;
pub mod process;

pub use access::{AccessLog, ErrorDetail};
pub use metrics::{Metrics, object_kind};
