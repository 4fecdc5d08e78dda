//! The HTTP/1.1 accept loop every tier runs: a connection cap, header timeout and size limits, a
//! send-progress timeout, keep-alive, and a graceful drain that tells clients to reconnect.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

use super::http1::Http1Limits;
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

/// How a tier speaks HTTP on each connection it admits. `drain` turns true when the listener has
/// stopped: finish the request in progress, close when idle.
pub trait Protocol: Clone + Send + 'static {
    fn run(self, stream: TcpStream, drain: watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static;
}

/// hyper's HTTP/1.1 server around a tower service (the API, ingest and internal tiers).
#[derive(Clone)]
pub struct Hyper<S> {
    builder: http1::Builder,
    service: S,
    send_timeout: Duration,
}

impl<S> Hyper<S> {
    pub fn new(service: S, limits: &ConnectionLimits) -> Self {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .half_close(limits.half_close)
            .keep_alive(true);
        Hyper { builder, service, send_timeout: limits.send_timeout }
    }
}

impl<S> Protocol for Hyper<S>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    async fn run(self, stream: TcpStream, mut drain: watch::Receiver<bool>) {
        // Each request knows its connection's peer (the access log's client address).
        let peer = stream.peer_addr().ok().map(crate::http::forwarded::PeerAddr);
        let service = tower::util::MapRequest::new(self.service, move |mut request: Request<Incoming>| {
            if let Some(peer) = peer {
                request.extensions_mut().insert(peer);
            }
            request
        });
        let io = TokioIo::new(ProgressStream::new(stream, self.send_timeout));
        let connection = self.builder.serve_connection(io, TowerToHyperService::new(service));
        tokio::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            _ = async { drop(drain.wait_for(|d| *d).await) } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// The edge's own HTTP/1.1 ([`super::http1`]): bodies in files go out with `sendfile`.
#[derive(Clone)]
pub struct EdgeHttp1<S> {
    service: S,
    limits: Arc<Http1Limits>,
}

impl<S> EdgeHttp1<S> {
    pub fn new(service: S, limits: &ConnectionLimits, idle_timeout: Duration) -> Self {
        let limits = Http1Limits {
            header_read_timeout: limits.header_read_timeout,
            max_header_bytes: limits.max_header_bytes,
            send_timeout: limits.send_timeout,
            idle_timeout,
            health: limits.health.clone(),
        };
        EdgeHttp1 { service, limits: Arc::new(limits) }
    }
}

impl<S> Protocol for EdgeHttp1<S>
where
    S: Service<Request<()>, Response = Response, Error = Infallible>
        + super::http1::Shortcut
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    async fn run(self, stream: TcpStream, drain: watch::Receiver<bool>) {
        super::http1::serve_connection(stream, self.service, &self.limits, drain).await
    }
}

/// Adds `Connection: close` to every answer while `health` reports draining, so clients move to
/// another pod before the listener stops.
fn close_while_draining<S>(
    service: S,
    health: Option<Health>,
) -> impl Service<Request<Incoming>, Response = Response, Error = Infallible, Future = impl Send>
+ Clone
+ Send
+ Sync
+ 'static
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    service.map_response(move |mut response: Response| {
        if health.as_ref().is_some_and(Health::is_draining) {
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        response
    })
}

/// Spawns [`serve`] for a tier that speaks through hyper, answering `Connection: close` while the pod
/// drains.
pub fn spawn_hyper<S>(
    tier: &'static str,
    listener: TcpListener,
    service: S,
    limits: &ConnectionLimits,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> tokio::task::JoinHandle<()>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let protocol = Hyper::new(close_while_draining(service, limits.health.clone()), limits);
    tokio::spawn(serve(tier, listener, protocol, Slots::new(limits.max_connections), stop, grace))
}

/// Events logged at most once a second with their count: a flood of connections (or of accept
/// errors at the descriptor limit) must not turn into a flood of log lines.
#[derive(Default)]
struct EverySecond {
    since_logged: u64,
    logged_at: Option<std::time::Instant>,
}

impl EverySecond {
    /// Counts one event; `Some(count)` when a line is due, with the events since the last one.
    fn note(&mut self) -> Option<u64> {
        self.since_logged += 1;
        let now = std::time::Instant::now();
        if self.logged_at.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1)) {
            self.logged_at = Some(now);
            return Some(std::mem::take(&mut self.since_logged));
        }
        None
    }
}

/// A tier's connection cap, shared by all its listeners (the edge has one per core).
#[derive(Clone)]
pub struct Slots {
    semaphore: Arc<Semaphore>,
    max: u32,
}

impl Slots {
    pub fn new(max_connections: usize) -> Slots {
        let max = u32::try_from(max_connections.max(1)).unwrap_or(u32::MAX >> 3);
        Slots { semaphore: Arc::new(Semaphore::new(max as usize)), max }
    }
}

/// Serves `protocol` on `listener` until `stop` turns true, then stops accepting and lets open
/// connections finish their in-flight responses for up to `grace`.
pub async fn serve<P: Protocol>(
    tier: &'static str,
    listener: TcpListener,
    protocol: P,
    slots: Slots,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let addr = listener.local_addr().ok();
    let Slots { semaphore: slots, max: max_connections } = slots;
    crate::telemetry::connections::register(tier, &slots, max_connections as usize);
    // This listener's own connections, for its drain: the tier's slots are shared by every listener
    // of the tier (one per core on the edge), and one listener taking them all back at its drain
    // would refuse the connections the others still admit.
    let mine = Arc::new(Semaphore::new(max_connections as usize));
    let (drain_tx, drain) = watch::channel(false);
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
    };
    tokio::pin!(stopped);
    let (mut refused, mut accept_errors) = (EverySecond::default(), EverySecond::default());
    let mut admit = |stream: TcpStream| {
        let (Ok(slot), Ok(own)) = (slots.clone().try_acquire_owned(), mine.clone().try_acquire_owned()) else {
            // One non-blocking write of a canned answer, then close: a full server spends nothing
            // more on it.
            let _ = stream.try_write(OVER_CAPACITY);
            if let Some(refused) = refused.note() {
                tracing::warn!(tier, max = max_connections, refused, "connections refused: at the connection limit");
            }
            return;
        };
        let _ = stream.set_nodelay(true);
        let connection = protocol.clone().run(stream, drain.clone());
        tokio::spawn(async move {
            connection.await;
            drop((slot, own));
        });
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => admit(stream),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    if let Some(failures) = accept_errors.note() {
                        tracing::warn!(tier, error = %e, failures, "accept failed");
                    }
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
    let _ = drain_tx.send(true);
    // Every slot of this listener back: every connection it admitted has ended.
    tokio::select! {
        _ = mine.acquire_many(max_connections) => tracing::info!(tier, "all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!(tier, grace_s = grace.as_secs_f64(), "grace period over; closing the remaining connections"),
    }
}
