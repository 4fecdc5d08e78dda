//! Protected live channels (`[encryption] live_prefixes`): their playlists name each key period's
//! key (HLS: an `EXT-X-KEY` where the period changes; the master's session key and the MPD: the
//! channel's), and their init and media segments are encrypted as they are served, from the clear
//! bytes the encoder pushed (memory, the owner, storage), then cached encrypted under their URL.
//! fMP4 in the configured scheme (with rotation each fragment names its key: `pssh` in `moof`,
//! a `seig` group); MPEG-TS in AES-128 when the edge delivers keys.
//!
//! LL-HLS parts and the growing LL-DASH segment are sealed as they come, fragment by fragment, as
//! the whole segment is: a part's bytes are those of its segment's sealed fragment.
//!
//! Invariants: no clear media byte of a protected channel is ever sent (I-frame playlists are not
//! offered; a segment or part that cannot be encrypted is an error); the key of a period is the
//! same on every pod (derived or asked by a derived KID).

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
    /// A media segment, or an LL part of one (`first_fragment`: its number; 0 for a segment).
    Segment {
        init: ClearInit,
        sealing: Arc<Sealing>,
        msn: u64,
        iv_track: u16,
        rotated: bool,
        first_fragment: u32,
    },
    Ts {
        key: ContentKey,
        msn: u64,
    },
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
            Seal::Segment { init, sealing, msn, iv_track, rotated, first_fragment } => {
                let s = cenc::PushedSegment {
                    msn: *msn,
                    iv_track: *iv_track,
                    rotated: *rotated,
                    signalling: &sealing.signalling,
                    first_fragment: *first_fragment,
                };
                let init = init.bytes(storage).await?;
                cenc::protect_pushed_segment(clear, &init, &sealing.cipher, s).map_err(refused)
            }
            Seal::Ts { key, msn } => Ok(crate::keys::protection::seal_ts_segment(key, *msn as u32, clear)),
        }
    }
}

impl Seal {
    /// A segment's seal as the growing segment applies it to each piece (`k`: its first
    /// fragment's number), its clear init read once.
    async fn into_piece_seal(
        self,
        storage: Arc<dyn crate::storage::Storage>,
    ) -> Result<crate::live::growing::PieceSeal, ServeError> {
        let Seal::Segment { init, sealing, msn, iv_track, rotated, .. } = self else {
            return Err(ServeError::NotFound);
        };
        let init = init.bytes(storage.as_ref()).await?;
        Ok(Arc::new(move |piece: &Bytes, k: u32| {
            let s = cenc::PushedSegment { msn, iv_track, rotated, signalling: &sealing.signalling, first_fragment: k };
            cenc::protect_pushed_segment(piece, &init, &sealing.cipher, s).map_err(|e| e.to_string())
        }))
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

    /// How the fMP4 fragments of segment `msn` (`epoch`) of rendition `r` (`id`) are sealed, from
    /// fragment `first_fragment` on (an LL part's number; 0 for the segment).
    async fn fragment_seal(
        &self,
        snap: &ChannelSnapshot,
        content: &str,
        (r, id): (usize, crate::packaging::presentation::RenditionId),
        (epoch, msn): (u64, u64),
        first_fragment: u32,
    ) -> Result<Seal, ServeError> {
        let sealing = self.sealing(content, msn).await?;
        let init = ClearInit { held: snap.init(epoch, r).cloned(), stored: keys::init(&snap.id, epoch, id) };
        let iv_track = iv_track(snap.renditions.get(r).ok_or(ServeError::NotFound)?.kind, id.index);
        let rotated = self.key_period > 0;
        Ok(Seal::Segment { init, sealing, msn, iv_track, rotated, first_fragment })
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

/// A segment's or part's URI's segment number.
fn msn_of(uri: &ObjectUri) -> Option<u64> {
    match uri {
        ObjectUri::Live(LivePath::Segment(_, _, msn, _) | LivePath::Part(_, _, msn, _)) => Some(*msn),
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
                    let mut m = manifests::multivariant(&snap, &suffix);
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
                    snap = self.wait_for_segment(source.clone(), snap, r, msn, query.part).await?;
                }
                let delta = if query.skip { Delta::SkipOlder } else { Delta::Full };
                let mut key = window.canonical_query();
                if query.skip {
                    key.push_str(if key.is_empty() { "?_HLS_skip=YES" } else { "&_HLS_skip=YES" });
                }
                let text = async {
                    let mut playlist =
                        manifests::media_playlist(&snap, r, window, delta).ok_or(ServeError::NotFound)?;
                    let open = playlist.open_parts.first().and_then(|p| msn_of(&p.uri));
                    let msns = playlist.segments.iter().filter_map(|s| msn_of(&s.uri)).chain(open);
                    let periods = sealed.periods(&content, msns).await?;
                    let key_of = |sealing: &Sealing| match (ts, &sealing.ts_key_uri) {
                        (true, Some(uri)) => Ok(SegmentEncryption::Aes128 { uri: uri.clone() }),
                        (true, None) => Err(ServeError::NotHere("no key URI for AES-128")),
                        (false, _) => Ok(SegmentEncryption::Cenc(sealing.signalling.clone())),
                    };
                    let mut current = None;
                    for segment in &mut playlist.segments {
                        let Some(msn) = msn_of(&segment.uri) else { continue };
                        let period = sealed.period(msn).unwrap_or(0);
                        if current == Some(period) {
                            continue;
                        }
                        let sealing = periods.get(&period).ok_or(ServeError::NotFound)?;
                        segment.key = Some(key_of(sealing)?);
                        current = Some(period);
                    }
                    // The parts of the segment being received: a key before them where it starts a
                    // key period (or the playlist lists nothing else).
                    if let Some(period) = open.map(|msn| sealed.period(msn).unwrap_or(0))
                        && current != Some(period)
                    {
                        playlist.open_key = Some(key_of(periods.get(&period).ok_or(ServeError::NotFound)?)?);
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
            LivePath::Part(id, epoch, msn, part) => {
                let r = rendition(&snap, id)?;
                let (snap, bytes, size) = self.part(&source, snap, r, (epoch, msn, part)).await?;
                let seal = sealed.fragment_seal(&snap, &content, (r, id), (epoch, msn), part).await?;
                // Held here, or (a pod following the channel) in the owner's memory.
                let owner = snap.owner_url.clone().filter(|_| bytes.is_empty() && size > 0).map(|url| (url, size));
                let held = (!bytes.is_empty()).then_some(bytes);
                let stored = keys::part(&snap.id, epoch, id, msn, Container::Fmp4);
                let source = super::Source { held, owner, stored };
                Ok(self.segment(&snap, path, source, content_type::MEDIA_SEGMENT, None, Some(seal)).await?.into())
            }
            LivePath::Mpd => {
                if ts {
                    return Err(ServeError::NotHere("DASH needs fMP4 (CMAF) segments"));
                }
                let query = window.canonical_query();
                let text = async {
                    let protection = sealed.channel_signalling(&content).await?;
                    let mut mpd = manifests::mpd(&snap, window, &self.time_url).ok_or(ServeError::NotFound)?;
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
                if container == Container::Fmp4 {
                    let (waited, growing) = self.growing(&source, snap, r, epoch, msn).await?;
                    if let Some(growing) = growing {
                        let seal = sealed.fragment_seal(&waited, &content, (r, id), (epoch, msn), 0).await?;
                        let storage = self.storage.clone();
                        return Ok(super::Answer::Growing(growing.sealed(seal.into_piece_seal(storage).await?)));
                    }
                    snap = waited;
                }
                let slot = snap.slot(msn).filter(|s| s.epoch == epoch).ok_or(ServeError::NotFound)?;
                let part = slot.part(r).ok_or(ServeError::NotFound)?;
                let seal = match container {
                    Container::Ts => Seal::Ts { key: sealed.sealing(&content, msn).await?.key.clone(), msn },
                    _ => sealed.fragment_seal(&snap, &content, (r, id), (epoch, msn), 0).await?,
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
