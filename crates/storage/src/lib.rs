//! Object storage: the `Storage` trait every backend implements, its metadata and error types.
//!
//! Backends: [`local::LocalStorage`] (a folder) and [`s3::S3Storage`] (a
//! bucket). Wrapped around either: [`breaker::CircuitBreaker`] (fail fast
//! while the backend is sick) and [`metered::MeteredStorage`] (counts reads,
//! bytes and failures for stats, metrics and health).

pub mod breaker;
pub mod gather;
pub use estuary_media::storage_key as key;
pub mod latency;
pub mod local;
pub mod metered;
pub use estuary_sys::page_cache;
pub mod s3;

use std::ops::Range;
use std::time::SystemTime;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

pub use gather::Gather;
pub use key::{KeyError, StorageKey};

/// What a backend knows about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Total size of the object in bytes.
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// A validator the backend already has (S3's ETag), if any.
    pub etag: Option<String>,
}

/// Bytes read from an object, with the metadata of the whole object.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Bytes,
    pub meta: ObjectMeta,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: StorageKey,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("invalid storage key: {0}")]
    InvalidKey(#[from] KeyError),
    #[error("storage I/O error on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage timed out: {0}")]
    Timeout(String),
    /// This process ran out of something (descriptors, memory, the in-flight byte budget): a 503 for
    /// this request only, never a sign that the backend is down.
    #[error("out of local resources: {0}")]
    Exhausted(String),
}

impl StorageError {
    /// True for faults of the storage service itself (as opposed to "no such object").
    pub fn is_outage(&self) -> bool {
        matches!(self, StorageError::Io { .. } | StorageError::Unavailable(_) | StorageError::Timeout(_))
    }

    /// Classifies a filesystem error by where its fault lies. Errors the request's path caused
    /// (no such file, a file used as a folder, a name too long, a loop, no permission) are "not
    /// found"; running out of descriptors or memory is [`StorageError::Exhausted`]; only the rest
    /// (EIO and the like) is the backend failing.
    pub(crate) fn io(key: &StorageKey, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            return StorageError::NotFound(key.to_string());
        }
        match source.raw_os_error() {
            Some(libc::ENOTDIR | libc::ENAMETOOLONG | libc::EINVAL | libc::ELOOP | libc::EISDIR | libc::EACCES) => {
                StorageError::NotFound(key.to_string())
            }
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => StorageError::Exhausted(format!("{key}: {source}")),
            _ => StorageError::Io { key: key.to_string(), source },
        }
    }
}

/// Range reads of one [`Storage::get_ranges`] call in flight at once, so that one segment does not flood
/// the backend.
pub const RANGES_IN_FLIGHT: usize = 16;

/// An object store. Keys are validated [`StorageKey`]s; every method is one
/// logical operation against the backend.
impl From<estuary_budget::OverBudget> for StorageError {
    fn from(e: estuary_budget::OverBudget) -> Self {
        StorageError::Exhausted(format!("in-flight bytes: {e}"))
    }
}

/// Reads ranges of one object already found (see [`Storage::reader`]); each body is charged to the
/// backend's byte budget, as every read is.
#[async_trait]
pub trait ChunkReader: Send + Sync {
    /// Exactly the bytes of `range` (an error when the object is shorter).
    async fn read(&self, range: Range<u64>) -> Result<Bytes, StorageError>;

    /// The open file this reader reads, to send `bytes` of it straight to a socket (`sendfile`);
    /// `None` where the object is not a local file.
    fn file_for(&self, bytes: u64) -> Option<Arc<std::fs::File>> {
        let _ = bytes;
        None
    }
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Short backend name for stats and metrics ("local", "s3").
    fn backend(&self) -> &'static str;

    /// How many separate reads one segment should cost at most: reads are cheap on a
    /// local disk and cost a request each on S3.
    fn max_reads_per_segment(&self) -> usize {
        64
    }

    /// Checks that the backend is reachable and usable (startup and health).
    async fn probe(&self) -> Result<(), StorageError>;

    /// Reads a whole object.
    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError>;

    /// Reads `range`, clamped to the object's end (an empty body when the
    /// range starts at or past it). `meta.size` is the whole object's size.
    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError>;

    /// Reads several ranges of one object (each clamped as in [`Storage::get_range`]), in order. By
    /// default a few `get_range`s at a time; a backend where a call costs more than the bytes (a local
    /// file: open, read, close on a blocking thread) does them all in one.
    async fn get_ranges(&self, key: &StorageKey, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, StorageError> {
        let reads = ranges.iter().cloned().map(|r| async move { self.get_range(key, r).await.map(|o| o.body) });
        futures_util::stream::iter(reads).buffered(RANGES_IN_FLIGHT).try_collect().await
    }

    /// `spans` of one object read one after another into `into`, from `front` on (the bytes before
    /// are left as they were: room for a header): a segment's samples, to be changed in place
    /// (encrypted) and sent without another copy. `into` is made long enough if it is not.
    /// `reads` are coalesced ranges that cover the spans ([`estuary_media::reads::coalesce`]): what
    /// lies between two spans of one read is read too (one request), what lies between reads is
    /// not. The caller has charged the buffer to the body budget. By default
    /// [`Storage::get_ranges`] and a copy; a local file reads straight into place.
    async fn gather(&self, key: &StorageKey, at: Gather<'_>, into: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        gather::copied(self, key, at, into).await
    }

    /// A handle that reads ranges of one object without finding and opening it again for each (a
    /// local file, opened once), for sending an object's parts a chunk at a time. `None` (the default):
    /// the backend has nothing cheaper than [`Storage::get_range`].
    async fn reader(&self, key: &StorageKey) -> Result<Option<Arc<dyn ChunkReader>>, StorageError> {
        let _ = key;
        Ok(None)
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError>;

    /// Writes a whole object, replacing any previous one atomically.
    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError>;

    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError>;

    /// Every object whose key starts with `prefix` (a plain string prefix, as in S3), sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError>;

    /// [`Storage::list`] for a prefix an operator typed, which may hold a whole bucket: at most `max`
    /// objects (and whether there were more).
    async fn list_at_most(&self, prefix: &str, max: usize) -> Result<(Vec<ListedObject>, bool), StorageError> {
        let mut listed = self.list_past(prefix, max).await?;
        let more = listed.len() > max;
        listed.truncate(max);
        Ok((listed, more))
    }

    /// The objects under `prefix`, sorted; a backend may stop reading once it has more than `limit`
    /// (local storage and S3 do). This default lists them all.
    async fn list_past(&self, prefix: &str, _limit: usize) -> Result<Vec<ListedObject>, StorageError> {
        self.list(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(errno: i32) -> StorageError {
        StorageError::io(&StorageKey::parse("a/b").unwrap(), std::io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn request_shaped_and_local_errors_are_not_outages() {
        for errno in [libc::ENOENT, libc::ENOTDIR, libc::ENAMETOOLONG, libc::EINVAL, libc::ELOOP, libc::EACCES] {
            assert!(matches!(classify(errno), StorageError::NotFound(_)), "errno {errno}");
        }
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM] {
            let e = classify(errno);
            assert!(matches!(e, StorageError::Exhausted(_)) && !e.is_outage(), "errno {errno}");
        }
        assert!(classify(libc::EIO).is_outage());
    }
}
