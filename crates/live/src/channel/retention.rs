//! PURE: how long a channel keeps what: segment bytes leave memory once stored and out of the live
//! window, slots leave the timeline (and storage) once out of the DVR window, idle channels end.

use std::time::{Duration, SystemTime};

use super::{ChannelState, Effect, EndedBy};
use crate::keys;
use crate::model::Status;

impl ChannelState {
    /// Periodic work: end an idle channel, drop old segment bytes from memory. Returns whether anything changed.
    pub fn tick(&mut self, now: SystemTime) -> bool {
        let mut changed = false;
        if self.status == Status::Live
            && self.last_upload.is_some_and(|t| now.duration_since(t).unwrap_or_default() > self.settings.idle_timeout)
        {
            self.end(EndedBy::Idle);
            changed = true;
        }
        let Some(newest) = self.window.newest_end() else { return changed };
        let keep =
            Duration::from_secs_f64(self.settings.playlist_window() + 3.0 * f64::from(self.settings.target_secs()));
        changed |= self.window.free_stored_before(newest.checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH));
        if changed {
            self.version += 1;
        }
        changed
    }
    /// Records that a part reached storage (so its bytes may leave memory).
    pub fn mark_stored(&mut self, msn: u64, rendition: usize) {
        self.window.mark_stored(msn, rendition);
    }
    /// Drops slots older than the DVR window; returns the deletes for storage.
    pub(crate) fn evict(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(newest) = self.window.newest_end() else { return effects };
        let oldest_kept = newest.checked_sub(self.settings.dvr).unwrap_or(SystemTime::UNIX_EPOCH);
        for slot in self.window.trim_before(oldest_kept) {
            for (r, _) in slot.parts.iter().enumerate().filter(|(_, p)| p.is_some()) {
                let info = &self.renditions[r].info;
                if let Some(container) = crate::model::container_for(info.kind, self.container) {
                    effects
                        .push(Effect::Delete { key: keys::part(&self.id, slot.epoch, info.id, slot.msn, container) });
                }
            }
        }
        // Epochs without slots (and not the current one) go, with their init segments.
        let first_epoch = self.window.slots().front().map(|s| s.epoch);
        let (id, renditions) = (&self.id, &self.renditions);
        self.epochs.trim_before(first_epoch, |e| {
            for (r, _) in e.inits.iter().enumerate().filter(|(_, i)| i.is_some()) {
                effects.push(Effect::Delete { key: keys::init(id, e.id, renditions[r].info.id) });
            }
        });
        effects
    }
}
