//! PURE: turning a pushed media playlist into committed slots: restart detection, the variant's init,
//! then each listed segment placed (epoch and sequence number), demuxed per track and timed. A
//! segment that cannot be committed is never dropped silently: it yields [`Effect::Dropped`] with its
//! [`DropReason`], which the channel's owner logs and counts.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use m3u8_rs::{MediaPlaylist, MediaSegment};

use super::parts::{TEXT_TIMESCALE, TS_TIMESCALE, demux, timescale_of, update_bit_rates};
use super::{ChannelState, DropReason, Effect, Pending};
use crate::keys;
use crate::model::{Container, Keyframes, Part, Status};
use crate::upload::{UploadError, resolve};
use estuary_media::fmp4::parse::parse_segment;
use estuary_media::mp4::TrackKind;
use estuary_media::ts::random_access::KeyframePes;

/// Recently committed names remembered per variant (restart detection).
const REMEMBERED: usize = 64;
/// How far ahead of the channel's newest slot a variant's segment may land.
const MAX_AHEAD: u64 = 1000;

fn to_system_time(t: &chrono::DateTime<chrono::FixedOffset>) -> Option<SystemTime> {
    let ms = t.timestamp_millis();
    (ms >= 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64))
}

/// MPEG-TS when any listed segment is a `.ts`, WebVTT (subtitles) when one is a `.vtt`, else fMP4.
fn container_of(pl: &MediaPlaylist) -> Container {
    let ends = |s: &MediaSegment, ext: &str| s.uri.split('?').next().unwrap_or("").to_ascii_lowercase().ends_with(ext);
    if pl.segments.iter().any(|s| ends(s, ".ts")) {
        Container::Ts
    } else if pl.segments.iter().any(|s| ends(s, ".vtt")) {
        Container::WebVtt
    } else {
        Container::Fmp4
    }
}

/// A segment ready to be placed in a slot.
struct Placed {
    epoch_index: usize,
    epoch_id: u64,
    epoch_first_msn: u64,
    msn: u64,
}

impl ChannelState {
    pub(super) fn on_media_playlist(
        &mut self,
        path: &str,
        pl: &MediaPlaylist,
        now: SystemTime,
    ) -> Result<Vec<Effect>, UploadError> {
        if pl.segments.is_empty() {
            return Ok(Vec::new());
        }
        if !self.variants.contains_key(path) && self.variants.len() >= super::MAX_VARIANTS {
            return Err(UploadError::Invalid(format!(
                "the channel already has {} variants, the most one may have; a new one is refused",
                super::MAX_VARIANTS
            )));
        }
        let container = container_of(pl);
        match self.container {
            // Subtitles go with either kind of media.
            _ if container == Container::WebVtt => {}
            Some(c) if c != container => {
                return Err(UploadError::Invalid(format!(
                    "this channel carries {c:?} segments; the playlist lists {container:?}"
                )));
            }
            _ => self.container = Some(container),
        }
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        self.detect_restart(path, pl);
        let mut effects = Vec::new();
        if !self.take_init(path, &dir, pl, container, &mut effects)? {
            return Ok(effects);
        }
        let listed: Vec<(u64, String, usize)> = pl
            .segments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| resolve(&dir, &s.uri).map(|p| (pl.media_sequence + i as u64, p, i)))
            .collect();
        for (n, (e, seg_path, i)) in listed.iter().enumerate() {
            if self.variant(path).last_encoder_msn.is_some_and(|l| *e <= l) {
                continue;
            }
            let Some(pending) = self.pending_segments.remove(seg_path) else {
                // Missing bytes: wait, unless a later segment is already here (then this one is lost).
                if !listed[n + 1..].iter().any(|(_, p, _)| self.pending_segments.contains_key(p)) {
                    break;
                }
                effects.push(Effect::Dropped { segment: seg_path.clone(), reason: DropReason::NeverUploaded });
                self.variant(path).last_encoder_msn = Some(*e);
                continue;
            };
            if let Err(reason) = self.commit(path, *e, seg_path, pending, &pl.segments[*i], now, &mut effects) {
                effects.push(Effect::Dropped { segment: seg_path.clone(), reason });
            }
            self.variant(path).last_encoder_msn = Some(*e);
        }
        if pl.end_list {
            self.variant(path).ended = true;
        }
        effects.extend(self.evict());
        Ok(effects)
    }

    /// A closed playlist that opens again, sequence numbers that went back, or a re-uploaded segment
    /// with new bytes: the encoder restarted, and its segments start a new session.
    fn detect_restart(&mut self, path: &str, pl: &MediaPlaylist) {
        let last_e = pl.media_sequence + pl.segments.len() as u64 - 1;
        let variant = self.variant(path);
        let went_back = variant.last_encoder_msn.is_some_and(|l| last_e < l);
        if (variant.ended && !pl.end_list) || went_back || variant.restarted {
            variant.epoch = None;
            variant.last_encoder_msn = None;
            variant.ended = false;
            variant.restarted = false;
            variant.committed.clear();
        }
    }

    /// Takes the init segment the playlist's `EXT-X-MAP` names, when it was uploaded; returns whether
    /// the variant can commit segments (it has an init, or it is MPEG-TS).
    fn take_init(
        &mut self,
        path: &str,
        dir: &str,
        pl: &MediaPlaylist,
        container: Container,
        effects: &mut Vec<Effect>,
    ) -> Result<bool, UploadError> {
        if container != Container::Fmp4 {
            if self.variant(path).tracks.is_empty() {
                let kind = if container == Container::WebVtt { TrackKind::Text } else { TrackKind::Video };
                self.assign_renditions(path, kind);
            }
            return Ok(true);
        }
        let map = pl.segments.iter().find_map(|s| s.map.as_ref()).map(|m| m.uri.as_str());
        let Some(init_path) = map.and_then(|uri| resolve(dir, uri)) else {
            return Err(UploadError::Invalid("an fMP4 playlist needs EXT-X-MAP".into()));
        };
        if let Some((bytes, info)) = self.pending_inits.remove(&init_path) {
            let variant = self.variant(path);
            if variant.init_bytes.as_ref() != Some(&bytes) {
                if variant.init.is_some() {
                    // A new init for a known variant: a new encoder session.
                    variant.epoch = None;
                    variant.last_encoder_msn = None;
                }
                variant.init = Some(info);
                variant.init_bytes = Some(bytes.clone());
                variant.init_path = Some(init_path);
                effects.push(Effect::Put { key: keys::source_init(&self.id, path), body: bytes, part: None });
                self.assign_renditions(path, TrackKind::Video);
            }
        }
        Ok(self.variant(path).init.is_some())
    }

    /// Commits encoder segment `e` of a variant: placed, demuxed into parts, put in its slot, and
    /// written through.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        variant_path: &str,
        e: u64,
        seg_path: &str,
        pending: Pending,
        seg: &MediaSegment,
        now: SystemTime,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DropReason> {
        let placed = self.place(variant_path, e, now, effects)?;
        let mut parts = self.parts_of(variant_path, &pending, seg, &placed)?;
        for (r, part) in &mut parts {
            self.made_of_parts(*r, placed.msn, part);
        }
        self.latencies.record(pending.arrived, now);
        let hash = xxhash_rust::xxh3::xxh3_64(&pending.bytes);
        let variant = self.variant(variant_path);
        variant.committed.push_back((seg_path.to_owned(), hash));
        if variant.committed.len() > REMEMBERED {
            variant.committed.pop_front();
        }
        self.window.push_through(placed.msn, placed.epoch_id, placed.epoch_first_msn, now);
        let encoder_pdt = seg.program_date_time.as_ref().and_then(to_system_time);
        self.fill_slot(&placed, parts, pending.container, encoder_pdt, seg.discontinuity, now, effects)?;
        self.status = Status::Live;
        self.version += 1;
        Ok(())
    }

    /// The epoch and channel sequence number of encoder segment `e` (joining or opening an epoch, and
    /// writing its inits, on a session's first segment).
    fn place(
        &mut self,
        variant_path: &str,
        e: u64,
        now: SystemTime,
        effects: &mut Vec<Effect>,
    ) -> Result<Placed, DropReason> {
        let was_member = self.variant(variant_path).epoch.is_some();
        let epoch_index = self.epoch_for(variant_path, e, now);
        if !was_member && self.variant(variant_path).init.is_some() {
            self.add_inits(epoch_index, variant_path, effects);
        }
        let epoch = self.epochs.at(epoch_index);
        let offset = e.checked_sub(epoch.first_encoder_msn).ok_or(DropReason::TooOld)?;
        let msn = epoch.first_msn + offset;
        if self.window.first_msn().is_some_and(|first| msn < first) {
            return Err(DropReason::TooOld);
        }
        if msn > self.window.next_msn() + MAX_AHEAD {
            return Err(DropReason::TooFarAhead);
        }
        Ok(Placed { epoch_index, epoch_id: epoch.id, epoch_first_msn: epoch.first_msn, msn })
    }

    /// The segment's parts, one per rendition it carries: demuxed fMP4 tracks, or the TS segment whole.
    fn parts_of(
        &mut self,
        variant_path: &str,
        pending: &Pending,
        seg: &MediaSegment,
        placed: &Placed,
    ) -> Result<Vec<(usize, Part)>, DropReason> {
        let msn = placed.msn;
        let variant = self.variant(variant_path);
        let parts = match (pending.container, variant.init.clone()) {
            (Container::Fmp4, Some(init)) => {
                let runs = parse_segment(&pending.bytes, &init).map_err(|_| DropReason::Unparsable)?;
                let tracks = &variant.tracks;
                let starts: Vec<(usize, f64)> = runs
                    .iter()
                    .filter_map(|run| {
                        let t = init.tracks.iter().position(|t| t.track_id == run.track_id)?;
                        let r = (*tracks.get(t)?)?;
                        Some((r, run.base_decode_time as f64 / f64::from(init.tracks[t].timescale.max(1))))
                    })
                    .collect();
                let shift = self.epoch_shift(placed.epoch_index, &starts, msn);
                demux(&runs, &init, &self.variant(variant_path).tracks, msn, shift)
            }
            (Container::Fmp4, None) => return Err(DropReason::NoInit),
            (Container::WebVtt, _) => {
                let Some(Some(r)) = variant.tracks.first().copied() else { return Err(DropReason::NoTracks) };
                let shift = self.epochs.at(placed.epoch_index).shift.unwrap_or(0.0);
                let text = std::str::from_utf8(&pending.bytes).map_err(|_| DropReason::Unparsable)?;
                let body = Bytes::from(estuary_media::subtitles::webvtt::shift_timestamp_map(text, shift));
                vec![(r, self.whole_part(r, msn, seg, body, TEXT_TIMESCALE))]
            }
            (Container::Ts, _) => {
                let Some(Some(r)) = variant.tracks.first().copied() else { return Err(DropReason::NoTracks) };
                // A copy: the upload's buffer carries its ingest charge, and the channel's owner charges
                // the window's bytes itself.
                let mut part = self.whole_part(r, msn, seg, Bytes::copy_from_slice(&pending.bytes), TS_TIMESCALE);
                part.keyframes = self.keyframes_of(r, msn, &pending.bytes);
                self.describe_ts(r, &pending.bytes);
                vec![(r, part)]
            }
        };
        if parts.is_empty() { Err(DropReason::NoTracks) } else { Ok(parts) }
    }

    /// A segment kept whole as rendition `r`'s part (MPEG-TS, WebVTT): timed on from the rendition's
    /// previous part, lasting its `EXTINF`.
    fn whole_part(&mut self, r: usize, msn: u64, seg: &MediaSegment, bytes: Bytes, timescale: u32) -> Part {
        let previous =
            self.window.slot(msn.wrapping_sub(1)).and_then(|s| s.part(r).map(|p| p.decode_time + p.duration));
        Part {
            decode_time: previous.unwrap_or(0),
            duration: (f64::from(seg.duration) * f64::from(timescale)).round() as u64,
            size: bytes.len() as u64,
            bytes: Some(bytes),
            stored: false,
            at_owner: false,
            keyframes: None,
        }
    }

    /// Where an MPEG-TS segment's keyframes lie, numbered on from the rendition's newest part
    /// before `msn` that has some.
    fn keyframes_of(&self, r: usize, msn: u64, segment: &[u8]) -> Option<Arc<Keyframes>> {
        let found = estuary_media::ts::random_access::keyframes(segment)?;
        let narrow = |k: KeyframePes| Some((u32::try_from(k.offset).ok()?, u32::try_from(k.len).ok()?, k.pts?));
        let ranges: Vec<(u32, u32, u64)> = found.keyframes.into_iter().map(narrow).collect::<Option<_>>()?;
        let before =
            self.window.slots().iter().rev().filter(|s| s.msn < msn).find_map(|s| s.part(r)?.keyframes.clone());
        let first = before.map_or(0, |k| k.first + k.ranges.len() as u64);
        Some(Arc::new(Keyframes { first, ranges, tables: u32::try_from(found.tables).ok()? }))
    }

    /// Puts the parts in their slot (timing it from the first part, marking discontinuities), updates
    /// bit rates, and writes the parts through.
    #[allow(clippy::too_many_arguments)]
    fn fill_slot(
        &mut self,
        placed: &Placed,
        mut parts: Vec<(usize, Part)>,
        container: Container,
        encoder_pdt: Option<SystemTime>,
        encoder_discontinuity: bool,
        now: SystemTime,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DropReason> {
        let (epoch_id, msn) = (placed.epoch_id, placed.msn);
        let previous = self.window.slot(msn.wrapping_sub(1)).map(|s| (s.epoch, s.end(), s.parts.clone()));
        let n_renditions = self.renditions.len();
        let window = self.settings.playlist_window();
        // Video gives the slot its nominal duration and start; audio frames rarely line up exactly.
        parts.sort_by_key(|(r, _)| self.renditions[*r].info.kind != TrackKind::Video);
        let (id, renditions) = (&self.id, &mut self.renditions);
        let filled = self.window.change_slot(msn, |slot| {
            if slot.epoch != epoch_id {
                return Err(DropReason::OtherSession);
            }
            let mut timed = slot.parts.iter().any(Option::is_some);
            slot.parts.resize(n_renditions.max(slot.parts.len()), None);
            slot.discontinuity |= encoder_discontinuity;
            for (r, part) in parts {
                let timescale = timescale_of(r, renditions);
                let secs = part.duration as f64 / f64::from(timescale);
                if !timed {
                    timed = true;
                    slot.duration = secs;
                    slot.pdt = match (encoder_pdt, &previous) {
                        (Some(t), _) => t,
                        (None, Some((ep, end, _))) if *ep == epoch_id => *end,
                        _ => now.checked_sub(Duration::from_secs_f64(secs)).unwrap_or(now),
                    };
                }
                // A part that does not follow its predecessor in time is a discontinuity.
                if let Some((ep, _, prev_parts)) = &previous
                    && *ep == epoch_id
                    && let Some(Some(prev)) = prev_parts.get(r)
                    && part.decode_time.abs_diff(prev.decode_time + prev.duration) > u64::from(timescale) / 2
                {
                    slot.discontinuity = true;
                }
                let entry = &mut renditions[r];
                if let Some(body) = part.bytes.clone() {
                    let key = keys::part(id, epoch_id, entry.info.id, msn, container);
                    effects.push(Effect::Put { key, body, part: Some((msn, r)) });
                }
                entry.recent.push_back((part.size, secs));
                update_bit_rates(entry, window);
                slot.parts[r] = Some(part);
            }
            Ok(())
        });
        filled.unwrap_or(Err(DropReason::TooOld))
    }
}
