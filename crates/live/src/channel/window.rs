//! PURE: a channel's live window as a value: its slots in sequence order, the next sequence number,
//! the discontinuities that have left it, and the bytes its parts hold in memory, kept exact by
//! every method that adds, fills, frees or drops a slot.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use crate::model::Slot;

/// The slots a channel lists, oldest first, with no gaps in their sequence numbers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    slots: VecDeque<Arc<Slot>>,
    next_msn: u64,
    discontinuity_base: u64,
    /// Bytes of the parts held in memory, kept as parts gain and lose their bytes rather than
    /// summed over the window after every upload.
    in_memory: u64,
}

/// The bytes a slot's parts hold in memory.
fn held(slot: &Slot) -> u64 {
    slot.parts.iter().flatten().filter(|p| p.bytes.is_some()).map(|p| p.size).sum()
}

impl Window {
    /// A window restored from a timeline record: its slots, the sequence number that comes next and
    /// the discontinuities already gone from it.
    pub(crate) fn restored(slots: VecDeque<Arc<Slot>>, next_msn: u64, discontinuity_base: u64) -> Window {
        let in_memory = slots.iter().map(|s| held(s)).sum();
        Window { slots, next_msn, discontinuity_base, in_memory }
    }

    pub(crate) fn slots(&self) -> &VecDeque<Arc<Slot>> {
        &self.slots
    }

    /// The sequence number the next new slot gets (0: the channel has numbered nothing yet).
    pub(crate) fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// Discontinuities that have left the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    pub(crate) fn discontinuity_base(&self) -> u64 {
        self.discontinuity_base
    }

    pub(crate) fn first_msn(&self) -> Option<u64> {
        self.slots.front().map(|s| s.msn)
    }

    /// When the newest slot ends.
    pub(crate) fn newest_end(&self) -> Option<SystemTime> {
        self.slots.back().map(|s| s.end())
    }

    pub(crate) fn slot(&self, msn: u64) -> Option<&Arc<Slot>> {
        let first = self.first_msn()?;
        self.slots.get(usize::try_from(msn.checked_sub(first)?).ok()?)
    }

    /// Bytes of the parts held in memory.
    pub(crate) fn bytes_in_memory(&self) -> u64 {
        debug_assert_eq!(self.in_memory, self.slots.iter().map(|s| held(s)).sum::<u64>(), "the running count drifted");
        self.in_memory
    }

    /// Pushes empty slots up to and including `msn` (a variant ahead of the others creates them), in
    /// epoch `epoch`, whose first sequence number `epoch_first_msn` opens with a discontinuity.
    pub(crate) fn push_through(&mut self, msn: u64, epoch: u64, epoch_first_msn: u64, now: SystemTime) {
        while self.next_msn <= msn {
            let m = self.next_msn;
            self.slots.push_back(Arc::new(Slot {
                msn: m,
                epoch,
                discontinuity: m == epoch_first_msn && m > 0,
                pdt: now,
                duration: 0.0,
                parts: Vec::new(),
            }));
            self.next_msn += 1;
        }
    }

    /// Changes slot `msn` with `change`, keeping the count of bytes in memory; `None` when the window
    /// has no such slot.
    pub(crate) fn change_slot<R>(&mut self, msn: u64, change: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        let first = self.first_msn()?;
        let slot = self.slots.get_mut(usize::try_from(msn.checked_sub(first)?).ok()?)?;
        let slot = Arc::make_mut(slot);
        let before = held(slot);
        let result = change(slot);
        self.in_memory = self.in_memory + held(slot) - before;
        Some(result)
    }

    /// Records that rendition `r`'s part of slot `msn` reached storage (so its bytes may leave memory).
    pub(crate) fn mark_stored(&mut self, msn: u64, r: usize) {
        let stored = |slot: &Slot| slot.parts.get(r).is_some_and(|p| p.as_ref().is_some_and(|p| !p.stored));
        if self.slot(msn).is_some_and(|s| stored(s)) {
            self.change_slot(msn, |slot| {
                if let Some(Some(part)) = slot.parts.get_mut(r) {
                    part.stored = true;
                }
            });
        }
    }

    /// Frees the bytes of stored parts in slots that ended before `cutoff`. Whether any were freed.
    pub(crate) fn free_stored_before(&mut self, cutoff: SystemTime) -> bool {
        let mut freed = false;
        for slot in self.slots.iter_mut() {
            if slot.end() >= cutoff {
                break;
            }
            if slot.parts.iter().flatten().any(|p| p.bytes.is_some() && p.stored) {
                let slot = Arc::make_mut(slot);
                for part in slot.parts.iter_mut().flatten().filter(|p| p.stored) {
                    if part.bytes.take().is_some() {
                        self.in_memory -= part.size;
                    }
                }
                freed = true;
            }
        }
        freed
    }

    /// Drops the slots that ended before `oldest_kept`, always keeping the newest; returns them.
    pub(crate) fn trim_before(&mut self, oldest_kept: SystemTime) -> Vec<Arc<Slot>> {
        let mut gone = Vec::new();
        while self.slots.len() > 1 && self.slots.front().is_some_and(|s| s.end() < oldest_kept) {
            let Some(slot) = self.slots.pop_front() else { break };
            self.in_memory -= held(&slot);
            if slot.discontinuity {
                self.discontinuity_base += 1;
            }
            gone.push(slot);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::model::Part;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn part(size: usize, stored: bool) -> Option<Part> {
        Some(Part {
            decode_time: 0,
            duration: 1,
            size: size as u64,
            bytes: Some(Bytes::from(vec![0; size])),
            stored,
            at_owner: false,
            keyframes: None,
        })
    }

    /// Slots 0..n of 2 s each, every one holding a part of `size` bytes.
    fn window_of(n: u64, size: usize, stored: bool) -> Window {
        let mut w = Window::default();
        for msn in 0..n {
            w.push_through(msn, 1, 0, at(0));
            w.change_slot(msn, |slot| {
                slot.pdt = at(2 * msn);
                slot.duration = 2.0;
                slot.parts = vec![part(size, stored)];
            });
        }
        w
    }

    #[test]
    fn pushing_opens_every_slot_up_to_the_one_asked_for() {
        let mut w = Window::default();
        w.push_through(2, 5, 0, at(0));
        assert_eq!(w.slots().iter().map(|s| s.msn).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!((w.next_msn(), w.first_msn()), (3, Some(0)));
        // A new epoch's first slot is a discontinuity (never the channel's very first).
        w.push_through(3, 6, 3, at(1));
        assert!(w.slot(3).unwrap().discontinuity && !w.slot(0).unwrap().discontinuity);
        assert!(w.slot(4).is_none());
        assert_eq!(w.change_slot(9, |_| ()), None);
    }

    #[test]
    fn the_bytes_in_memory_follow_every_change() {
        let mut w = window_of(4, 100, false);
        assert_eq!(w.bytes_in_memory(), 400);
        w.change_slot(1, |slot| slot.parts.push(part(50, false)));
        assert_eq!(w.bytes_in_memory(), 450);
        // Unstored parts stay in memory whatever their age; stored ones before the cutoff go.
        assert!(!w.free_stored_before(at(100)));
        w.mark_stored(0, 0);
        w.mark_stored(1, 1);
        assert!(w.free_stored_before(at(4)));
        assert_eq!(w.bytes_in_memory(), 350);
        assert!(w.slot(0).unwrap().parts[0].as_ref().unwrap().bytes.is_none());
        assert!(!w.free_stored_before(at(4)), "nothing more to free");
    }

    #[test]
    fn trimming_drops_old_slots_counting_their_discontinuities() {
        let mut w = window_of(5, 10, true);
        Arc::make_mut(&mut w.slots[1]).discontinuity = true;
        let gone = w.trim_before(at(6));
        assert_eq!(gone.iter().map(|s| s.msn).collect::<Vec<_>>(), [0, 1]);
        assert_eq!((w.first_msn(), w.discontinuity_base(), w.bytes_in_memory()), (Some(2), 1, 30));
        // The newest slot always stays.
        assert_eq!(w.trim_before(at(1000)).len(), 2);
        assert_eq!((w.first_msn(), w.next_msn(), w.bytes_in_memory()), (Some(4), 5, 10));
        let restored = Window::restored(w.slots().clone(), w.next_msn(), w.discontinuity_base());
        assert_eq!((restored.bytes_in_memory(), restored.newest_end()), (10, w.newest_end()));
    }
}
