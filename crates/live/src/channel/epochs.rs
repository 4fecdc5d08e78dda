//! PURE: a channel's encoder sessions as a value: each epoch's numbering (which encoder sequence
//! number is which of ours), its members, its per-rendition init segments and timescales, and the
//! shift that makes its decode times continue the epoch before.

use std::collections::BTreeSet;
use std::time::SystemTime;

use bytes::Bytes;

/// One encoder session's numbering: encoder sequence `first_encoder_msn` is our `first_msn`.
#[derive(Debug, Clone)]
pub(crate) struct Epoch {
    pub id: u64,
    pub first_encoder_msn: u64,
    pub first_msn: u64,
    pub members: BTreeSet<String>,
    /// No variant may join any more (the channel ended and resumed).
    pub closed: bool,
    pub inits: Vec<Option<Bytes>>,
    /// Seconds added to every decode time of this epoch, so they continue from the epoch before
    /// (an encoder restart starts `tfdt` at 0 again); set by the epoch's first segment.
    pub shift: Option<f64>,
    /// Each rendition's timescale in this epoch (its init segment's), by rendition index.
    pub timescales: Vec<u32>,
}

/// A channel's epochs, oldest first; the newest is the current one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Epochs(Vec<Epoch>);

impl Epochs {
    pub(crate) fn restored(epochs: Vec<Epoch>) -> Epochs {
        Epochs(epochs)
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Epoch> {
        self.0.iter()
    }

    /// The epoch at `index` (as [`Epochs::join`] returned it).
    pub(crate) fn at(&self, index: usize) -> &Epoch {
        &self.0[index]
    }

    pub(crate) fn by_id(&self, id: u64) -> Option<&Epoch> {
        self.0.iter().find(|e| e.id == id)
    }

    /// Closes the current epoch: whatever the encoder sends next opens a new one.
    pub(crate) fn close_current(&mut self) {
        if let Some(e) = self.0.last_mut() {
            e.closed = true;
        }
    }

    /// The index of the epoch variant `variant` (now in epoch `member_of`, if any) puts encoder
    /// segment `e` in: its own, else the current one when open and the variant not yet in it, else
    /// a new one whose first segment is our `next_msn` (its id the time in ms, after the last one's).
    pub(crate) fn join(
        &mut self,
        variant: &str,
        member_of: Option<u64>,
        e: u64,
        next_msn: u64,
        now: SystemTime,
    ) -> usize {
        if let Some(i) = member_of.and_then(|id| self.0.iter().position(|ep| ep.id == id)) {
            return i;
        }
        let joinable = self.0.last().is_some_and(|ep| !ep.closed && !ep.members.contains(variant));
        if !joinable {
            let last_id = self.0.last().map_or(0, |ep| ep.id);
            let now_ms = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            self.0.push(Epoch {
                id: now_ms.max(last_id + 1),
                first_encoder_msn: e,
                first_msn: next_msn,
                members: BTreeSet::new(),
                closed: false,
                inits: Vec::new(),
                shift: None,
                timescales: Vec::new(),
            });
        }
        let index = self.0.len() - 1;
        self.0[index].members.insert(variant.to_owned());
        index
    }

    /// Rendition `r`'s timescale as epoch `epoch_id` recorded it.
    pub(crate) fn timescale(&self, epoch_id: u64, r: usize) -> Option<u32> {
        self.by_id(epoch_id).and_then(|e| e.timescales.get(r).copied()).filter(|&ts| ts > 0)
    }

    /// Fixes the shift of epoch `index`'s decode times (set once, by its first segment).
    pub(crate) fn set_shift(&mut self, index: usize, shift: f64) {
        self.0[index].shift = Some(shift);
    }

    /// Rendition `r`'s init segment in epoch `index`, and its timescale.
    pub(crate) fn put_init(&mut self, index: usize, r: usize, init: Bytes, timescale: u32) {
        let epoch = &mut self.0[index];
        if epoch.inits.len() <= r {
            epoch.inits.resize(r + 1, None);
            epoch.timescales.resize(r + 1, 0);
        }
        epoch.inits[r] = Some(init);
        epoch.timescales[r] = timescale;
    }

    /// Drops the epochs before `oldest_listed` (the epoch of the oldest slot left), never the
    /// current one; `gone` sees each.
    pub(crate) fn trim_before(&mut self, oldest_listed: Option<u64>, mut gone: impl FnMut(&Epoch)) {
        let current = self.0.last().map(|e| e.id);
        self.0.retain(|e| {
            let keep = Some(e.id) == current || oldest_listed.is_some_and(|f| e.id >= f);
            if !keep {
                gone(e);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn variants_join_the_open_epoch_and_a_closed_one_starts_another() {
        let mut epochs = Epochs::default();
        let first = epochs.join("v0.m3u8", None, 40, 0, at(5_000));
        assert_eq!(epochs.join("a0.m3u8", None, 40, 0, at(5_001)), first, "a second variant joins");
        let id = epochs.at(first).id;
        assert_eq!(id, 5_000);
        assert_eq!(epochs.join("v0.m3u8", Some(id), 41, 1, at(5_002)), first, "a member stays");
        // The same variant starting again (an encoder restart) opens a new epoch at our next number.
        let second = epochs.join("v0.m3u8", None, 0, 12, at(4_000));
        let epoch = epochs.at(second);
        assert_eq!((second, epoch.first_encoder_msn, epoch.first_msn), (1, 0, 12));
        assert!(epoch.id > id, "ids only grow, whatever the clock says");
        epochs.close_current();
        assert_eq!(epochs.join("a0.m3u8", None, 0, 20, at(9_000)), 2, "a closed epoch takes nobody");
    }

    #[test]
    fn inits_timescales_shifts_and_trimming() {
        let mut epochs = Epochs::default();
        let a = epochs.join("v", None, 0, 0, at(1));
        epochs.put_init(a, 2, Bytes::from_static(b"init"), 90_000);
        epochs.set_shift(a, 4.0);
        let id = epochs.at(a).id;
        assert_eq!(
            (epochs.timescale(id, 2), epochs.timescale(id, 0), epochs.timescale(id + 9, 2)),
            (Some(90_000), None, None)
        );
        assert_eq!(epochs.by_id(id).unwrap().inits.len(), 3);
        assert_eq!(epochs.at(a).shift, Some(4.0));
        epochs.close_current();
        let b = epochs.join("v", None, 0, 10, at(2));
        let mut gone = Vec::new();
        epochs.trim_before(Some(epochs.at(b).id), |e| gone.push(e.id));
        assert_eq!(gone, [id]);
        // The current epoch stays even with no slot left in it.
        epochs.trim_before(None, |e| gone.push(e.id));
        assert_eq!((gone.len(), epochs.iter().count()), (1, 1));
    }
}
