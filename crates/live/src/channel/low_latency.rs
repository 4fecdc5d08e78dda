//! PURE: LL-HLS parts of the segment an encoder is uploading. A media segment upload that continues
//! a variant (the next number of the name the variant's playlist last listed) is read chunk by
//! chunk; each chunk is re-muxed for its renditions, as whole segments are, and listed as a part
//! before the segment is whole. The whole segment is committed as before, from the encoder's
//! playlist.
//!
//! Bounded: a rendition keeps the parts of its last [`KEPT_SEGMENTS`] segments (three target
//! durations' worth of playlist, plus the one uploading).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::BytesMut;

use super::ChannelState;
use super::parts::demux;
use crate::model::{LivePart, Part, SegmentParts};
use estuary_media::fmp4::chunks::Chunk;
use estuary_media::fmp4::parse::InitInfo;
use estuary_media::mp4::TrackKind;

/// Segments whose parts a rendition keeps.
pub(super) const KEPT_SEGMENTS: usize = 4;

/// The variant an upload in progress continues, and what places its chunks.
#[derive(Debug, Clone)]
pub struct OpenUpload {
    pub variant: String,
    /// The variant's init, to read the upload's chunks against.
    pub init: Arc<InitInfo>,
    /// The encoder's sequence number of the segment.
    pub encoder_msn: u64,
}

impl ChannelState {
    /// Whether the fMP4 segment being uploaded at `path` continues a variant: in the folder of that
    /// variant's playlist, named like the segment it last committed with one of the next two
    /// numbers. `None` for anything else (the first segments, other names): those are taken whole,
    /// as before.
    pub fn open_upload(&self, path: &str) -> Option<OpenUpload> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let (stem, number) = numbered(name)?;
        self.variants.iter().find_map(|(variant_path, v)| {
            let variant_dir = variant_path.rsplit_once('/').map_or("", |(d, _)| d);
            let (last, _) = v.committed.back()?;
            let (last_stem, last_number) = numbered(last.rsplit_once('/').map_or(last.as_str(), |(_, n)| n))?;
            // The encoder starts uploading a segment as it closes the one before, and lists that one a
            // moment later: the upload may be one or two ahead of the last segment listed.
            let ahead = number.checked_sub(last_number).filter(|a| (1..=2).contains(a))?;
            let continues = variant_dir == dir && last_stem == stem;
            let encoder_msn = v.last_encoder_msn? + ahead;
            let init = v.init.clone()?;
            (continues && v.epoch.is_some()).then(|| OpenUpload { variant: variant_path.clone(), init, encoder_msn })
        })
    }

    /// Lists `chunk`, the next chunk of the upload `open`, which `arrived` whole at ingest, as parts
    /// of its renditions. `false` when it cannot be placed (the session changed meanwhile); nothing
    /// changes then.
    pub fn on_chunk(&mut self, open: &OpenUpload, chunk: &Chunk, arrived: SystemTime, now: SystemTime) -> bool {
        let Some(variant) = self.variants.get(&open.variant) else { return false };
        let Some(epoch_id) = variant.epoch else { return false };
        let Some(epoch) = self.epochs.by_id(epoch_id) else { return false };
        let (Some(shift), Some(offset)) = (epoch.shift, open.encoder_msn.checked_sub(epoch.first_encoder_msn)) else {
            return false;
        };
        let msn = epoch.first_msn + offset;
        if msn < self.window.next_msn().saturating_sub(1) {
            return false;
        }
        let pieces = demux(&chunk.runs, &open.init, &variant.tracks, msn, shift);
        if pieces.is_empty() {
            return false;
        }
        let target = self.settings.target_duration.as_secs_f64();
        let ll = Arc::make_mut(&mut self.low_latency);
        for (r, piece) in pieces {
            let timescale = self.renditions.get(r).map_or(1, |e| e.info.timescale.max(1));
            let duration = piece.duration as f64 / f64::from(timescale);
            ll.part_target = ll.part_target.max((duration * 10.0).ceil() / 10.0).min(target);
            if ll.renditions.len() <= r {
                ll.renditions.resize_with(r + 1, Default::default);
            }
            let segments = &mut ll.renditions[r];
            if segments.back().is_none_or(|s| s.msn != msn || s.epoch != epoch_id) {
                segments.push_back(SegmentParts { msn, epoch: epoch_id, parts: Vec::new() });
                while segments.len() > KEPT_SEGMENTS {
                    segments.pop_front();
                }
            }
            // Every audio frame is independent; video parts are when they start on a sync sample.
            let audio = self.renditions.get(r).is_some_and(|e| e.info.kind == TrackKind::Audio);
            let independent = audio || chunk.independent;
            if let (Some(segment), Some(bytes)) = (segments.back_mut(), piece.bytes) {
                let size = bytes.len() as u64;
                segment.parts.push(LivePart { duration, bytes, size, independent });
            }
        }
        self.part_latencies.record(arrived, now);
        self.version += 1;
        true
    }

    /// A whole segment whose LL-HLS parts cover it is served as those parts, one after the other
    /// (one `styp`, then each part's `moof` + `mdat`): a player that fetched parts and one that
    /// fetches the segment get the same bytes, and an open segment can later be streamed as its
    /// parts arrive. Parts that do not cover the segment (a stream that broke off) leave it as built.
    pub(super) fn made_of_parts(&self, r: usize, msn: u64, segment: &mut Part) {
        let Some(parts) = self.low_latency.segment(r, msn) else { return };
        let timescale = self.renditions.get(r).map_or(1, |e| e.info.timescale.max(1));
        if !parts.covers(segment.duration as f64 / f64::from(timescale)) {
            return;
        }
        let mut bytes = BytesMut::with_capacity(parts.parts.iter().map(|p| p.bytes.len()).sum());
        for (i, part) in parts.parts.iter().enumerate() {
            bytes.extend_from_slice(&part.in_segment(i));
        }
        segment.size = bytes.len() as u64;
        segment.bytes = Some(bytes.freeze());
    }
}

/// A file name as its stem and trailing number: `chunk-stream0-00004.m4s` is (`chunk-stream0-`, 4).
fn numbered(name: &str) -> Option<(&str, u64)> {
    let base = name.rsplit_once('.').map_or(name, |(b, _)| b);
    let digits = base.len() - base.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (stem, number) = base.split_at(digits);
    Some((stem, number.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn names_split_into_stem_and_number() {
        assert_eq!(numbered("chunk-stream0-00004.m4s"), Some(("chunk-stream0-", 4)));
        assert_eq!(numbered("seg_00012.m4s"), Some(("seg_", 12)));
        assert_eq!(numbered("7.m4s"), Some(("", 7)));
        assert_eq!(numbered("init.mp4"), None);
    }
}
