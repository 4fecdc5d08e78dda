//! Serving a channel another pod takes the stream of (in a cluster): its snapshot is rebuilt from the
//! timeline shared in the control store whenever the owner announces a publication, so playlists
//! here follow the owner's and blocked `_HLS_msn` requests release on its publications. The shared
//! timeline lists only stored segments; those the owner still holds are read from its memory first
//! ([`super::owner`]), the others from storage.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;

use super::channel::ChannelState;
use super::model::{ChannelId, ChannelSnapshot};
use super::record::{TimelineRecord, from_ms, ms};
use crate::cluster::{ClusterError, ControlStore};

/// How often the shared timeline is read again without an announcement (one missed while
/// reconnecting, say).
const REFRESH: Duration = Duration::from_secs(5);
/// A followed channel whose shared timeline could not be read for this long is answered 503: its
/// players retry rather than play a window that no longer moves.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// A channel this pod follows: its snapshots, and when the control store last answered for it.
#[derive(Clone)]
pub struct Followed {
    pub snapshots: watch::Receiver<Arc<ChannelSnapshot>>,
    confirmed: Arc<AtomicU64>,
}

/// Stamped into `confirmed` when the control store says the channel is gone (deleted).
const GONE: u64 = u64::MAX;

impl Followed {
    pub fn new(snapshots: watch::Receiver<Arc<ChannelSnapshot>>) -> Followed {
        Followed { snapshots, confirmed: Arc::new(AtomicU64::new(now_ms())) }
    }

    /// What the follower's task stamps each time the control store answers.
    pub fn confirmed(&self) -> Arc<AtomicU64> {
        self.confirmed.clone()
    }

    /// Whether the control store has not answered for [`STALE_AFTER`].
    pub fn is_stale(&self) -> bool {
        now_ms().saturating_sub(self.confirmed.load(Ordering::Relaxed)) > STALE_AFTER.as_millis() as u64
    }

    /// Whether the channel was deleted (its follower has stopped).
    pub fn is_gone(&self) -> bool {
        self.confirmed.load(Ordering::Relaxed) == GONE
    }
}

fn now_ms() -> u64 {
    ms(SystemTime::now())
}

/// Followers' figures for metrics: channels followed, and how long after the owner took an upload
/// a pod following it published the playlist with it (sum, count, max in microseconds).
#[derive(Debug, Default)]
pub(super) struct FollowStats {
    pub followed: AtomicU64,
    pub delay_micros: AtomicU64,
    pub delays: AtomicU64,
    pub max_delay_micros: AtomicU64,
    /// Delays at most [`DELAY_BUCKETS`]`[i]` seconds (not cumulative; the last is everything above).
    pub buckets: [AtomicU64; DELAY_BUCKETS.len() + 1],
    /// Shared timelines read whole (first follow, missed announcements) and as tails.
    pub full_reads: AtomicU64,
    pub tail_reads: AtomicU64,
}

/// Upper bounds (seconds) of the delay histogram's buckets.
pub(super) const DELAY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub(super) static FOLLOW: FollowStats = FollowStats {
    followed: AtomicU64::new(0),
    delay_micros: AtomicU64::new(0),
    delays: AtomicU64::new(0),
    max_delay_micros: AtomicU64::new(0),
    buckets: [const { AtomicU64::new(0) }; DELAY_BUCKETS.len() + 1],
    full_reads: AtomicU64::new(0),
    tail_reads: AtomicU64::new(0),
};

/// Set in the version of every followed snapshot.
pub const FOLLOWED: u64 = 1 << 63;
/// Wait before subscribing again after the control store failed.
const RETRY: Duration = Duration::from_secs(1);

/// The channel's snapshot as the control store has it; `None` when no pod shares such a channel.
pub async fn snapshot(cluster: &ControlStore, id: &ChannelId) -> Result<Option<ChannelSnapshot>, ClusterError> {
    snapshot_since(cluster, id, &mut None).await
}

/// [`snapshot`], reading only the timeline's tail when `known` (the whole timeline as last read,
/// updated here) is what it follows on from.
async fn snapshot_since(
    cluster: &ControlStore,
    id: &ChannelId,
    known: &mut Option<TimelineRecord>,
) -> Result<Option<ChannelSnapshot>, ClusterError> {
    let Some(record) = cluster.channel(id).await? else { return Ok(None) };
    let merged = match known.take() {
        Some(base) => {
            FOLLOW.tail_reads.fetch_add(1, Ordering::Relaxed);
            cluster.timeline_tail(id).await?.and_then(|tail| TimelineRecord::merge_tail(base, tail))
        }
        None => None,
    };
    let timeline = match merged {
        Some(t) => Some(t),
        None => {
            FOLLOW.full_reads.fetch_add(1, Ordering::Relaxed);
            cluster.timeline(id).await?
        }
    };
    let mut owner_url = None;
    let mut parts = None;
    let state = match timeline {
        // Init and media segments are read from the owner or storage, so none are held here.
        Some(timeline) => {
            owner_url = timeline.owner_url.as_deref().map(Arc::from);
            parts = timeline.low_latency.as_ref().map(|p| Arc::new(p.to_low_latency()));
            let state = ChannelState::restore(&record, &timeline, |_, _| None, |_| None);
            *known = Some(timeline);
            state
        }
        None => ChannelState::new(id.clone(), record.settings.clone(), from_ms(record.created_ms)),
    };
    let mut snap = state.snapshot(SystemTime::now());
    snap.version |= FOLLOWED;
    snap.owner_url = owner_url;
    // LL-HLS parts are listed here while the owner holds them; their bytes are read from it.
    snap.low_latency = parts.filter(|_| snap.owner_url.is_some()).unwrap_or_default();
    Ok(Some(snap))
}

/// Keeps `tx` on the shared timeline until the process ends: on every announcement, and every
/// [`REFRESH`] in case one was missed.
pub async fn follow(
    cluster: ControlStore,
    id: ChannelId,
    tx: watch::Sender<Arc<ChannelSnapshot>>,
    confirmed: Arc<AtomicU64>,
) {
    let tx = Target { tx, confirmed };
    FOLLOW.followed.fetch_add(1, Ordering::Relaxed);
    loop {
        let mut pubsub = match cluster.subscribe(&id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel = %id, error = %e, "cannot subscribe to the channel's publications");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut messages = pubsub.on_message();
        // The whole timeline is read again after every (re)subscription: announcements may have been
        // missed meanwhile.
        let mut known = None;
        let mut gone = !refresh(&cluster, &id, &tx, &mut known).await;
        while !gone {
            gone = !tokio::select! {
                message = messages.next() => match message {
                    Some(_) => refresh(&cluster, &id, &tx, &mut known).await,
                    None => break,
                },
                _ = tokio::time::sleep(REFRESH) => refresh(&cluster, &id, &tx, &mut known).await,
            };
        }
        if gone {
            tx.confirmed.store(GONE, Ordering::Relaxed);
            FOLLOW.followed.fetch_sub(1, Ordering::Relaxed);
            tracing::info!(channel = %id, "the followed channel was deleted");
            return;
        }
        tracing::warn!(channel = %id, "lost the subscription to the channel's publications; subscribing again");
    }
}

/// Where a follower publishes, and when the control store last answered.
struct Target {
    tx: watch::Sender<Arc<ChannelSnapshot>>,
    confirmed: Arc<AtomicU64>,
}

/// Reads the shared timeline and publishes it here when it changed; false once the channel is gone.
async fn refresh(cluster: &ControlStore, id: &ChannelId, target: &Target, known: &mut Option<TimelineRecord>) -> bool {
    let mut snap = match snapshot_since(cluster, id, known).await {
        Ok(Some(snap)) => snap,
        // Gone when deleted; a control store that restarted empty gets the record back from the pod
        // holding the channel within seconds, so until then this is a control store not answering.
        Ok(None) => return !cluster.is_deleted(id).await.unwrap_or(false),
        Err(e) => {
            tracing::warn!(channel = %id, error = %e, "cannot read the shared timeline");
            return true;
        }
    };
    target.confirmed.store(now_ms(), Ordering::Relaxed);
    let tx = &target.tx;
    let current = tx.borrow().clone();
    let same = |a: &ChannelSnapshot, b: &ChannelSnapshot| {
        let at_owner =
            |s: &ChannelSnapshot| s.slots.iter().flat_map(|s| s.parts.iter().flatten()).filter(|p| p.at_owner).count();
        (a.status, a.accepting, a.last_msn(), a.slots.len(), a.discontinuity_base, &a.owner_url, at_owner(a))
            == (b.status, b.accepting, b.last_msn(), b.slots.len(), b.discontinuity_base, &b.owner_url, at_owner(b))
            && a.low_latency == b.low_latency
    };
    if same(&current, &snap) {
        return true;
    }
    // Rendered playlists are cached by snapshot version: every change here is a new one, and a
    // followed snapshot's never equals one of this pod's own channel task (the high bit).
    snap.version = (current.version + 1) | FOLLOWED;
    if snap.last_msn() > current.last_msn()
        && let Some(uploaded) = snap.last_upload
    {
        let delay = SystemTime::now().duration_since(uploaded).unwrap_or_default().as_micros() as u64;
        FOLLOW.delay_micros.fetch_add(delay, Ordering::Relaxed);
        FOLLOW.delays.fetch_add(1, Ordering::Relaxed);
        FOLLOW.max_delay_micros.fetch_max(delay, Ordering::Relaxed);
        let secs = delay as f64 / 1e6;
        let bucket = DELAY_BUCKETS.iter().position(|&bound| secs <= bound).unwrap_or(DELAY_BUCKETS.len());
        FOLLOW.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
    tx.send_replace(Arc::new(snap));
    true
}
