//! Segment cache: a byte-weighted in-memory cache of ready-to-send objects whose misses are coalesced into one load.

pub mod hot;
mod key;
mod memfile;
mod striped;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::notification::RemovalCause;
use serde::Serialize;

use estuary_budget::ByteBudget;

pub use estuary_http::object::CachedObject;
pub use key::CacheKey;

/// How a lookup was satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Found in memory.
    Hit,
    /// This request loaded it.
    Miss,
    /// Another request was already loading it; this one waited for that load.
    Coalesced,
    /// Too large for the cache: streamed from storage.
    Bypass,
    /// Past its time to live and storage failed: the old copy was served (stale-if-error).
    Stale,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Coalesced => "coalesced",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Stale => "stale",
        }
    }
}

#[derive(Debug, Default)]
struct CacheCounters {
    /// Counted on every hit, from every edge worker: striped.
    hits: striped::Striped,
    hot_hits: striped::Striped,
    misses: AtomicU64,
    coalesced: AtomicU64,
    bypassed: AtomicU64,
    load_errors: AtomicU64,
    evictions: AtomicU64,
    stale_served: AtomicU64,
    refreshed: AtomicU64,
}

/// Point-in-time cache figures for stats and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
    pub capacity_bytes: u64,
    pub max_object_bytes: u64,
    pub hits: u64,
    /// Of the hits, those answered from a [`hot`] answer.
    pub hot_hits: u64,
    pub misses: u64,
    pub coalesced: u64,
    pub bypassed: u64,
    pub load_errors: u64,
    pub evictions: u64,
    /// Expired objects served because storage failed to reload them.
    pub stale_served: u64,
    /// Expired objects reloaded.
    pub refreshed: u64,
}

/// The segment cache. Cheap to clone; clones share one cache.
///
/// Invariant: for one key, at most one load runs at a time; every
/// concurrent miss waits for it. A failed load is returned to all its
/// waiters and is not cached.
#[derive(Clone)]
pub struct SegmentCache {
    inner: Cache<CacheKey, Arc<CachedObject>>,
    /// Reloads of expired entries in flight (single flight for refreshes, too).
    refreshing: Cache<CacheKey, Arc<CachedObject>>,
    counters: Arc<CacheCounters>,
    capacity: u64,
    max_object_bytes: u64,
    /// What bodies moved into memory files are charged to.
    budget: Arc<ByteBudget>,
    hot: Arc<hot::HotAnswers>,
}

/// Entries live for their time to live plus the stale-if-error window.
struct TtlFromObject {
    stale_window: Duration,
}

impl moka::Expiry<CacheKey, Arc<CachedObject>> for TtlFromObject {
    fn expire_after_create(&self, _: &CacheKey, value: &Arc<CachedObject>, _: Instant) -> Option<Duration> {
        value.ttl.map(|ttl| ttl + self.stale_window)
    }
}

impl SegmentCache {
    /// A cache holding up to `capacity` bytes; objects over `max_object_bytes` are never cached.
    pub fn new(capacity: u64, max_object_bytes: u64) -> Self {
        Self::with_stale_window(capacity, max_object_bytes, Duration::from_secs(3600))
    }

    /// As [`SegmentCache::new`]; expired objects stay servable for `stale_window` while storage fails.
    pub fn with_stale_window(capacity: u64, max_object_bytes: u64, stale_window: Duration) -> Self {
        let counters = Arc::new(CacheCounters::default());
        let evictions = counters.clone();
        let inner = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_: &CacheKey, v: &Arc<CachedObject>| v.weight())
            .expire_after(TtlFromObject { stale_window })
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    evictions.evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        let refreshing = Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(1)).build();
        let hot = Arc::default();
        SegmentCache { inner, refreshing, counters, capacity, max_object_bytes, budget: ByteBudget::unlimited(), hot }
    }

    /// Charges the bodies it moves into memory files to `budget` (the process's byte budget).
    pub fn with_budget(mut self, budget: Arc<ByteBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// `obj` as the cache keeps it: a large identity body moved into a memory file, so responses
    /// send it with `sendfile`; left as it is when that cannot be done.
    fn resident(&self, mut obj: CachedObject) -> Arc<CachedObject> {
        if obj.resident.is_none()
            && let Some((body, file)) = memfile::store(&obj.identity.body, &self.budget)
        {
            obj.identity.body = body;
            obj.resident = Some(file);
        }
        Arc::new(obj)
    }

    /// Objects larger than this bypass the cache.
    pub fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    /// Whether an object of `bytes` would be kept: the cache is on and the object within its size
    /// limit. Work done only for keeping (precompressed forms) is skipped for the others.
    pub fn keeps(&self, bytes: u64) -> bool {
        self.is_on() && bytes <= self.max_object_bytes
    }

    /// Whether anything is kept (a capacity of 0 turns the cache off).
    pub fn is_on(&self) -> bool {
        self.capacity > 0
    }

    /// [`SegmentCache::get_or_load`], but when the cache is off concurrent loads of one key are
    /// still coalesced (and nothing is kept): for objects that must be built whole (a protected
    /// segment), so a burst of requests for one of them costs one build and one body in memory,
    /// not one each (which would also wait on each other in the byte budget).
    pub async fn get_or_load_shared<E, F>(
        &self,
        key: CacheKey,
        load: F,
        stale_if: impl Fn(&E) -> bool,
    ) -> Result<(Arc<CachedObject>, CacheOutcome), Arc<E>>
    where
        F: Future<Output = Result<CachedObject, E>>,
        E: Send + Sync + 'static,
    {
        if self.capacity > 0 {
            return self.get_or_load(key, load, stale_if).await;
        }
        let result = self.refreshing.try_get_with(key.clone(), async { load.await.map(Arc::new) }).await;
        self.refreshing.invalidate(&key).await;
        // moka lets go of an invalidated value only when it next does its housekeeping: without
        // this, every body built with the cache off lived on for a while after its response,
        // dozens of segments at once (held memory, and no buffer came back to be recycled).
        self.refreshing.run_pending_tasks().await;
        let counter = if result.is_ok() { &self.counters.misses } else { &self.counters.load_errors };
        counter.fetch_add(1, Ordering::Relaxed);
        result.map(|obj| (obj, CacheOutcome::Miss))
    }

    /// Returns the cached object for `key`, or runs `load` once for all concurrent callers.
    /// An expired object is reloaded the same way; when that fails with an error `stale_if`
    /// accepts (a storage outage), the expired object is served instead.
    ///
    /// A cache of capacity 0 is off: every call runs its own `load` and nothing is kept.
    pub async fn get_or_load<E, F>(
        &self,
        key: CacheKey,
        load: F,
        stale_if: impl Fn(&E) -> bool,
    ) -> Result<(Arc<CachedObject>, CacheOutcome), Arc<E>>
    where
        F: Future<Output = Result<CachedObject, E>>,
        E: Send + Sync + 'static,
    {
        if self.capacity == 0 {
            let result = load.await.map(Arc::new).map_err(Arc::new);
            let counter = if result.is_ok() { &self.counters.misses } else { &self.counters.load_errors };
            counter.fetch_add(1, Ordering::Relaxed);
            return result.map(|obj| (obj, CacheOutcome::Miss));
        }
        if let Some(hit) = self.inner.get(&key).await {
            if hit.is_fresh() {
                self.counters.hits.add(1);
                return Ok((hit, CacheOutcome::Hit));
            }
            let refreshed =
                self.refreshing.try_get_with(key.clone(), async { load.await.map(|o| self.resident(o)) }).await;
            return match refreshed {
                Ok(fresh) => {
                    self.inner.insert(key, fresh.clone()).await;
                    self.counters.refreshed.fetch_add(1, Ordering::Relaxed);
                    Ok((fresh, CacheOutcome::Miss))
                }
                Err(e) if stale_if(&e) => {
                    self.counters.stale_served.fetch_add(1, Ordering::Relaxed);
                    Ok((hit, CacheOutcome::Stale))
                }
                Err(e) => {
                    self.inner.invalidate(&key).await;
                    Err(e)
                }
            };
        }
        let mut loaded_here = false;
        let result = self
            .inner
            .try_get_with(key, async {
                loaded_here = true;
                load.await.map(|o| self.resident(o))
            })
            .await;
        let outcome = if loaded_here { CacheOutcome::Miss } else { CacheOutcome::Coalesced };
        let counter = match (&result, outcome) {
            (Err(_), CacheOutcome::Miss) => &self.counters.load_errors,
            (_, CacheOutcome::Miss) => &self.counters.misses,
            _ => &self.counters.coalesced,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result.map(|obj| (obj, outcome))
    }

    /// The answers the edge sends for hot objects without looking them up here ([`hot`]).
    pub fn hot(&self) -> &Arc<hot::HotAnswers> {
        &self.hot
    }

    /// Counts a hit served from a [`hot`] answer.
    pub fn record_hot_hit(&self) {
        self.counters.hits.add(1);
        self.counters.hot_hits.add(1);
    }

    /// Counts a request served around the cache because its object was too large.
    pub fn record_bypass(&self) {
        self.counters.bypassed.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops every entry that [`CacheKey::matches`] `prefix` (all when `None`); returns how many.
    pub async fn purge(&self, prefix: Option<&str>) -> u64 {
        let purged = match prefix {
            None => {
                let n = self.inner.iter().count() as u64;
                self.inner.invalidate_all();
                n
            }
            Some(prefix) => {
                let doomed: Vec<Arc<CacheKey>> =
                    self.inner.iter().filter(|(k, _)| k.matches(prefix)).map(|(k, _)| k).collect();
                for key in &doomed {
                    self.inner.invalidate(key.as_ref()).await;
                }
                doomed.len() as u64
            }
        };
        self.inner.run_pending_tasks().await;
        // After the entries are gone: an answer offered from an object looked up before this
        // point carries the old generation and is refused.
        self.hot.invalidate();
        purged
    }

    pub async fn stats(&self) -> CacheStats {
        self.inner.run_pending_tasks().await;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            entries: self.inner.entry_count(),
            bytes: self.inner.weighted_size(),
            capacity_bytes: self.capacity,
            max_object_bytes: self.max_object_bytes,
            hits: self.counters.hits.get(),
            hot_hits: self.counters.hot_hits.get(),
            misses: get(&self.counters.misses),
            coalesced: get(&self.counters.coalesced),
            bypassed: get(&self.counters.bypassed),
            load_errors: get(&self.counters.load_errors),
            evictions: get(&self.counters.evictions),
            stale_served: get(&self.counters.stale_served),
            refreshed: get(&self.counters.refreshed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::AtomicUsize;

    fn key(s: &str) -> CacheKey {
        CacheKey::new("static", s, 0)
    }

    fn object(body: &'static [u8]) -> CachedObject {
        CachedObject::new(Bytes::from_static(body), estuary_http::content_type::MEDIA_SEGMENT, None)
    }

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let cache = SegmentCache::new(1 << 20, 1 << 16);
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(
                            key("a/b.m4s"),
                            async {
                                loads.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Ok::<_, std::io::Error>(object(b"segment"))
                            },
                            |_| false,
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            let (obj, outcome) = t.await.unwrap();
            assert_eq!(&obj.body()[..], b"segment");
            outcomes.push(outcome);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(outcomes.iter().filter(|o| **o == CacheOutcome::Miss).count(), 1);
        let stats = cache.stats().await;
        assert_eq!((stats.misses, stats.coalesced), (1, 49));
    }

    #[tokio::test]
    async fn an_off_cache_still_shares_one_load_of_a_burst_and_keeps_nothing() {
        let cache = SegmentCache::new(0, 1 << 16);
        let loads = Arc::new(AtomicUsize::new(0));
        let load = |body: &'static [u8]| {
            let loads = loads.clone();
            async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, std::io::Error>(object(body))
            }
        };
        let burst: Vec<_> = (0..20).map(|_| cache.get_or_load_shared(key("p.m4s"), load(b"one"), |_| false)).collect();
        for result in futures_util::future::join_all(burst).await {
            assert_eq!(&result.unwrap().0.body()[..], b"one");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for the burst");
        // Nothing was kept: the next request loads again.
        let (again, _) = cache.get_or_load_shared(key("p.m4s"), load(b"two"), |_| false).await.unwrap();
        assert_eq!((&again.body()[..], loads.load(Ordering::SeqCst)), (&b"two"[..], 2));
        assert_eq!(cache.stats().await.entries, 0);
        // And the body goes the moment the last response lets go of it.
        let dropped = Arc::new(AtomicUsize::new(0));
        let tracked = Bytes::from_owner(Tracked(dropped.clone()));
        let body = CachedObject::new(tracked, estuary_http::content_type::MEDIA_SEGMENT, None);
        let (held, _) =
            cache.get_or_load_shared(key("q.m4s"), async { Ok::<_, std::io::Error>(body) }, |_| false).await.unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(held);
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "nothing else held the body");
    }

    /// A body that counts its drop.
    struct Tracked(Arc<AtomicUsize>);

    impl AsRef<[u8]> for Tracked {
        fn as_ref(&self) -> &[u8] {
            b"tracked"
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn capacity_zero_turns_the_cache_off() {
        let cache = SegmentCache::new(0, 1 << 16);
        for body in [&b"one"[..], b"two"] {
            let (obj, outcome) = cache
                .get_or_load(key("a.m4s"), async { Ok::<_, std::io::Error>(object(body)) }, |_| false)
                .await
                .unwrap();
            assert_eq!((&obj.body()[..], outcome), (body, CacheOutcome::Miss));
        }
        let stats = cache.stats().await;
        assert_eq!((stats.misses, stats.hits, stats.entries), (2, 0, 0));
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_purge_drops_by_prefix() {
        let cache = SegmentCache::new(1 << 20, 1 << 16);
        let failed = cache
            .get_or_load(key("x/y"), async { Err::<CachedObject, _>(std::io::Error::other("boom")) }, |_| false)
            .await;
        assert!(failed.is_err());
        let (_, outcome) =
            cache.get_or_load(key("x/y"), async { Ok::<_, std::io::Error>(object(b"ok")) }, |_| false).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        let (_, outcome) =
            cache.get_or_load(key("x/y"), async { Ok::<_, std::io::Error>(object(b"no")) }, |_| false).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        cache.get_or_load(key("z/w"), async { Ok::<_, std::io::Error>(object(b"ok")) }, |_| false).await.unwrap();
        assert_eq!(cache.purge(Some("static/x/")).await, 1);
        assert_eq!(cache.stats().await.entries, 1);
        assert_eq!(cache.purge(None).await, 1);
        assert_eq!(cache.stats().await.entries, 0);
    }

    #[tokio::test]
    async fn expired_objects_are_served_stale_while_storage_fails() {
        let cache = SegmentCache::new(1 << 20, 1 << 16);
        let short = || object(b"v1").with_ttl(Some(Duration::from_millis(20)));
        cache.get_or_load(key("p.m3u8"), async { Ok::<_, std::io::Error>(short()) }, |_| true).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Storage is down: the expired copy is served, marked stale.
        let (obj, outcome) = cache
            .get_or_load(key("p.m3u8"), async { Err::<CachedObject, _>(std::io::Error::other("down")) }, |_| true)
            .await
            .unwrap();
        assert_eq!((&obj.body()[..], outcome), (&b"v1"[..], CacheOutcome::Stale));
        // Storage is back: the object is reloaded.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let fresh = || CachedObject::new(Bytes::from_static(b"v2"), estuary_http::content_type::TEXT, None);
        let (obj, outcome) =
            cache.get_or_load(key("p.m3u8"), async { Ok::<_, std::io::Error>(fresh()) }, |_| true).await.unwrap();
        assert_eq!((&obj.body()[..], outcome), (&b"v2"[..], CacheOutcome::Miss));
        // An error that is not an outage (the object is gone) is not hidden.
        let gone = cache.get_or_load(key("q"), async { Ok::<_, std::io::Error>(short()) }, |_| false).await;
        assert!(gone.is_ok());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            cache
                .get_or_load(key("q"), async { Err::<CachedObject, _>(std::io::Error::other("404")) }, |_| false)
                .await
                .is_err()
        );
        let stats = cache.stats().await;
        assert_eq!((stats.stale_served, stats.refreshed), (1, 1));
    }
}
