//! Gathered reads ([`crate::Storage::gather`]): chosen byte ranges of one object (a segment's
//! samples) packed one after another into a single buffer behind room for a header, the buffer a
//! segment is then encrypted in and sent from. A local file is read straight into place
//! (`preadv`, what lies between two ranges of one coalesced read into scratch); any other backend
//! reads the coalesced ranges and the spans are copied out of them.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::ops::Range;

use crate::{Storage, StorageError, StorageKey};

/// Most bytes between two spans read into scratch in one `preadv`: more, and the read is split in
/// two (one more call) instead of the scratch growing.
const SCRATCH_BYTES: usize = 256 * 1024;

/// What to gather: `spans` of an object, covered by the coalesced `reads`, to be written one after
/// another from `front` on.
#[derive(Debug, Clone, Copy)]
pub struct Gather<'a> {
    pub reads: &'a [Range<u64>],
    pub spans: &'a [Range<u64>],
    pub front: usize,
}

/// `into` long enough for `front` and every span (grown with zeros if it is not), and the range of
/// it the spans go to.
fn room(key: &StorageKey, at: Gather<'_>, into: &mut Vec<u8>) -> Result<Range<usize>, StorageError> {
    let total: u64 = at.spans.iter().map(|s| s.end.saturating_sub(s.start)).sum();
    let end = usize::try_from(total)
        .ok()
        .and_then(|total| total.checked_add(at.front))
        .ok_or_else(|| StorageError::Io { key: key.to_string(), source: io::Error::other("too large") })?;
    if into.len() < end {
        into.resize(end, 0);
    }
    Ok(at.front..end)
}

/// A span that the bytes read did not hold: the object is shorter than its index said (it changed
/// while it was being read).
fn changed(key: &StorageKey) -> StorageError {
    let source = io::Error::new(io::ErrorKind::UnexpectedEof, "the object changed while it was being read");
    StorageError::Io { key: key.to_string(), source }
}

/// [`Storage::gather`] by [`Storage::get_ranges`]: the reads, then each span copied out of them.
pub async fn copied<S: Storage + ?Sized>(
    storage: &S,
    key: &StorageKey,
    at: Gather<'_>,
    mut into: Vec<u8>,
) -> Result<Vec<u8>, StorageError> {
    let buffers = storage.get_ranges(key, at.reads).await?;
    let mut place = room(key, at, &mut into)?.start;
    for span in at.spans {
        let len = span.end.saturating_sub(span.start);
        let bytes = estuary_media::reads::slice_of(at.reads, &buffers, span.start, len).ok_or_else(|| changed(key))?;
        into[place..place + bytes.len()].copy_from_slice(bytes);
        place += bytes.len();
    }
    Ok(into)
}

/// [`Storage::gather`] from an open file (blocking): one `preadv` per run of spans that follow each
/// other within one of the reads (bounded by the scratch for what lies between them), each span
/// read straight into its place.
pub fn from_file(file: &File, key: &StorageKey, at: Gather<'_>, mut into: Vec<u8>) -> Result<Vec<u8>, StorageError> {
    let place = room(key, at, &mut into)?;
    let spans = at.spans;
    let bridged = bridged_gaps(at.reads, spans);
    let most = bridged.iter().copied().filter(|&gap| gap != NOT_BRIDGED).max().unwrap_or(0);
    let mut scratch = vec![0u8; usize::try_from(most).unwrap_or(SCRATCH_BYTES).min(SCRATCH_BYTES)];
    let mut rest = &mut into[place];
    let mut next = 0;
    while next < spans.len() {
        let offset = spans[next].start;
        let (mut bufs, mut room) = (Vec::new(), &mut scratch[..]);
        loop {
            let span = &spans[next];
            let (place, after) = std::mem::take(&mut rest).split_at_mut(span.end.saturating_sub(span.start) as usize);
            bufs.push(IoSliceMut::new(place));
            rest = after;
            next += 1;
            let gap = match bridged.get(next - 1) {
                Some(&gap) if next < spans.len() && gap != NOT_BRIDGED && gap as usize <= room.len() => gap as usize,
                _ => break,
            };
            if gap > 0 {
                let (skipped, left) = std::mem::take(&mut room).split_at_mut(gap);
                bufs.push(IoSliceMut::new(skipped));
                room = left;
            }
        }
        estuary_sys::vectored::read_exact_vectored_at(file, &mut bufs, offset).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => changed(key),
            _ => StorageError::io(key, e),
        })?;
    }
    Ok(into)
}

/// Marks a gap that one read does not bridge.
const NOT_BRIDGED: u64 = u64::MAX;

/// For each span but the last, the bytes between it and the next when one of `reads` covers both
/// (they are read in one go), else [`NOT_BRIDGED`] (the next span is another read: it starts before
/// this one ends, or in another read).
fn bridged_gaps(reads: &[Range<u64>], spans: &[Range<u64>]) -> Vec<u64> {
    let within = |at: u64| reads.partition_point(|r| r.start <= at).checked_sub(1).filter(|&i| at < reads[i].end);
    spans
        .windows(2)
        .map(|w| match (within(w[0].end.saturating_sub(1)), within(w[1].start)) {
            (Some(a), Some(b)) if a == b && w[1].start >= w[0].end => w[1].start - w[0].end,
            _ => NOT_BRIDGED,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_inside_one_read_are_bridged_others_not() {
        let reads = [0..100, 200..300];
        let spans = [0..10, 20..30, 30..40, 200..210, 5..8, 250..260];
        assert_eq!(bridged_gaps(&reads, &spans), [10, 0, NOT_BRIDGED, NOT_BRIDGED, NOT_BRIDGED]);
        let one = [Range { start: 0, end: 10 }];
        assert!(bridged_gaps(&reads, &one).is_empty());
    }

    #[test]
    fn a_file_is_gathered_in_place_whatever_the_order_of_its_spans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = File::open(&path).unwrap();
        let key = StorageKey::parse("f").unwrap();
        // Two runs in one read (a small gap, then one larger than the scratch), a span read
        // again, one in a second read, and an empty one.
        let reads = [0..500_000, 550_000..560_000];
        let spans = [0..10, 20..30, 400_000..400_100, 25..27, 550_000..550_005, 560_000..560_000];
        let out = from_file(&file, &key, Gather { reads: &reads, spans: &spans, front: 7 }, vec![9; 3]).unwrap();
        let mut want = vec![9, 9, 9, 0, 0, 0, 0];
        spans.iter().for_each(|s| want.extend_from_slice(&content[s.start as usize..s.end as usize]));
        assert_eq!(&out[..], &want[..]);
        // A longer buffer keeps what lies past the spans.
        let out = from_file(&file, &key, Gather { reads: &reads, spans: &spans, front: 7 }, vec![5; 400]).unwrap();
        assert_eq!(out.len(), 400);
        assert_eq!((&out[7..want.len()], out[want.len()]), (&want[7..], 5));

        let tail = [Range { start: 599_990, end: 600_010 }];
        let gather = Gather { reads: &tail, spans: &tail, front: 0 };
        let past = from_file(&file, &key, gather, Vec::new()).unwrap_err();
        assert!(past.to_string().contains("changed while it was being read"), "{past}");
    }
}
