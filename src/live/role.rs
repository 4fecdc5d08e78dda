//! A channel's role on this pod, in a cluster: the owner (it holds the channel's lease in the control
//! store, commits uploads, writes segments and shares the timeline) or a standby (a redundant
//! encoder pushes here too; its init segments are kept, nothing is committed). When the owner's
//! lease lapses (the pod died), the standby's next upload takes the lease and the channel over from
//! the shared timeline: the sequence goes on, the switch is one discontinuity into a new epoch.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channel::ChannelState;
use super::keys;
use super::record::TimelineRecord;
use super::store::read_json;
use super::upload::Upload;
use crate::cluster::{ClusterError, ControlStore};
use crate::packaging::fmp4::parse::InitInfo;
use crate::storage::{Storage, StorageError};

/// Init segments a standby keeps (a few per variant, a few variants).
const MAX_STANDBY_INITS: usize = 32;
/// How long a standby waits for a lost shared timeline to come back before taking over from storage.
const MISSING_TIMELINE_WAIT: Duration = Duration::from_secs(10);

/// Why a pod could not take a channel over yet.
#[derive(Debug, thiserror::Error)]
enum TakeOverError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the channel is gone")]
    Gone,
    #[error("no timeline in storage either")]
    NoTimeline,
}

pub(super) struct Role {
    cluster: Option<ControlStore>,
    /// Shared with the channel's handle: whether the edge here serves from this state.
    owner: Arc<AtomicBool>,
    /// How long a lease lasts without renewal: one target duration, at least 2 s.
    ttl: Duration,
    standby_inits: HashMap<String, (Bytes, Arc<InitInfo>)>,
    /// Where the timeline is persisted: what a standby takes over from when the control store lost
    /// the shared one and no owner brought it back.
    storage: Arc<dyn Storage>,
    /// Since when a free lease came with no shared timeline for a channel that has one.
    timeline_missing: Option<Instant>,
}

/// What to do with an upload.
pub(super) enum Verdict {
    /// Apply it: this pod writes the channel.
    Apply,
    /// Kept as a standby (or dropped): answer it as accepted, change nothing.
    Standby,
    /// Another pod takes the stream and redundant ingest is refused: answer 409.
    Refuse,
}

impl Role {
    pub(super) fn new(
        cluster: Option<ControlStore>,
        owner: Arc<AtomicBool>,
        target: Duration,
        storage: Arc<dyn Storage>,
    ) -> Role {
        owner.store(cluster.is_none(), Ordering::Relaxed);
        let ttl = target.max(Duration::from_secs(2));
        Role { cluster, owner, ttl, standby_inits: HashMap::new(), storage, timeline_missing: None }
    }

    pub(super) fn is_owner(&self) -> bool {
        self.owner.load(Ordering::Relaxed)
    }

    /// Whether this pod applies `upload`: it holds (or takes) the lease. Taking it over replaces
    /// `state` with the shared timeline. While the control store cannot be reached, an owner goes on
    /// (its lease is renewed on the tick, and its uploads are shared when Redis is back) and a
    /// standby stays one.
    pub(super) async fn admit(&mut self, state: &mut ChannelState, upload: &Upload) -> Verdict {
        let Some(cluster) = self.cluster.clone() else { return Verdict::Apply };
        // The owner's lease is renewed every tick ([`Role::renew`]): its uploads need no round trip.
        if self.is_owner() {
            return Verdict::Apply;
        }
        if self.awaits_lost_timeline(&cluster, state).await {
            self.keep(upload);
            return Verdict::Standby;
        }
        match cluster.hold_lease(&state.id, self.ttl).await {
            Ok(true) => match self.take_over(&cluster, state).await {
                Ok(()) => Verdict::Apply,
                Err(e) => {
                    tracing::warn!(channel = %state.id, error = %e, "cannot take the channel over yet");
                    // Not ours yet: the owner, if alive, takes its lease back on its next renewal.
                    let _ = cluster.release_lease(&state.id).await;
                    self.keep(upload);
                    Verdict::Standby
                }
            },
            Ok(false) => {
                if cluster.refuses_redundant_ingest() {
                    return Verdict::Refuse;
                }
                self.keep(upload);
                Verdict::Standby
            }
            Err(e) => {
                tracing::warn!(channel = %state.id, error = %e, "cannot reach the control store: standing by");
                self.keep(upload);
                Verdict::Standby
            }
        }
    }

    /// Renews the owner's lease (every tick); a lease another pod took makes this one a standby.
    pub(super) async fn renew(&mut self, state: &ChannelState) {
        let Some(cluster) = &self.cluster else { return };
        if !self.is_owner() {
            return;
        }
        match cluster.hold_lease(&state.id, self.ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(channel = %state.id, "lost the channel's lease to another pod: standing by");
                self.owner.store(false, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(channel = %state.id, error = %e, "cannot renew the channel's lease"),
        }
    }

    /// Gives the lease up (the channel's task ends), so a standby takes over at once.
    pub(super) async fn release(&self, state: &ChannelState) {
        if let Some(cluster) = &self.cluster
            && self.is_owner()
        {
            let _ = cluster.release_lease(&state.id).await;
        }
    }

    /// Whether a standby must not reach for the lease yet: the channel has a history but the control
    /// store no shared timeline (it restarted empty), and its owner, if alive, shares it again within
    /// a second or two; a standby taking over from an older copy would send the sequence back. After
    /// [`MISSING_TIMELINE_WAIT`] with none, the owner is gone too: [`Role::take_over`] then uses the
    /// timeline in storage, the newest there is.
    async fn awaits_lost_timeline(&mut self, cluster: &ControlStore, state: &ChannelState) -> bool {
        if !state.has_history() {
            return false;
        }
        match cluster.has_timeline(&state.id).await {
            Ok(true) => {
                self.timeline_missing = None;
                false
            }
            Ok(false) => self.timeline_missing.get_or_insert_with(Instant::now).elapsed() < MISSING_TIMELINE_WAIT,
            Err(_) => true,
        }
    }

    /// Takes the channel over from its shared timeline (or, when that is lost, the stored one).
    async fn take_over(&mut self, cluster: &ControlStore, state: &mut ChannelState) -> Result<(), TakeOverError> {
        let record = cluster.channel(&state.id).await?.ok_or(TakeOverError::Gone)?;
        let mut timeline = cluster.timeline(&state.id).await?;
        if timeline.is_none() && state.has_history() {
            let stored = read_json::<TimelineRecord>(self.storage.as_ref(), &keys::timeline(&state.id)).await;
            timeline = Some(stored?.ok_or(TakeOverError::NoTimeline)?);
        }
        self.timeline_missing = None;
        if let Some(timeline) = timeline {
            *state = ChannelState::take_over(&record, timeline, std::mem::take(&mut self.standby_inits));
        } else {
            state.keep_inits(std::mem::take(&mut self.standby_inits));
        }
        self.owner.store(true, Ordering::Relaxed);
        tracing::info!(channel = %state.id, pod = cluster.pod(), "took the channel over");
        Ok(())
    }

    /// A standby keeps the encoder's init segments: they are sent once per session, and taking over
    /// needs them.
    fn keep(&mut self, upload: &Upload) {
        if let Upload::Init { path, bytes, info } = upload
            && (self.standby_inits.len() < MAX_STANDBY_INITS || self.standby_inits.contains_key(path))
        {
            self.standby_inits.insert(path.clone(), (bytes.clone(), info.clone()));
        }
    }
}
