//! PURE: a CMAF stream read as it arrives (a segment uploaded with chunked transfer, a DASH-IF
//! ingest POST): bytes in any split go in, whole chunks come out (the boxes before a `moof`, the
//! `moof` and its `mdat`), each checked before anyone may see it: its `moof` parses against the
//! init, its sequence number rises, and no track's decode time goes back.
//!
//! Bounded: a chunk larger than the reader's limit is refused as soon as its box header says so;
//! beyond the bytes of the latest push, the reader holds at most one unfinished chunk.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use super::parse::{InitInfo, TrackRun, parse_segment};
use crate::PackagingError;
use crate::mp4::TrackKind;
use crate::mp4::boxes::{self, BoxHeader, fourcc_str};

/// One CMAF chunk, checked.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Its bytes as received (`styp`/`prft`/`emsg` before the `moof` included).
    pub bytes: Bytes,
    /// `mfhd` sequence number.
    pub sequence: u32,
    /// Its samples per track, sharing `bytes`.
    pub runs: Vec<TrackRun>,
    /// Every video track starts with a sync sample: a player can start here (LL-HLS
    /// `INDEPENDENT=YES`). True for audio-only chunks.
    pub independent: bool,
}

impl Chunk {
    /// Its duration in seconds: the longest of its tracks.
    pub fn duration_secs(&self, init: &InitInfo) -> f64 {
        let secs = |run: &TrackRun| {
            let timescale = init.track(run.track_id).map_or(1, |t| t.timescale.max(1));
            run.duration() as f64 / f64::from(timescale)
        };
        self.runs.iter().map(secs).fold(0.0, f64::max)
    }
}

/// Why a stream was refused. The caller fails the segment being uploaded, not the channel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChunkError {
    #[error(transparent)]
    Packaging(#[from] PackagingError),
    #[error("a chunk of {size} bytes is over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("chunk sequence number {got} after {after}: sequence numbers must rise")]
    SequenceBackwards { after: u32, got: u32 },
    #[error("track {track} decodes from {got} but its previous chunk ended at {ended}")]
    DecodeTimeBackwards { track: u32, ended: u64, got: u64 },
    #[error("the stream ended inside a chunk ({0} bytes left over)")]
    Unfinished(usize),
}

/// Reads one CMAF stream against its init segment.
pub struct ChunkReader {
    init: Arc<InitInfo>,
    limit: u64,
    pending: BytesMut,
    /// Bytes of `pending` that are whole boxes before a `moof` (or a whole `moof`).
    scanned: usize,
    moof_end: Option<usize>,
    last_sequence: Option<u32>,
    /// Per track: where its last chunk ended on its decode timeline.
    decode_end: HashMap<u32, u64>,
}

impl ChunkReader {
    /// A reader for a stream of `init`'s tracks, refusing chunks over `limit` bytes.
    pub fn new(init: impl Into<Arc<InitInfo>>, limit: u64) -> Self {
        ChunkReader {
            init: init.into(),
            limit,
            pending: BytesMut::new(),
            scanned: 0,
            moof_end: None,
            last_sequence: None,
            decode_end: HashMap::new(),
        }
    }

    /// Continues a stream whose previous chunks (an earlier segment of the same track) ended at
    /// `sequence` and these decode times: the checks carry over.
    pub fn after(mut self, sequence: Option<u32>, decode_end: impl IntoIterator<Item = (u32, u64)>) -> Self {
        self.last_sequence = sequence;
        self.decode_end.extend(decode_end);
        self
    }

    /// Takes the next bytes of the stream; returns the chunks they completed, in order.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Chunk>, ChunkError> {
        self.pending.extend_from_slice(data);
        let mut chunks = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            chunks.push(chunk);
        }
        Ok(chunks)
    }

    /// The stream ended: an error if it ended inside a chunk.
    pub fn finish(&self) -> Result<(), ChunkError> {
        match self.pending.len() {
            0 => Ok(()),
            left => Err(ChunkError::Unfinished(left)),
        }
    }

    /// Where the stream stands: the last sequence number and each track's decode end.
    pub fn position(&self) -> (Option<u32>, Vec<(u32, u64)>) {
        (self.last_sequence, self.decode_end.iter().map(|(t, e)| (*t, *e)).collect())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, ChunkError> {
        loop {
            let Some(header) = BoxHeader::parse(&self.pending[self.scanned..])? else { return Ok(None) };
            let Some(size) = header.size else {
                let kind = fourcc_str(header.kind);
                return Err(PackagingError::malformed(format!("box '{kind}' runs to the end of the stream")).into());
            };
            let end = self.scanned as u64 + size;
            if end > self.limit {
                return Err(ChunkError::TooLarge { size: end, limit: self.limit });
            }
            if (self.pending.len() as u64) < end {
                return Ok(None);
            }
            let end = end as usize;
            match (&header.kind, self.moof_end) {
                (b"moof", None) => self.moof_end = Some(end),
                (b"mdat", Some(_)) => {
                    let bytes = self.pending.split_to(end).freeze();
                    (self.scanned, self.moof_end) = (0, None);
                    return self.check(bytes).map(Some);
                }
                (b"moof", Some(_)) => {
                    return Err(PackagingError::malformed("two 'moof' boxes without an 'mdat' between them").into());
                }
                (b"mdat", None) => return Err(PackagingError::malformed("'mdat' without a 'moof' before it").into()),
                (b"styp" | b"prft" | b"emsg" | b"sidx" | b"free" | b"skip" | b"uuid", None) => {}
                // The random-access index an MP4 muxer writes after the last fragment: not media.
                (b"mfra", None) if self.scanned == 0 => {
                    self.pending.advance(end);
                    continue;
                }
                (other, _) => {
                    let kind = fourcc_str(*other);
                    return Err(PackagingError::malformed(format!("unexpected '{kind}' box in a CMAF chunk")).into());
                }
            }
            self.scanned = end;
        }
    }

    fn check(&mut self, bytes: Bytes) -> Result<Chunk, ChunkError> {
        let runs = parse_segment(&bytes, &self.init)?;
        let sequence = sequence_of(&bytes)?;
        if let Some(after) = self.last_sequence
            && sequence <= after
        {
            return Err(ChunkError::SequenceBackwards { after, got: sequence });
        }
        for run in &runs {
            if let Some(&ended) = self.decode_end.get(&run.track_id)
                && run.base_decode_time < ended
            {
                return Err(ChunkError::DecodeTimeBackwards { track: run.track_id, ended, got: run.base_decode_time });
            }
        }
        self.last_sequence = Some(sequence);
        for run in &runs {
            self.decode_end.insert(run.track_id, run.base_decode_time + run.duration());
        }
        let video = |run: &&TrackRun| self.init.track(run.track_id).is_some_and(|t| t.kind == TrackKind::Video);
        let independent = runs.iter().filter(video).all(|run| run.samples.first().is_none_or(|s| s.is_sync()));
        Ok(Chunk { bytes, sequence, runs, independent })
    }
}

/// The `mfhd` sequence number of the chunk's `moof`.
fn sequence_of(chunk: &[u8]) -> Result<u32, PackagingError> {
    let moof = boxes::find(chunk, b"moof")?.ok_or_else(|| PackagingError::malformed("chunk without 'moof'"))?;
    let mfhd = boxes::find(moof.payload, b"mfhd")?.ok_or_else(|| PackagingError::malformed("'moof' without 'mfhd'"))?;
    let mut payload = mfhd.payload;
    if payload.len() < 8 {
        return Err(PackagingError::Truncated("'mfhd' shorter than 8 bytes".into()));
    }
    payload.advance(4);
    Ok(payload.get_u32())
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
