//! `CountingStorage`: a storage wrapper that counts reads per key and can slow them down, to observe coalescing.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use estuary::storage::{ListedObject, Object, ObjectMeta, Storage, StorageError, StorageKey};

pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    reads: Mutex<HashMap<String, u64>>,
    bytes: Mutex<HashMap<String, u64>>,
    delay: Duration,
}

impl CountingStorage {
    pub fn new(inner: Arc<dyn Storage>, delay: Duration) -> Arc<Self> {
        Arc::new(CountingStorage { inner, reads: Mutex::default(), bytes: Mutex::default(), delay })
    }

    /// `get` + `get_range` calls for `key` so far.
    pub fn reads_of(&self, key: &str) -> u64 {
        self.reads.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// Bytes returned by `get` + `get_range` for `key` so far.
    pub fn bytes_of(&self, key: &str) -> u64 {
        self.bytes.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn add_bytes(&self, key: &StorageKey, result: &Result<Object, StorageError>) {
        if let Ok(o) = result {
            *self.bytes.lock().unwrap().entry(key.to_string()).or_default() += o.body.len() as u64;
        }
    }

    pub fn total_reads(&self) -> u64 {
        self.reads.lock().unwrap().values().sum()
    }

    async fn count(&self, key: &StorageKey) {
        *self.reads.lock().unwrap().entry(key.to_string()).or_default() += 1;
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait]
impl Storage for CountingStorage {
    fn backend(&self) -> &'static str {
        "counting"
    }
    fn max_reads_per_segment(&self) -> usize {
        self.inner.max_reads_per_segment()
    }
    async fn probe(&self) -> Result<(), StorageError> {
        self.inner.probe().await
    }
    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        self.count(key).await;
        let result = self.inner.get(key).await;
        self.add_bytes(key, &result);
        result
    }
    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        self.count(key).await;
        let result = self.inner.get_range(key, range).await;
        self.add_bytes(key, &result);
        result
    }
    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, body).await
    }
    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.inner.list(prefix).await
    }
}
