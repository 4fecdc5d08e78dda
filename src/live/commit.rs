//! PURE: turning a pushed media playlist into committed slots: restart detection, epochs, renditions,
//! demuxing fMP4 segments per track, timing, discontinuities and bit rates.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use m3u8_rs::MediaPlaylist;

use super::model::{Container, LiveRendition, Part, Slot, Status};
use super::parts::{TS_TIMESCALE, demux, describe, timescale_of, ts_rendition, update_bit_rates};
use super::state::{ChannelState, Effect, Epoch, Pending, RenditionEntry, RenditionKey, keys};
use super::upload::{UploadError, resolve};
use crate::packaging::fmp4::parse::parse_segment;
use crate::packaging::fmp4::{InitTrack, write_init};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::RenditionId;

/// Recently committed names remembered per variant (restart detection).
const REMEMBERED: usize = 64;

fn to_system_time(t: &chrono::DateTime<chrono::FixedOffset>) -> Option<SystemTime> {
    let ms = t.timestamp_millis();
    (ms >= 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64))
}

impl ChannelState {
    pub(super) fn on_media_playlist(
        &mut self,
        path: &str,
        pl: &MediaPlaylist,
        now: SystemTime,
    ) -> Result<Vec<Effect>, UploadError> {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let container = if pl
            .segments
            .iter()
            .any(|s| s.uri.to_ascii_lowercase().split('?').next().unwrap_or("").ends_with(".ts"))
        {
            Container::Ts
        } else {
            Container::Fmp4
        };
        if pl.segments.is_empty() {
            return Ok(Vec::new());
        }
        match self.container {
            Some(c) if c != container => {
                return Err(UploadError::Invalid(format!(
                    "this channel carries {c:?} segments; the playlist lists {container:?}"
                )));
            }
            _ => self.container = Some(container),
        }
        let last_e = pl.media_sequence + pl.segments.len() as u64 - 1;
        let variant = self.variants.entry(path.to_owned()).or_default();
        // A closed playlist that opens again, sequence numbers that went back, or a
        // re-uploaded segment with new bytes: the encoder restarted.
        let went_back = variant.last_encoder_msn.is_some_and(|l| last_e < l);
        if (variant.ended && !pl.end_list) || went_back || variant.restarted {
            variant.epoch = None;
            variant.last_encoder_msn = None;
            variant.ended = false;
            variant.restarted = false;
            variant.committed.clear();
        }

        let mut effects = Vec::new();
        if container == Container::Fmp4 {
            let map = pl.segments.iter().find_map(|s| s.map.as_ref()).map(|m| m.uri.as_str());
            let Some(init_path) = map.and_then(|uri| resolve(&dir, uri)) else {
                return Err(UploadError::Invalid("an fMP4 playlist needs EXT-X-MAP".into()));
            };
            if let Some((bytes, info)) = self.pending_inits.remove(&init_path) {
                let variant = self.variants.get_mut(path).expect("inserted above");
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
                    self.assign_renditions(path);
                }
            }
            if self.variants[path].init.is_none() {
                return Ok(effects);
            }
        } else if self.variants[path].tracks.is_empty() {
            self.assign_renditions(path);
        }

        let listed: Vec<(u64, String, usize)> = pl
            .segments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| resolve(&dir, &s.uri).map(|p| (pl.media_sequence + i as u64, p, i)))
            .collect();
        for (n, (e, seg_path, i)) in listed.iter().enumerate() {
            if self.variants[path].last_encoder_msn.is_some_and(|l| *e <= l) {
                continue;
            }
            let Some(pending) = self.pending_segments.remove(seg_path) else {
                // Missing bytes: wait, unless a later segment is already here (then this one is lost).
                if listed[n + 1..].iter().any(|(_, p, _)| self.pending_segments.contains_key(p)) {
                    tracing::warn!(channel = %self.id, segment = %seg_path, "segment listed but never uploaded; skipping it");
                    self.variants.get_mut(path).expect("known").last_encoder_msn = Some(*e);
                    continue;
                }
                break;
            };
            let seg = &pl.segments[*i];
            self.commit(path, *e, seg_path, pending, seg, now, &mut effects);
            let v = self.variants.get_mut(path).expect("known");
            v.last_encoder_msn = Some(*e);
        }
        if pl.end_list {
            self.variants.get_mut(path).expect("known").ended = true;
        }
        effects.extend(self.evict());
        Ok(effects)
    }

    /// Gives every track of a variant a rendition (the same one across restarts).
    fn assign_renditions(&mut self, variant_path: &str) {
        let variant = &self.variants[variant_path];
        let tracks: Vec<(TrackKind, Option<LiveRendition>)> = match &variant.init {
            Some(init) => {
                let has_video = init.tracks.iter().any(|t| t.kind == TrackKind::Video);
                init.tracks.iter().map(|t| (t.kind, Some(describe(t, has_video)))).collect()
            }
            None => vec![(TrackKind::Video, None)],
        };
        let mut assigned = Vec::new();
        let mut nth = [0usize; 2];
        for (kind, info) in tracks {
            let k = usize::from(kind == TrackKind::Audio);
            let key = RenditionKey { variant: variant_path.to_owned(), kind, nth: nth[k] };
            nth[k] += 1;
            let index = match self.renditions.iter().position(|r| r.key == key) {
                Some(i) => i,
                None => {
                    let count = self.renditions.iter().filter(|r| r.info.id.kind == kind).count() as u16;
                    let id = RenditionId { kind, index: count };
                    let info = info.clone().unwrap_or_else(|| ts_rendition(id));
                    self.renditions.push(RenditionEntry {
                        key,
                        info: LiveRendition { id, ..info },
                        recent: Default::default(),
                    });
                    self.renditions.len() - 1
                }
            };
            if let Some(info) = info {
                let entry = &mut self.renditions[index];
                entry.info = LiveRendition {
                    id: entry.info.id,
                    peak_bps: entry.info.peak_bps,
                    average_bps: entry.info.average_bps,
                    ..info
                };
            }
            assigned.push(Some(index));
        }
        self.variants.get_mut(variant_path).expect("known").tracks = assigned;
    }

    /// The epoch a variant's segment `e` belongs to: its own, the newest one it may join, or a new one.
    fn epoch_for(&mut self, variant_path: &str, e: u64, now: SystemTime) -> usize {
        if let Some(id) = self.variants[variant_path].epoch
            && let Some(i) = self.epochs.iter().position(|ep| ep.id == id)
        {
            return i;
        }
        let joinable = self.epochs.last().is_some_and(|ep| !ep.closed && !ep.members.contains(variant_path));
        if !joinable {
            let last_id = self.epochs.last().map_or(0, |ep| ep.id);
            let now_ms = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            let id = now_ms.max(last_id + 1);
            self.epochs.push(Epoch {
                id,
                first_encoder_msn: e,
                first_msn: self.next_msn,
                members: Default::default(),
                closed: false,
                inits: Vec::new(),
            });
        }
        let index = self.epochs.len() - 1;
        let id = self.epochs[index].id;
        self.epochs[index].members.insert(variant_path.to_owned());
        self.variants.get_mut(variant_path).expect("known").epoch = Some(id);
        index
    }

    /// Writes the per-track init segments of a variant into an epoch.
    fn add_inits(&mut self, epoch: usize, variant_path: &str, effects: &mut Vec<Effect>) {
        let variant = &self.variants[variant_path];
        let Some(init) = variant.init.clone() else { return };
        let tracks = variant.tracks.clone();
        let epoch_id = self.epochs[epoch].id;
        for (t, r) in init.tracks.iter().zip(tracks) {
            let Some(r) = r else { continue };
            let bytes = write_init(&InitTrack {
                kind: t.kind,
                timescale: t.timescale,
                movie_timescale: init.movie_timescale,
                language: &t.language,
                stsd: &t.stsd,
                edit: t.edit,
                display: t.display,
            });
            let inits = &mut self.epochs[epoch].inits;
            if inits.len() <= r {
                inits.resize(r + 1, None);
            }
            inits[r] = Some(bytes.clone());
            effects.push(Effect::Put {
                key: keys::init(&self.id, epoch_id, self.renditions[r].info.id),
                body: bytes,
                part: None,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        variant_path: &str,
        e: u64,
        seg_path: &str,
        pending: Pending,
        seg: &m3u8_rs::MediaSegment,
        now: SystemTime,
        effects: &mut Vec<Effect>,
    ) {
        let was_member = self.variants[variant_path].epoch.is_some();
        let epoch_index = self.epoch_for(variant_path, e, now);
        if !was_member && self.variants[variant_path].init.is_some() {
            self.add_inits(epoch_index, variant_path, effects);
        }
        let epoch = &self.epochs[epoch_index];
        let Some(offset) = e.checked_sub(epoch.first_encoder_msn) else { return };
        let (epoch_id, msn, epoch_first_msn) = (epoch.id, epoch.first_msn + offset, epoch.first_msn);
        if self.slots.front().is_some_and(|s| msn < s.msn) || msn > self.next_msn + 1000 {
            return;
        }
        let variant = &self.variants[variant_path];
        let parts: Vec<(usize, Part)> = match (pending.container, &variant.init) {
            (Container::Fmp4, Some(init)) => match parse_segment(&pending.bytes, init) {
                Ok(runs) => demux(&runs, init, &variant.tracks, msn),
                Err(err) => {
                    tracing::warn!(channel = %self.id, segment = %seg_path, error = %err, "dropping a segment that does not match its init");
                    return;
                }
            },
            (Container::Ts, _) => {
                let Some(Some(r)) = variant.tracks.first().copied() else { return };
                let previous =
                    self.slot_mut(msn.wrapping_sub(1)).and_then(|s| s.part(r).map(|p| p.decode_time + p.duration));
                let duration = (f64::from(seg.duration) * f64::from(TS_TIMESCALE)).round() as u64;
                vec![(
                    r,
                    Part {
                        decode_time: previous.unwrap_or(0),
                        duration,
                        size: pending.bytes.len() as u64,
                        bytes: Some(pending.bytes.clone()),
                        stored: false,
                    },
                )]
            }
            (Container::Fmp4, None) => return,
        };
        if parts.is_empty() {
            return;
        }
        self.record_latency(pending.arrived, now);
        let hash = xxhash_rust::xxh3::xxh3_64(&pending.bytes);
        let v = self.variants.get_mut(variant_path).expect("known");
        v.committed.push_back((seg_path.to_owned(), hash));
        if v.committed.len() > REMEMBERED {
            v.committed.pop_front();
        }

        // Slots up to this one exist (a variant ahead of the others creates them).
        while self.next_msn <= msn {
            let m = self.next_msn;
            self.slots.push_back(Arc::new(Slot {
                msn: m,
                epoch: epoch_id,
                discontinuity: m == epoch_first_msn && m > 0,
                pdt: now,
                duration: 0.0,
                parts: Vec::new(),
            }));
            self.next_msn += 1;
        }
        let encoder_pdt = seg.program_date_time.as_ref().and_then(to_system_time);
        let previous = self.slot_mut(msn.wrapping_sub(1)).map(|s| (s.epoch, s.end(), s.parts.clone()));
        let n_renditions = self.renditions.len();
        let container = pending.container;
        let id = self.id.clone();
        let mut stored_parts = Vec::new();
        let Some(index) = self.slots.front().and_then(|f| usize::try_from(msn.checked_sub(f.msn)?).ok()) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(index) else { return };
        if slot.epoch != epoch_id {
            return;
        }
        let slot = Arc::make_mut(slot);
        let fresh = slot.parts.iter().all(Option::is_none);
        slot.parts.resize(n_renditions.max(slot.parts.len()), None);
        slot.discontinuity |= seg.discontinuity;
        let mut parts = parts;
        // Video gives the slot its nominal duration and start; audio frames rarely line up exactly.
        parts.sort_by_key(|(r, _)| self.renditions[*r].info.kind != TrackKind::Video);
        let mut timed = !fresh;
        for (r, part) in parts {
            let secs = part.duration as f64 / f64::from(timescale_of(r, &self.renditions));
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
            {
                let expected = prev.decode_time + prev.duration;
                let tolerance = u64::from(timescale_of(r, &self.renditions)) / 2;
                if part.decode_time.abs_diff(expected) > tolerance {
                    slot.discontinuity = true;
                }
            }
            if let Some(bytes) = &part.bytes {
                stored_parts.push((r, bytes.clone()));
            }
            let entry = &mut self.renditions[r];
            entry.recent.push_back((part.size, secs));
            update_bit_rates(entry, self.settings.playlist_window());
            slot.parts[r] = Some(part);
        }
        for (r, body) in stored_parts {
            let rid = self.renditions[r].info.id;
            effects.push(Effect::Put {
                key: keys::part(&id, epoch_id, rid, msn, container),
                body,
                part: Some((msn, r)),
            });
        }
        self.status = Status::Live;
        self.version += 1;
    }
}
