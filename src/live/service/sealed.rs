//! Protected live channels (`[encryption] live_prefixes`): their playlists name each key period's
//! key (HLS: an `EXT-X-KEY` where the period changes; the master's session key and the MPD: the
//! channel's), and their init and media segments are encrypted as they are served, from the clear
//! bytes the encoder pushed (memory, the owner, storage), then cached encrypted under their URL.
//! fMP4 in the configured scheme (with rotation each fragment names its key: `pssh` in `moof`,
//! a `seig` group); MPEG-TS in AES-128 when the edge delivers keys.
//!
//! Invariants: no clear media byte of a protected channel is ever sent (LL-HLS parts, the growing
//! LL-DASH segment and I-frame playlists are not offered; a segment that cannot be encrypted is an
//! error); the key of a period is the same on every pod (derived or asked by a derived KID).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::{Answer, Live, ServeError, Served, manifest_kind};
use crate::http::content_type;
use crate::keys::protection::{KeyDelivery, Protection, Sealing};
use crate::live::keys;
use crate::live::manifests::{self, Delta};
use crate::live::model::{ChannelSnapshot, Status};
use crate::packaging::cenc::{self, ContentKey, Signalling};
use crate::packaging::manifest::{self, ObjectUri, SegmentEncryption};
use crate::packaging::mp4::TrackKind;
use crate::packaging::url::{Container, LivePath, LiveQuery};

/// How a protected channel's objects are sealed: the keys, and the key period.
pub(in crate::live) struct LiveSealing {
    pub protection: Arc<Protection>,
    /// Segments per key period; 0: one key for the channel.
    pub key_period: u64,
}

/// What is done to an object's clear bytes before it is cached and sent.
pub(super) enum Seal {
    Init(Signalling, bool),
    Segment { init: ClearInit, sealing: Arc<Sealing>, msn: u64, iv_track: u16, rotated: bool },
    Ts { key: ContentKey, msn: u64 },
}

/// Where the clear init segment of a segment's rendition and epoch is: held, else in storage. Read
/// only when the segment is sealed (a miss), never per request.
pub(super) struct ClearInit {
    held: Option<Bytes>,
    stored: crate::storage::StorageKey,
}

impl ClearInit {
    async fn bytes(&self, storage: &dyn crate::storage::Storage) -> Result<Bytes, ServeError> {
        if let Some(init) = &self.held {
            return Ok(init.clone());
        }
        match storage.get(&self.stored).await {
            Ok(object) => Ok(object.body),
            Err(crate::storage::StorageError::NotFound(_)) => Err(ServeError::NotFound),
            Err(e) => Err(ServeError::Storage(Arc::new(e))),
        }
    }
}

impl Seal {
    /// The encrypted bytes of `clear` (a segment's init read from `storage` when not held).
    pub(super) async fn apply(
        &self,
        clear: &Bytes,
        storage: &dyn crate::storage::Storage,
    ) -> Result<Bytes, ServeError> {
        let refused = |e: crate::packaging::PackagingError| {
            ServeError::Unavailable(format!("the pushed media could not be encrypted: {e}"))
        };
        match self {
            Seal::Init(signalling, rotated) => cenc::protect_pushed_init(clear, signalling, *rotated).map_err(refused),
            Seal::Segment { init, sealing, msn, iv_track, rotated } => {
                let s = cenc::PushedSegment {
                    msn: *msn,
                    iv_track: *iv_track,
                    rotated: *rotated,
                    signalling: &sealing.signalling,
                };
                let init = init.bytes(storage).await?;
                cenc::protect_pushed_segment(clear, &init, &sealing.cipher, s).map_err(refused)
            }
            Seal::Ts { key, msn } => Ok(crate::keys::protection::seal_ts_segment(key, *msn as u32, clear)),
        }
    }
}

impl LiveSealing {
    fn period(&self, msn: u64) -> Option<u64> {
        (self.key_period > 0).then(|| msn / self.key_period)
    }

    /// The sealing of `channel`'s segment `msn` (its key period's).
    async fn sealing(&self, content: &str, msn: u64) -> Result<Arc<Sealing>, ServeError> {
        self.protection.sealing_of(content, self.period(msn)).await.map_err(|e| ServeError::Unavailable(e.to_string()))
    }

    /// What the init segments and the MPD say: the channel's key; with rotation, the first key
    /// period's (players hold the init's KID to be a key they need, as packagers that rotate keys
    /// write it), which each fragment's own key then overrides.
    async fn channel_signalling(&self, content: &str) -> Result<Signalling, ServeError> {
        Ok(self.sealing(content, 0).await?.signalling.clone())
    }

    /// The sealings of every key period of segments `msns`.
    async fn periods(
        &self,
        content: &str,
        msns: impl Iterator<Item = u64>,
    ) -> Result<BTreeMap<u64, Arc<Sealing>>, ServeError> {
        let mut out = BTreeMap::new();
        for msn in msns {
            let period = self.period(msn).unwrap_or(0);
            if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(period) {
                slot.insert(self.sealing(content, msn).await?);
            }
        }
        Ok(out)
    }
}

/// The channel as a protected one is offered: without LL parts (and so without the growing
/// LL-DASH segment), which would be clear. Copied only when it has them, and only on a miss.
fn without_parts(snap: &ChannelSnapshot) -> Cow<'_, ChannelSnapshot> {
    if !snap.offers_parts() {
        return Cow::Borrowed(snap);
    }
    let mut plain = snap.clone();
    plain.low_latency = Arc::new(crate::live::model::LowLatency::default());
    Cow::Owned(plain)
}

/// A segment URI's number.
fn msn_of(uri: &ObjectUri) -> Option<u64> {
    match uri {
        ObjectUri::Live(LivePath::Segment(_, _, msn, _)) => Some(*msn),
        _ => None,
    }
}

/// The IV namespace of a rendition (kind and index), as VOD's.
fn iv_track(kind: TrackKind, index: u16) -> u16 {
    let kind = match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
        TrackKind::Text => 2,
    };
    (kind << 14) | (index & 0x3FFF)
}

impl Live {
    /// `path` of protected channel `snap`.
    pub(super) async fn sealed_object(
        &self,
        sealed: &LiveSealing,
        source: watch::Receiver<Arc<ChannelSnapshot>>,
        mut snap: Arc<ChannelSnapshot>,
        path: LivePath,
        query: LiveQuery,
    ) -> Result<Answer, ServeError> {
        let content = Protection::channel_content(snap.id.as_str());
        let window = query.window;
        let rendition = |snap: &ChannelSnapshot, id| snap.rendition_index(id).ok_or(ServeError::NotFound);
        let ts = snap.container == Some(Container::Ts);
        let delivers = sealed.protection.delivery() == KeyDelivery::OnTheEdge;
        if ts && !delivers {
            return Err(ServeError::NotHere("this protected MPEG-TS channel needs [encryption] key_delivery"));
        }
        match path {
            LivePath::Master => {
                let suffix = window.canonical_query();
                let text = async {
                    let session = match ts {
                        true => None,
                        false => Some(SegmentEncryption::Cenc(sealed.channel_signalling(&content).await?)),
                    };
                    let plain = without_parts(&snap);
                    let mut m = manifests::multivariant(&plain, &suffix);
                    m.i_frames = Vec::new();
                    m.session_key = session;
                    let mut out = String::with_capacity(1024);
                    manifest::hls::write_multivariant(&mut out, &m);
                    Ok(out)
                };
                let (object, outcome) =
                    self.rendered_from(&snap, path, &suffix, content_type::HLS_PLAYLIST, text).await?;
                Ok(Served { object, outcome, kind: crate::http::policy::ObjectKind::LiveMaster }.into())
            }
            LivePath::Playlist(id) => {
                let r = rendition(&snap, id)?;
                if let Some(msn) = query.msn {
                    snap = self.wait_for_segment(source.clone(), snap, r, msn, None).await?;
                }
                let delta = if query.skip { Delta::SkipOlder } else { Delta::Full };
                let mut key = window.canonical_query();
                if query.skip {
                    key.push_str(if key.is_empty() { "?_HLS_skip=YES" } else { "&_HLS_skip=YES" });
                }
                let text = async {
                    let plain = without_parts(&snap);
                    let mut playlist =
                        manifests::media_playlist(&plain, r, window, delta).ok_or(ServeError::NotFound)?;
                    let msns = playlist.segments.iter().filter_map(|s| msn_of(&s.uri));
                    let periods = sealed.periods(&content, msns).await?;
                    let mut current = None;
                    for segment in &mut playlist.segments {
                        let Some(msn) = msn_of(&segment.uri) else { continue };
                        let period = sealed.period(msn).unwrap_or(0);
                        if current == Some(period) {
                            continue;
                        }
                        let sealing = periods.get(&period).ok_or(ServeError::NotFound)?;
                        segment.key = Some(match (ts, &sealing.ts_key_uri) {
                            (true, Some(uri)) => SegmentEncryption::Aes128 { uri: uri.clone() },
                            (true, None) => return Err(ServeError::NotHere("no key URI for AES-128")),
                            (false, _) => SegmentEncryption::Cenc(sealing.signalling.clone()),
                        });
                        current = Some(period);
                    }
                    let mut out = String::with_capacity(256 + 160 * playlist.segments.len());
                    manifest::hls::write_media_playlist(&mut out, &playlist);
                    Ok(out)
                };
                let (object, outcome) = self.rendered_from(&snap, path, &key, content_type::HLS_PLAYLIST, text).await?;
                let closed = snap.window(r, window).1;
                Ok(Served { object, outcome, kind: manifest_kind(&snap, closed) }.into())
            }
            LivePath::IFrames(_) => {
                Err(ServeError::NotHere("I-frame playlists are not offered for a protected channel"))
            }
            LivePath::Part(..) => Err(ServeError::NotHere("LL-HLS parts are not offered for a protected channel")),
            LivePath::Mpd => {
                if ts {
                    return Err(ServeError::NotHere("DASH needs fMP4 (CMAF) segments"));
                }
                let query = window.canonical_query();
                let text = async {
                    let protection = sealed.channel_signalling(&content).await?;
                    let plain = without_parts(&snap);
                    let mut mpd = manifests::mpd(&plain, window, &self.time_url).ok_or(ServeError::NotFound)?;
                    mpd.protection = Some(protection);
                    mpd.key_rotation = sealed.key_period > 0;
                    let mut out = String::with_capacity(4096);
                    manifest::mpd::write_mpd(&mut out, &mpd);
                    Ok(out)
                };
                let (object, outcome) = self.rendered_from(&snap, path, &query, content_type::DASH_MPD, text).await?;
                let closed = snap.status == Status::Ended || (window.end.is_some() && snap.window(0, window).1);
                Ok(Served { object, outcome, kind: manifest_kind(&snap, closed) }.into())
            }
            LivePath::Init(id, epoch) => {
                let r = rendition(&snap, id)?;
                let signalling = sealed.channel_signalling(&content).await?;
                let held = snap.init(epoch, r).cloned();
                let modified = snap.slots.iter().find(|s| s.epoch == epoch).map(|s| s.pdt);
                let stored = keys::init(&snap.id, epoch, id);
                let source = super::Source { held, owner: None, stored };
                let seal = Seal::Init(signalling, sealed.key_period > 0);
                Ok(self.segment(&snap, path, source, content_type::MP4, modified, Some(seal)).await?.into())
            }
            LivePath::Segment(id, epoch, msn, container) => {
                let r = rendition(&snap, id)?;
                if snap.container_of(r) != Some(container) {
                    return Err(ServeError::NotFound);
                }
                let slot = snap.slot(msn).filter(|s| s.epoch == epoch).ok_or(ServeError::NotFound)?;
                let part = slot.part(r).ok_or(ServeError::NotFound)?;
                let sealing = sealed.sealing(&content, msn).await?;
                let seal = match container {
                    Container::Ts => Seal::Ts { key: sealing.key.clone(), msn },
                    _ => {
                        let held = snap.init(epoch, r).cloned();
                        let init = ClearInit { held, stored: keys::init(&snap.id, epoch, id) };
                        let iv_track = iv_track(snap.renditions[r].kind, id.index);
                        Seal::Segment { init, sealing, msn, iv_track, rotated: sealed.key_period > 0 }
                    }
                };
                let stored = keys::part(&snap.id, epoch, id, msn, container);
                let owner = snap.owner_url.clone().filter(|_| part.at_owner).map(|url| (url, part.size));
                let source = super::Source { held: part.bytes.clone(), owner, stored };
                let modified = Some(slot.end());
                Ok(self.segment(&snap, path, source, container.media_type(), modified, Some(seal)).await?.into())
            }
        }
    }

    /// What a ClearKey licence for protected channel `channel` may give; `None` for a channel
    /// that is not protected or not known here.
    pub async fn licence_window(&self, channel: &str) -> Option<crate::keys::protection::LicenceWindow> {
        let sealed = self.sealed.as_ref()?;
        let source = match self.registry.get(channel) {
            Some(handle) if handle.is_owner() || self.registry.cluster().is_none() => handle.subscribe(),
            _ => self.follow(channel).await.ok()?,
        };
        if !sealed.protection.protects_channel(channel) && !source.borrow().settings.encrypted {
            return None;
        }
        let last = source.borrow().last_msn().unwrap_or(0);
        let rotating = sealed.key_period > 0;
        let newest_period = if rotating { last / sealed.key_period + 1 } else { 0 };
        Some(crate::keys::protection::LicenceWindow { rotating, newest_period })
    }
}
