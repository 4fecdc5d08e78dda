//! The owner of one channel's state: a task that applies uploads and commands in order, publishes a
//! snapshot after every change, writes segments through to storage and persists the timeline
//! ([`writes`]). Its loop only waits; each event has a handler on [`ChannelTask`].

mod writes;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::ChannelLimits;
use super::channel::{ChannelState, EndedBy, OpenUpload};
use super::keys;
use super::model::ChannelSnapshot;
use super::record::{TimelineProgress, TimelineRecord};
use super::role::{Role, Verdict};
use super::upload::{Upload, UploadError};
use crate::budget::Charge;
use crate::cluster::ControlStore;
use crate::packaging::fmp4::chunks::Chunk;
use crate::storage::Storage;
pub(super) use writes::{STALE_TIMELINES, WRITE_THROUGH, dropped};

/// How often the timeline is written at most, and how often idle channels are checked.
const TICK: Duration = Duration::from_secs(1);
/// Segment writes in flight per channel.
const WRITES_IN_FLIGHT: usize = 8;
/// Longest a flush waits for the newest timeline to reach storage.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

pub(super) enum Command {
    Upload(Upload, oneshot::Sender<Result<(), UploadError>>),
    /// Does this segment upload continue a variant (its chunks become parts)?
    OpenUpload(String, oneshot::Sender<Option<OpenUpload>>),
    /// A chunk of an upload in progress, and when it arrived whole.
    Chunk(OpenUpload, Chunk, SystemTime),
    Forget(String),
    /// End the channel, by the encoder's silence or by an operator.
    End(EndedBy, oneshot::Sender<()>),
    Resume(oneshot::Sender<()>),
    /// Persist everything now (shutdown, delete).
    Flush(oneshot::Sender<()>),
    /// Persist a last time and stop (the channel was removed); answered once nothing more will be written.
    Retire(oneshot::Sender<()>),
    /// Stop without writing anything more (another pod deleted the channel); answered once stopped.
    Discard(oneshot::Sender<()>),
}

/// Where a channel's task sends what it produces, and its bounds.
pub(super) struct Sinks {
    pub limits: ChannelLimits,
    pub storage: Arc<dyn Storage>,
    /// The control store the other pods serve the channel from, in a cluster.
    pub cluster: Option<ControlStore>,
    /// Whether this pod writes the channel (shared with its handle).
    pub owner: Arc<AtomicBool>,
}

/// What the loop does after a handler.
enum Next {
    /// Publish, share and persist whatever changed.
    Settle,
    /// Nothing changed that others may see yet (a standby pod's or a refused upload).
    Wait,
    /// Settle, persist now and answer once the timeline is in storage.
    Flush(oneshot::Sender<()>),
    /// Stop: persist a last time unless discarded, then answer.
    Stop { reply: Option<oneshot::Sender<()>>, discard: bool },
}

/// A timeline to write, numbered so an older one is never written after a newer one.
type TimelineWrite = Option<(u64, Bytes, TimelineProgress)>;

/// One channel's task: its state and everything it hands to storage and the cluster.
struct ChannelTask {
    state: ChannelState,
    limits: ChannelLimits,
    storage: Arc<dyn Storage>,
    role: Role,
    publish: watch::Sender<Arc<ChannelSnapshot>>,
    /// The state's version the edge's snapshot shows.
    published: u64,
    /// The timeline other pods serve from, shared after every publication and every segment that
    /// reaches storage (they read segments from there); `None` outside a cluster.
    shared: Option<watch::Sender<Option<Arc<TimelineRecord>>>>,
    owner_url: Option<String>,
    share: bool,
    writes: Arc<Semaphore>,
    stored: mpsc::UnboundedSender<(u64, usize)>,
    timeline: watch::Sender<TimelineWrite>,
    written: watch::Receiver<u64>,
    sequence: u64,
    dirty: bool,
    last_persist: Instant,
    /// The window's segments, charged to the ingest budget; uploads wait for room when it is full.
    window: Charge,
    ingest_full: bool,
}

/// Runs until every command sender is gone, then persists a last time.
pub(super) async fn run(
    state: ChannelState,
    sinks: Sinks,
    publish: watch::Sender<Arc<ChannelSnapshot>>,
    mut commands: mpsc::Receiver<Command>,
) {
    let Sinks { limits, storage, cluster, owner } = sinks;
    let role = Role::new(cluster.clone(), owner, state.settings.target_duration, storage.clone());
    let (shared_tx, shared_rx) = watch::channel(None);
    let owner_url = cluster.as_ref().and_then(|c| c.internal_url().map(str::to_owned));
    let sharer = cluster.map(|c| tokio::spawn(writes::share_timelines(c, state.id.clone(), shared_rx)));
    let (stored, mut stored_rx) = mpsc::unbounded_channel();
    let (timeline, timeline_rx) = watch::channel(None);
    let (written_tx, written) = watch::channel(0u64);
    let key = keys::timeline(&state.id);
    let persister = tokio::spawn(writes::persist_timelines(storage.clone(), key, timeline_rx, written_tx));
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut task = ChannelTask {
        published: state.version,
        window: limits.ingest.nothing(),
        state,
        limits,
        storage,
        role,
        publish,
        share: sharer.is_some(),
        shared: sharer.is_some().then_some(shared_tx),
        owner_url,
        writes: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
        stored,
        timeline,
        written,
        sequence: 0,
        dirty: false,
        last_persist: Instant::now(),
        ingest_full: false,
    };
    let (reply, discard) = loop {
        let next = tokio::select! {
            command = commands.recv() => match command {
                None => Next::Stop { reply: None, discard: false },
                Some(command) => task.on_command(command).await,
            },
            Some((msn, rendition)) = stored_rx.recv() => task.on_stored(msn, rendition),
            _ = ticker.tick() => task.on_tick().await,
        };
        match next {
            Next::Wait => {}
            Next::Settle => task.settle(false),
            Next::Flush(reply) => {
                task.settle(true);
                task.wait_written().await;
                let _ = reply.send(());
            }
            Next::Stop { reply, discard } => break (reply, discard),
        }
    };
    task.finish(discard).await;
    let _ = persister.await;
    if let Some(sharer) = sharer {
        let _ = sharer.await;
    }
    if let Some(reply) = reply {
        let _ = reply.send(());
    }
}

impl ChannelTask {
    async fn on_command(&mut self, command: Command) -> Next {
        match command {
            Command::Upload(upload, reply) => return self.on_upload(upload, reply).await,
            Command::OpenUpload(path, reply) => {
                let open = self.role.is_owner().then(|| self.state.open_upload(&path)).flatten();
                let _ = reply.send(open);
            }
            Command::Chunk(open, chunk, arrived) => {
                self.state.on_chunk(&open, &chunk, arrived, SystemTime::now());
            }
            Command::Forget(path) => self.state.delete(&path),
            Command::End(by, reply) => {
                self.state.end(by);
                return Next::Flush(reply);
            }
            Command::Resume(reply) => {
                self.state.resume();
                self.dirty = true;
                let _ = reply.send(());
            }
            Command::Flush(reply) => return Next::Flush(reply),
            Command::Retire(reply) => return Next::Stop { reply: Some(reply), discard: false },
            Command::Discard(reply) => return Next::Stop { reply: Some(reply), discard: true },
        }
        Next::Settle
    }

    /// Applies an upload within the channel's and the ingest's bounds, unless another pod owns the
    /// channel, and writes what it commits through.
    async fn on_upload(&mut self, upload: Upload, reply: oneshot::Sender<Result<(), UploadError>>) -> Next {
        match self.role.admit(&mut self.state, &upload).await {
            Verdict::Apply => {}
            Verdict::Standby => {
                let _ = reply.send(Ok(()));
                return Next::Wait;
            }
            Verdict::Refuse => {
                let _ = reply.send(Err(UploadError::OwnedElsewhere));
                return Next::Wait;
            }
        }
        let (held, limit) = (self.state.held_bytes(), self.limits.bytes);
        let result = if upload.size() > 0 && held + upload.size() > limit {
            Err(UploadError::Full { held, limit })
        } else if upload.size() > 0 && self.ingest_full {
            Err(UploadError::IngestFull { limit: self.limits.ingest.limit() })
        } else {
            self.state.apply(upload, SystemTime::now())
        };
        let _ = reply.send(result.map(|effects| {
            writes::execute(&self.storage, &self.writes, &self.stored, effects, &self.state);
        }));
        Next::Settle
    }

    /// A part reached storage: its bytes may leave memory, and other pods may list it.
    fn on_stored(&mut self, msn: u64, rendition: usize) -> Next {
        self.state.mark_stored(msn, rendition);
        self.share = self.shared.is_some();
        Next::Settle
    }

    async fn on_tick(&mut self) -> Next {
        self.state.tick(SystemTime::now());
        self.role.renew(&self.state).await;
        Next::Settle
    }

    /// After a change: the window's charge follows its bytes, a new version is published, shared
    /// and persisted (at most once a [`TICK`] unless `now`). In a cluster only the pod holding the
    /// lease shares and writes the channel.
    fn settle(&mut self, now: bool) {
        let in_memory = self.state.window_bytes();
        if in_memory > self.window.bytes() {
            self.ingest_full = self.window.grow(in_memory - self.window.bytes()).is_err();
        } else {
            self.window.shrink_to(in_memory);
            self.ingest_full = false;
        }
        if self.state.version != self.published {
            self.publish.send_replace(Arc::new(self.state.snapshot(SystemTime::now())));
            self.published = self.state.version;
            self.dirty = true;
            self.share = self.shared.is_some();
        }
        let owner = self.role.is_owner();
        self.share &= owner;
        self.dirty &= owner;
        if let Some(shared) = self.shared.as_ref().filter(|_| self.share) {
            shared.send_replace(Some(Arc::new(self.state.to_shared_record(self.owner_url.as_deref()))));
            self.share = false;
        }
        if (self.dirty && self.last_persist.elapsed() >= TICK) || now {
            let record = self.state.to_record();
            if let Ok(json) = serde_json::to_vec(&record) {
                self.sequence += 1;
                self.timeline.send_replace(Some((self.sequence, json.into(), record.progress())));
            }
            self.dirty = false;
            self.last_persist = Instant::now();
        }
    }

    /// Waits until the newest timeline is in storage (or [`FLUSH_WAIT`] has passed).
    async fn wait_written(&self) {
        let mut written = self.written.clone();
        let target = self.sequence;
        let _ = tokio::time::timeout(FLUSH_WAIT, written.wait_for(|&w| w >= target)).await;
    }

    /// The task's last word: the timeline once more (unless discarded or not the owner), the lease
    /// released, the writers told nothing more comes.
    async fn finish(self, discard: bool) {
        let record = self.state.to_record();
        if self.role.is_owner()
            && !discard
            && let Ok(json) = serde_json::to_vec(&record)
        {
            self.timeline.send_replace(Some((self.sequence + 1, json.into(), record.progress())));
        }
        self.role.release(&self.state).await;
    }
}
