//! The catalog: which sources make up an asset, their current versions, and the indexed `Asset`s, cached.
//!
//! A source's identity (size, modification time, ETag) is re-checked at most
//! once per `vod.revalidate_after`; an asset is indexed once per identity.
//! Media problems are remembered for that identity too, so a broken file is
//! not re-read on every request; storage failures are not.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::future::try_join_all;
use moka::future::Cache;

use super::asset_set::{self, AssetSet};
use super::{VodError, source, subtitles};
use crate::config::VodConfig;
use crate::packaging::PackagingError;
use crate::packaging::mp4::{MediaIndex, Track, TrackKind};
use crate::packaging::presentation::{self, Presentation, Rendition, RenditionId, RenditionInput};
use crate::storage::{ObjectMeta, Storage, StorageError, StorageKey};

/// One source file of an asset, indexed.
#[derive(Debug)]
pub struct Source {
    pub key: StorageKey,
    pub index: MediaIndex,
}

/// An asset ready to serve: its sources' indexes and the presentation built on them.
#[derive(Debug)]
pub struct Asset {
    /// Changes whenever any source file (or the asset-set JSON) changes.
    pub version: u64,
    pub sources: Vec<Source>,
    pub presentation: Presentation,
    /// The newest modification time among the sources.
    pub last_modified: Option<SystemTime>,
    /// Per MPEG-TS variant (clear, or in SAMPLE-AES), each PID's continuity counter at every
    /// segment's start, counted once.
    pub ts_counters: std::sync::Mutex<std::collections::HashMap<(RenditionId, bool), Arc<TsCounters>>>,
    /// Its asset set asks for encryption (`"encrypted": true`).
    pub encrypted: bool,
}

/// Each PID's continuity counter (`(pid, counter)`) at the start of every segment of a TS variant.
pub(super) type TsCounters = Vec<Vec<(u16, u8)>>;

impl Asset {
    pub fn track(&self, r: &Rendition) -> (&Source, &Track) {
        let source = &self.sources[r.source];
        (source, &source.index.tracks[r.track_index])
    }

    fn memory_bytes(&self) -> usize {
        self.sources.iter().map(|s| s.index.memory_bytes()).sum::<usize>()
            + self.presentation.renditions().map(|r| r.times.len() * 12 + 512).sum::<usize>()
            + self.presentation.subtitles.iter().map(|s| s.subtitles.memory_bytes() + 256).sum::<usize>()
    }
}

/// Which files an asset is made of, and their identities right now.
#[derive(Debug, Clone)]
struct Identity {
    version: u64,
    /// When storage was asked (before the answers came).
    checked: Instant,
    set: Option<AssetSet>,
    sources: Vec<(StorageKey, ObjectMeta)>,
}

#[derive(Clone)]
pub struct Catalog {
    storage: Arc<dyn Storage>,
    config: VodConfig,
    identities: Cache<StorageKey, Arc<Identity>>,
    /// The last identity seen per asset, to keep serving while storage cannot be asked (stale-if-error).
    known: Cache<StorageKey, Arc<Identity>>,
    assets: Cache<(StorageKey, u64), Result<Arc<Asset>, PackagingError>>,
}

impl Catalog {
    pub fn new(storage: Arc<dyn Storage>, config: VodConfig) -> Self {
        let identities = Cache::builder().max_capacity(100_000).time_to_live(config.revalidate_after).build();
        let known = Cache::builder().max_capacity(100_000).build();
        let assets = Cache::builder()
            .max_capacity(config.index_cache_bytes.0)
            .weigher(|_, v: &Result<Arc<Asset>, PackagingError>| match v {
                Ok(a) => u32::try_from(a.memory_bytes()).unwrap_or(u32::MAX),
                Err(_) => 512,
            })
            .build();
        Catalog { storage, config, identities, known, assets }
    }

    /// The asset at `key`, indexed (once per version of its files).
    pub async fn resolve(&self, key: &StorageKey) -> Result<Arc<Asset>, VodError> {
        self.resolve_checked(key).await.map(|(asset, _)| asset)
    }

    /// [`Catalog::resolve`], and until when the files are known to be as they were indexed (their
    /// next check is due then); `None` while storage fails and the last known version is served.
    pub async fn resolve_checked(&self, key: &StorageKey) -> Result<(Arc<Asset>, Option<Instant>), VodError> {
        let (identity, current) = match self.identities.try_get_with(key.clone(), self.load_identity(key)).await {
            Ok(identity) => (identity, true),
            // Storage is failing: an asset indexed before keeps being served as it was.
            Err(e) => match (&*e, self.known.get(key).await) {
                (VodError::Storage(s), Some(known)) if s.is_outage() => (known, false),
                _ => return Err((*e).clone()),
            },
        };
        let built = self
            .assets
            .try_get_with((key.clone(), identity.version), self.build(identity.clone()))
            .await
            .map_err(|e| (*e).clone())?;
        let until = current.then(|| identity.checked + self.config.revalidate_after);
        Ok((built.map_err(VodError::Packaging)?, until))
    }

    async fn load_identity(&self, key: &StorageKey) -> Result<Arc<Identity>, VodError> {
        let checked = Instant::now();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let (set, files) = if key.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            // Read with a cap: an asset set is a short list of files, never worth gigabytes of memory.
            let json = self.storage.get_range(key, 0..asset_set::MAX_BYTES + 1).await?;
            if json.meta.size > asset_set::MAX_BYTES {
                return Err(VodError::Packaging(PackagingError::BadAssetSet(format!(
                    "{} bytes; an asset set may have at most {}",
                    json.meta.size,
                    asset_set::MAX_BYTES
                ))));
            }
            hasher.update(&json.body);
            let set = AssetSet::parse(key, &json.body)?;
            let mut files: Vec<StorageKey> = Vec::new();
            for entry in set.video.iter().chain(&set.audio).chain(&set.subtitles) {
                if !files.contains(&entry.file) {
                    files.push(entry.file.clone());
                }
            }
            (Some(set), files)
        } else {
            (None, vec![key.clone()])
        };
        let is_set = set.is_some();
        let metas = try_join_all(files.iter().map(|f| async move {
            match self.storage.head(f).await {
                // A file the asset set names but storage lacks is a broken asset, not a missing one.
                Err(StorageError::NotFound(_)) if is_set => {
                    Err(VodError::Packaging(PackagingError::BadAssetSet(format!("{f} does not exist"))))
                }
                other => Ok(other?),
            }
        }))
        .await?;
        for (file, meta) in files.iter().zip(&metas) {
            hasher.update(file.as_str().as_bytes());
            hasher.update(&meta.size.to_le_bytes());
            let mtime =
                meta.modified.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            hasher.update(&mtime.to_le_bytes());
            hasher.update(meta.etag.as_deref().unwrap_or("").as_bytes());
        }
        let identity = Arc::new(Identity {
            version: hasher.digest(),
            checked,
            set,
            sources: files.into_iter().zip(metas).collect(),
        });
        self.known.insert(key.clone(), identity.clone()).await;
        Ok(identity)
    }

    /// Indexes every source and builds the presentation. Media problems are a
    /// cached `Ok(Err(..))`; storage failures an uncached `Err`.
    async fn build(&self, identity: Arc<Identity>) -> Result<Result<Arc<Asset>, PackagingError>, VodError> {
        // The sidecars are part of the identity (a new subtitle file is a new version), not sources.
        let sidecars = identity.set.as_ref().map_or(&[][..], |s| &s.subtitles[..]);
        let media = identity.sources.iter().filter(|(key, _)| !sidecars.iter().any(|e| &e.file == key));
        let indexed = try_join_all(media.map(|(key, meta)| async move {
            match source::index(self.storage.as_ref(), key, meta, &self.config).await {
                Ok(index) => Ok(Ok(Source { key: key.clone(), index })),
                Err(VodError::Packaging(e)) => Ok(Err(e)),
                Err(e) => Err(e),
            }
        }))
        .await?;
        let sources = match indexed.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let subtitles = match subtitles::load(self.storage.as_ref(), &sources, sidecars).await? {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "VOD asset cannot be packaged");
                return Ok(Err(e));
            }
        };
        let target = self.config.segment_duration.as_secs_f64();
        let set = identity.set.clone();
        let encrypted = set.as_ref().is_some_and(|s| s.encrypted);
        let last_modified = identity.sources.iter().filter_map(|(_, m)| m.modified).max();
        let version = identity.version;
        let built = tokio::task::spawn_blocking(move || {
            let presentation = {
                let inputs = select_renditions(&sources, set.as_ref())?;
                Presentation { subtitles, ..presentation::build(&inputs, target)? }
            };
            let ts_counters = Default::default();
            Ok(Arc::new(Asset { version, sources, presentation, last_modified, ts_counters, encrypted }))
        })
        .await
        .unwrap_or_else(|e| Err(PackagingError::malformed(format!("packaging failed: {e}"))));
        if let Err(e) = &built {
            tracing::warn!(error = %e, "VOD asset cannot be packaged");
        }
        Ok(built)
    }
}

/// The renditions of an asset: every track of a single file, or what an asset set lists.
fn select_renditions<'a>(
    sources: &'a [Source],
    set: Option<&AssetSet>,
) -> Result<Vec<RenditionInput<'a>>, PackagingError> {
    let input = |source: usize, track_index: usize, name: Option<String>, language: Option<String>| RenditionInput {
        source,
        track_index,
        track: &sources[source].index.tracks[track_index],
        movie_timescale: sources[source].index.movie_timescale,
        name,
        language,
    };
    let first_of = |source: usize, kind: TrackKind| sources[source].index.tracks.iter().position(|t| t.kind == kind);
    let Some(set) = set else {
        let tracks = &sources[0].index.tracks;
        let mut inputs: Vec<_> = (0..tracks.len())
            .filter(|&i| tracks[i].kind == TrackKind::Video)
            .map(|i| input(0, i, None, None))
            .collect();
        inputs
            .extend((0..tracks.len()).filter(|&i| tracks[i].kind == TrackKind::Audio).map(|i| input(0, i, None, None)));
        return Ok(inputs);
    };
    let source_of = |key: &StorageKey| sources.iter().position(|s| &s.key == key).unwrap_or(0);
    let mut inputs = Vec::new();
    for entry in &set.video {
        let s = source_of(&entry.file);
        let t = first_of(s, TrackKind::Video)
            .ok_or_else(|| PackagingError::BadAssetSet(format!("{} has no video track", entry.file)))?;
        inputs.push(input(s, t, entry.name.clone(), entry.language.clone()));
    }
    for entry in &set.audio {
        let s = source_of(&entry.file);
        let t = first_of(s, TrackKind::Audio)
            .ok_or_else(|| PackagingError::BadAssetSet(format!("{} has no audio track", entry.file)))?;
        inputs.push(input(s, t, entry.name.clone(), entry.language.clone()));
    }
    if set.audio.is_empty()
        && let Some((s, t)) =
            set.video.iter().map(|e| source_of(&e.file)).find_map(|s| first_of(s, TrackKind::Audio).map(|t| (s, t)))
    {
        inputs.push(input(s, t, None, None));
    }
    Ok(inputs)
}
