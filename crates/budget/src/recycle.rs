//! Recycled segment buffers: the large buffers a segment is gathered into, encrypted in and sent
//! from, kept by their [`ByteBudget`] for the next segment when the last response lets go of them.
//! A buffer over glibc's mmap threshold (fixed at 1 MiB: `estuary_sys::resources`) is otherwise
//! mapped, faulted in and zeroed page by page, and unmapped again for every segment built: that
//! cost a quarter of the CPU of an encrypted segment; a smaller one is zeroed by `calloc`.
//!
//! Idle buffers stay charged to the budget, so the memory formula holds as it is; they are few
//! ([`MAX_IDLE`], at most a quarter of the budget and [`MAX_IDLE_BYTES`]), and dropped the moment a
//! charge would not fit otherwise: they never make a request wait.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::ByteBudget;

/// Buffers smaller than this come from the allocator and go back to it (its free lists reuse them
/// without faults, and zeroing them costs little).
pub const MIN_RECYCLED: usize = 64 << 10;
/// New buffers are rounded up to a multiple of this (of [`MIN_RECYCLED`] under it), so that one
/// fits the next segment of about the same size too.
const ROUNDING: usize = 1 << 20;
/// Most idle buffers a budget keeps.
pub const MAX_IDLE: usize = 32;
/// Most bytes of idle buffers a budget keeps.
pub const MAX_IDLE_BYTES: u64 = 96 << 20;

impl ByteBudget {
    /// A buffer of at least `len` initialized bytes (what it held before, or zeros), for a body the
    /// caller has charged: an idle one no more than twice as long when there is one (its idle
    /// charge given back), else a new one, its length rounded up. Only its first `len` bytes are
    /// meant.
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        if len < MIN_RECYCLED {
            return vec![0; len];
        }
        let fits = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let best = idle.iter().enumerate().filter(|(_, b)| b.len() >= len && b.len() / 2 <= len);
            best.min_by_key(|(_, b)| b.len()).map(|(i, _)| i).map(|i| idle.swap_remove(i))
        };
        match fits {
            Some(buffer) => {
                self.release(buffer.len() as u64);
                buffer
            }
            None => vec![0; len.next_multiple_of(if len < ROUNDING { MIN_RECYCLED } else { ROUNDING })],
        }
    }

    /// `buffer[range]` as `Bytes`; the buffer comes back to this budget when the last clone is
    /// dropped.
    pub fn share(self: &Arc<Self>, buffer: Vec<u8>, range: Range<usize>) -> Bytes {
        let end = range.end.min(buffer.len());
        let range = range.start.min(end)..end;
        Bytes::from_owner(Shared { buffer, range, budget: self.clone() })
    }

    /// Keeps `buffer` idle, charged, when it is large enough to be worth it and there is room (among
    /// the idle ones and in the budget); else it is freed.
    pub fn give_back(&self, buffer: Vec<u8>) {
        let len = buffer.len() as u64;
        if buffer.len() < MIN_RECYCLED {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let held: u64 = idle.iter().map(|b| b.len() as u64).sum();
        let bound = MAX_IDLE_BYTES.min(self.limit / 4);
        if idle.len() >= MAX_IDLE || held + len > bound {
            return;
        }
        let Ok(mut used) = self.used.lock() else { return };
        if *used + len <= self.limit {
            *used += len;
            idle.push(buffer);
        }
    }

    /// Frees every idle buffer and gives back their charges; whether there were any.
    pub(crate) fn drop_idle(&self) -> bool {
        let freed = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        let bytes: u64 = freed.iter().map(|b| b.len() as u64).sum();
        drop(freed);
        if bytes > 0 {
            self.release(bytes);
        }
        bytes > 0
    }

    /// The bytes idle buffers hold now.
    pub fn idle_bytes(&self) -> u64 {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|b| b.len() as u64).sum()
    }
}

/// A body's buffer, given back to its budget on drop.
struct Shared {
    buffer: Vec<u8>,
    range: Range<usize>,
    budget: Arc<ByteBudget>,
}

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[self.range.clone()]
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.budget.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn large_buffers_come_back_charged_and_make_room_when_asked() {
        let budget = ByteBudget::new(64 << 20, Duration::ZERO);
        let len = 3 * ROUNDING;
        let charge = budget.try_charge(len as u64).unwrap();
        let mut first = budget.buffer(len - 1000);
        assert_eq!(first.len(), len, "rounded up to whole MiB");
        assert_eq!(budget.buffer(100_000).len(), 2 * MIN_RECYCLED, "and under a MiB to 64 KiB");
        first[10] = 42;
        let address = first.as_ptr();
        let body = charge.attach(budget.share(first, 10..20));
        assert_eq!((body.len(), body[0]), (10, 42));
        let clone = body.clone();
        drop(body);
        assert_eq!(clone[0], 42, "still held by a clone");
        drop(clone);
        assert_eq!((budget.idle_bytes(), budget.in_use()), (len as u64, len as u64), "idle, and still charged");

        // Over twice too large for a small body: a new one; the right size: the same, uncharged.
        let small = budget.buffer(ROUNDING);
        assert_ne!(small.as_ptr(), address);
        drop(small);
        let again = budget.buffer(len);
        assert_eq!((again.as_ptr(), again[10]), (address, 42), "as it was left: only what is written is meant");
        assert_eq!((budget.idle_bytes(), budget.in_use()), (0, 0));

        // Kept again, then dropped for a charge that would not fit beside it.
        budget.give_back(again);
        assert_eq!(budget.in_use(), len as u64);
        let big = budget.try_charge((64 << 20) - 1000).expect("the idle buffer makes room");
        assert_eq!(budget.idle_bytes(), 0);
        drop(big);

        // Small buffers are not kept; the idle ones are bounded (a quarter of the budget here).
        budget.give_back(vec![0; 100]);
        (0..MAX_IDLE + 3).for_each(|_| budget.give_back(vec![0; ROUNDING]));
        assert_eq!(budget.idle_bytes(), 16 << 20);
        assert_eq!(budget.in_use(), 16 << 20);
        let small = ByteBudget::unlimited();
        (0..MAX_IDLE + 3).for_each(|_| small.give_back(vec![0; MIN_RECYCLED]));
        assert_eq!(small.idle_bytes(), (MAX_IDLE * MIN_RECYCLED) as u64, "at most {MAX_IDLE} buffers");
        assert_eq!(budget.share(vec![1, 2, 3], 2..9).as_ref(), &[3], "a range past the end is cut");
    }
}
