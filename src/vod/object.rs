//! The objects of a VOD asset (master, MPD, media playlists, init and media segments): which exist,
//! their media types and cache keys, and how each is built.

use std::sync::Arc;

use bytes::Bytes;

use super::protect;
use super::{Asset, VodError, segment};
use crate::budget::ByteBudget;
use crate::cache::{CacheKey, CachedObject};
use crate::config::VodConfig;
use crate::http::content_type;
use crate::keys::metrics;
use crate::keys::protection::{Sealing, seal_ts_segment};
use crate::packaging::manifest::SegmentEncryption::{self, Aes128, Cenc};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::presentation::{Presentation, RenditionId};
use crate::packaging::ts::sample_aes::SampleAes;
use crate::packaging::url::{Container, FIRST_SEGMENT_NUMBER, VodPath};
use crate::packaging::{fmp4, reads, vod_manifests};
use crate::storage::{Storage, StorageKey};

/// 404 for renditions or segment numbers the presentation does not have, and, for a protected
/// asset, for what is not offered encrypted: the MPEG-TS I-frame playlists (their keyframes' byte
/// ranges are not known once sealed), and the MPEG-TS ladder without a key for it (the edge's, or
/// FairPlay's for SAMPLE-AES).
pub(super) fn check(object: VodPath, p: &Presentation, sealing: Option<&Sealing>) -> Result<(), VodError> {
    let i_frames = matches!(object, VodPath::TsIFrames(_));
    let ts = matches!(
        object,
        VodPath::TsMaster
            | VodPath::TsPlaylist(_)
            | VodPath::TsSegment(..)
            | VodPath::SubtitlePlaylist(_, Container::Ts)
            | VodPath::SubtitleSegment(_, Container::Ts, _)
    );
    if let Some(sealing) = sealing
        && (i_frames || (ts && sealing.ts_encryption(true).is_none()))
    {
        return Err(VodError::NotFound);
    }
    let exists = match object {
        VodPath::Master | VodPath::Manifest => true,
        VodPath::MediaPlaylist(r) | VodPath::Init(r) => p.rendition(r).is_some(),
        VodPath::Segment(r, n) => p.rendition(r).is_some_and(|r| numbered(r, n)),
        VodPath::TsMaster => !vod_manifests::ts_variants(p).is_empty(),
        VodPath::TsPlaylist(r) => vod_manifests::ts_playlists(p).iter().any(|v| v.id == r),
        VodPath::TsSegment(r, n) => vod_manifests::ts_playlists(p).iter().any(|v| v.id == r && numbered(v, n)),
        VodPath::TsIFrames(r) => r.kind == TrackKind::Video && vod_manifests::ts_variants(p).iter().any(|v| v.id == r),
        VodPath::SubtitlePlaylist(i, c) => p.subtitle(i).is_some() && has_container(p, c),
        VodPath::SubtitleSegment(i, c, n) => {
            p.subtitle(i).is_some()
                && has_container(p, c)
                && (n as usize) >= FIRST_SEGMENT_NUMBER
                && (n as usize) < FIRST_SEGMENT_NUMBER + p.subtitle_segment_count()
        }
        VodPath::SubtitleFile(i) => p.subtitle(i).is_some(),
        VodPath::IFrames(r) => r.kind == TrackKind::Video && p.rendition(r).is_some(),
        VodPath::IFrameSegment(r, n) | VodPath::IFrame(r, n, _) => {
            r.kind == TrackKind::Video && p.rendition(r).is_some_and(|r| numbered(r, n))
        }
    };
    if exists { Ok(()) } else { Err(VodError::NotFound) }
}

/// Whether the asset has variants in `container` (subtitles are timed for one or the other).
fn has_container(p: &Presentation, c: Container) -> bool {
    c == Container::Fmp4 || !vod_manifests::ts_variants(p).is_empty()
}

/// Whether segment number `n` is one of `r`'s.
fn numbered(r: &crate::packaging::presentation::Rendition, n: u32) -> bool {
    (n as usize) >= FIRST_SEGMENT_NUMBER && (n as usize) < FIRST_SEGMENT_NUMBER + r.segment_count()
}

pub(super) fn content_type(object: VodPath) -> &'static str {
    match object {
        VodPath::Master
        | VodPath::MediaPlaylist(_)
        | VodPath::TsMaster
        | VodPath::TsPlaylist(_)
        | VodPath::TsIFrames(_)
        | VodPath::SubtitlePlaylist(..)
        | VodPath::IFrames(_) => content_type::HLS_PLAYLIST,
        VodPath::SubtitleSegment(..) | VodPath::SubtitleFile(_) => content_type::WEBVTT,
        VodPath::Manifest => content_type::DASH_MPD,
        VodPath::Init(_) => content_type::MP4,
        VodPath::Segment(..) | VodPath::IFrameSegment(..) | VodPath::IFrame(..) => content_type::MEDIA_SEGMENT,
        VodPath::TsSegment(..) => content_type::MPEG_TS,
    }
}

/// The cache key of a VOD object: its URL path under `vod/`, and the version of the asset's
/// sources; a protected asset's objects are kept apart from clear ones, by their KID.
pub(super) fn cache_key(asset: &StorageKey, version: u64, object: VodPath, sealing: Option<&Sealing>) -> CacheKey {
    let tag = sealing.map_or("", |s| s.cache_tag.as_str());
    CacheKey::new("vod", format!("{asset}/{object}{tag}"), version)
}

/// Builds an object's bytes: renders playlists (pure) or muxes segments (reads storage). Playlists
/// and manifests get their gzip and brotli forms only when `kept` ([`crate::cache::SegmentCache::keeps`]).
pub(super) async fn build(
    storage: Arc<dyn Storage>,
    asset: Arc<Asset>,
    object: VodPath,
    config: VodConfig,
    budget: Arc<ByteBudget>,
    kept: bool,
    sealing: Option<Arc<Sealing>>,
) -> Result<CachedObject, VodError> {
    let p = &asset.presentation;
    let rendition = |r: RenditionId| p.rendition(r).ok_or(VodError::NotFound);
    let key = sealing.as_deref().map(|s| &s.key);
    let signalling = sealing.as_deref().map(|s| s.signalling.clone());
    if let (VodPath::Segment(r, n), Some(sealing)) = (object, sealing.as_deref())
        && protect::encrypts(r)
    {
        let index = (n as usize).checked_sub(FIRST_SEGMENT_NUMBER).ok_or(VodError::NotFound)?;
        let policy = read_policy(storage.as_ref(), &config);
        let built =
            protect::build_segment(storage.as_ref(), &budget, &asset, rendition(r)?, index, &sealing.cipher, policy);
        let (body, etag) = built.await?;
        let object = CachedObject::tagged(body, etag, content_type(object), asset.last_modified);
        return Ok(object.with_ttl(Some(config.max_age)));
    }
    let body: Bytes = match object {
        VodPath::Master => {
            let trick = super::iframes::trick_play(&asset, key.is_some());
            vod_manifests::render_multivariant(p, &trick, signalling.map(Cenc)).into()
        }
        VodPath::Manifest => {
            let trick = match config.dash_trick_mode {
                true => super::iframes::trick_play(&asset, key.is_some()),
                false => Vec::new(),
            };
            vod_manifests::render_mpd(p, &trick, signalling).into()
        }
        VodPath::IFrames(r) => render_i_frames(&super::iframes::playlist(&asset, rendition(r)?, signalling.map(Cenc))),
        VodPath::IFrameSegment(r, n) | VodPath::IFrame(r, n, _) => {
            let only = if let VodPath::IFrame(_, _, k) = object { Some(k) } else { None };
            let index = (n as usize).checked_sub(FIRST_SEGMENT_NUMBER).ok_or(VodError::NotFound)?;
            let (policy, storage) = (read_policy(storage.as_ref(), &config), storage.as_ref());
            let which = (rendition(r)?, index, only);
            let body = match sealing.as_deref() {
                Some(s) => protect::build_i_frames(storage, &budget, &asset, which, &s.cipher, policy).await?,
                None => super::iframes::build(storage, &budget, &asset, which, policy).await?,
            };
            let object = CachedObject::new(body, content_type(object), asset.last_modified);
            return Ok(object.with_ttl(Some(config.max_age)));
        }
        VodPath::MediaPlaylist(r) => {
            vod_manifests::render_media_playlist(p, rendition(r)?, signalling.filter(|_| protect::encrypts(r))).into()
        }
        VodPath::Init(r) => match &signalling {
            Some(signalling) if protect::encrypts(r) => protect::init_segment(&asset, rendition(r)?, signalling)?,
            _ => segment::init_segment(&asset, rendition(r)?),
        },
        VodPath::Segment(..) => {
            let plan = plan(storage.as_ref(), &asset, object, &config)?;
            let body = segment::build(storage.as_ref(), &budget, &plan).await?;
            let object = CachedObject::tagged(body, plan.etag, content_type(object), asset.last_modified);
            return Ok(object.with_ttl(Some(config.max_age)));
        }
        VodPath::TsMaster if let Some(sealing) = &sealing => render_sealed_ts_master(&asset, sealing).into(),
        VodPath::TsMaster => vod_manifests::render_ts_multivariant(p, &super::ts::i_frame_peaks(&asset), None).into(),
        VodPath::TsIFrames(r) => render_i_frames(&super::ts::i_frames(&asset, rendition(r)?)?),
        VodPath::TsPlaylist(r) => {
            let r = rendition(r)?;
            let protection = match &sealing {
                Some(s) => Some(s.ts_encryption(super::ts::sample_aes_able(r)).ok_or(VodError::NotFound)?),
                None => None,
            };
            vod_manifests::render_ts_media_playlist(p, r, protection).into()
        }
        VodPath::SubtitlePlaylist(i, c) => vod_manifests::render_subtitle_playlist(p, i, c).into(),
        VodPath::SubtitleSegment(i, c, n) => {
            vod_manifests::render_subtitle_segment(p, i, c, n).ok_or(VodError::NotFound)?.into()
        }
        VodPath::SubtitleFile(i) => {
            let mut out = String::new();
            p.subtitle(i).ok_or(VodError::NotFound)?.subtitles.write_whole(&mut out);
            out.into()
        }
        VodPath::TsSegment(r, n) => {
            let (r, storage) = (rendition(r)?, storage.as_ref());
            let index = (n as usize).checked_sub(FIRST_SEGMENT_NUMBER).ok_or(VodError::NotFound)?;
            let policy = read_policy(storage, &config);
            let body = match sealing.as_deref().map(|s| (s, s.ts_encryption(super::ts::sample_aes_able(r)))) {
                None => super::ts::build(storage, &budget, &asset, (r, index), policy, None).await?,
                Some((_, None)) => return Err(VodError::NotFound),
                Some((s, Some(Aes128 { .. }))) => {
                    let clear = super::ts::build(storage, &budget, &asset, (r, index), policy, None).await?;
                    seal_ts_segment(&s.key, n, &clear)
                }
                Some((s, Some(_))) => {
                    let seal = SampleAes::new(&s.key, s.cipher.constant_iv());
                    let sealed = super::ts::build(storage, &budget, &asset, (r, index), policy, Some(&seal)).await?;
                    metrics::SAMPLE_AES.count(sealed.len());
                    sealed
                }
            };
            let object = CachedObject::new(body, content_type(object), asset.last_modified);
            return Ok(object.with_ttl(Some(config.max_age)));
        }
    };
    let object = CachedObject::new(body, content_type(object), asset.last_modified).with_ttl(Some(config.max_age));
    Ok(if kept && object.is_negotiable() { object.compressed() } else { object })
}

/// The MPEG-TS multivariant playlist of a protected asset: the variants that have a key (an HEVC
/// one has none in SAMPLE-AES with FairPlay's key only), no I-frame playlists, and the session
/// key when every variant has the same.
fn render_sealed_ts_master(asset: &Asset, sealing: &Sealing) -> String {
    let p = &asset.presentation;
    let keyed = |list: &[Rendition]| -> Vec<(Rendition, SegmentEncryption)> {
        list.iter().filter_map(|r| Some((r.clone(), sealing.ts_encryption(super::ts::sample_aes_able(r))?))).collect()
    };
    let (video, audio) = (keyed(&p.video), keyed(&p.audio));
    let variants = if p.video.is_empty() { &audio } else { &video };
    let session_key = variants.first().map(|(_, k)| k.clone()).filter(|k| variants.iter().all(|(_, v)| v == k));
    let keyed_only = Presentation {
        video: video.into_iter().map(|(r, _)| r).collect(),
        audio: audio.into_iter().map(|(r, _)| r).collect(),
        ..p.clone()
    };
    vod_manifests::render_ts_multivariant(&keyed_only, &[], session_key)
}

fn render_i_frames(playlist: &crate::packaging::manifest::IFramePlaylist) -> Bytes {
    let mut out = String::with_capacity(128 + 64 * playlist.frames.len());
    crate::packaging::manifest::hls::write_i_frame_playlist(&mut out, playlist);
    out.into()
}

/// The length of media segment `object` (a [`VodPath::Segment`]), without planning it.
pub(super) fn segment_len(asset: &Asset, object: VodPath) -> Option<u64> {
    let VodPath::Segment(r, n) = object else { return None };
    let r = asset.presentation.rendition(r)?;
    let (_, track) = asset.track(r);
    let range = r.segments.samples((n as usize).checked_sub(FIRST_SEGMENT_NUMBER)?)?;
    let data: u64 = track.samples.sizes[range.clone()].iter().map(|&s| u64::from(s)).sum();
    let trun = fmp4::TrunLayout {
        samples: range.len(),
        per_sample_flags: true,
        composition_offsets: !track.samples.cts.is_empty(),
    };
    Some(data + fmp4::segment_overhead(trun))
}

/// The plan of media segment `object` (a [`VodPath::Segment`]) of `asset`.
pub(super) fn plan(
    storage: &dyn Storage,
    asset: &Asset,
    object: VodPath,
    config: &VodConfig,
) -> Result<segment::SegmentPlan, VodError> {
    let VodPath::Segment(r, n) = object else { return Err(VodError::NotFound) };
    let r = asset.presentation.rendition(r).ok_or(VodError::NotFound)?;
    let index = (n as usize).checked_sub(FIRST_SEGMENT_NUMBER).ok_or(VodError::NotFound)?;
    segment::plan(asset, r, index, read_policy(storage, config))
}

fn read_policy(storage: &dyn Storage, config: &VodConfig) -> reads::ReadPolicy {
    reads::ReadPolicy { max_gap: config.read_gap_bytes.0, max_reads: storage.max_reads_per_segment() }
}
