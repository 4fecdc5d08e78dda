//! VOD: serving MP4 files as HLS and DASH on the fly. Finds and indexes sources (catalog), then renders
//! playlists and muxes segments through the segment cache.
//!
//! Invariants: a source's index is built once per version of the file (size,
//! modification time, ETag); a segment reads only its samples' byte ranges;
//! every object goes through the segment cache, so concurrent misses cost one
//! build.

pub mod asset_set;
mod catalog;
mod iframes;
mod object;
pub mod protect;
pub mod segment;
mod source;
mod subtitles;
mod ts;

use std::sync::Arc;

pub use crate::packaging::url::VodPath;
pub use catalog::{Asset, Catalog, Source};

use crate::budget::ByteBudget;
use crate::cache::{CacheOutcome, CachedObject, SegmentCache};
use crate::config::VodConfig;
use crate::packaging::PackagingError;
use crate::storage::{Storage, StorageError, StorageKey};

/// Why a VOD request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VodError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Packaging(#[from] PackagingError),
    #[error(transparent)]
    Storage(Arc<StorageError>),
    /// A protected asset whose key cannot be had now (the key server is down or refuses).
    #[error(transparent)]
    Key(Arc<crate::keys::KeyError>),
    /// An asset set that asks for encryption, with none configured (`[encryption]` has no key).
    #[error("this asset set asks to be served encrypted, and [encryption] has no key")]
    Unprotected,
}

impl From<StorageError> for VodError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) => VodError::NotFound,
            other => VodError::Storage(Arc::new(other)),
        }
    }
}

/// What a request asks of an object: all of it, or a byte range (served from a built object, never
/// streamed, so the range can be cut from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    Range,
}

/// What [`Vod::serve`] found: an object to send from memory (and until when the asset's files are
/// known to be unchanged), or a segment to stream.
pub enum Served {
    Cached(Arc<CachedObject>, CacheOutcome, Option<std::time::Instant>),
    Streamed(Arc<segment::SegmentPlan>, Option<std::time::SystemTime>),
}

/// The VOD service the edge calls. Cheap to clone.
#[derive(Clone)]
pub struct Vod {
    storage: Arc<dyn Storage>,
    catalog: Catalog,
    cache: SegmentCache,
    config: VodConfig,
    /// Segments being muxed are charged here (the process's in-flight byte budget).
    budget: Arc<ByteBudget>,
    /// Which assets are encrypted (`[encryption]`).
    protection: Option<Arc<crate::keys::protection::Protection>>,
}

impl Vod {
    pub fn new(storage: Arc<dyn Storage>, cache: SegmentCache, config: VodConfig) -> Self {
        let catalog = Catalog::new(storage.clone(), config.clone());
        Vod { catalog, storage, cache, config, budget: ByteBudget::unlimited(), protection: None }
    }

    /// Encrypts the assets `protection` names.
    pub fn with_protection(self, protection: Option<Arc<crate::keys::protection::Protection>>) -> Self {
        Vod { protection, ..self }
    }

    /// How `asset` is encrypted, when it is protected (by the config's prefixes, or by its asset
    /// set); an error when its key cannot be had now, or when its set asks for encryption and none
    /// is configured (never clear media in its place).
    async fn sealing(
        &self,
        key: &StorageKey,
        asset: &Asset,
    ) -> Result<Option<Arc<crate::keys::protection::Sealing>>, VodError> {
        match &self.protection {
            Some(protection) => protection.sealing(key, asset.encrypted).await.map_err(VodError::Key),
            None if asset.encrypted => Err(VodError::Unprotected),
            None => Ok(None),
        }
    }

    /// Which assets and channels are protected, when any are.
    pub fn protection(&self) -> Option<&Arc<crate::keys::protection::Protection>> {
        self.protection.as_ref()
    }

    /// The key the edge hands out at `/keys/{file}`, when key delivery is on and it is ours
    /// (`flagged`: protected by its asset set or its channel's settings).
    pub async fn delivered_key(&self, file: &str, flagged: bool) -> Option<crate::packaging::cenc::ContentKey> {
        self.protection.as_ref()?.delivered(file, flagged).await
    }

    pub fn with_budget(self, budget: Arc<ByteBudget>) -> Self {
        Vod { budget, ..self }
    }

    pub fn config(&self) -> &VodConfig {
        &self.config
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The object (playlist, manifest, init or media segment) of an asset, from the cache or built once.
    pub async fn object(
        &self,
        asset_key: &StorageKey,
        object: VodPath,
    ) -> Result<(Arc<CachedObject>, CacheOutcome), VodError> {
        let asset = self.catalog.resolve(asset_key).await?;
        let sealing = self.sealing(asset_key, &asset).await?;
        object::check(object, &asset.presentation, sealing.as_deref())?;
        self.cached(asset_key, asset, object, sealing).await
    }

    /// [`Vod::object`]; or, for a whole response ([`Wanted::Whole`]), a media segment the segment
    /// cache would not keep (the cache is off, or the segment is larger than
    /// `cache.max_object_bytes`) as a plan to stream it from its source ([`Vod::stream`]): memory
    /// per response is one read chunk, not the segment.
    pub async fn serve(&self, asset_key: &StorageKey, object: VodPath, wanted: Wanted) -> Result<Served, VodError> {
        let (asset, until) = self.catalog.resolve_checked(asset_key).await?;
        let sealing = self.sealing(asset_key, &asset).await?;
        object::check(object, &asset.presentation, sealing.as_deref())?;
        // A protected segment is always built: its header depends on its samples' encryption.
        if wanted == Wanted::Whole
            && sealing.is_none()
            && let Some(len) = object::segment_len(&asset, object)
            && !self.cache.keeps(len)
        {
            let plan = object::plan(self.storage.as_ref(), &asset, object, &self.config)?;
            if plan.streamable() {
                return Ok(Served::Streamed(Arc::new(plan), asset.last_modified));
            }
        }
        let (object, outcome) = self.cached(asset_key, asset, object, sealing).await?;
        Ok(Served::Cached(object, outcome, until))
    }

    /// An object through the segment cache, built once for all concurrent callers.
    async fn cached(
        &self,
        asset_key: &StorageKey,
        asset: Arc<Asset>,
        object: VodPath,
        sealing: Option<Arc<crate::keys::protection::Sealing>>,
    ) -> Result<(Arc<CachedObject>, CacheOutcome), VodError> {
        let protected = sealing.is_some();
        let key = object::cache_key(asset_key, asset.version, object, sealing.as_deref());
        let (storage, config, budget) = (self.storage.clone(), self.config.clone(), self.budget.clone());
        let load = object::build(storage, asset, object, config, budget, self.cache.is_on(), sealing);
        let outage = |e: &VodError| matches!(e, VodError::Storage(s) if s.is_outage());
        // A protected segment is built whole even with the cache off: one build per burst.
        let loaded = match protected {
            true => self.cache.get_or_load_shared(key, load, outage).await,
            false => self.cache.get_or_load(key, load, outage).await,
        };
        loaded.map_err(|e| (*e).clone())
    }

    /// A streamed segment's bytes as its header and ranges of the source file, where the backend
    /// reads a local file: the edge's writer sends them with `sendfile`.
    pub async fn file_body(&self, plan: &segment::SegmentPlan) -> Option<crate::http::file_body::FileBody> {
        let reader = self.storage.reader(&plan.key).await.ok()??;
        let file = reader.file_for(plan.len - plan.header.len() as u64)?;
        let spans = plan.spans.clone().into();
        Some(crate::http::file_body::FileBody { prefix: plan.header.clone(), file, spans })
    }

    /// The body of a streamed segment ([`Served::Streamed`]).
    pub fn stream(
        &self,
        plan: Arc<segment::SegmentPlan>,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        segment::stream(self.storage.clone(), plan)
    }
}
