//! The owner of one channel's state: a task that applies uploads and commands in order, publishes a
//! snapshot after every change, writes segments through to storage and persists the timeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::ChannelLimits;
use super::channel::{ChannelState, DropReason, Effect, OpenUpload};
use super::keys;
use super::model::ChannelSnapshot;
use super::record::{TimelineProgress, TimelineRecord};
use super::role::{Role, Verdict};
use super::store::read_json;
use super::upload::{Upload, UploadError};
use crate::cluster::ControlStore;
use crate::packaging::fmp4::chunks::Chunk;
use crate::storage::{Storage, StorageKey};

/// How often the timeline is written at most, and how often idle channels are checked.
const TICK: Duration = Duration::from_secs(1);
/// Segment writes in flight per channel.
const WRITES_IN_FLIGHT: usize = 8;

pub(super) enum Command {
    Upload(Upload, oneshot::Sender<Result<(), UploadError>>),
    /// Does this segment upload continue a variant (its chunks become parts)?
    OpenUpload(String, oneshot::Sender<Option<OpenUpload>>),
    /// The next chunk of such an upload.
    /// A chunk of an upload in progress, and when it arrived whole.
    Chunk(OpenUpload, Chunk, SystemTime),
    Forget(String),
    /// End the channel; `true` when an operator stopped it (uploads refused).
    End(bool, oneshot::Sender<()>),
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

/// Runs until every command sender is gone, then persists a last time.
pub(super) async fn run(
    mut state: ChannelState,
    sinks: Sinks,
    publish: watch::Sender<Arc<ChannelSnapshot>>,
    mut commands: mpsc::Receiver<Command>,
) {
    let Sinks { limits, storage, cluster, owner } = sinks;
    let mut role = Role::new(cluster.clone(), owner, state.settings.target_duration, storage.clone());
    // In a cluster, the timeline other pods serve is shared after every publication and every
    // segment that reaches storage (they read segments from there).
    let (shared_tx, shared_rx) = watch::channel::<Option<Arc<TimelineRecord>>>(None);
    let owner_url = cluster.as_ref().and_then(|c| c.internal_url().map(str::to_owned));
    let sharer = cluster.map(|c| tokio::spawn(share_timelines(c, state.id.clone(), shared_rx)));
    let mut share = sharer.is_some();
    let (stored_tx, mut stored_rx) = mpsc::unbounded_channel::<(u64, usize)>();
    let writes = Arc::new(Semaphore::new(WRITES_IN_FLIGHT));
    let (timeline_tx, timeline_rx) = watch::channel::<Option<(u64, Bytes, TimelineProgress)>>(None);
    let (written_tx, written_rx) = watch::channel(0u64);
    let persister =
        tokio::spawn(persist_timelines(storage.clone(), keys::timeline(&state.id), timeline_rx, written_tx));
    let mut sequence = 0u64;
    let mut published = state.version;
    let mut dirty = false;
    let mut last_persist = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retired = None;
    let mut discarded = false;
    // The window's segments, charged to the ingest budget; uploads wait for room when it is full.
    let mut window = limits.ingest.nothing();
    let mut ingest_full = false;
    loop {
        let mut flush = None;
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(Command::Upload(upload, reply)) => {
                    match role.admit(&mut state, &upload).await {
                        Verdict::Apply => {}
                        Verdict::Standby => {
                            let _ = reply.send(Ok(()));
                            continue;
                        }
                        Verdict::Refuse => {
                            let _ = reply.send(Err(UploadError::OwnedElsewhere));
                            continue;
                        }
                    }
                    let (held, limit) = (state.held_bytes(), limits.bytes);
                    let result = if upload.size() > 0 && held + upload.size() > limit {
                        Err(UploadError::Full { held, limit })
                    } else if upload.size() > 0 && ingest_full {
                        Err(UploadError::IngestFull { limit: limits.ingest.limit() })
                    } else {
                        state.apply(upload, SystemTime::now())
                    };
                    match result {
                        Ok(effects) => {
                            execute(&storage, &writes, &stored_tx, effects, &state);
                            let _ = reply.send(Ok(()));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Some(Command::OpenUpload(path, reply)) => {
                    let open = role.is_owner().then(|| state.open_upload(&path)).flatten();
                    let _ = reply.send(open);
                }
                Some(Command::Chunk(open, chunk, arrived)) => {
                    state.on_chunk(&open, &chunk, arrived, SystemTime::now());
                }
                Some(Command::Forget(path)) => state.delete(&path),
                Some(Command::End(by_operator, reply)) => {
                    state.end(by_operator);
                    flush = Some(reply);
                }
                Some(Command::Resume(reply)) => {
                    state.resume();
                    dirty = true;
                    let _ = reply.send(());
                }
                Some(Command::Flush(reply)) => flush = Some(reply),
                Some(Command::Retire(reply)) => {
                    retired = Some(reply);
                    break;
                }
                Some(Command::Discard(reply)) => {
                    retired = Some(reply);
                    discarded = true;
                    break;
                }
            },
            Some((msn, rendition)) = stored_rx.recv() => {
                state.mark_stored(msn, rendition);
                share = sharer.is_some();
            }
            _ = ticker.tick() => {
                state.tick(SystemTime::now());
                role.renew(&state).await;
            }
        }
        let in_memory = state.window_bytes();
        if in_memory > window.bytes() {
            ingest_full = window.grow(in_memory - window.bytes()).is_err();
        } else {
            window.shrink_to(in_memory);
            ingest_full = false;
        }
        if state.version != published {
            publish.send_replace(Arc::new(state.snapshot(SystemTime::now())));
            published = state.version;
            dirty = true;
            share = sharer.is_some();
        }
        // In a cluster only the pod holding the lease writes the channel.
        share &= role.is_owner();
        dirty &= role.is_owner();
        if share {
            shared_tx.send_replace(Some(Arc::new(state.to_shared_record(owner_url.as_deref()))));
            share = false;
        }
        if (dirty && last_persist.elapsed() >= TICK) || flush.is_some() {
            let record = state.to_record();
            if let Ok(json) = serde_json::to_vec(&record) {
                sequence += 1;
                timeline_tx.send_replace(Some((sequence, json.into(), record.progress())));
            }
            dirty = false;
            last_persist = Instant::now();
        }
        if let Some(reply) = flush {
            // Answer once the newest timeline is in storage (or after a bounded wait).
            let mut written = written_rx.clone();
            let target = sequence;
            let _ = tokio::time::timeout(Duration::from_secs(10), written.wait_for(|&w| w >= target)).await;
            let _ = reply.send(());
        }
    }
    let record = state.to_record();
    if role.is_owner()
        && !discarded
        && let Ok(json) = serde_json::to_vec(&record)
    {
        timeline_tx.send_replace(Some((sequence + 1, json.into(), record.progress())));
    }
    role.release(&state).await;
    drop(timeline_tx);
    drop(shared_tx);
    let _ = persister.await;
    if let Some(sharer) = sharer {
        let _ = sharer.await;
    }
    if let Some(reply) = retired {
        let _ = reply.send(());
    }
}

/// Writes the newest timeline whenever it changes: older versions are skipped, never written after
/// newer ones, and never over a stored timeline that got further (another process writing the
/// channel; see [`TimelineProgress::may_replace`]).
async fn persist_timelines(
    storage: Arc<dyn Storage>,
    key: crate::storage::StorageKey,
    mut rx: watch::Receiver<Option<(u64, Bytes, TimelineProgress)>>,
    written: watch::Sender<u64>,
) {
    let mut last = 0;
    loop {
        let next = rx.borrow_and_update().clone();
        if let Some((sequence, json, progress)) = next
            && sequence > last
        {
            write_timeline(storage.as_ref(), &key, json, progress).await;
            last = sequence;
            written.send_replace(sequence);
        }
        if rx.changed().await.is_err() {
            // The channel task is gone: write its last word.
            let final_word = rx.borrow().clone();
            if let Some((sequence, json, progress)) = final_word
                && sequence > last
            {
                write_timeline(storage.as_ref(), &key, json, progress).await;
            }
            return;
        }
    }
}

/// Writes a timeline unless the stored one got further. Read, compare, write: two processes writing
/// the same channel at the same instant can still race; the cluster's control store (issue 11)
/// makes it a compare-and-set.
async fn write_timeline(storage: &dyn Storage, key: &StorageKey, json: Bytes, progress: TimelineProgress) {
    match read_json::<TimelineProgress>(storage, key).await {
        Ok(Some(stored)) if !progress.may_replace(stored) => {
            STALE_TIMELINES.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                %key,
                ours = progress.next_msn,
                stored = stored.next_msn,
                "not writing the live timeline over one that got further (another process writes this channel)"
            );
            return;
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(%key, error = %e, "could not read the stored timeline before writing it"),
    }
    if let Err(e) = storage.put(key, json).await {
        tracing::warn!(%key, error = %e, "could not persist the live timeline");
    }
}

/// Shares the newest timeline whenever it changes (older ones are skipped); a failed write is logged
/// and the next change tries again.
async fn share_timelines(
    cluster: ControlStore,
    id: crate::live::model::ChannelId,
    mut rx: watch::Receiver<Option<Arc<TimelineRecord>>>,
) {
    loop {
        let next = rx.borrow_and_update().clone();
        // Serialised here, off the channel's task: the whole timeline (a pod taking the channel over
        // reads it) and its tail (what following pods read on each announcement).
        let encoded = next.map(|r| {
            Ok::<_, serde_json::Error>((serde_json::to_vec(&*r)?, serde_json::to_vec(&r.tail())?, r.progress()))
        });
        if let Some(Ok((json, tail, progress))) = encoded {
            match cluster.share_timeline(&id, &json, &tail, progress).await {
                Ok(true) => {}
                Ok(false) => {
                    STALE_TIMELINES.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(channel = %id, "the shared timeline got further: another pod writes this channel");
                }
                Err(e) => tracing::warn!(channel = %id, error = %e, "could not share the live timeline"),
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Timeline writes refused because the stored timeline got further.
pub(super) static STALE_TIMELINES: AtomicU64 = AtomicU64::new(0);

/// Live write-through figures, for stats and metrics.
#[derive(Debug, Default)]
pub(super) struct WriteThroughStats {
    pub stored: AtomicU64,
    /// Attempts that failed and were tried again.
    pub retries: AtomicU64,
    /// Segments given up on: they left the DVR window before storage took them.
    pub abandoned: AtomicU64,
}

pub(super) static WRITE_THROUGH: WriteThroughStats =
    WriteThroughStats { stored: AtomicU64::new(0), retries: AtomicU64::new(0), abandoned: AtomicU64::new(0) };

/// Pushed segments that were never committed, by [`DropReason`] (in [`DropReason::ALL`] order).
pub(super) static DROPPED: [AtomicU64; DropReason::ALL.len()] = [const { AtomicU64::new(0) }; DropReason::ALL.len()];

/// How many segments were dropped for `reason`.
pub(super) fn dropped(reason: DropReason) -> u64 {
    DropReason::ALL.iter().position(|r| *r == reason).map_or(0, |i| DROPPED[i].load(Ordering::Relaxed))
}

/// First wait before a failed write is tried again; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

fn execute(
    storage: &Arc<dyn Storage>,
    writes: &Arc<Semaphore>,
    stored: &mpsc::UnboundedSender<(u64, usize)>,
    effects: Vec<Effect>,
    state: &ChannelState,
) {
    let dvr = state.settings.dvr;
    for effect in effects {
        if let Effect::Dropped { segment, reason } = &effect {
            if let Some(i) = DropReason::ALL.iter().position(|r| r == reason) {
                DROPPED[i].fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(channel = %state.id, %segment, reason = reason.as_str(), "dropped a pushed segment: {reason}");
            continue;
        }
        let (storage, writes, stored) = (storage.clone(), writes.clone(), stored.clone());
        tokio::spawn(async move {
            match effect {
                Effect::Put { key, body, part } => {
                    if write_through(storage.as_ref(), &writes, &key, body, Instant::now() + dvr).await
                        && let Some(part) = part
                    {
                        let _ = stored.send(part);
                    }
                }
                Effect::Delete { key } => {
                    let Ok(_permit) = writes.acquire().await else { return };
                    if let Err(e) = storage.delete(&key).await {
                        tracing::debug!(%key, error = %e, "could not delete an expired live object");
                    }
                }
                Effect::Dropped { .. } => {}
            }
        });
    }
}

/// Writes a segment, retrying with backoff until it is stored (true) or `give_up` comes, when it has
/// left the DVR window and nobody can ask for it (false). The write slot is held only while a write runs.
async fn write_through(
    storage: &dyn Storage,
    writes: &Semaphore,
    key: &StorageKey,
    body: Bytes,
    give_up: Instant,
) -> bool {
    let mut wait = RETRY_FIRST;
    loop {
        let result = {
            let Ok(_permit) = writes.acquire().await else { return false };
            storage.put(key, body.clone()).await
        };
        let Err(e) = result else {
            WRITE_THROUGH.stored.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        if Instant::now() + wait >= give_up {
            WRITE_THROUGH.abandoned.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%key, error = %e, "live write-through abandoned: the segment left the DVR window unstored");
            return false;
        }
        WRITE_THROUGH.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%key, error = %e, retry_in_ms = wait.as_millis() as u64, "live write-through failed; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}
