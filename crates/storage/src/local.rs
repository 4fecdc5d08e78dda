//! Local-filesystem backend: objects are files below one root folder, and nothing outside it is ever read.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

mod tree;

use tree::{create_folders_inside, prefix_folder, walk};

use super::{ListedObject, Object, ObjectMeta, Storage, StorageError, StorageKey};
use estuary_budget::{ByteBudget, Charge};

/// Prefix of the temporary files `put` writes before renaming them into place.
const TMP_PREFIX: &str = ".estuary-tmp-";

/// Objects stored as files below `root`.
///
/// Invariant: every path opened is `root` joined with a validated
/// [`StorageKey`] and, once symlinks are resolved, still below `root`; a
/// symlink that leaves the root reads as "not found".
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    /// Every body read is charged here before it is allocated.
    budget: Arc<ByteBudget>,
}

/// A read's outcome on its blocking thread: done, or the budget had no room for `bytes` right now.
enum Attempt<T> {
    Done(T),
    NeedsRoom(u64),
}

/// The charge for a body of `bytes`: the one awaited before this attempt if it is big enough, else
/// one taken without waiting.
fn take_charge(budget: &Arc<ByteBudget>, waited: Option<Charge>, bytes: u64) -> Option<Charge> {
    match waited {
        Some(c) if c.bytes() >= bytes.min(budget.limit()) => Some(c),
        _ => budget.try_charge(bytes).ok(),
    }
}

impl LocalStorage {
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = fs::canonicalize(root.as_ref())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.as_ref().display())))?;
        if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", root.display())));
        }
        Ok(LocalStorage { root, budget: ByteBudget::unlimited() })
    }

    /// Charges every body read to `budget` (the process's in-flight byte budget).
    pub fn with_budget(self, budget: Arc<ByteBudget>) -> Self {
        LocalStorage { budget, ..self }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of an existing object, refusing anything that resolves outside the root.
    fn resolve_existing(root: &Path, key: &StorageKey) -> Result<PathBuf, StorageError> {
        let real = fs::canonicalize(root.join(key.as_str())).map_err(|e| StorageError::io(key, e))?;
        if real.starts_with(root) {
            Ok(real)
        } else {
            tracing::warn!(%key, "refusing a path that resolves outside the storage root");
            Err(StorageError::NotFound(key.to_string()))
        }
    }

    /// Opens a regular file for reading; directories and other file types are "not found".
    fn open(root: &Path, key: &StorageKey) -> Result<(File, ObjectMeta), StorageError> {
        let path = Self::resolve_existing(root, key)?;
        let file = File::open(&path).map_err(|e| StorageError::io(key, e))?;
        let md = file.metadata().map_err(|e| StorageError::io(key, e))?;
        if !md.is_file() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        let meta = ObjectMeta { size: md.len(), modified: md.modified().ok(), etag: None };
        Ok((file, meta))
    }

    async fn blocking<T, F>(&self, key: &StorageKey, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, StorageError> + Send + 'static,
    {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || f(&root))
            .await
            .map_err(|e| StorageError::Io { key: key.to_string(), source: io::Error::other(e) })?
    }

    /// Runs `read` on a blocking thread. It learns the body's size after opening and charges it
    /// without waiting; when the budget is full, the charge is awaited here and the read runs again.
    async fn charged<T, F>(&self, key: &StorageKey, read: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&Path, &Arc<ByteBudget>, Option<Charge>) -> Result<Attempt<T>, StorageError> + Clone + Send + 'static,
    {
        let mut waited = None;
        loop {
            let (read, budget) = (read.clone(), self.budget.clone());
            match self.blocking(key, move |root| read(root, &budget, waited)).await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::NeedsRoom(bytes) => waited = Some(self.budget.charge(bytes).await?),
            }
        }
    }
}

fn read_at(file: &File, key: &StorageKey, start: u64, len: usize) -> Result<Bytes, StorageError> {
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, start).map_err(|e| StorageError::io(key, e))?;
    Ok(buf.freeze())
}

/// An open file of the storage root ([`Storage::reader`]).
struct LocalReader {
    file: Arc<File>,
    key: StorageKey,
    budget: Arc<ByteBudget>,
}

#[async_trait]
impl super::ChunkReader for LocalReader {
    async fn read(&self, range: Range<u64>) -> Result<Bytes, StorageError> {
        let len = usize::try_from(range.end.saturating_sub(range.start))
            .map_err(|_| StorageError::io(&self.key, io::Error::other("range too large")))?;
        let charge = self.budget.charge(len as u64).await.map_err(StorageError::from)?;
        if let Some(body) = super::page_cache::read_cached(&self.file, range.start, len) {
            return Ok(charge.attach(body));
        }
        let (file, key) = (self.file.clone(), self.key.clone());
        let read = tokio::task::spawn_blocking(move || read_at(&file, &key, range.start, len)).await;
        let body = read.map_err(|e| StorageError::io(&self.key, io::Error::other(e)))??;
        Ok(charge.attach(body))
    }

    fn file_for(&self, _bytes: u64) -> Option<Arc<File>> {
        Some(self.file.clone())
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[async_trait]
impl Storage for LocalStorage {
    fn backend(&self) -> &'static str {
        "local"
    }

    fn max_reads_per_segment(&self) -> usize {
        512
    }

    async fn probe(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        let md = tokio::fs::metadata(&root)
            .await
            .map_err(|e| StorageError::Io { key: root.display().to_string(), source: e })?;
        if md.is_dir() {
            Ok(())
        } else {
            Err(StorageError::Unavailable(format!("{} is not a directory", root.display())))
        }
    }

    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        let k = key.clone();
        self.charged(key, move |root, budget, waited| {
            let (mut file, meta) = Self::open(root, &k)?;
            let Some(charge) = take_charge(budget, waited, meta.size) else { return Ok(Attempt::NeedsRoom(meta.size)) };
            let mut body = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            file.read_to_end(&mut body).map_err(|e| StorageError::io(&k, e))?;
            let meta = ObjectMeta { size: body.len() as u64, ..meta };
            Ok(Attempt::Done(Object { body: charge.attach(body.into()), meta }))
        })
        .await
    }

    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        let k = key.clone();
        self.charged(key, move |root, budget, waited| {
            let (file, meta) = Self::open(root, &k)?;
            let start = range.start.min(meta.size);
            let end = range.end.clamp(start, meta.size);
            let Some(charge) = take_charge(budget, waited, end - start) else {
                return Ok(Attempt::NeedsRoom(end - start));
            };
            let len =
                usize::try_from(end - start).map_err(|_| StorageError::io(&k, io::Error::other("range too large")))?;
            let body = charge.attach(read_at(&file, &k, start, len)?);
            Ok(Attempt::Done(Object { body, meta }))
        })
        .await
    }

    /// The file, found and opened once; each read is one `pread` on a blocking thread.
    async fn reader(&self, key: &StorageKey) -> Result<Option<Arc<dyn super::ChunkReader>>, StorageError> {
        let k = key.clone();
        let (file, _) = self.blocking(key, move |root| Self::open(root, &k)).await?;
        let reader = LocalReader { file: Arc::new(file), key: key.clone(), budget: self.budget.clone() };
        Ok(Some(Arc::new(reader)))
    }

    /// One blocking task, one open and one buffer for all the ranges.
    async fn get_ranges(&self, key: &StorageKey, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, StorageError> {
        let (k, ranges) = (key.clone(), Arc::new(ranges.to_vec()));
        self.charged(key, move |root, budget, waited| {
            let (file, meta) = Self::open(root, &k)?;
            let clamped: Vec<Range<u64>> = ranges
                .iter()
                .map(|r| {
                    let start = r.start.min(meta.size);
                    start..r.end.clamp(start, meta.size)
                })
                .collect();
            let total: u64 = clamped.iter().map(|r| r.end - r.start).sum();
            let Some(charge) = take_charge(budget, waited, total) else { return Ok(Attempt::NeedsRoom(total)) };
            let total =
                usize::try_from(total).map_err(|_| StorageError::io(&k, io::Error::other("ranges too large")))?;
            let mut buf = BytesMut::zeroed(total);
            let mut parts = Vec::with_capacity(clamped.len());
            for r in clamped {
                let mut part = buf.split_to((r.end - r.start) as usize);
                file.read_exact_at(&mut part, r.start).map_err(|e| StorageError::io(&k, e))?;
                parts.push(part.freeze());
            }
            Ok(Attempt::Done(charge.attach_all(parts)))
        })
        .await
    }

    /// Each span read straight into its place (no budget charge: the caller's covers the buffer).
    async fn gather(&self, key: &StorageKey, at: super::Gather<'_>, into: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        let (k, reads, spans, front) = (key.clone(), at.reads.to_vec(), at.spans.to_vec(), at.front);
        self.blocking(key, move |root| {
            let (file, _) = Self::open(root, &k)?;
            super::gather::from_file(&file, &k, super::Gather { reads: &reads, spans: &spans, front }, into)
        })
        .await
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        let k = key.clone();
        self.blocking(key, move |root| Self::open(root, &k).map(|(_, meta)| meta)).await
    }

    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        let k = key.clone();
        self.blocking(key, move |root| {
            let target = root.join(k.as_str());
            let real_parent = create_folders_inside(root, &k)?;
            let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("object");
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = real_parent.join(format!("{TMP_PREFIX}{}-{n}-{name}", std::process::id()));
            let write = || -> io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(&body)?;
                fs::rename(&tmp, real_parent.join(name))
            };
            write().map_err(|e| {
                let _ = fs::remove_file(&tmp);
                StorageError::io(&k, e)
            })
        })
        .await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        let k = key.clone();
        self.blocking(key, move |root| {
            let path = match Self::resolve_existing(root, &k) {
                Ok(path) => path,
                Err(StorageError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StorageError::io(&k, e)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.list_past(prefix, usize::MAX).await
    }

    /// The files under `prefix`, sorted, the walk stopping once more than `limit` are found.
    async fn list_past(&self, prefix: &str, limit: usize) -> Result<Vec<ListedObject>, StorageError> {
        if prefix.starts_with('/') || prefix.contains('\\') {
            return Err(StorageError::InvalidKey(super::KeyError::Absolute));
        }
        let folder = prefix_folder(prefix)?;
        let prefix = prefix.to_owned();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let start = match &folder {
                Some(f) => root.join(f.as_str()),
                None => root.clone(),
            };
            let mut out = Vec::new();
            walk(&root, &start, &prefix, &mut out, limit)
                .map_err(|e| StorageError::Io { key: prefix.clone(), source: e })?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Unavailable(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> StorageKey {
        StorageKey::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_bounded_listing_stops_walking() {
        let dir = tempfile::tempdir().unwrap();
        let st = LocalStorage::new(dir.path()).unwrap();
        for i in 0..20 {
            st.put(&key(&format!("many/{}/f{i}.mp4", i % 4)), Bytes::from_static(b"x")).await.unwrap();
        }
        let (some, more) = st.list_at_most("many/", 5).await.unwrap();
        assert_eq!((some.len(), more), (5, true));
        let (all, more) = st.list_at_most("many/", 20).await.unwrap();
        assert_eq!((all.len(), more), (20, false));
        assert_eq!(all, st.list("many/").await.unwrap());
    }

    #[tokio::test]
    async fn put_get_range_head_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let st = LocalStorage::new(dir.path()).unwrap();
        st.put(&key("a/b/c.txt"), Bytes::from_static(b"hello world")).await.unwrap();
        st.put(&key("a/d.txt"), Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(&st.get(&key("a/b/c.txt")).await.unwrap().body[..], b"hello world");
        let part = st.get_range(&key("a/b/c.txt"), 6..100).await.unwrap();
        assert_eq!(&part.body[..], b"world");
        assert_eq!(part.meta.size, 11);
        assert!(st.get_range(&key("a/b/c.txt"), 20..30).await.unwrap().body.is_empty());
        let parts = st.get_ranges(&key("a/b/c.txt"), &[6..8, 0..5, 9..100, 50..60]).await.unwrap();
        let parts: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        assert_eq!(parts, [&b"wo"[..], b"hello", b"ld", b""]);
        assert!(matches!(st.get_ranges(&key("a/none"), &[0..1, 2..3]).await, Err(StorageError::NotFound(_))));
        assert_eq!(st.head(&key("a/d.txt")).await.unwrap().size, 1);
        let all: Vec<_> = st.list("").await.unwrap().into_iter().map(|o| o.key.to_string()).collect();
        assert_eq!(all, ["a/b/c.txt", "a/d.txt"]);
        let some: Vec<_> = st.list("a/b").await.unwrap().into_iter().map(|o| o.key.to_string()).collect();
        assert_eq!(some, ["a/b/c.txt"]);
        st.delete(&key("a/b/c.txt")).await.unwrap();
        st.delete(&key("a/b/c.txt")).await.unwrap();
        assert!(matches!(st.get(&key("a/b/c.txt")).await, Err(StorageError::NotFound(_))));
        assert!(matches!(st.get(&key("a/b")).await, Err(StorageError::NotFound(_))));
    }

    #[tokio::test]
    async fn symlinks_leaving_the_root_are_not_found() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();
        fs::write(dir.path().join("inside"), b"ok").unwrap();
        std::os::unix::fs::symlink(dir.path().join("inside"), dir.path().join("goodlink")).unwrap();
        let st = LocalStorage::new(dir.path()).unwrap();
        assert!(matches!(st.get(&key("link")).await, Err(StorageError::NotFound(_))));
        assert!(matches!(st.get(&key("dirlink/secret")).await, Err(StorageError::NotFound(_))));
        for refused in ["dirlink/new", "dirlink/deeper/still/new"] {
            let e = st.put(&key(refused), Bytes::from_static(b"x")).await.unwrap_err();
            assert!(!e.is_outage(), "the layout's fault, not the backend's: {e}");
        }
        assert!(!outside.path().join("new").exists());
        assert!(!outside.path().join("deeper").exists(), "no folder is made outside the root");
        assert_eq!(&st.get(&key("goodlink")).await.unwrap().body[..], b"ok");
        let listed: Vec<_> = st.list("").await.unwrap().into_iter().map(|o| o.key.to_string()).collect();
        assert_eq!(listed, ["goodlink", "inside"]);
    }
}
