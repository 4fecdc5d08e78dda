//! The HTTP/1.1 accept loop every tier runs: header timeout and size limits, keep-alive, graceful drain.

use std::net::SocketAddr;
use std::time::Duration;

use std::convert::Infallible;

use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

/// The address of the client a request came from (set when `serve` is asked to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a client gets to send a whole request header block (slowloris guard).
    pub header_read_timeout: Duration,
    /// Largest header block; larger requests get 431.
    pub max_header_bytes: usize,
    /// Tag every request with its [`PeerAddr`] (the ingest tier needs it).
    pub peer_addresses: bool,
    /// Keep answering a client that shut down its sending side after its request body
    /// (ffmpeg does this on non-persistent uploads, then waits for the response).
    pub half_close: bool,
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
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (_, SocketAddr) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(tier, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let io = TokioIo::new(stream);
                if limits.peer_addresses {
                    let tagged = service.clone().map_request(move |mut r: http::Request<hyper::body::Incoming>| {
                        r.extensions_mut().insert(PeerAddr(peer));
                        r
                    });
                    let connection = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(tagged)));
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(tier, error = %e, "connection ended with an error");
                        }
                    });
                } else {
                    let connection = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service.clone())));
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(tier, error = %e, "connection ended with an error");
                        }
                    });
                }
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
