//! Process assembly: builds storage, cache and metrics from the config, binds each tier's listener, and shuts down gracefully.

pub mod http1;
pub mod listener;
pub mod logging;
pub mod per_core;
mod progress;
mod tiers;
pub use estuary_sys::resources;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::health::Health;

use crate::api::{ApiState, Endpoint};
use crate::budget::ByteBudget;
use crate::cache::SegmentCache;
use crate::cluster::ControlStore;
use crate::config::{Config, RedundantIngest, StorageBackend};
use crate::edge::EdgeShared;
use crate::keys::protection::{KeyDelivery, Protection};
use crate::live::service::Live;
use crate::live::{ChannelLimits, LiveLimits, LiveRegistry};
use crate::storage::Storage;
use crate::storage::breaker::{CircuitBreaker, Deadlines};
use crate::storage::local::LocalStorage;
use crate::storage::metered::MeteredStorage;
use crate::storage::s3::S3Storage;
use crate::telemetry::Metrics;
use crate::vod::Vod;
use listener::ConnectionLimits;

/// Choices the command line or a test makes that are not configuration.
#[derive(Default)]
pub struct StartOptions {
    /// Use this backend instead of the configured one (tests wrap one to count reads).
    pub storage: Option<Arc<dyn Storage>>,
    /// Run the edge tier on these runtimes (their own worker threads) instead of the caller's:
    /// one listener per runtime, sharing the port, when there are several (one per core).
    pub edge_runtimes: Vec<Handle>,
}

/// A running estuary: its bound addresses and the handles to stop it.
pub struct Server {
    pub edge_addr: Option<SocketAddr>,
    pub ingest_addr: Option<SocketAddr>,
    pub api_addr: Option<SocketAddr>,
    /// The internal listener (pod to pod), in a cluster.
    pub internal_addr: Option<SocketAddr>,
    pub health: Health,
    pub live: LiveRegistry,
    pub storage: Arc<MeteredStorage>,
    pub cache: SegmentCache,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    drain_delay: Duration,
}

/// The backend named by the config, charging every body it reads to `budget`.
pub async fn build_storage(config: &Config, budget: Arc<ByteBudget>) -> anyhow::Result<Arc<dyn Storage>> {
    match config.storage.backend {
        StorageBackend::Local => {
            let local = LocalStorage::new(&config.storage.root)
                .with_context(|| format!("storage.root {}", config.storage.root.display()))?;
            Ok(Arc::new(local.with_budget(budget)))
        }
        StorageBackend::S3 => Ok(Arc::new(S3Storage::new(&config.storage.s3).await.with_budget(budget))),
    }
}

/// Binds with a deep accept backlog, so a burst of connections waits in the kernel instead of
/// being reset.
fn bind(addr: SocketAddr, tier: &str) -> anyhow::Result<std::net::TcpListener> {
    bind_with(addr, tier, false)
}

/// A listener on a port other listeners of this process share (`SO_REUSEPORT`).
fn bind_shared(addr: SocketAddr, tier: &str) -> anyhow::Result<std::net::TcpListener> {
    bind_with(addr, tier, true)
}

fn bind_with(addr: SocketAddr, tier: &str, shared: bool) -> anyhow::Result<std::net::TcpListener> {
    let context = || format!("binding the {tier} listener on {addr}");
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
    let socket = socket.with_context(context)?;
    socket.set_reuseaddr(true).with_context(context)?;
    socket.set_reuseport(shared).with_context(context)?;
    socket.bind(addr).with_context(context)?;
    let listener = socket.listen(listener::BACKLOG).with_context(context)?.into_std()?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Starts every enabled tier. Returns once all listeners are bound and the process is ready.
pub async fn start(config: &Config, options: StartOptions) -> anyhow::Result<Server> {
    // Bodies in memory: the cache's share plus the in-flight budget (the README's memory formula).
    let bodies = ByteBudget::new(
        config.cache.bytes.0.saturating_add(config.limits.in_flight_bytes.0),
        config.limits.in_flight_wait,
    );
    let backend = match options.storage {
        Some(s) => s,
        None => build_storage(config, bodies.clone()).await?,
    };
    let deadlines = Deadlines { read: config.storage.deadline, write: config.storage.write_deadline };
    let breaker = Arc::new(
        CircuitBreaker::new(backend, config.storage.breaker_threshold, config.storage.breaker_cooldown)
            .with_deadlines(deadlines),
    );
    let storage = Arc::new(MeteredStorage::new(breaker.clone()));
    if let Err(e) = storage.probe().await {
        // A shared backend's outage is reported in stats, not fatal: cached content can still be served.
        tracing::warn!(backend = storage.backend(), error = %e, "storage probe failed at start-up");
    }
    let cache = SegmentCache::with_stale_window(
        config.cache.bytes.0,
        config.cache.max_object_bytes.0,
        config.cache.stale_if_error,
    )
    .with_budget(bodies.clone());
    let metrics = Metrics::new();
    let trusted: std::sync::Arc<[crate::http::forwarded::Cidr]> = config.log.trusted_proxies.clone().into();
    let health = Health::default();
    let limits = ConnectionLimits {
        header_read_timeout: config.http.header_read_timeout,
        max_header_bytes: usize::try_from(config.http.max_header_bytes.0).unwrap_or(usize::MAX),
        half_close: false,
        max_connections: config.limits.max_connections,
        send_timeout: config.limits.send_timeout,
        health: Some(health.clone()),
    };
    // Live channels are stateful: a storage failure here must stop start-up, or a later
    // channel change would overwrite the channel index with an empty one.
    let ingest_budget = ByteBudget::new(config.ingest.max_total_bytes.0, Duration::ZERO);
    let live_limits = LiveLimits {
        max_channels: config.live.max_channels,
        channel: ChannelLimits { bytes: config.ingest.max_channel_bytes.0, ingest: ingest_budget.clone() },
    };
    let cluster = match config.cluster.redis_url.as_str() {
        "" => None,
        url => {
            let store = ControlStore::connect(url)
                .await
                .context("cluster.redis_url")?
                .refusing_redundant_ingest(config.cluster.redundant_ingest == RedundantIngest::Refuse);
            match store.ping().await {
                Ok(()) => tracing::info!(pod = store.pod(), "the control store (Redis) answers"),
                Err(e) => {
                    tracing::warn!(pod = store.pod(), error = %e, "the control store (Redis) does not answer yet; going on")
                }
            }
            Some(store)
        }
    };
    // The internal listener is bound before the channels are loaded: its URL goes into every timeline
    // this pod shares.
    let internal = match &cluster {
        Some(_) => {
            let std_listener = bind(config.cluster.internal_addr, "internal")?;
            let addr = std_listener.local_addr()?;
            Some((std_listener, addr))
        }
        None => None,
    };
    let cluster = cluster.map(|store| {
        let url = match (config.cluster.internal_url.as_str(), &internal) {
            ("", Some((_, addr))) if !addr.ip().is_unspecified() => Some(format!("http://{addr}")),
            ("", _) => None,
            (url, _) => Some(url.trim_end_matches('/').to_owned()),
        };
        store.with_internal_url(url)
    });
    let live = LiveRegistry::load_in_cluster(storage.clone(), live_limits, cluster)
        .await
        .context("loading live channels from storage")?;
    let encryption = &config.encryption;
    let delivery = if encryption.key_delivery { KeyDelivery::OnTheEdge } else { KeyDelivery::Off };
    let protection = match encryption.key_source()? {
        Some(source) => {
            let (scheme, fairplay) = (encryption.cenc_scheme(), encryption.fairplay()?);
            tracing::info!(keys = %source, scheme = scheme.name(), "content protection on");
            let prefixes = encryption.vod_prefixes.clone();
            let protection = Protection::new(prefixes, source, scheme, fairplay, delivery, encryption.max_held_keys);
            let live = encryption.live_prefixes.clone();
            let protection = protection.with_ts_method(encryption.ts_method);
            Some(Arc::new(protection.with_live(live, encryption.key_period > 0)))
        }
        None => None,
    };
    let live_service = Live::new(live.clone(), storage.clone(), cache.clone(), &config.edge.public_url)
        .with_budget(bodies.clone())
        .with_protection(protection.clone(), u64::from(encryption.key_period));
    let blocking = live_service.blocking().clone();
    let internal_service = live_service.clone();
    let grace = config.shutdown.grace_period;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let tier = tiers::Common { config, metrics, trusted, limits, stop: stop_rx, grace };
    let mut edge_addr = None;
    if config.edge.enabled {
        let shared = EdgeShared {
            storage: storage.clone(),
            cache: cache.clone(),
            static_files: config.static_files.clone(),
            vod: Vod::new(storage.clone(), cache.clone(), config.vod.clone())
                .with_budget(bodies.clone())
                .with_protection(protection.clone()),
            live: live_service,
            health: health.clone(),
        };
        let (addr, edge_tasks) = tiers::edge(&tier, shared, &options.edge_runtimes)?;
        edge_addr = Some(addr);
        tasks.extend(edge_tasks);
    }
    let mut ingest_addr = None;
    if config.ingest.enabled {
        let (addr, task) = tiers::ingest(&tier, live.clone(), ingest_budget.clone())?;
        ingest_addr = Some(addr);
        tasks.push(task);
    }
    let mut api_addr = None;
    if config.api.enabled {
        let state = ApiState {
            health: health.clone(),
            cache: cache.clone(),
            storage: storage.clone(),
            metrics: tier.metrics.clone(),
            token: (!config.api.token.is_empty()).then(|| Arc::from(config.api.token.as_str())),
            live: live.clone(),
            channel_defaults: config.live.channel_defaults.clone(),
            breaker: breaker.clone(),
            ingest: Endpoint {
                public_url: config.ingest.public_url.clone(),
                port: ingest_addr.map_or(config.ingest.addr.port(), |a| a.port()),
            },
            edge: Endpoint {
                public_url: config.edge.public_url.clone(),
                port: edge_addr.map_or(config.edge.addr.port(), |a| a.port()),
            },
            blocking: blocking.clone(),
            allowed_hosts: config.api.allowed_hosts.clone().into(),
            encryption: protection.is_some(),
        };
        let (addr, task) = tiers::api(&tier, state)?;
        api_addr = Some(addr);
        tasks.push(task);
    }
    let mut internal_addr = None;
    if let Some((std_listener, addr)) = internal {
        internal_addr = Some(addr);
        tasks.push(tiers::internal(&tier, std_listener, internal_service)?);
    }

    health.set_ready();
    for (tier, addr) in [("edge", edge_addr), ("ingest", ingest_addr), ("api", api_addr), ("internal", internal_addr)] {
        if let Some(addr) = addr {
            tracing::info!(tier, %addr, "listening");
        }
    }
    Ok(Server {
        edge_addr,
        ingest_addr,
        api_addr,
        internal_addr,
        health,
        live,
        storage,
        cache,
        stop,
        tasks,
        drain_delay: config.shutdown.drain_delay,
    })
}

impl Server {
    /// Graceful shutdown: readiness turns false at once, the listeners keep
    /// serving for the drain delay (so load balancers notice), then stop
    /// accepting while in-flight responses finish within the grace period.
    pub async fn shutdown(self) {
        self.health.begin_drain();
        tracing::info!(drain_delay_s = self.drain_delay.as_secs_f64(), "shutting down: readiness is now false");
        tokio::time::sleep(self.drain_delay).await;
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // Every channel's timeline reaches storage, so counting resumes where it stopped.
        self.live.flush().await;
        tracing::info!("shutdown complete");
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
