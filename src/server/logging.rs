//! Log setup: `tracing` to stdout through a non-blocking writer, pretty for people or JSON for log shippers.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Keep the guard alive until exit, or the last lines are lost.
///
/// `RUST_LOG`, when set, overrides `log.level`. Logging never blocks a
/// request: under a flood the writer drops lines rather than stall the edge.
pub fn init(config: &LogConfig) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    // `validate` has refused a `log.level` that is not a filter.
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| config.filter()).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match config.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
        // Colour only for a person at a terminal: escape codes in a file or a log shipper are noise.
        LogFormat::Pretty => {
            builder.with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())).init()
        }
    }
    guard
}
