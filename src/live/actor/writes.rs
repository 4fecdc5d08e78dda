//! What a channel's task hands to other tasks: segments written through to storage with retries,
//! expired objects deleted, the timeline persisted and shared with the cluster, newest first; and
//! the counters of those writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, watch};

use super::super::channel::{ChannelState, DropReason, Effect};
use super::super::model::ChannelId;
use super::super::record::{TimelineProgress, TimelineRecord};
use super::super::store::read_json;
use crate::cluster::ControlStore;
use crate::storage::{Storage, StorageKey};

/// Writes the newest timeline whenever it changes: older versions are skipped, never written after
/// newer ones, and never over a stored timeline that got further (another process writing the
/// channel; see [`TimelineProgress::may_replace`]).
pub(super) async fn persist_timelines(
    storage: Arc<dyn Storage>,
    key: StorageKey,
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
pub(super) async fn share_timelines(
    cluster: ControlStore,
    id: ChannelId,
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
pub(in crate::live) static STALE_TIMELINES: AtomicU64 = AtomicU64::new(0);

/// Live write-through figures, for stats and metrics.
#[derive(Debug, Default)]
pub(in crate::live) struct WriteThroughStats {
    pub stored: AtomicU64,
    /// Attempts that failed and were tried again.
    pub retries: AtomicU64,
    /// Segments given up on: they left the DVR window before storage took them.
    pub abandoned: AtomicU64,
}

pub(in crate::live) static WRITE_THROUGH: WriteThroughStats =
    WriteThroughStats { stored: AtomicU64::new(0), retries: AtomicU64::new(0), abandoned: AtomicU64::new(0) };

/// Pushed segments that were never committed, by [`DropReason`] (in [`DropReason::ALL`] order).
static DROPPED: [AtomicU64; DropReason::ALL.len()] = [const { AtomicU64::new(0) }; DropReason::ALL.len()];

/// How many segments were dropped for `reason`.
pub(in crate::live) fn dropped(reason: DropReason) -> u64 {
    DropReason::ALL.iter().position(|r| *r == reason).map_or(0, |i| DROPPED[i].load(Ordering::Relaxed))
}

/// First wait before a failed write is tried again; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Carries out a commit's effects: writes and deletes in tasks of their own (at most
/// [`super::WRITES_IN_FLIGHT`] at a time), drops counted and logged.
pub(super) fn execute(
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
