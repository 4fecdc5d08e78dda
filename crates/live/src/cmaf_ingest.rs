//! PURE: one track of a DASH-IF Live Media Ingest (interface 1, CMAF) POST: its CMAF header, then
//! CMAF fragments as they arrive, cut into segments on a grid of the channel's target duration,
//! so that every track of the channel cuts at the same times and numbers its segments alike (a
//! segment's number is where it starts on the grid). Each fragment is checked by the
//! [`ChunkReader`] before it is handed on (a part of the open segment); each segment once its last
//! fragment is in. The ingest tier turns these into the uploads an HLS-pushing encoder would make
//! (`init.mp4`, `seg_{n}.m4s`, `index.m3u8`), so the channel commits them as any other.
//!
//! Bounded: it holds the header (at most the header limit, as an `init.mp4` upload) and the open
//! segment's bytes (at most the segment limit, as a segment upload, however its fragments fall); a
//! fragment over the limit is refused from its box header.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use estuary_media::fmp4::chunks::{Chunk, ChunkError, ChunkReader};
use estuary_media::fmp4::parse::{InitInfo, parse_init};
use estuary_media::mp4::boxes::BoxHeader;

/// Segments the synthetic playlist lists.
const LISTED: usize = 6;

/// What the track's stream gave.
#[derive(Debug)]
pub enum TrackEvent {
    /// The CMAF header (`ftyp` + `moov`).
    Header(Bytes),
    /// A fragment of segment `number`, checked.
    Fragment { number: u64, chunk: Chunk },
    /// Segment `number` is whole.
    Segment { number: u64, bytes: Bytes, duration: f64 },
}

struct Open {
    number: u64,
    start: f64,
    end: f64,
    bytes: BytesMut,
}

/// One track's POST, read as it arrives.
pub struct TrackIngest {
    target: f64,
    header_limit: u64,
    limit: u64,
    header: BytesMut,
    reader: Option<(Arc<InitInfo>, ChunkReader)>,
    open: Option<Open>,
    /// The newest whole segments: (number, duration).
    listed: VecDeque<(u64, f64)>,
}

impl TrackIngest {
    /// A track cut into segments of `target` seconds, refusing a header over `header_limit` and a
    /// fragment or segment over `limit`.
    pub fn new(target: f64, header_limit: u64, limit: u64) -> Self {
        TrackIngest {
            target: target.max(0.1),
            header_limit,
            limit,
            header: BytesMut::new(),
            reader: None,
            open: None,
            listed: VecDeque::new(),
        }
    }

    /// Reads `data`, the next bytes of the POST.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<TrackEvent>, ChunkError> {
        let mut events = Vec::new();
        if self.reader.is_some() {
            return self.fragments(data, events);
        }
        self.header.extend_from_slice(data);
        let Some(end) = header_end(&self.header, self.header_limit)? else { return Ok(events) };
        let header = self.header.split_to(end).freeze();
        let init = Arc::new(parse_init(&header)?);
        self.reader = Some((init.clone(), ChunkReader::new(init, self.limit)));
        events.push(TrackEvent::Header(header));
        let after = std::mem::take(&mut self.header);
        self.fragments(&after, events)
    }

    fn fragments(&mut self, data: &[u8], mut events: Vec<TrackEvent>) -> Result<Vec<TrackEvent>, ChunkError> {
        let Some((init, reader)) = &mut self.reader else { return Ok(events) };
        let init = init.clone();
        for chunk in reader.push(data)? {
            let Some(run) = chunk.runs.first() else { continue };
            let timescale = init.track(run.track_id).map_or(1, |t| t.timescale.max(1));
            let start = run.base_decode_time as f64 / f64::from(timescale);
            let end = start + chunk.duration_secs(&init);
            // A new segment at the first fragment a player can start from, once the grid line after
            // the open segment's start is reached (within a frame or two).
            let cut = match &self.open {
                None => true,
                Some(open) => chunk.independent && start >= (open.number + 1) as f64 * self.target - 0.1,
            };
            if cut {
                let number = match &self.open {
                    None => (start / self.target).round() as u64,
                    Some(open) => open.number + 1,
                };
                if let Some(done) = self.open.take() {
                    events.push(self.close(done));
                }
                self.open = Some(Open { number, start, end, bytes: BytesMut::new() });
            }
            if let Some(open) = &mut self.open {
                // Fragments that never start a segment must not grow one past what an upload may be.
                let size = (open.bytes.len() + chunk.bytes.len()) as u64;
                if size > self.limit {
                    return Err(ChunkError::TooLarge { size, limit: self.limit });
                }
                open.bytes.extend_from_slice(&chunk.bytes);
                open.end = end;
                events.push(TrackEvent::Fragment { number: open.number, chunk });
            }
        }
        Ok(events)
    }

    fn close(&mut self, open: Open) -> TrackEvent {
        let duration = open.end - open.start;
        self.listed.push_back((open.number, duration));
        while self.listed.len() > LISTED {
            self.listed.pop_front();
        }
        TrackEvent::Segment { number: open.number, bytes: open.bytes.freeze(), duration }
    }

    /// Bytes held: the header until it is whole, then the open segment.
    pub fn held(&self) -> u64 {
        (self.header.len() + self.open.as_ref().map_or(0, |o| o.bytes.len())) as u64
    }

    /// The POST ended: its open segment is whole.
    pub fn finish(&mut self) -> Result<Option<TrackEvent>, ChunkError> {
        if let Some((_, reader)) = &self.reader {
            reader.finish()?;
        }
        Ok(self.open.take().map(|open| self.close(open)))
    }

    /// The media playlist an HLS encoder would have pushed by now: the newest whole segments,
    /// named `seg_{number}.m4s`, after `init.mp4`.
    pub fn playlist(&self) -> String {
        let target = self.listed.iter().map(|&(_, d)| d).fold(self.target, f64::max).ceil() as u64;
        let first = self.listed.front().map_or(0, |&(n, _)| n);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n"
        );
        for &(number, duration) in &self.listed {
            out.push_str(&format!("#EXTINF:{duration:.6},\n{}\n", segment_name(number)));
        }
        out
    }
}

/// The name segment `number` of a track is uploaded under.
pub fn segment_name(number: u64) -> String {
    format!("seg_{number:05}.m4s")
}

/// The boxes a CMAF header may hold before its `moov` ends it.
const HEADER_BOXES: [&[u8; 4]; 6] = [b"ftyp", b"moov", b"free", b"skip", b"uuid", b"meta"];

/// Where the CMAF header ends (after its `moov`), once `bytes` hold all of it; refused when it grows
/// past `limit` or a fragment comes first.
fn header_end(bytes: &[u8], limit: u64) -> Result<Option<usize>, ChunkError> {
    let mut pos = 0usize;
    loop {
        let Some(header) = BoxHeader::parse(&bytes[pos..])? else { return Ok(None) };
        let size = header.size.unwrap_or(u64::MAX);
        let through = (pos as u64).saturating_add(size);
        if through > limit {
            // A header box too large is refused as too large; anything else that size is no header.
            if !HEADER_BOXES.contains(&&header.kind) {
                let kind = String::from_utf8_lossy(&header.kind).into_owned();
                return Err(estuary_media::PackagingError::malformed(format!("a '{kind}' box in a CMAF header")).into());
            }
            return Err(ChunkError::TooLarge { size: through, limit });
        }
        if &header.kind == b"moof" || &header.kind == b"mdat" {
            return Err(estuary_media::PackagingError::malformed("a CMAF fragment before the CMAF header").into());
        }
        let end = pos + size as usize;
        if end > bytes.len() {
            return Ok(None);
        }
        if &header.kind == b"moov" {
            return Ok(Some(end));
        }
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{INIT, SEGMENTS};

    /// The sample's header and four 4 s fragments, pushed in pieces of `split` bytes.
    fn ingest(target: f64, split: usize) -> (TrackIngest, Vec<TrackEvent>) {
        let stream: Vec<u8> = [INIT].into_iter().chain(SEGMENTS).flatten().copied().collect();
        let mut track = TrackIngest::new(target, 1 << 20, 16 << 20);
        let mut events = Vec::new();
        for piece in stream.chunks(split) {
            events.extend(track.push(piece).unwrap());
        }
        events.extend(track.finish().unwrap());
        (track, events)
    }

    fn segments(events: &[TrackEvent]) -> Vec<(u64, usize, f64)> {
        events
            .iter()
            .filter_map(|e| match e {
                TrackEvent::Segment { number, bytes, duration } => Some((*number, bytes.len(), *duration)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_stream_in_any_split_is_cut_on_the_target_grid() {
        let (track, events) = ingest(4.0, 1000);
        assert!(matches!(&events[0], TrackEvent::Header(h) if &h[..] == INIT));
        let fragments = events.iter().filter(|e| matches!(e, TrackEvent::Fragment { .. })).count();
        assert_eq!(fragments, 4);
        let cut = segments(&events);
        assert_eq!(cut.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(cut.iter().map(|s| s.1).collect::<Vec<_>>(), SEGMENTS.map(<[u8]>::len));
        assert!(cut.iter().all(|s| (s.2 - 4.0).abs() < 0.1), "{cut:?}");
        // The same in single bytes.
        assert_eq!(segments(&ingest(4.0, 1).1), cut);
        let playlist = track.playlist();
        assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4."), "{playlist}");
        assert!(playlist.ends_with("seg_00003.m4s\n"), "{playlist}");
        let parsed = m3u8_rs::parse_media_playlist_res(playlist.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 4);
    }

    #[test]
    fn a_longer_target_takes_several_fragments_per_segment() {
        let (_, events) = ingest(8.0, 4096);
        let cut = segments(&events);
        assert_eq!(
            cut.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
            [(0, SEGMENTS[0].len() + SEGMENTS[1].len()), (1, SEGMENTS[2].len() + SEGMENTS[3].len())]
        );
        let numbers: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                TrackEvent::Fragment { number, .. } => Some(*number),
                _ => None,
            })
            .collect();
        assert_eq!(numbers, [0, 0, 1, 1]);
    }

    #[test]
    fn a_stream_without_its_header_or_too_large_is_refused() {
        let mut track = TrackIngest::new(2.0, 1 << 20, 16 << 20);
        assert!(track.push(SEGMENTS[0]).is_err(), "a fragment before the header");
        let mut small = TrackIngest::new(2.0, 100, 16 << 20);
        assert!(matches!(small.push(INIT), Err(ChunkError::TooLarge { .. })), "a header over its own limit");
        let mut junk = TrackIngest::new(2.0, 100, 16 << 20);
        assert!(matches!(junk.push(b"not a CMAF stream at all"), Err(ChunkError::Packaging(_))), "no header at all");
        // Fragments that never start a segment are refused once the open one passes the limit.
        let mut long = TrackIngest::new(60.0, 1 << 20, (SEGMENTS[0].len() + SEGMENTS[1].len()) as u64);
        long.push(INIT).unwrap();
        long.push(SEGMENTS[0]).unwrap();
        long.push(SEGMENTS[1]).unwrap();
        assert!(matches!(long.push(SEGMENTS[2]), Err(ChunkError::TooLarge { .. })));
        // A box "to the end of the stream" after a first one never ends: refused, no overflow.
        let mut endless = TrackIngest::new(2.0, 1 << 20, 16 << 20);
        let boxes = [&[0u8, 0, 0, 8, b'f', b'r', b'e', b'e'][..], &[0, 0, 0, 0, b'f', b'r', b'e', b'e']].concat();
        assert!(matches!(endless.push(&boxes), Err(ChunkError::TooLarge { .. })));
        // A stream cut inside a fragment does not finish clean.
        let mut cut = TrackIngest::new(2.0, 1 << 20, 16 << 20);
        cut.push(INIT).unwrap();
        cut.push(&SEGMENTS[0][..100]).unwrap();
        assert!(cut.finish().is_err());
    }
}
