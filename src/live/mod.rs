//! Live channels: encoders push segments, players get live HLS and DASH. The registry finds channels;
//! each channel's state has one owner (a task) that publishes immutable snapshots for the edge.
//!
//! Invariants: only the channel task changes a channel; the edge reads `Arc` snapshots from a
//! `watch` (a pointer swap, never a lock held across I/O); segments reach storage in background
//! tasks, never on the edge's path; media sequence numbers never go back, also across restarts.

mod actor;
pub mod follower;
pub mod growing;
pub mod metrics;
pub mod owner;
mod role;
pub mod service;
mod shared;
mod store;

pub use estuary_live::{blocking, channel, cmaf_ingest, key, keys, manifests, model, record, upload};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use actor::Command;
use channel::{ChannelState, EndedBy};
use key::KeyHash;
pub use model::{ChannelId, ChannelSettings, ChannelSnapshot, Status};
use record::{ChannelIndex, ChannelRecord, TimelineRecord};
use store::{read_json, restore, write_json};
use upload::{Upload, UploadError};

use crate::budget::ByteBudget;
use crate::cluster::ControlStore;
use crate::storage::{Storage, StorageError};

/// What removing a channel removes from storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Its settings: its segments and timeline stay, for a harvest or an audit.
    KeepRecordings,
    /// Everything it recorded.
    Purge,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no such channel")]
    NotFound,
    #[error("channel {0} already exists")]
    Exists(ChannelId),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the channel's task has stopped")]
    Gone,
    #[error("there are already {0} channels (live.max_channels)")]
    TooMany(usize),
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// The cluster's control store did not answer.
    #[error("the control store: {0}")]
    Unavailable(String),
}

impl From<crate::cluster::ClusterError> for LiveError {
    fn from(e: crate::cluster::ClusterError) -> Self {
        LiveError::Unavailable(e.to_string())
    }
}

/// What callers hold to talk to a channel. Cheap to clone.
#[derive(Clone)]
pub struct ChannelHandle {
    pub id: ChannelId,
    /// The stream key's hash: what ingest checks credentials against.
    pub key: KeyHash,
    pub created_ms: u64,
    snapshot: watch::Receiver<Arc<ChannelSnapshot>>,
    commands: mpsc::Sender<Command>,
    /// This process writes the channel: always when alone; in a cluster, while it holds the
    /// channel's lease (set by the channel's task).
    owner: Arc<AtomicBool>,
    /// Bodies being received for this channel, charged as their bytes arrive
    /// (`ingest.max_channel_bytes`): one stream key's uploads cannot hold more than its channel may.
    receiving: Arc<ByteBudget>,
}

impl ChannelHandle {
    /// The budget that bodies being received for this channel are charged to.
    pub fn receiving(&self) -> &Arc<ByteBudget> {
        &self.receiving
    }

    /// The current snapshot (a pointer copy).
    pub fn snapshot(&self) -> Arc<ChannelSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on every publication, for blocking playlist reloads.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ChannelSnapshot>> {
        self.snapshot.clone()
    }

    /// Whether this process writes the channel (in a cluster, the pod holding its lease serves from
    /// its own state; the others follow the shared timeline).
    pub fn is_owner(&self) -> bool {
        self.owner.load(Ordering::Relaxed)
    }

    pub async fn upload(&self, upload: Upload) -> Result<(), UploadError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Upload(upload, tx))
            .await
            .map_err(|_| UploadError::Invalid("channel is shutting down".into()))?;
        rx.await.map_err(|_| UploadError::Invalid("channel is shutting down".into()))?
    }

    /// Whether the media segment being uploaded at `path` continues a variant, so its chunks can
    /// be listed as LL-HLS parts as they arrive ([`ChannelHandle::chunk`]).
    pub async fn open_upload(&self, path: &str) -> Option<channel::OpenUpload> {
        if !self.is_owner() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::OpenUpload(path.to_owned(), tx)).await.ok()?;
        rx.await.ok().flatten()
    }

    /// The next chunk of an upload [`ChannelHandle::open_upload`] placed.
    pub async fn chunk(&self, open: &channel::OpenUpload, chunk: crate::packaging::fmp4::chunks::Chunk) {
        let arrived = std::time::SystemTime::now();
        let _ = self.commands.send(Command::Chunk(open.clone(), chunk, arrived)).await;
    }

    pub async fn forget(&self, path: String) {
        let _ = self.commands.send(Command::Forget(path)).await;
    }

    async fn request(&self, make: impl FnOnce(oneshot::Sender<()>) -> Command) -> Result<(), LiveError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| LiveError::Gone)?;
        rx.await.map_err(|_| LiveError::Gone)
    }
}

/// Bounds on live channels.
#[derive(Debug, Clone)]
pub struct LiveLimits {
    /// How many channels may exist (`live.max_channels`).
    pub max_channels: usize,
    pub channel: ChannelLimits,
}

/// What one channel may hold in memory.
#[derive(Debug, Clone)]
pub struct ChannelLimits {
    /// Its pending uploads, window and unstored segments (`ingest.max_channel_bytes`).
    pub bytes: u64,
    /// The ingest budget (`ingest.max_total_bytes`): the ingest tier charges the bodies it receives,
    /// and each channel charges the segments of its window, so all of ingest stays within it.
    pub ingest: Arc<ByteBudget>,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            max_channels: usize::MAX,
            channel: ChannelLimits { bytes: u64::MAX, ingest: ByteBudget::unlimited() },
        }
    }
}

struct Inner {
    storage: Arc<dyn Storage>,
    /// The control store shared with the other pods, in a cluster.
    cluster: Option<ControlStore>,
    channels: ArcSwap<HashMap<ChannelId, ChannelHandle>>,
    /// Serialises creating and removing channels (not on any request path of the edge).
    admin: Mutex<()>,
    limits: LiveLimits,
    /// Ids that neither the control store nor storage knew a moment ago (in a cluster).
    unknown: shared::Unknown,
}

/// All channels. Cheap to clone.
#[derive(Clone)]
pub struct LiveRegistry {
    inner: Arc<Inner>,
}

impl LiveRegistry {
    /// Loads every channel recorded in storage and starts their tasks.
    pub async fn load(storage: Arc<dyn Storage>, limits: LiveLimits) -> Result<LiveRegistry, StorageError> {
        Self::load_in_cluster(storage, limits, None).await
    }

    /// [`LiveRegistry::load`], sharing its channels and their timelines through `cluster` (when
    /// given) so every pod serves them.
    pub async fn load_in_cluster(
        storage: Arc<dyn Storage>,
        limits: LiveLimits,
        cluster: Option<ControlStore>,
    ) -> Result<LiveRegistry, StorageError> {
        let registry = LiveRegistry {
            inner: Arc::new(Inner {
                storage: storage.clone(),
                cluster,
                channels: ArcSwap::default(),
                admin: Mutex::new(()),
                limits,
                unknown: shared::Unknown::default(),
            }),
        };
        if registry.inner.cluster.is_some() {
            // The control store is the registry: a pod takes a channel when its encoder pushes here.
            tracing::info!("live channels are shared through the control store; taken on their first upload");
            tokio::spawn(shared::follow_records(Arc::downgrade(&registry.inner)));
            return Ok(registry);
        }
        store::migrate_legacy(storage.as_ref()).await?;
        let mut channels = HashMap::new();
        for id in store::channel_ids(storage.as_ref()).await? {
            let Some(mut record) = read_json::<ChannelRecord>(storage.as_ref(), &keys::channel(&id)).await? else {
                continue;
            };
            if record.token.is_some() {
                store::hash_clear_key(&mut record);
                write_json(storage.as_ref(), &keys::channel(&id), &record).await?;
            }
            let timeline: Option<TimelineRecord> = read_json(storage.as_ref(), &keys::timeline(&id)).await?;
            let state = match timeline {
                Some(t) => restore(storage.as_ref(), &record, t).await,
                None => ChannelState::new(id.clone(), record.settings.clone(), record::from_ms(record.created_ms)),
            };
            tracing::info!(channel = %id, next_msn = state.snapshot(SystemTime::now()).last_msn().map_or(0, |m| m + 1), "live channel restored");
            channels.insert(id.clone(), registry.spawn(state, &record));
        }
        registry.inner.channels.store(Arc::new(channels));
        Ok(registry)
    }

    pub fn get(&self, id: &str) -> Option<ChannelHandle> {
        self.inner.channels.load().get(id).cloned()
    }

    pub fn list(&self) -> Vec<ChannelHandle> {
        let mut all: Vec<_> = self.inner.channels.load().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Creates a channel. Returns it with its stream key in clear (generated when not given): the
    /// only time the key is seen, since only its hash is kept.
    pub async fn create(
        &self,
        id: &str,
        settings: ChannelSettings,
        stream_key: Option<String>,
    ) -> Result<(ChannelHandle, String), LiveError> {
        let id = ChannelId::parse(id).map_err(|e| LiveError::BadRequest(e.to_string()))?;
        settings.validate().map_err(|e| LiveError::BadRequest(e.to_string()))?;
        let stream_key = key::chosen_or_generated(stream_key)?;
        let _admin = self.inner.admin.lock().await;
        let existing = self.inner.channels.load();
        if existing.contains_key(&id) {
            return Err(LiveError::Exists(id));
        }
        let max = self.inner.limits.max_channels;
        // In a cluster the control store counts, in the same atomic step that creates.
        if existing.len() >= max && self.inner.cluster.is_none() {
            return Err(LiveError::TooMany(max));
        }
        let storage = self.inner.storage.clone();
        let now = SystemTime::now();
        let record = ChannelRecord {
            id: id.clone(),
            key_sha256: KeyHash::of(&stream_key).to_hex(),
            token: None,
            settings: settings.clone(),
            created_ms: record::ms(now),
            stopped: false,
        };
        if let Some(cluster) = &self.inner.cluster {
            match cluster.create_channel(&record, max).await? {
                crate::cluster::Creation::Created => {}
                crate::cluster::Creation::Exists => return Err(LiveError::Exists(id)),
                crate::cluster::Creation::TooMany => return Err(LiveError::TooMany(max)),
            }
        }
        write_json(storage.as_ref(), &keys::channel(&id), &record).await?;
        let handle = self.spawn(ChannelState::new(id.clone(), settings, now), &record);
        let mut map = HashMap::clone(&self.inner.channels.load());
        map.insert(id.clone(), handle.clone());
        self.write_index(&map).await?;
        self.inner.channels.store(Arc::new(map));
        tracing::info!(channel = %id, "live channel created");
        Ok((handle, stream_key))
    }

    /// Gives a channel a new stream key (generated when not given); the old one stops working at once
    /// here, and on the other pods when they hear of the change (pub/sub, or their next check).
    pub async fn rotate_key(&self, id: &str, stream_key: Option<String>) -> Result<String, LiveError> {
        let stream_key = key::chosen_or_generated(stream_key)?;
        let hash = KeyHash::of(&stream_key).to_hex();
        let record = self.change_record(id, |r| r.key_sha256.clone_from(&hash)).await?;
        self.apply_record(&record).await;
        tracing::info!(channel = %record.id, "stream key rotated");
        Ok(stream_key)
    }

    /// Ends a channel (`EXT-X-ENDLIST`); uploads are refused until it is started again. In a cluster
    /// the pod writing the channel ends it; with none, this pod ends its shared timeline.
    pub async fn stop(&self, id: &str) -> Result<(), LiveError> {
        let record = self.change_record(id, |r| r.stopped = true).await?;
        self.apply_record(&record).await;
        if let Some(cluster) = &self.inner.cluster
            && !self.get(id).is_some_and(|h| h.is_owner())
            && cluster.lease_holder(&record.id).await?.is_none()
        {
            shared::end_unowned(cluster, &record).await?;
        }
        Ok(())
    }

    pub async fn start(&self, id: &str) -> Result<(), LiveError> {
        let record = self.change_record(id, |r| r.stopped = false).await?;
        self.apply_record(&record).await;
        Ok(())
    }

    /// Changes a channel's record where it is kept (the control store, compare-and-set, in a cluster;
    /// else storage) and in storage; the record as written.
    async fn change_record(&self, id: &str, change: impl Fn(&mut ChannelRecord)) -> Result<ChannelRecord, LiveError> {
        let id = ChannelId::parse(id).map_err(|_| LiveError::NotFound)?;
        let _admin = self.inner.admin.lock().await;
        let storage = self.inner.storage.as_ref();
        let record = match &self.inner.cluster {
            Some(cluster) => cluster.update_channel(&id, &change).await?.ok_or(LiveError::NotFound)?,
            None => {
                self.get(id.as_str()).ok_or(LiveError::NotFound)?;
                let mut record =
                    read_json::<ChannelRecord>(storage, &keys::channel(&id)).await?.ok_or(LiveError::NotFound)?;
                change(&mut record);
                record
            }
        };
        write_json(storage, &keys::channel(&id), &record).await?;
        Ok(record)
    }

    /// Removes a channel, and with [`Removal::Purge`] its recorded segments. In a cluster the pods
    /// holding it drop it when they hear of it, and storage is cleared once the pod writing it let go.
    pub async fn remove(&self, id: &str, removal: Removal) -> Result<(), LiveError> {
        let id = ChannelId::parse(id).map_err(|_| LiveError::NotFound)?;
        let _admin = self.inner.admin.lock().await;
        let local = self.get(id.as_str());
        if let Some(cluster) = &self.inner.cluster {
            if !cluster.forget_channel(&id).await? && local.is_none() {
                return Err(LiveError::NotFound);
            }
        } else if local.is_none() {
            return Err(LiveError::NotFound);
        }
        if let Some(handle) = local {
            let _ = handle.request(|tx| Command::End(EndedBy::Operator, tx)).await;
            let mut map = HashMap::clone(&self.inner.channels.load());
            map.remove(&handle.id);
            self.write_index(&map).await?;
            self.inner.channels.store(Arc::new(map));
            // The channel's task writes its timeline when it ends: wait for that, so nothing it writes
            // lands after the deletes below.
            let _ = handle.request(Command::Retire).await;
        }
        if let Some(cluster) = &self.inner.cluster {
            shared::wait_for_release(cluster, &id).await;
        }
        let storage = self.inner.storage.as_ref();
        let purge = removal == Removal::Purge;
        if purge {
            for prefix in [format!("live/{id}/"), keys::records(&id)] {
                for object in storage.list(&prefix).await? {
                    storage.delete(&object.key).await?;
                }
            }
        } else {
            storage.delete(&keys::channel(&id)).await?;
        }
        tracing::info!(channel = %id, purge, "live channel removed");
        Ok(())
    }

    /// Starts a channel's task.
    fn spawn(&self, state: ChannelState, record: &ChannelRecord) -> ChannelHandle {
        let inner = &self.inner;
        spawn(state, record, inner.storage.clone(), inner.limits.channel.clone(), inner.cluster.clone())
    }

    /// The control store shared with the other pods, in a cluster.
    pub fn cluster(&self) -> Option<&ControlStore> {
        self.inner.cluster.as_ref()
    }

    async fn write_index(&self, map: &HashMap<ChannelId, ChannelHandle>) -> Result<(), StorageError> {
        if self.inner.cluster.is_some() {
            // Each pod holds some channels: the control store is the index.
            return Ok(());
        }
        let mut channels: Vec<ChannelId> = map.keys().cloned().collect();
        channels.sort();
        write_json(self.inner.storage.as_ref(), &keys::index(), &ChannelIndex { channels }).await
    }

    /// Persists every channel's timeline (graceful shutdown).
    pub async fn flush(&self) {
        for handle in self.list() {
            let _ = handle.request(Command::Flush).await;
        }
    }
}

fn spawn(
    state: ChannelState,
    record: &ChannelRecord,
    storage: Arc<dyn Storage>,
    limits: ChannelLimits,
    cluster: Option<ControlStore>,
) -> ChannelHandle {
    let (publish, snapshot) = watch::channel(Arc::new(state.snapshot(SystemTime::now())));
    let (commands, rx) = mpsc::channel(256);
    let id = state.id.clone();
    let owner = Arc::new(AtomicBool::new(cluster.is_none()));
    let receiving = ByteBudget::new(limits.bytes, std::time::Duration::ZERO);
    let sinks = actor::Sinks { limits, storage, cluster, owner: owner.clone() };
    tokio::spawn(actor::run(state, sinks, publish, rx));
    let key = KeyHash::from_hex(&record.key_sha256).unwrap_or_else(|| {
        tracing::warn!(channel = %id, "the channel's record has no stream key hash; rotate its key to push again");
        KeyHash::unusable()
    });
    ChannelHandle { id, key, created_ms: record.created_ms, snapshot, commands, owner, receiving }
}
