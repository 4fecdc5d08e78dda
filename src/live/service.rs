//! The live service the edge calls, shaped like `vod::Vod`: every object of a channel through the
//! segment cache. Playlists and MPDs are rendered once per snapshot version and window (on a miss,
//! never per request); init and media segments come from the snapshot's memory, else storage.
//! `_HLS_msn` requests wait here (blocking playlist reload).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use super::blocking::{self, BlockingStats};
use super::growing::Growing;
use super::keys;
use super::manifests::Delta;
use super::model::{ChannelSnapshot, Status};
use super::{LiveRegistry, manifests, owner};
use crate::budget::ByteBudget;
use crate::cache::{CacheKey, CacheOutcome, CachedObject, SegmentCache};
use crate::http::content_type;
use crate::http::policy::ObjectKind;
use crate::packaging::url::{Container, LivePath, LiveQuery};
use crate::storage::{Storage, StorageError};

mod following;
mod low_latency;
mod sealed;
use following::Followers;
use sealed::{LiveSealing, Seal};

/// How long rendered playlists stay in the segment cache (each is keyed by snapshot version).
const RENDERED_TTL: Duration = Duration::from_secs(30);

/// Why a live request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServeError {
    #[error("not found")]
    NotFound,
    /// Not found, and why.
    #[error("{0}")]
    NotHere(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// A blocking reload that timed out.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(Arc<StorageError>),
}

/// What the edge sends for a live request.
pub enum Answer {
    /// A whole object.
    Whole(Served),
    /// LL-DASH: the segment being uploaded, sent as its parts arrive.
    Growing(Growing),
}

impl From<Served> for Answer {
    fn from(served: Served) -> Self {
        Answer::Whole(served)
    }
}

/// An object ready to send, how it was found, and how it may be cached downstream.
pub struct Served {
    pub object: Arc<CachedObject>,
    pub outcome: CacheOutcome,
    pub kind: ObjectKind,
}

/// The live service. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    registry: LiveRegistry,
    storage: Arc<dyn Storage>,
    cache: SegmentCache,
    /// The MPD's `UTCTiming` URL.
    time_url: Arc<str>,
    blocking: Arc<BlockingStats>,
    /// Segments copied into the cache are charged here (the process's in-flight byte budget).
    budget: Arc<ByteBudget>,
    /// Channels another pod takes the stream of, followed through the control store (in a cluster).
    followers: Arc<Followers>,
    /// Which channels are encrypted, and how (`[encryption] live_prefixes`).
    sealed: Option<Arc<LiveSealing>>,
}

impl Live {
    /// `public_url` (`edge.public_url`, may be empty) makes the `UTCTiming` URL absolute.
    pub fn new(registry: LiveRegistry, storage: Arc<dyn Storage>, cache: SegmentCache, public_url: &str) -> Self {
        let (time_url, blocking, budget) = (time_url(public_url).into(), Arc::default(), ByteBudget::unlimited());
        Live { registry, storage, cache, time_url, blocking, budget, followers: Arc::default(), sealed: None }
    }

    /// Encrypts the channels `protection` names, with a new key every `key_period` segments (0:
    /// one key per channel).
    pub fn with_protection(
        self,
        protection: Option<Arc<crate::keys::protection::Protection>>,
        key_period: u64,
    ) -> Self {
        let sealed = protection.map(|protection| Arc::new(LiveSealing { protection, key_period }));
        Live { sealed, ..self }
    }

    pub fn with_budget(self, budget: Arc<ByteBudget>) -> Self {
        Live { budget, ..self }
    }

    pub fn registry(&self) -> &LiveRegistry {
        &self.registry
    }

    pub fn blocking(&self) -> &Arc<BlockingStats> {
        &self.blocking
    }

    /// The object `path` of `channel`, for the request's `query`.
    pub async fn object(&self, channel: &str, path: LivePath, query: LiveQuery) -> Result<Answer, ServeError> {
        // In a cluster, a pod serves from its own state only when it takes the channel's uploads.
        let source = match self.registry.get(channel) {
            Some(handle) if handle.is_owner() || self.registry.cluster().is_none() => handle.subscribe(),
            _ => self.follow(channel).await?,
        };
        let mut snap = source.borrow().clone();
        let protected = |s: &&Arc<LiveSealing>| s.protection.protects_channel(channel) || snap.settings.encrypted;
        if let Some(sealed) = self.sealed.as_ref().filter(protected) {
            // Boxed: a protected channel's futures (key fetches inside cache loads) are large.
            return Box::pin(self.sealed_object(sealed, source, snap, path, query)).await;
        }
        if snap.settings.encrypted {
            return Err(ServeError::Unavailable("this channel is to be encrypted, and [encryption] has no key".into()));
        }
        let window = query.window;
        let rendition = |snap: &ChannelSnapshot, id| snap.rendition_index(id).ok_or(ServeError::NotFound);
        match path {
            LivePath::Master => {
                let suffix = window.canonical_query();
                let (object, outcome) = self
                    .rendered(&snap, path, &suffix, content_type::HLS_PLAYLIST, |s| {
                        Some(manifests::render_multivariant(s, &suffix))
                    })
                    .await?;
                Ok(Served { object, outcome, kind: ObjectKind::LiveMaster }.into())
            }
            LivePath::Playlist(id) => {
                let r = rendition(&snap, id)?;
                if let Some(msn) = query.msn {
                    snap = self.wait_for_segment(source.clone(), snap, r, msn, query.part).await?;
                }
                let mut key = window.canonical_query();
                if query.skip {
                    key.push_str(if key.is_empty() { "?_HLS_skip=YES" } else { "&_HLS_skip=YES" });
                }
                let (object, outcome) = self
                    .rendered(&snap, path, &key, content_type::HLS_PLAYLIST, |s| {
                        manifests::render_media_playlist(
                            s,
                            r,
                            window,
                            if query.skip { Delta::SkipOlder } else { Delta::Full },
                        )
                    })
                    .await?;
                let closed = snap.window(r, window).1;
                Ok(Served { object, outcome, kind: manifest_kind(&snap, closed) }.into())
            }
            LivePath::IFrames(id) => {
                let r = rendition(&snap, id)?;
                let key = window.canonical_query();
                let (object, outcome) = self
                    .rendered(&snap, path, &key, content_type::HLS_PLAYLIST, |s| {
                        manifests::render_i_frame_playlist(s, r, window)
                    })
                    .await?;
                let closed = snap.window(r, window).1;
                Ok(Served { object, outcome, kind: manifest_kind(&snap, closed) }.into())
            }
            LivePath::Mpd => {
                if snap.container == Some(Container::Ts) {
                    return Err(ServeError::NotHere(
                        "DASH needs fMP4 (CMAF) segments and this channel is pushed as MPEG-TS; push fMP4 \
                         (for ffmpeg's HLS muxer: -hls_segment_type fmp4) to get an MPD as well",
                    ));
                }
                let time_url = self.time_url.clone();
                let query = window.canonical_query();
                let (object, outcome) = self
                    .rendered(&snap, path, &query, content_type::DASH_MPD, |s| {
                        manifests::render_mpd(s, window, &time_url)
                    })
                    .await?;
                let closed = snap.status == Status::Ended || (window.end.is_some() && snap.window(0, window).1);
                Ok(Served { object, outcome, kind: manifest_kind(&snap, closed) }.into())
            }
            LivePath::Init(id, epoch) => {
                let r = rendition(&snap, id)?;
                let held = snap.init(epoch, r).cloned();
                let modified = snap.slots.iter().find(|s| s.epoch == epoch).map(|s| s.pdt);
                let stored = keys::init(&snap.id, epoch, id);
                let source = Source { held, owner: None, stored };
                Ok(self.segment(&snap, path, source, content_type::MP4, modified, None).await?.into())
            }
            LivePath::Segment(id, epoch, msn, container) => {
                let r = rendition(&snap, id)?;
                if snap.container_of(r) != Some(container) {
                    return Err(ServeError::NotFound);
                }
                let (waited, growing) = self.growing(&source, snap, r, epoch, msn).await?;
                if let Some(growing) = growing {
                    return Ok(Answer::Growing(growing));
                }
                snap = waited;
                let slot = snap.slot(msn).filter(|s| s.epoch == epoch).ok_or(ServeError::NotFound)?;
                let part = slot.part(r).ok_or(ServeError::NotFound)?;
                let media_type = container.media_type();
                let stored = keys::part(&snap.id, epoch, id, msn, container);
                let owner = snap.owner_url.clone().filter(|_| part.at_owner).map(|url| (url, part.size));
                let source = Source { held: part.bytes.clone(), owner, stored };
                Ok(self.segment(&snap, path, source, media_type, Some(slot.end()), None).await?.into())
            }
            LivePath::Part(id, epoch, msn, part) => {
                let r = rendition(&snap, id)?;
                let (waited, bytes, size) = self.part(&source, snap, r, (epoch, msn, part)).await?;
                snap = waited;
                if bytes.is_empty() && size > 0 {
                    // A channel another pod writes: the part is in the owner's memory only.
                    return Ok(self.followed_part(&snap, path, size).await?.into());
                }
                let object = Arc::new(CachedObject::new(bytes, content_type::MEDIA_SEGMENT, None));
                Ok(Served { object, outcome: CacheOutcome::Bypass, kind: ObjectKind::LiveSegment }.into())
            }
        }
    }

    /// An init or media segment: the bytes the snapshot holds; else, on a pod following the channel,
    /// the owner's memory while it holds them; else (older than the memory window, after a restart,
    /// the owner away) storage. Cached under its URL either way. Bytes from memory or the owner enter
    /// the cache as a copy charged to the in-flight budget, like every other cached body, so the cache
    /// never keeps an upload's buffer (and its ingest charge) alive.
    /// `seal`: a protected channel's object, its bytes sealed before they are cached.
    async fn segment(
        &self,
        snap: &ChannelSnapshot,
        path: LivePath,
        source: Source,
        media_type: &'static str,
        modified: Option<SystemTime>,
        seal: Option<Seal>,
    ) -> Result<Served, ServeError> {
        let plain = format!("{}/{path}", snap.id);
        // The owner is asked for the clear object by its own URL; the sealed one is cached apart.
        let owner = source.owner.map(|(owner, size)| (owner, size, format!("/live/{plain}")));
        let key_path = if seal.is_some() { format!("{plain}#sealed") } else { plain };
        let key = CacheKey::new("live", key_path, 0);
        let (storage, budget) = (self.storage.clone(), self.budget.clone());
        let load = async move {
            let seal = seal.as_ref();
            // Sealing writes new bytes; unsealed memory is copied (`copy`), so the cache never
            // keeps an upload's buffer.
            let stored_in = storage.as_ref();
            let charged = |bytes: Bytes, copy: bool| async move {
                let bytes = match seal {
                    Some(seal) => Box::pin(seal.apply(&bytes, stored_in)).await?,
                    None if copy => Bytes::copy_from_slice(&bytes),
                    None => bytes,
                };
                let charge = budget
                    .charge(bytes.len() as u64)
                    .await
                    .map_err(|e| ServeError::Storage(Arc::new(StorageError::from(e))))?;
                Ok::<_, ServeError>(charge.attach(bytes))
            };
            if let Some(bytes) = source.held {
                let body = charged(bytes, true).await?;
                return Ok(CachedObject::new(body, media_type, modified));
            }
            if let Some((owner, size, url)) = owner {
                match owner::fetch(&owner, &url, size).await {
                    Ok(bytes) => return Ok(CachedObject::new(charged(bytes, false).await?, media_type, modified)),
                    Err(e) => {
                        tracing::debug!(object = %url, owner = %owner, error = %e, "reading storage instead of the owner")
                    }
                }
            }
            owner::FETCHES.storage.fetch_add(1, Ordering::Relaxed);
            let o = storage.get(&source.stored).await.map_err(|e| match e {
                StorageError::NotFound(_) => ServeError::NotFound,
                other => ServeError::Storage(Arc::new(other)),
            })?;
            let body = match seal {
                Some(seal) => Box::pin(seal.apply(&o.body, storage.as_ref())).await?,
                None => o.body,
            };
            Ok::<_, ServeError>(CachedObject::new(body, media_type, o.meta.modified.or(modified)))
        };
        let (object, outcome) = self.cache.get_or_load(key, load, |_| false).await.map_err(|e| (*e).clone())?;
        Ok(Served { object, outcome, kind: ObjectKind::LiveSegment })
    }

    /// A part of a channel another pod writes, read from the owner's memory (once per pod: cached
    /// under its URL, as segments are); 404 when the owner no longer has it.
    async fn followed_part(&self, snap: &ChannelSnapshot, path: LivePath, size: u64) -> Result<Served, ServeError> {
        let owner = snap.owner_url.clone().ok_or(ServeError::NotFound)?;
        let key_path = format!("{}/{path}", snap.id);
        let url = format!("/live/{key_path}");
        let key = CacheKey::new("live", key_path, 0);
        let load = async move {
            let bytes = owner::fetch(&owner, &url, size).await.map_err(|e| {
                tracing::debug!(object = %url, owner = %owner, error = %e, "the owner did not give the part");
                ServeError::NotFound
            })?;
            Ok::<_, ServeError>(CachedObject::new(bytes, content_type::MEDIA_SEGMENT, None))
        };
        let (object, outcome) = self.cache.get_or_load(key, load, |_| false).await.map_err(|e| (*e).clone())?;
        Ok(Served { object, outcome, kind: ObjectKind::LiveSegment })
    }

    /// A playlist or MPD rendered once per snapshot version and window (`query`, canonical), with its
    /// compressed forms.
    async fn rendered(
        &self,
        snap: &Arc<ChannelSnapshot>,
        path: LivePath,
        query: &str,
        media_type: &'static str,
        render: impl FnOnce(&ChannelSnapshot) -> Option<String>,
    ) -> Result<(Arc<CachedObject>, CacheOutcome), ServeError> {
        let text = async { render(snap).ok_or(ServeError::NotFound) };
        self.rendered_from(snap, path, query, media_type, text).await
    }

    /// [`Live::rendered`], the text made by `text`, which runs on a miss only (a protected
    /// channel's manifests fetch their keys there).
    async fn rendered_from(
        &self,
        snap: &ChannelSnapshot,
        path: LivePath,
        query: &str,
        media_type: &'static str,
        text: impl Future<Output = Result<String, ServeError>>,
    ) -> Result<(Arc<CachedObject>, CacheOutcome), ServeError> {
        let key = CacheKey::new("live", format!("{}/{path}{query}", snap.id), snap.version);
        let kept = self.cache.is_on();
        let load = async {
            let text = text.await?;
            let object = CachedObject::new(Bytes::from(text), media_type, Some(snap.published));
            let object = object.with_ttl(Some(RENDERED_TTL));
            // Compressed forms only for what the cache keeps (once per snapshot version).
            Ok::<_, ServeError>(if kept { object.compressed() } else { object })
        };
        self.cache.get_or_load(key, load, |_| false).await.map_err(|e| (*e).clone())
    }

    /// Holds a `_HLS_msn` request until the rendition has that segment: one wake-up per publication for
    /// every waiter, no polling; 400 when too far ahead, 503 after about three target durations.
    async fn wait_for_segment(
        &self,
        mut rx: watch::Receiver<Arc<ChannelSnapshot>>,
        snap: Arc<ChannelSnapshot>,
        r: usize,
        msn: u64,
        part: Option<u32>,
    ) -> Result<Arc<ChannelSnapshot>, ServeError> {
        let reached = |s: &ChannelSnapshot| match part {
            Some(part) => s.has_part(r, msn, part),
            None => s.has_reached(r, msn),
        };
        if reached(&snap) {
            return Ok(snap);
        }
        if blocking::too_far_ahead(&snap, msn) {
            return Err(ServeError::BadRequest(format!("_HLS_msn={msn} is more than two segments ahead")));
        }
        let stats = &self.blocking;
        stats.waiting.fetch_add(1, Ordering::Relaxed);
        let limit = blocking::blocking_timeout(&snap);
        let waited = tokio::time::timeout(limit, async { rx.wait_for(|s| reached(s)).await.map(|s| s.clone()) }).await;
        stats.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(snap)) => {
                stats.released.fetch_add(1, Ordering::Relaxed);
                Ok(snap)
            }
            _ => {
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(ServeError::Unavailable(format!("segment {msn} did not arrive within {} s", limit.as_secs())))
            }
        }
    }
}

/// Where a segment may be read, fastest first.
struct Source {
    /// Held by this pod (it writes the channel).
    held: Option<Bytes>,
    /// Held by the owner (this pod follows the channel): its internal URL, and the segment's size.
    owner: Option<(Arc<str>, u64)>,
    stored: crate::storage::StorageKey,
}

fn manifest_kind(snap: &ChannelSnapshot, closed: bool) -> ObjectKind {
    if closed {
        ObjectKind::VodManifest { max_age: Duration::from_secs(60) }
    } else {
        ObjectKind::LiveManifest { target: snap.settings.target_duration, low_latency: false }
    }
}

/// The `UTCTiming` URL: absolute under `edge.public_url`, else relative to the MPD
/// (`/live/{channel}/manifest.mpd` -> `/time`), which players resolve against the MPD's own URL.
/// Never built from request headers: the MPD is cached and shared by every player.
fn time_url(public_url: &str) -> String {
    match public_url.trim_end_matches('/') {
        "" => "../../time".to_owned(),
        base => format!("{base}/time"),
    }
}
