//! The registry's side of a cluster: taking a channel another pod created, applying the changes
//! other pods make to channel records (a rotated key, a stop, a delete) to the channels held here,
//! sharing records back into a control store that lost them, and ending a channel no pod writes.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::actor::Command;
use super::channel::{ChannelState, EndedBy};
use super::key::KeyHash;
use super::record::{self, ChannelRecord, TimelineRecord};
use super::store::{read_json, restore};
use super::{ChannelHandle, ChannelId, Inner, LiveError, LiveRegistry, keys};
use crate::cluster::ControlStore;

/// How often the channels held here are checked against the control store without an announcement
/// (one missed while reconnecting, a control store that restarted empty).
const RECONCILE: Duration = Duration::from_secs(5);
/// Wait before subscribing again after the control store failed.
const RETRY: Duration = Duration::from_secs(1);
/// How long a delete waits for the pod writing the channel to let it go before clearing storage.
const RELEASE_WAIT: Duration = Duration::from_secs(10);
/// How long an unknown channel id is remembered as unknown.
const UNKNOWN_FOR: Duration = Duration::from_secs(1);
/// Unknown ids remembered at most (a flood of made-up ids must not grow memory).
const MAX_UNKNOWN: usize = 4096;

/// Channel ids recently found in neither the control store nor storage.
#[derive(Default)]
pub(super) struct Unknown {
    seen: std::sync::Mutex<HashMap<String, Instant>>,
}

impl Unknown {
    pub(super) fn recently(&self, id: &str) -> bool {
        let Ok(seen) = self.seen.lock() else { return false };
        seen.get(id).is_some_and(|at| at.elapsed() < UNKNOWN_FOR)
    }

    pub(super) fn note(&self, id: &str) {
        let Ok(mut seen) = self.seen.lock() else { return };
        if seen.len() >= MAX_UNKNOWN {
            seen.retain(|_, at| at.elapsed() < UNKNOWN_FOR);
            if seen.len() >= MAX_UNKNOWN {
                seen.clear();
            }
        }
        seen.insert(id.to_owned(), Instant::now());
    }
}

impl LiveRegistry {
    /// [`LiveRegistry::get`], or, in a cluster, a channel another pod created: its task starts here
    /// from its record and newest timeline (shared, else stored), for the encoder pushing here.
    pub async fn get_or_take(&self, id: &str) -> Option<ChannelHandle> {
        if let Some(handle) = self.get(id) {
            return Some(handle);
        }
        let cluster = self.inner.cluster.as_ref()?;
        let id = ChannelId::parse(id).ok()?;
        // Uploads to a channel nobody knows cost a control-store call and a storage read each: the
        // answer is remembered for a moment, so a flood of them costs one of each a second.
        if self.inner.unknown.recently(id.as_str()) {
            return None;
        }
        let record = match cluster.channel(&id).await {
            Ok(Some(record)) => record,
            Ok(None) => match self.recover_record(cluster, &id).await {
                Some(record) => record,
                None => {
                    self.inner.unknown.note(id.as_str());
                    return None;
                }
            },
            Err(e) => {
                tracing::warn!(channel = %id, error = %e, "cannot read the channel from the control store");
                return None;
            }
        };
        let _admin = self.inner.admin.lock().await;
        if let Some(handle) = self.get(id.as_str()) {
            return Some(handle);
        }
        let storage = self.inner.storage.as_ref();
        let timeline = match cluster.timeline(&id).await {
            Ok(Some(t)) => Some(t),
            _ => read_json::<TimelineRecord>(storage, &keys::timeline(&id)).await.ok().flatten(),
        };
        let state = match timeline {
            Some(t) => restore(storage, &record, t).await,
            None => ChannelState::new(id.clone(), record.settings.clone(), record::from_ms(record.created_ms)),
        };
        tracing::info!(channel = %id, "live channel taken from the control store");
        let handle = self.spawn(state, &record);
        let mut map = HashMap::clone(&self.inner.channels.load());
        map.insert(id, handle.clone());
        self.inner.channels.store(Arc::new(map));
        Some(handle)
    }

    /// A channel the control store does not know (it restarted empty) but storage does, shared back
    /// unless it was deleted.
    async fn recover_record(&self, cluster: &ControlStore, id: &ChannelId) -> Option<ChannelRecord> {
        let record = read_json::<ChannelRecord>(self.inner.storage.as_ref(), &keys::channel(id)).await.ok()??;
        match cluster.restore_channel(&record).await {
            Ok(true) => {
                tracing::info!(channel = %id, "channel shared back into the control store from storage");
                Some(record)
            }
            _ => None,
        }
    }

    /// Applies a channel's record (as changed by any pod) to the channel held here, if any: its stream
    /// key, and whether it takes uploads.
    pub(super) async fn apply_record(&self, record: &ChannelRecord) {
        let Some(handle) = self.get(record.id.as_str()) else { return };
        if handle.key.to_hex() != record.key_sha256 {
            let _admin = self.inner.admin.lock().await;
            let mut map = HashMap::clone(&self.inner.channels.load());
            if let Some(held) = map.get_mut(&record.id) {
                held.key = KeyHash::from_hex(&record.key_sha256).unwrap_or_else(KeyHash::unusable);
            }
            self.inner.channels.store(Arc::new(map));
        }
        let accepting = handle.snapshot().accepting;
        if record.stopped && accepting {
            let _ = handle.request(|tx| Command::End(EndedBy::Operator, tx)).await;
        } else if !record.stopped && !accepting {
            let _ = handle.request(Command::Resume).await;
        }
    }

    /// Brings a channel held here in line with the control store: applies its record; drops the
    /// channel when another pod deleted it; shares its record back when the control store lost it.
    async fn reconcile(&self, cluster: &ControlStore, id: &ChannelId) {
        let Some(handle) = self.get(id.as_str()) else { return };
        match cluster.channel(id).await {
            Ok(Some(record)) => self.apply_record(&record).await,
            Ok(None) => match cluster.is_deleted(id).await {
                Ok(true) => self.discard(&handle).await,
                Ok(false) if handle.is_owner() => {
                    let snap = handle.snapshot();
                    let record = ChannelRecord {
                        id: handle.id.clone(),
                        key_sha256: handle.key.to_hex(),
                        token: None,
                        settings: snap.settings.clone(),
                        created_ms: handle.created_ms,
                        stopped: !snap.accepting,
                    };
                    if let Err(e) = cluster.restore_channel(&record).await {
                        tracing::debug!(channel = %id, error = %e, "could not share the channel again");
                    }
                }
                _ => {}
            },
            Err(e) => tracing::debug!(channel = %id, error = %e, "cannot check the channel's record"),
        }
    }

    /// Stops a channel another pod deleted, writing nothing more (that pod clears storage).
    async fn discard(&self, handle: &ChannelHandle) {
        {
            let _admin = self.inner.admin.lock().await;
            let mut map = HashMap::clone(&self.inner.channels.load());
            map.remove(&handle.id);
            self.inner.channels.store(Arc::new(map));
        }
        let _ = handle.request(Command::Discard).await;
        tracing::info!(channel = %handle.id, "live channel deleted by another pod: dropped here");
    }
}

/// Applies every announced change of a channel record to the channels held here, and checks them all
/// every [`RECONCILE`], until the registry is gone.
pub(super) async fn follow_records(inner: Weak<Inner>) {
    loop {
        let Some(registry) = inner.upgrade().map(|inner| LiveRegistry { inner }) else { return };
        let Some(cluster) = registry.inner.cluster.clone() else { return };
        drop(registry);
        let mut pubsub = match cluster.subscribe_records().await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to channel changes");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(RECONCILE);
        loop {
            let changed: Option<Vec<ChannelId>> = tokio::select! {
                message = messages.next() => message.map(|m| {
                    m.get_payload::<String>().ok().and_then(|id| ChannelId::parse(&id).ok()).into_iter().collect()
                }),
                _ = tick.tick() => {
                    let Some(inner) = inner.upgrade() else { return };
                    Some(inner.channels.load().keys().cloned().collect())
                }
            };
            let Some(ids) = changed else { break };
            let Some(registry) = inner.upgrade().map(|inner| LiveRegistry { inner }) else { return };
            for id in &ids {
                registry.reconcile(&cluster, id).await;
            }
        }
        tracing::warn!("lost the subscription to channel changes; subscribing again");
    }
}

/// Ends the shared timeline of a channel no pod writes (an operator's stop after its encoders left),
/// so every pod's playlists close.
pub(super) async fn end_unowned(cluster: &ControlStore, record: &ChannelRecord) -> Result<(), LiveError> {
    let Some(timeline) = cluster.timeline(&record.id).await? else { return Ok(()) };
    let mut state = ChannelState::restore(record, &timeline, |_, _| None, |_| None);
    state.end(EndedBy::Operator);
    let shared = state.to_shared_record(None);
    let encode = |t: &TimelineRecord| serde_json::to_vec(t).map_err(|e| LiveError::Unavailable(e.to_string()));
    let (json, tail) = (encode(&shared)?, encode(&shared.tail())?);
    cluster.share_timeline(&record.id, &json, &tail, shared.progress()).await?;
    Ok(())
}

/// Waits (boundedly) until no pod holds the channel's lease: the pod writing it heard of the delete
/// and stopped.
pub(super) async fn wait_for_release(cluster: &ControlStore, id: &ChannelId) {
    let deadline = Instant::now() + RELEASE_WAIT;
    while Instant::now() < deadline {
        match cluster.lease_holder(id).await {
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => return,
        }
    }
    tracing::warn!(channel = %id, "the pod writing the deleted channel did not let go; clearing storage anyway");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_are_remembered_briefly_and_boundedly() {
        let unknown = Unknown::default();
        assert!(!unknown.recently("ghost"));
        unknown.note("ghost");
        assert!(unknown.recently("ghost"));
        for i in 0..3 * MAX_UNKNOWN {
            unknown.note(&format!("flood-{i}"));
        }
        assert!(unknown.seen.lock().unwrap().len() <= MAX_UNKNOWN, "a flood of made-up ids stays bounded");
    }
}
