//! The HTTP/1.1 accept loop every tier runs: header timeout and size limits, keep-alive, graceful drain.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a client gets to send a whole request header block (slowloris guard).
    pub header_read_timeout: Duration,
    /// Largest header block; larger requests get 431.
    pub max_header_bytes: usize,
}

/// Serves `router` on `listener` until `stop` turns true, then stops
/// accepting and lets open connections finish their in-flight responses for
/// up to `grace`.
pub async fn serve(
    tier: &'static str,
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let addr = listener.local_addr().ok();
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer): (_, SocketAddr) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(tier, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(tier, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut stopped => break,
        }
    }
    drop(listener);
    tracing::info!(tier, addr = ?addr, "stopped accepting; draining connections");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!(tier, "all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!(tier, grace_s = grace.as_secs_f64(), "grace period over; closing the remaining connections"),
    }
}
