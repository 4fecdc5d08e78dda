//! The cluster's control store on Redis: the channel registry, each channel's shared timeline (what
//! every pod renders its playlists from) written with a compare-and-set, and a publication event per
//! change, so a pod that did not take the stream serves it and releases its blocked playlist requests
//! when the owner publishes.
//!
//! Keys: `estuary:live:channels` (hash: id -> channel record; see [`channels`]), `estuary:live:{id}:timeline` (the
//! timeline record, JSON), `estuary:live:{id}:tail` (its newest slots), `estuary:live:{id}:progress` (`next_msn:last_upload_ms`, what the
//! compare-and-set compares), and the pub/sub channel `estuary:live:{id}:events`.
//!
//! The client is the `redis` crate (redis-rs): maintained with Redis itself, a tokio connection
//! manager that reconnects on its own, pub/sub and scripts, and it speaks to Redis 7, Valkey and
//! ElastiCache alike.

use std::sync::atomic::{AtomicU64, Ordering};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

mod channels;
mod scripts;

pub use channels::{Creation, records_channel};
use scripts::{HOLD_LEASE, RELEASE_LEASE, SHARE_TIMELINE};

use estuary_live::model::ChannelId;
use estuary_live::record::{TimelineProgress, TimelineRecord};

pub(crate) fn timeline_key(id: &ChannelId) -> String {
    format!("estuary:live:{id}:timeline")
}

pub(crate) fn lease_key(id: &ChannelId) -> String {
    format!("estuary:live:{id}:lease")
}

pub(crate) fn tail_key(id: &ChannelId) -> String {
    format!("estuary:live:{id}:tail")
}

pub(crate) fn progress_key(id: &ChannelId) -> String {
    format!("estuary:live:{id}:progress")
}

/// The pub/sub channel a channel's publications are announced on.
pub fn events_channel(id: &ChannelId) -> String {
    format!("estuary:live:{id}:events")
}

/// Why the control store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("a shared record is unreadable: {0}")]
    Record(#[from] serde_json::Error),
    #[error("redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the record kept changing under other pods' writes; try again")]
    Contended,
}

/// How long a lease operation may take: it runs before an encoder's upload is applied, which must
/// not wait on a control store that is away.
const LEASE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(300);
/// How long sharing a timeline may take (it runs beside the channel's task, never in its way).
const SHARE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long any other call may take (a player's request may be waiting on it).
pub(crate) const DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// Control-store figures for metrics: calls, failed ones (errors and timeouts), time spent.
#[derive(Debug, Default)]
pub struct RedisStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub micros: AtomicU64,
}

static REDIS: RedisStats =
    RedisStats { calls: AtomicU64::new(0), errors: AtomicU64::new(0), micros: AtomicU64::new(0) };

/// Control-store calls since start: how many, how many failed, and their time (microseconds).
#[derive(Debug, Clone, Copy)]
pub struct ControlStoreTotals {
    pub calls: u64,
    pub errors: u64,
    pub micros: u64,
}

/// [`ControlStoreTotals`] now (what `/metrics` reports; the counters stay this module's).
pub fn control_store_totals() -> ControlStoreTotals {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    ControlStoreTotals { calls: load(&REDIS.calls), errors: load(&REDIS.errors), micros: load(&REDIS.micros) }
}

/// Runs one control-store call within `deadline`, counting it.
pub(crate) async fn within<T>(
    deadline: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    let start = std::time::Instant::now();
    let result = tokio::time::timeout(deadline, call).await.map_err(|_| ClusterError::Timeout(deadline));
    let result = result.and_then(|r| r);
    REDIS.calls.fetch_add(1, Ordering::Relaxed);
    REDIS.micros.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    if result.is_err() {
        REDIS.errors.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// The shared control store. Cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct ControlStore {
    client: redis::Client,
    connection: ConnectionManager,
    /// The scripts, hashed once (`EVALSHA`, loaded on first use).
    share: redis::Script,
    hold: redis::Script,
    release: redis::Script,
    /// This process, as lease holders are named.
    pod: std::sync::Arc<str>,
    /// Uploads for a channel another pod takes are refused (409) rather than kept as a standby.
    refuse_redundant: bool,
    /// Where the other pods reach this one's internal listener, for the segments it holds.
    internal_url: Option<std::sync::Arc<str>>,
}

impl ControlStore {
    /// The control store at `url` (`redis://host:port`, `rediss://` over TLS); fails only for a URL that is not one. The
    /// connection is made on first use and remade whenever it breaks, so a pod starts, and serves
    /// VOD and the channels it owns, while Redis is away.
    pub async fn connect(url: &str) -> Result<ControlStore, ClusterError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let pod = format!("{}-{}-{:08x}", hostname(), std::process::id(), rand_u32());
        Ok(ControlStore {
            client,
            connection,
            share: redis::Script::new(SHARE_TIMELINE),
            hold: redis::Script::new(HOLD_LEASE),
            release: redis::Script::new(RELEASE_LEASE),
            pod: pod.into(),
            refuse_redundant: false,
            internal_url: None,
        })
    }

    /// `cluster.redundant_ingest = "refuse"`: a channel's uploads on a pod that does not hold its
    /// lease get 409 instead of being kept as a standby.
    pub fn refusing_redundant_ingest(self, refuse: bool) -> ControlStore {
        ControlStore { refuse_redundant: refuse, ..self }
    }

    pub fn refuses_redundant_ingest(&self) -> bool {
        self.refuse_redundant
    }

    /// The base URL of this pod's internal listener (`http://10.0.3.7:8083`), shared with the
    /// timelines this pod writes so the others read its newest segments from its memory.
    pub fn with_internal_url(self, url: Option<String>) -> ControlStore {
        ControlStore { internal_url: url.map(Into::into), ..self }
    }

    pub fn internal_url(&self) -> Option<&str> {
        self.internal_url.as_deref()
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> Result<(), ClusterError> {
        within(DEADLINE, async {
            let _: String = redis::cmd("PING").query_async(&mut self.connection.clone()).await?;
            Ok(())
        })
        .await
    }

    /// This process's name as a lease holder.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// Takes or renews this pod's lease on a channel for `ttl`; false while another pod holds it.
    pub async fn hold_lease(&self, id: &ChannelId, ttl: std::time::Duration) -> Result<bool, ClusterError> {
        let mut connection = self.connection.clone();
        let call = async move {
            let mut invocation = self.hold.key(lease_key(id));
            invocation.arg(&*self.pod).arg(ttl.as_millis() as u64);
            let held: i64 = invocation.invoke_async(&mut connection).await?;
            Ok(held == 1)
        };
        within(LEASE_DEADLINE, call).await
    }

    /// Gives this pod's lease on a channel up (a graceful stop), so a standby takes over at once.
    pub async fn release_lease(&self, id: &ChannelId) -> Result<(), ClusterError> {
        within(LEASE_DEADLINE, async {
            let mut invocation = self.release.key(lease_key(id));
            invocation.arg(&*self.pod);
            let _: i64 = invocation.invoke_async(&mut self.connection.clone()).await?;
            Ok(())
        })
        .await
    }

    /// The pod holding a channel's lease (writing it), if any.
    pub async fn lease_holder(&self, id: &ChannelId) -> Result<Option<String>, ClusterError> {
        within(DEADLINE, async { Ok(self.connection.clone().get(lease_key(id)).await?) }).await
    }

    /// Writes a channel's timeline and announces it, unless the stored one got further; returns
    /// whether it was written.
    pub async fn share_timeline(
        &self,
        id: &ChannelId,
        json: &[u8],
        tail: &[u8],
        progress: TimelineProgress,
    ) -> Result<bool, ClusterError> {
        let last_upload = progress.last_upload_ms.map_or(-1, |ms| ms as i64);
        within(SHARE_DEADLINE, async {
            let written: i64 = self
                .share
                .key(timeline_key(id))
                .key(progress_key(id))
                .key(events_channel(id))
                .key(tail_key(id))
                .arg(json)
                .arg(progress.next_msn)
                .arg(last_upload)
                .arg(tail)
                .invoke_async(&mut self.connection.clone())
                .await?;
            Ok(written == 1)
        })
        .await
    }

    pub async fn timeline(&self, id: &ChannelId) -> Result<Option<TimelineRecord>, ClusterError> {
        within(DEADLINE, async {
            let json: Option<Vec<u8>> = self.connection.clone().get(timeline_key(id)).await?;
            Ok(json.map(|j| serde_json::from_slice(&j)).transpose()?)
        })
        .await
    }

    /// Whether the control store has a shared timeline for the channel.
    pub async fn has_timeline(&self, id: &ChannelId) -> Result<bool, ClusterError> {
        within(DEADLINE, async { Ok(self.connection.clone().exists(timeline_key(id)).await?) }).await
    }

    /// The newest slots of a channel's shared timeline ([`TimelineRecord::tail`]).
    pub async fn timeline_tail(&self, id: &ChannelId) -> Result<Option<TimelineRecord>, ClusterError> {
        within(DEADLINE, async {
            let json: Option<Vec<u8>> = self.connection.clone().get(tail_key(id)).await?;
            Ok(json.map(|j| serde_json::from_slice(&j)).transpose()?)
        })
        .await
    }

    /// A subscription to a channel's publication events.
    pub async fn subscribe(&self, id: &ChannelId) -> Result<redis::aio::PubSub, ClusterError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(events_channel(id)).await?;
        Ok(pubsub)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "pod".into())
}

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}
