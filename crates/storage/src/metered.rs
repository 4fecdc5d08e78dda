//! `MeteredStorage`: wraps any backend and counts reads, bytes, writes and failures, from which storage health is derived.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use super::latency::Operation;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::{ListedObject, Object, ObjectMeta, Storage, StorageError, StorageKey};

/// Counters shared by a [`MeteredStorage`] and whoever reports on it.
#[derive(Debug, Default)]
pub struct StorageCounters {
    /// `get` and `get_range` calls that reached the backend.
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
    pub heads: AtomicU64,
    pub writes: AtomicU64,
    pub written_bytes: AtomicU64,
    pub deletes: AtomicU64,
    pub lists: AtomicU64,
    pub not_found: AtomicU64,
    /// Failures of the backend itself (I/O, unavailable, timeout).
    pub errors: AtomicU64,
    /// Backend failures since the last success; 0 means healthy.
    pub consecutive_errors: AtomicU64,
    /// How long each call took, by operation.
    pub latency: super::latency::Latencies,
    last_error: Mutex<Option<(String, SystemTime)>>,
}

/// A point-in-time copy of [`StorageCounters`], for `/api/v1/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct StorageStats {
    pub backend: &'static str,
    pub healthy: bool,
    pub reads: u64,
    pub read_bytes: u64,
    pub heads: u64,
    pub writes: u64,
    pub written_bytes: u64,
    pub deletes: u64,
    pub lists: u64,
    pub not_found: u64,
    pub errors: u64,
    pub consecutive_errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

impl StorageCounters {
    /// [`StorageCounters::record`], and the call's time under `operation`.
    fn timed<T>(&self, operation: Operation, start: Instant, result: &Result<T, StorageError>) {
        self.latency.observe(operation, start.elapsed());
        self.record(result);
    }

    fn record<T>(&self, result: &Result<T, StorageError>) {
        match result {
            Ok(_) => self.consecutive_errors.store(0, Ordering::Relaxed),
            Err(StorageError::NotFound(_)) => {
                self.not_found.fetch_add(1, Ordering::Relaxed);
                self.consecutive_errors.store(0, Ordering::Relaxed);
            }
            Err(e) if e.is_outage() => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.consecutive_errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some((e.to_string(), SystemTime::now()));
                }
            }
            Err(_) => {}
        }
    }

    pub fn snapshot(&self, backend: &'static str) -> StorageStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last = self.last_error.lock().ok().and_then(|l| l.clone());
        StorageStats {
            backend,
            healthy: get(&self.consecutive_errors) == 0,
            reads: get(&self.reads),
            read_bytes: get(&self.read_bytes),
            heads: get(&self.heads),
            writes: get(&self.writes),
            written_bytes: get(&self.written_bytes),
            deletes: get(&self.deletes),
            lists: get(&self.lists),
            not_found: get(&self.not_found),
            errors: get(&self.errors),
            consecutive_errors: get(&self.consecutive_errors),
            last_error_at: last.as_ref().map(|(_, at)| httpdate::fmt_http_date(*at)),
            last_error: last.map(|(msg, _)| msg),
        }
    }
}

/// A backend wrapped with [`StorageCounters`].
pub struct MeteredStorage {
    inner: Arc<dyn Storage>,
    counters: Arc<StorageCounters>,
}

impl MeteredStorage {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        MeteredStorage { inner, counters: Arc::default() }
    }

    pub fn counters(&self) -> Arc<StorageCounters> {
        self.counters.clone()
    }

    pub fn stats(&self) -> StorageStats {
        self.counters.snapshot(self.inner.backend())
    }
}

#[async_trait]
impl Storage for MeteredStorage {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn max_reads_per_segment(&self) -> usize {
        self.inner.max_reads_per_segment()
    }

    async fn probe(&self) -> Result<(), StorageError> {
        let start = Instant::now();
        let result = self.inner.probe().await;
        self.counters.timed(Operation::Probe, start, &result);
        result
    }

    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.get(key).await;
        if let Ok(o) = &result {
            self.counters.read_bytes.fetch_add(o.body.len() as u64, Ordering::Relaxed);
        }
        self.counters.timed(Operation::Get, start, &result);
        result
    }

    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.get_range(key, range).await;
        if let Ok(o) = &result {
            self.counters.read_bytes.fetch_add(o.body.len() as u64, Ordering::Relaxed);
        }
        self.counters.timed(Operation::GetRange, start, &result);
        result
    }

    async fn get_ranges(&self, key: &StorageKey, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, StorageError> {
        self.counters.reads.fetch_add(ranges.len() as u64, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.get_ranges(key, ranges).await;
        if let Ok(parts) = &result {
            let bytes: usize = parts.iter().map(Bytes::len).sum();
            self.counters.read_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        self.counters.timed(Operation::GetRanges, start, &result);
        result
    }

    async fn gather(&self, key: &StorageKey, at: super::Gather<'_>, into: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        self.counters.reads.fetch_add(at.reads.len() as u64, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.gather(key, at, into).await;
        if result.is_ok() {
            let bytes: u64 = at.reads.iter().map(|r| r.end.saturating_sub(r.start)).sum();
            self.counters.read_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        self.counters.timed(Operation::GetRanges, start, &result);
        result
    }

    /// The backend's reader, each of its reads counted like a ranged read.
    async fn reader(&self, key: &StorageKey) -> Result<Option<Arc<dyn super::ChunkReader>>, StorageError> {
        let result = self.inner.reader(key).await;
        self.counters.record(&result);
        let counted = |inner| Arc::new(MeteredReader { inner, counters: self.counters.clone() }) as _;
        result.map(|reader| reader.map(counted))
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        self.counters.heads.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.head(key).await;
        self.counters.timed(Operation::Head, start, &result);
        result
    }

    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let len = body.len() as u64;
        let start = Instant::now();
        let result = self.inner.put(key, body).await;
        if result.is_ok() {
            self.counters.written_bytes.fetch_add(len, Ordering::Relaxed);
        }
        self.counters.timed(Operation::Put, start, &result);
        result
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        self.counters.deletes.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.delete(key).await;
        self.counters.timed(Operation::Delete, start, &result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.list(prefix).await;
        self.counters.timed(Operation::List, start, &result);
        result
    }

    async fn list_past(&self, prefix: &str, limit: usize) -> Result<Vec<ListedObject>, StorageError> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.list_past(prefix, limit).await;
        self.counters.timed(Operation::List, start, &result);
        result
    }
}

/// A backend's [`super::ChunkReader`], counted.
struct MeteredReader {
    inner: Arc<dyn super::ChunkReader>,
    counters: Arc<StorageCounters>,
}

#[async_trait]
impl super::ChunkReader for MeteredReader {
    async fn read(&self, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = self.inner.read(range).await;
        if let Ok(body) = &result {
            self.counters.read_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        }
        self.counters.timed(Operation::Read, start, &result);
        result
    }

    /// Counted as one read of `bytes`, which the caller sends from the file.
    fn file_for(&self, bytes: u64) -> Option<Arc<std::fs::File>> {
        let file = self.inner.file_for(bytes)?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.counters.read_bytes.fetch_add(bytes, Ordering::Relaxed);
        Some(file)
    }
}
