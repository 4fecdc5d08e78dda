//! `/live/{channel}/...`: live HLS (master, media playlists with blocking reload and DVR ranges), the
//! live DASH MPD, init and media segments (from the snapshot's memory, else storage), and `/time`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde::Deserialize;

use super::{EdgeError, EdgeState, respond};
use crate::cache::{CacheKey, CacheOutcome, CachedObject, LiveKey};
use crate::http::policy::ObjectKind;
use crate::live::model::{ChannelSnapshot, Container, Status, WindowRequest};
use crate::live::state::keys;
use crate::live::{render_dash, render_hls};
use crate::packaging::presentation::RenditionId;

/// How long rendered playlists stay in the segment cache (each is keyed by snapshot version).
const RENDERED_TTL: Duration = Duration::from_secs(30);

/// Blocking-reload figures for stats and metrics.
#[derive(Debug, Default)]
pub struct BlockingStats {
    pub waiting: AtomicU64,
    pub released: AtomicU64,
    pub timed_out: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LiveObject {
    Master,
    Mpd,
    Playlist(RenditionId),
    Init(RenditionId, u64),
    Segment(RenditionId, u64, u64, Container),
}

impl LiveObject {
    fn parse(rest: &str) -> Option<LiveObject> {
        let parts: Vec<&str> = rest.split('/').collect();
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
        };
        match parts.as_slice() {
            ["master.m3u8"] => Some(LiveObject::Master),
            ["manifest.mpd"] => Some(LiveObject::Mpd),
            [name] => Some(LiveObject::Playlist(name.strip_suffix(".m3u8")?.parse().ok()?)),
            [r, epoch, "init.mp4"] => Some(LiveObject::Init(r.parse().ok()?, number(epoch)?)),
            [r, epoch, file] => {
                let (msn, ext) = file.rsplit_once('.')?;
                let container = match ext {
                    "m4s" => Container::Fmp4,
                    "ts" => Container::Ts,
                    _ => return None,
                };
                Some(LiveObject::Segment(r.parse().ok()?, number(epoch)?, number(msn)?, container))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

/// `?start=`/`?end=`: ISO 8601 (`2026-11-22T10:00:00Z`) or Unix seconds.
fn parse_time(value: &str) -> Result<SystemTime, EdgeError> {
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.min(1e11)));
    }
    let t = chrono::DateTime::parse_from_rfc3339(value)
        .map_err(|_| EdgeError::BadRequest(format!("{value:?} is not ISO 8601 or Unix seconds")))?;
    let ms = t.timestamp_millis();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

impl LiveQuery {
    fn window(&self) -> Result<WindowRequest, EdgeError> {
        Ok(WindowRequest {
            start: self.start.as_deref().map(parse_time).transpose()?,
            end: self.end.as_deref().map(parse_time).transpose()?,
        })
    }

    /// The window as a canonical query string (carried into media playlist URIs, used in cache keys).
    fn canonical(window: WindowRequest) -> String {
        let secs = |t: SystemTime| {
            format!("{:.3}", t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64())
        };
        match (window.start, window.end) {
            (None, None) => String::new(),
            (Some(s), None) => format!("?start={}", secs(s)),
            (None, Some(e)) => format!("?end={}", secs(e)),
            (Some(s), Some(e)) => format!("?start={}&end={}", secs(s), secs(e)),
        }
    }
}

pub async fn serve(
    State(state): State<EdgeState>,
    Path((channel, rest)): Path<(String, String)>,
    Query(query): Query<LiveQuery>,
    request: Request,
) -> Result<Response, EdgeError> {
    let (method, headers) = (request.method(), request.headers());
    let handle = state.live.get(&channel).ok_or(EdgeError::NotFound)?;
    let object = LiveObject::parse(&rest).ok_or(EdgeError::NotFound)?;
    let window = query.window()?;
    let mut snap = handle.snapshot();
    let rendition = |snap: &ChannelSnapshot, id: RenditionId| snap.rendition_index(id).ok_or(EdgeError::NotFound);
    match object {
        LiveObject::Master => {
            let suffix = LiveQuery::canonical(window);
            let text = render_hls::master(&snap, &suffix);
            let obj =
                rendered(&state, &snap, format!("master.m3u8{suffix}"), "application/vnd.apple.mpegurl", move || {
                    Some(text)
                })
                .await?;
            Ok(respond::cached(method, headers, &obj.0, ObjectKind::LiveMaster, obj.1))
        }
        LiveObject::Playlist(id) => {
            let r = rendition(&snap, id)?;
            if let Some(msn) = query.msn.as_deref() {
                let msn: u64 = msn.parse().map_err(|_| EdgeError::BadRequest("_HLS_msn must be a number".into()))?;
                snap = wait_for_segment(&state, &handle, snap, r, msn).await?;
            }
            let key = format!("{id}.m3u8{}", LiveQuery::canonical(window));
            let s2 = snap.clone();
            let (obj, outcome) = rendered(&state, &snap, key, "application/vnd.apple.mpegurl", move || {
                render_hls::media(&s2, r, window)
            })
            .await?;
            let closed = snap.window(r, window).1;
            Ok(respond::cached(method, headers, &obj, manifest_kind(&snap, closed), outcome))
        }
        LiveObject::Mpd => {
            let time_url = time_url(&state);
            let suffix = LiveQuery::canonical(window);
            let s2 = snap.clone();
            let (obj, outcome) =
                rendered(&state, &snap, format!("manifest.mpd{suffix}"), "application/dash+xml", move || {
                    render_dash::mpd(&s2, window, &time_url)
                })
                .await?;
            let closed = snap.status == Status::Ended || (window.end.is_some() && snap.window(0, window).1);
            Ok(respond::cached(method, headers, &obj, manifest_kind(&snap, closed), outcome))
        }
        LiveObject::Init(id, epoch) => {
            let r = rendition(&snap, id)?;
            let init = snap.init(epoch, r).ok_or(EdgeError::NotFound)?;
            Ok(respond::cached(method, headers, init, ObjectKind::LiveSegment, CacheOutcome::Hit))
        }
        LiveObject::Segment(id, epoch, msn, container) => {
            let r = rendition(&snap, id)?;
            let slot = snap.slot(msn).filter(|s| s.epoch == epoch).ok_or(EdgeError::NotFound)?;
            if snap.container != Some(container) {
                return Err(EdgeError::NotFound);
            }
            let part = slot.part(r).ok_or(EdgeError::NotFound)?;
            if let Some(obj) = &part.object {
                return Ok(respond::cached(method, headers, obj, ObjectKind::LiveSegment, CacheOutcome::Hit));
            }
            // Older than the memory window: read back from storage through the cache.
            let key = keys::part(&snap.id, epoch, id, msn, container);
            let storage = state.storage.clone();
            let content_type = if container == Container::Ts { "video/mp2t" } else { "video/iso.segment" };
            let load = async move {
                let o = storage.get(&key).await.map_err(EdgeError::from)?;
                Ok::<_, EdgeError>(CachedObject::new(o.body, content_type, o.meta.modified))
            };
            let stored = keys::part(&snap.id, epoch, id, msn, container);
            let (obj, outcome) =
                state.cache.get_or_load(CacheKey::Live(LiveKey::Stored(stored)), load, |_| false).await.map_err(
                    |e| match &*e {
                        EdgeError::Storage(s) => EdgeError::Storage(s.clone()),
                        _ => EdgeError::NotFound,
                    },
                )?;
            Ok(respond::cached(method, headers, &obj, ObjectKind::LiveSegment, outcome))
        }
    }
}

fn manifest_kind(snap: &ChannelSnapshot, closed: bool) -> ObjectKind {
    if closed {
        ObjectKind::VodManifest { max_age: Duration::from_secs(60) }
    } else {
        ObjectKind::LiveManifest { target: snap.settings.target_duration, low_latency: false }
    }
}

/// Holds a `_HLS_msn` request until the rendition has that segment: one wake-up per publication for
/// every waiter, no polling; 400 when too far ahead, 503 after about three target durations.
async fn wait_for_segment(
    state: &EdgeState,
    handle: &crate::live::ChannelHandle,
    snap: Arc<ChannelSnapshot>,
    r: usize,
    msn: u64,
) -> Result<Arc<ChannelSnapshot>, EdgeError> {
    if snap.has_reached(r, msn) {
        return Ok(snap);
    }
    if render_hls::too_far_ahead(&snap, msn) {
        return Err(EdgeError::BadRequest(format!("_HLS_msn={msn} is more than two segments ahead")));
    }
    let stats = &state.blocking;
    stats.waiting.fetch_add(1, Ordering::Relaxed);
    let mut rx = handle.subscribe();
    let limit = render_hls::blocking_timeout(&snap);
    let waited =
        tokio::time::timeout(limit, async { rx.wait_for(|s| s.has_reached(r, msn)).await.map(|s| s.clone()) }).await;
    stats.waiting.fetch_sub(1, Ordering::Relaxed);
    match waited {
        Ok(Ok(snap)) => {
            stats.released.fetch_add(1, Ordering::Relaxed);
            Ok(snap)
        }
        _ => {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
            Err(EdgeError::Unavailable(format!("segment {msn} did not arrive within {} s", limit.as_secs())))
        }
    }
}

/// A playlist or MPD rendered once per snapshot version (and window), with its compressed forms.
async fn rendered(
    state: &EdgeState,
    snap: &ChannelSnapshot,
    object: String,
    content_type: &'static str,
    render: impl FnOnce() -> Option<String>,
) -> Result<(Arc<CachedObject>, CacheOutcome), EdgeError> {
    let key =
        CacheKey::Live(LiveKey::Rendered { channel: snap.id.clone(), version: snap.version, object: object.into() });
    let modified = Some(snap.published);
    let load = async move {
        let text = render().ok_or(EdgeError::NotFound)?;
        Ok::<_, EdgeError>(
            CachedObject::new(Bytes::from(text), content_type, modified).with_ttl(Some(RENDERED_TTL)).compressed(),
        )
    };
    state.cache.get_or_load(key, load, |_| false).await.map_err(|e| match &*e {
        EdgeError::NotFound => EdgeError::NotFound,
        other => EdgeError::BadRequest(other.to_string()),
    })
}

/// The `UTCTiming` URL: absolute under `edge.public_url`, else relative to the MPD
/// (`/live/{channel}/manifest.mpd` -> `/time`), which players resolve against the MPD's own URL.
/// Never built from request headers: the MPD is cached and shared by every player.
fn time_url(state: &EdgeState) -> String {
    match state.public_url.trim_end_matches('/') {
        "" => "../../time".to_owned(),
        base => format!("{base}/time"),
    }
}

/// `GET /time`: the server's clock for DASH `UTCTiming` (http-iso), never cached.
pub async fn time() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, "no-store")],
        render_hls::iso_time(SystemTime::now()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_urls() {
        assert_eq!(LiveObject::parse("master.m3u8"), Some(LiveObject::Master));
        assert_eq!(LiveObject::parse("manifest.mpd"), Some(LiveObject::Mpd));
        let v0: RenditionId = "v0".parse().unwrap();
        assert_eq!(LiveObject::parse("v0.m3u8"), Some(LiveObject::Playlist(v0)));
        assert_eq!(LiveObject::parse("v0/1700/init.mp4"), Some(LiveObject::Init(v0, 1700)));
        assert_eq!(LiveObject::parse("v0/1700/42.m4s"), Some(LiveObject::Segment(v0, 1700, 42, Container::Fmp4)));
        assert_eq!(LiveObject::parse("v0/1700/42.ts"), Some(LiveObject::Segment(v0, 1700, 42, Container::Ts)));
        for bad in ["", "x.m3u8", "v0/42.m4s", "v0/a/42.m4s", "v0/1/42.mp4", "v0/1/-1.m4s", "v0/1/2/3"] {
            assert_eq!(LiveObject::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").unwrap(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        let w = WindowRequest { start: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1500)), end: None };
        assert_eq!(LiveQuery::canonical(w), "?start=1.500");
    }
}
