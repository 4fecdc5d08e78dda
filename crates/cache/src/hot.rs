//! Hot answers: for small cached objects just served whole, the 200 response's status line and
//! headers as they went out, per content coding, found again by the raw request target with one
//! hash and one pointer load. The edge answers a repeat of such a request from here, with no
//! `Request`, `HeaderMap`, catalog or cache lookup (the edge's shortcut).
//!
//! Invariants: an answer is never served after its `until` (at most [`LIFETIME`] after it was
//! offered, and never past the freshness of what it was made from), nor after a purge (each purge
//! starts a new generation). The table has [`SLOTS`] slots and takes objects of at most
//! [`MAX_WEIGHT`] bytes: what it holds beyond the segment cache's own accounting (objects the cache
//! evicted within the last second) is bounded by their product.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::CachedObject;
use estuary_http::encoding::Coding;

/// Slots in the table (direct-mapped: a target has one slot, a newer offer takes it).
pub const SLOTS: usize = 1024;
/// The largest object (all its representations) the table takes.
pub const MAX_WEIGHT: u32 = 64 * 1024;
/// How long an answer is used before the full path is taken again (and renews it).
pub const LIFETIME: Duration = Duration::from_secs(1);

/// The table. Shared by all edge workers; lookups take no lock.
pub struct HotAnswers {
    slots: Box<[ArcSwapOption<HotAnswer>]>,
    seed: u64,
    generation: AtomicU64,
}

/// One object's answers to one request target.
#[derive(Clone)]
pub struct HotAnswer {
    target: Box<str>,
    /// The route template, for the access metrics.
    pub route: &'static str,
    pub object: Arc<CachedObject>,
    /// Status line and headers (up to `Date`) per coding: identity, gzip, brotli.
    heads: [Option<Box<[u8]>>; 3],
    until: Instant,
    generation: u64,
}

impl HotAnswer {
    /// The head of the `coding` answer, once a full-path response of that coding rendered it.
    pub fn head(&self, coding: Coding) -> Option<&[u8]> {
        self.heads[slot_of(coding)].as_deref()
    }
}

/// What the full path offers for the table: filled in with the head once the response is written.
pub struct HotOffer {
    pub target: Box<str>,
    pub route: &'static str,
    pub object: Arc<CachedObject>,
    pub coding: Coding,
    /// The latest instant the object may be served as it is (its freshness, the asset's revalidation).
    pub until: Instant,
    /// [`HotAnswers::generation`] before the object was looked up.
    pub generation: u64,
}

impl Default for HotAnswers {
    fn default() -> Self {
        let mut seed = [0u8; 8];
        // A seed an outsider cannot guess, so targets cannot be chosen to push others out.
        let _ = getrandom::fill(&mut seed);
        HotAnswers {
            slots: (0..SLOTS).map(|_| ArcSwapOption::empty()).collect(),
            seed: u64::from_le_bytes(seed),
            generation: AtomicU64::new(0),
        }
    }
}

impl HotAnswers {
    /// Whether an object is small enough to be held here.
    pub fn takes(object: &CachedObject) -> bool {
        object.resident.is_none() && object.weight() <= MAX_WEIGHT
    }

    /// Calls `f` with the live answer for `target` at `now`, if there is one. The answer is only
    /// borrowed: no reference count is written, so workers on many cores answering the same hot
    /// object do not pass its cache line around.
    pub fn with<R>(&self, target: &str, now: Instant, f: impl FnOnce(&HotAnswer) -> Option<R>) -> Option<R> {
        let guard = self.slot(target).load();
        let answer = guard.as_deref()?;
        let live = *answer.target == *target
            && now < answer.until
            && answer.generation == self.generation.load(Ordering::Acquire);
        if live { f(answer) } else { None }
    }

    /// Takes `offer` with the head the connection rendered for it. An answer already there for the
    /// same target and object keeps its other codings' heads.
    pub fn accept(&self, offer: &HotOffer, head: &[u8]) {
        if offer.generation != self.generation.load(Ordering::Acquire) || !Self::takes(&offer.object) {
            return;
        }
        let slot = self.slot(&offer.target);
        let mut heads = [None, None, None];
        if let Some(old) = slot.load_full()
            && old.target == offer.target
            && Arc::ptr_eq(&old.object, &offer.object)
            && old.generation == offer.generation
        {
            heads = old.heads.clone();
        }
        heads[slot_of(offer.coding)] = Some(head.into());
        let until = offer.until.min(Instant::now() + LIFETIME);
        slot.store(Some(Arc::new(HotAnswer {
            target: offer.target.clone(),
            route: offer.route,
            object: offer.object.clone(),
            heads,
            until,
            generation: offer.generation,
        })));
    }

    /// The current generation: answers offered under an older one are never served.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Retires every answer (the cache was purged).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for slot in self.slots.iter() {
            slot.store(None);
        }
    }

    fn slot(&self, target: &str) -> &ArcSwapOption<HotAnswer> {
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(target.as_bytes(), self.seed);
        &self.slots[hash as usize % SLOTS]
    }
}

fn slot_of(coding: Coding) -> usize {
    match coding {
        Coding::Identity => 0,
        Coding::Gzip => 1,
        Coding::Brotli => 2,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn offer(table: &HotAnswers, target: &str, object: &Arc<CachedObject>, coding: Coding) -> HotOffer {
        HotOffer {
            target: target.into(),
            route: "/vod/{*path}",
            object: object.clone(),
            coding,
            until: Instant::now() + Duration::from_secs(60),
            generation: table.generation(),
        }
    }

    fn get(table: &HotAnswers, target: &str, now: Instant) -> Option<Arc<HotAnswer>> {
        table.with(target, now, |answer| Some(Arc::new(answer.clone())))
    }

    fn playlist(text: &str) -> Arc<CachedObject> {
        Arc::new(CachedObject::new(Bytes::from(text.to_owned()), "application/vnd.apple.mpegurl", None))
    }

    #[test]
    fn an_answer_is_found_by_its_exact_target_with_the_heads_of_each_coding() {
        let table = HotAnswers::default();
        let object = playlist("#EXTM3U\n");
        assert!(get(&table, "/vod/a.mp4/v0.m3u8", Instant::now()).is_none());
        table.accept(&offer(&table, "/vod/a.mp4/v0.m3u8", &object, Coding::Identity), b"HTTP/1.1 200 OK\r\n");
        table.accept(&offer(&table, "/vod/a.mp4/v0.m3u8", &object, Coding::Gzip), b"HTTP/1.1 200 OK\r\ngz\r\n");
        let answer = get(&table, "/vod/a.mp4/v0.m3u8", Instant::now()).unwrap();
        assert_eq!(answer.head(Coding::Identity), Some(&b"HTTP/1.1 200 OK\r\n"[..]));
        assert_eq!(answer.head(Coding::Gzip), Some(&b"HTTP/1.1 200 OK\r\ngz\r\n"[..]));
        assert_eq!(answer.head(Coding::Brotli), None);
        assert!(get(&table, "/vod/a.mp4/v0.m3u8?x", Instant::now()).is_none());
        assert!(get(&table, "/vod/a.mp4/v1.m3u8", Instant::now()).is_none());
        // A new object for the target starts over: the old object's heads are not kept.
        let newer = playlist("#EXTM3U\n#EXT-X-VERSION:7\n");
        table.accept(&offer(&table, "/vod/a.mp4/v0.m3u8", &newer, Coding::Brotli), b"br");
        let answer = get(&table, "/vod/a.mp4/v0.m3u8", Instant::now()).unwrap();
        assert!(Arc::ptr_eq(&answer.object, &newer));
        assert_eq!((answer.head(Coding::Identity), answer.head(Coding::Brotli)), (None, Some(&b"br"[..])));
    }

    #[test]
    fn answers_end_at_their_deadline_and_at_a_purge() {
        let table = HotAnswers::default();
        let object = playlist("#EXTM3U\n");
        let mut short = offer(&table, "/a", &object, Coding::Identity);
        short.until = Instant::now() + Duration::from_millis(5);
        table.accept(&short, b"h");
        assert!(get(&table, "/a", Instant::now()).is_some());
        assert!(get(&table, "/a", Instant::now() + Duration::from_millis(6)).is_none());
        table.accept(&offer(&table, "/long", &object, Coding::Identity), b"h");
        assert!(get(&table, "/long", Instant::now() + LIFETIME).is_none(), "never past its lifetime");
        // An offer made before a purge is refused after it; answers from before it are gone.
        let stale = offer(&table, "/b", &object, Coding::Identity);
        table.accept(&offer(&table, "/c", &object, Coding::Identity), b"h");
        table.invalidate();
        table.accept(&stale, b"h");
        assert!(get(&table, "/b", Instant::now()).is_none() && get(&table, "/c", Instant::now()).is_none());
        table.accept(&offer(&table, "/c", &object, Coding::Identity), b"h");
        assert!(get(&table, "/c", Instant::now()).is_some());
    }

    #[test]
    fn large_objects_are_not_taken() {
        let table = HotAnswers::default();
        let big = playlist(&"#EXTINF:6.0,\nseg.m4s\n".repeat(4000));
        table.accept(&offer(&table, "/big", &big, Coding::Identity), b"h");
        assert!(get(&table, "/big", Instant::now()).is_none());
    }
}
