//! The objects of a VOD asset (master, MPD, media playlists, init and media segments): names, cache keys, and how each is built.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::{Asset, VodError, segment};
use crate::cache::CachedObject;
use crate::config::VodConfig;
use crate::packaging::presentation::{Presentation, RenditionId};
use crate::packaging::{dash, hls};
use crate::storage::budget::ByteBudget;
use crate::storage::{Storage, StorageKey};

/// One object of an asset, as named in its URL (`/vod/{asset}/{object}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VodObject {
    /// `master.m3u8`
    Master,
    /// `manifest.mpd`
    Manifest,
    /// `v0.m3u8`
    MediaPlaylist(RenditionId),
    /// `v0/init.mp4`
    Init(RenditionId),
    /// `v0/3.m4s` (numbered from 1)
    Segment(RenditionId, u32),
}

impl fmt::Display for VodObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VodObject::Master => f.write_str("master.m3u8"),
            VodObject::Manifest => f.write_str("manifest.mpd"),
            VodObject::MediaPlaylist(r) => write!(f, "{r}.m3u8"),
            VodObject::Init(r) => write!(f, "{r}/init.mp4"),
            VodObject::Segment(r, n) => write!(f, "{r}/{n}.m4s"),
        }
    }
}

impl VodObject {
    /// Parses the part of a URL after the asset key.
    pub fn parse(rest: &str) -> Option<VodObject> {
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["master.m3u8"] => Some(VodObject::Master),
            ["manifest.mpd"] => Some(VodObject::Manifest),
            [name] => Some(VodObject::MediaPlaylist(name.strip_suffix(".m3u8")?.parse().ok()?)),
            [id, "init.mp4"] => Some(VodObject::Init(id.parse().ok()?)),
            [id, seg] => {
                let n = seg.strip_suffix(".m4s")?;
                if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(VodObject::Segment(id.parse().ok()?, n.parse().ok()?))
            }
            _ => None,
        }
    }

    /// 404 for renditions or segment numbers the presentation does not have.
    pub fn check(&self, p: &Presentation) -> Result<(), VodError> {
        let exists = match *self {
            VodObject::Master | VodObject::Manifest => true,
            VodObject::MediaPlaylist(r) | VodObject::Init(r) => p.rendition(r).is_some(),
            VodObject::Segment(r, n) => p.rendition(r).is_some_and(|r| {
                (n as usize) >= hls::FIRST_SEGMENT_NUMBER
                    && (n as usize) < hls::FIRST_SEGMENT_NUMBER + r.segment_count()
            }),
        };
        if exists { Ok(()) } else { Err(VodError::NotFound) }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            VodObject::Master | VodObject::MediaPlaylist(_) => "application/vnd.apple.mpegurl",
            VodObject::Manifest => "application/dash+xml",
            VodObject::Init(_) => "video/mp4",
            VodObject::Segment(..) => "video/iso.segment",
        }
    }

    pub fn is_manifest(&self) -> bool {
        matches!(self, VodObject::Master | VodObject::Manifest | VodObject::MediaPlaylist(_))
    }
}

/// Cache key of a VOD object: the asset, the version of its sources, the object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VodKey {
    pub asset: StorageKey,
    pub version: u64,
    pub object: VodObject,
}

/// Builds an object's bytes: renders playlists (pure) or muxes segments (reads storage).
pub async fn build(
    storage: Arc<dyn Storage>,
    asset: Arc<Asset>,
    object: VodObject,
    config: VodConfig,
    budget: Arc<ByteBudget>,
) -> Result<CachedObject, VodError> {
    let p = &asset.presentation;
    let rendition = |r: RenditionId| p.rendition(r).ok_or(VodError::NotFound);
    let body: Bytes = match object {
        VodObject::Master => hls::master_playlist(p).into(),
        VodObject::Manifest => dash::static_mpd(p).into(),
        VodObject::MediaPlaylist(r) => hls::media_playlist(p, rendition(r)?).into(),
        VodObject::Init(r) => segment::init_segment(&asset, rendition(r)?),
        VodObject::Segment(r, n) => {
            let index = n as usize - hls::FIRST_SEGMENT_NUMBER;
            let r = rendition(r)?;
            segment::media_segment(storage.as_ref(), &budget, &asset, r, index, config.read_gap_bytes.0).await?
        }
    };
    let object = CachedObject::new(body, object.content_type(), asset.last_modified).with_ttl(Some(config.max_age));
    Ok(if object.is_negotiable() { object.compressed() } else { object })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_round_trip() {
        for name in ["master.m3u8", "manifest.mpd", "v0.m3u8", "a1.m3u8", "v0/init.mp4", "v2/17.m4s"] {
            assert_eq!(VodObject::parse(name).unwrap().to_string(), name);
        }
        for bad in [
            "",
            "v0",
            "x0.m3u8",
            "v0/0.m4s",
            "v0/01.m4s",
            "v0/1.ts",
            "v0/init.m4s",
            "v0/a/1.m4s",
            "v0/99999999999.m4s",
            "master.mpd",
        ] {
            assert_eq!(VodObject::parse(bad), None, "{bad}");
        }
    }
}
