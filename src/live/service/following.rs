//! The channels this pod serves but does not write: a segment it holds for the other pods (its
//! internal listener's answers), and channels another pod writes, followed through the control
//! store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use super::{Live, ServeError};
use crate::live::follower;
use crate::live::model::{ChannelId, ChannelSnapshot};
use crate::packaging::url::LivePath;

impl Live {
    /// A segment this pod holds in memory for a channel it writes (what the other pods ask its
    /// internal listener for); `None` for anything else, so such a request never reaches storage.
    pub fn held(&self, channel: &str, path: LivePath) -> Option<Bytes> {
        let handle = self.registry.get(channel).filter(|h| h.is_owner())?;
        let snap = handle.snapshot();
        match path {
            LivePath::Segment(id, epoch, msn, container) => {
                let r = snap.rendition_index(id).filter(|&r| snap.container_of(r) == Some(container))?;
                let slot = snap.slot(msn).filter(|s| s.epoch == epoch)?;
                slot.part(r)?.bytes.clone()
            }
            LivePath::Part(id, epoch, msn, part) => {
                let r = snap.rendition_index(id)?;
                let segment = snap.low_latency.segment(r, msn).filter(|s| s.epoch == epoch)?;
                segment.parts.get(part as usize).map(|p| p.bytes.clone()).filter(|b| !b.is_empty())
            }
            _ => None,
        }
    }

    /// A channel no local task has: followed through the control store when another pod shares it
    /// (in a cluster), else 404.
    pub(super) async fn follow(&self, channel: &str) -> Result<watch::Receiver<Arc<ChannelSnapshot>>, ServeError> {
        let cluster = self.registry.cluster().ok_or(ServeError::NotFound)?;
        // The common case, once per request: a pointer load and a lookup, no lock, no copy of the id.
        let known = self.followers.map.load().get(channel).cloned();
        if let Some(followed) = known.filter(|f| !f.is_gone()) {
            if followed.is_stale() {
                return Err(ServeError::Unavailable("the control store has not answered for this channel".into()));
            }
            return Ok(followed.snapshots);
        }
        let id = ChannelId::parse(channel).map_err(|_| ServeError::NotFound)?;
        let snap = follower::snapshot(cluster, &id)
            .await
            .map_err(|e| ServeError::Unavailable(format!("the control store: {e}")))?
            .ok_or(ServeError::NotFound)?;
        let Ok(_adding) = self.followers.adding.lock() else { return Err(ServeError::NotFound) };
        if let Some(followed) = self.followers.map.load().get(&id).filter(|f| !f.is_gone()) {
            return Ok(followed.snapshots.clone());
        }
        let (tx, rx) = watch::channel(Arc::new(snap));
        let followed = follower::Followed::new(rx.clone());
        tokio::spawn(follower::follow(cluster.clone(), id.clone(), tx, followed.confirmed()));
        let mut map = HashMap::clone(&self.followers.map.load());
        map.insert(id, followed);
        self.followers.map.store(Arc::new(map));
        Ok(rx)
    }
}

/// Channels another pod takes the stream of, followed here: read on every request of theirs (a
/// pointer load), changed only when one is first asked for.
#[derive(Default)]
pub(super) struct Followers {
    map: arc_swap::ArcSwap<HashMap<ChannelId, follower::Followed>>,
    adding: Mutex<()>,
}
