//! The HTTP/1.1 accept loop every tier runs: a connection cap, header timeout and size limits, a
//! send-progress timeout, keep-alive, and a graceful drain that tells clients to reconnect.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

use super::progress::ProgressStream;
use crate::health::Health;

/// What a connection past the cap gets before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 34\r\nRetry-After: 1\r\nCache-Control: no-store\r\nConnection: close\r\n\r\ntoo many connections; retry later\n";

/// How long connections admitted at the very end get to have their request read before idle ones
/// are closed.
const LAST_REQUESTS: Duration = Duration::from_millis(200);

/// Pending connections the kernel keeps per listener (a burst of players connecting at once).
pub const BACKLOG: u32 = 4096;

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a client gets to send a whole request header block (slowloris guard).
    pub header_read_timeout: Duration,
    /// Largest header block; larger requests get 431.
    pub max_header_bytes: usize,
    /// Keep answering a client that shut down its sending side after its request body
    /// (ffmpeg does this on non-persistent uploads, then waits for the response).
    pub half_close: bool,
    /// Open connections at most; past it a new connection gets 503 and is closed.
    pub max_connections: usize,
    /// A client that accepts no bytes of a response for this long is disconnected.
    pub send_timeout: Duration,
    /// While it reports draining, every response says `Connection: close`, so clients move to
    /// another pod before the listener stops.
    pub health: Option<Health>,
}

/// Serves `service` on `listener` until `stop` turns true, then stops
/// accepting and lets open connections finish their in-flight responses for
/// up to `grace`.
pub async fn serve<S>(
    tier: &'static str,
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .half_close(limits.half_close)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let addr = listener.local_addr().ok();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let health = limits.health.clone();
    let service = service.map_response(move |mut response: Response| {
        if health.as_ref().is_some_and(Health::is_draining) {
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        response
    });
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
    };
    tokio::pin!(stopped);
    let admit = |stream: tokio::net::TcpStream| {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // One non-blocking write of a canned answer, then close: a full server spends nothing
            // more on it.
            let _ = stream.try_write(OVER_CAPACITY);
            tracing::warn!(tier, max = limits.max_connections, "connection refused: at the connection limit");
            return;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(ProgressStream::new(stream, limits.send_timeout));
        let connection = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service.clone())));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(tier, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => admit(stream),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(tier, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            () = &mut stopped => break,
        }
    }
    // Connections the kernel completed but we had not accepted yet would be reset when the
    // listener closes, after their client sent a request: take them in and answer them. (Load
    // balancers stop opening connections during the drain delay, so these are stragglers.)
    while let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::from_millis(1), listener.accept()).await {
        admit(stream);
    }
    drop(listener);
    // A connection just admitted has not read its request yet, and a graceful shutdown would close
    // it as idle: give those a moment to be read (their answers say `Connection: close`).
    tokio::time::sleep(LAST_REQUESTS).await;
    tracing::info!(tier, addr = ?addr, "stopped accepting; draining connections");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!(tier, "all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!(tier, grace_s = grace.as_secs_f64(), "grace period over; closing the remaining connections"),
    }
}
