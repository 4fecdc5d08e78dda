//! One builder per tier: each binds its listener (or takes the one bound earlier), builds its router
//! from the parts `start` assembled, and spawns the tasks that serve it until the stop signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::listener::{self, ConnectionLimits, EdgeHttp1};
use super::{bind, bind_shared, bind_with};
use crate::api::{ApiState, api_router};
use crate::budget::ByteBudget;
use crate::config::Config;
use crate::edge::{EdgeService, EdgeShared, EdgeState, OriginLock};
use crate::ingest::{IngestState, UploadLimits, ingest_router};
use crate::internal::internal_router;
use crate::live::LiveRegistry;
use crate::live::service::Live;
use crate::telemetry::{AccessLog, Metrics};

/// What every tier takes from the process: the config, metrics, who is believed about client
/// addresses, connection limits, and the stop signal with its grace period.
pub(super) struct Common<'a> {
    pub(super) config: &'a Config,
    pub(super) metrics: Metrics,
    pub(super) trusted: Arc<[crate::http::forwarded::Cidr]>,
    pub(super) limits: ConnectionLimits,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) grace: Duration,
}

impl Common<'_> {
    /// The access log and request metrics of `tier`.
    fn access(&self, tier: &'static str) -> AccessLog {
        AccessLog {
            tier,
            metrics: self.metrics.clone(),
            log: self.config.log.access,
            trusted_proxies: self.trusted.clone(),
        }
    }
}

/// The edge: one listener, or one per runtime on a shared port (`SO_REUSEPORT`) when it runs on
/// several, all under one connection cap.
pub(super) fn edge(
    tier: &Common<'_>,
    shared: EdgeShared,
    runtimes: &[Handle],
) -> anyhow::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let config = tier.config;
    let std_listener = bind_with(config.edge.addr, "edge", runtimes.len() > 1)?;
    let addr = std_listener.local_addr()?;
    let lock = config.edge.origin_lock_header_name()?.map(|header| OriginLock {
        header,
        secret: config.edge.origin_lock_secret.as_bytes().into(),
        previous: (!config.edge.origin_lock_previous_secret.is_empty())
            .then(|| config.edge.origin_lock_previous_secret.as_bytes().into()),
    });
    let router = EdgeService::new(EdgeState::new(shared), lock, tier.access("edge"));
    let (idle, grace) = (config.http.idle_timeout, tier.grace);
    // One connection cap for all the edge's listeners.
    let slots = listener::Slots::new(tier.limits.max_connections);
    let mut tasks = Vec::new();
    // One listener per extra runtime, on the same port: the kernel spreads the connections and each
    // runtime serves its own, as nginx's workers do.
    for rt in runtimes.get(1..).unwrap_or_default() {
        let std_listener = bind_shared(addr, "edge")?;
        let (router, limits, stop, slots) = (router.clone(), tier.limits.clone(), tier.stop.clone(), slots.clone());
        tasks.push(rt.spawn(async move {
            match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => listener::serve("edge", l, EdgeHttp1::new(router, &limits, idle), slots, stop, grace).await,
                Err(e) => tracing::error!(error = %e, "edge listener could not be registered"),
            }
        }));
    }
    let (limits, stop) = (tier.limits.clone(), tier.stop.clone());
    let serve = async move {
        match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => listener::serve("edge", l, EdgeHttp1::new(router, &limits, idle), slots, stop, grace).await,
            Err(e) => tracing::error!(error = %e, "edge listener could not be registered"),
        }
    };
    tasks.push(match runtimes.first() {
        Some(rt) => rt.spawn(serve),
        None => tokio::spawn(serve),
    });
    Ok((addr, tasks))
}

/// The ingest tier: encoders' uploads, each charged to `budget` (`ingest.max_total_bytes`).
pub(super) fn ingest(
    tier: &Common<'_>,
    live: LiveRegistry,
    budget: Arc<ByteBudget>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let config = tier.config;
    let std_listener = bind(config.ingest.addr, "ingest")?;
    let addr = std_listener.local_addr()?;
    let limits = UploadLimits {
        max_body_bytes: config.ingest.max_body_bytes.0,
        max_init_bytes: config.ingest.max_init_bytes.0,
        max_playlist_bytes: config.ingest.max_playlist_bytes.0,
        body_timeout: config.ingest.body_timeout,
        min_body_rate: config.ingest.min_body_rate.0,
    };
    let router = ingest_router(IngestState { live, limits, budget }, tier.access("ingest"));
    let l = tokio::net::TcpListener::from_std(std_listener)?;
    let connections = ConnectionLimits { half_close: true, ..tier.limits.clone() };
    Ok((addr, listener::spawn_hyper("ingest", l, router, &connections, tier.stop.clone(), tier.grace)))
}

/// The operator API.
pub(super) fn api(tier: &Common<'_>, state: ApiState) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let std_listener = bind(tier.config.api.addr, "api")?;
    let addr = std_listener.local_addr()?;
    let router = api_router(state, tier.access("api"));
    let l = tokio::net::TcpListener::from_std(std_listener)?;
    Ok((addr, listener::spawn_hyper("api", l, router, &tier.limits, tier.stop.clone(), tier.grace)))
}

/// The internal (pod-to-pod) listener of a cluster, bound before the channels were loaded.
pub(super) fn internal(
    tier: &Common<'_>,
    std_listener: std::net::TcpListener,
    live: Live,
) -> anyhow::Result<JoinHandle<()>> {
    let router = internal_router(live, tier.access("internal"));
    let l = tokio::net::TcpListener::from_std(std_listener)?;
    Ok(listener::spawn_hyper("internal", l, router, &tier.limits, tier.stop.clone(), tier.grace))
}
