//! Which byte ranges to read for a set of samples: adjacent (and nearly adjacent) samples become one read,
//! within a budget of wasted bytes and a cap on the number of reads.

use std::ops::Range;

/// At most this share of the bytes wanted is read in gaps between them.
const WASTE_BUDGET: u64 = 4;

/// How a segment's samples are read.
#[derive(Debug, Clone, Copy)]
pub struct ReadPolicy {
    /// Gaps larger than this are never read across (unless `max_reads` forces it).
    pub max_gap: u64,
    /// Most separate reads per segment: past it, the smallest gaps are read across whatever
    /// they cost. High for a local disk; low for S3, where each read is a request.
    pub max_reads: usize,
}

/// Byte ranges covering every `(offset, size)` sample, sorted. Adjacent samples always
/// share a read; across a gap of at most `max_gap` bytes they share one too, smallest
/// gaps first, as long as the bytes read in gaps stay within a quarter of the bytes
/// wanted (so an audio segment does not drag in the video interleaved with it); then,
/// while there are more than `max_reads` reads, the smallest remaining gaps are bridged.
pub fn coalesce(offsets: &[u64], sizes: &[u32], policy: ReadPolicy) -> Vec<Range<u64>> {
    let (max_gap, max_reads) = (policy.max_gap, policy.max_reads.max(1));
    let mut spans: Vec<Range<u64>> =
        offsets.iter().zip(sizes).filter(|(_, s)| **s > 0).map(|(&o, &s)| o..o + u64::from(s)).collect();
    spans.sort_by_key(|r| r.start);
    let mut touching: Vec<Range<u64>> = Vec::with_capacity(spans.len());
    for span in spans {
        match touching.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => touching.push(span),
        }
    }
    let wanted: u64 = touching.iter().map(|r| r.end - r.start).sum();
    let mut budget = wanted / WASTE_BUDGET;
    // gaps[i] lies between touching[i] and touching[i + 1]; bridge the smallest ones that fit.
    let mut gaps: Vec<(u64, usize)> =
        touching.windows(2).enumerate().map(|(i, w)| (w[1].start - w[0].end, i)).collect();
    gaps.sort_unstable();
    let mut bridged = vec![false; touching.len().saturating_sub(1)];
    let mut reads = touching.len();
    for (gap, i) in gaps {
        let affordable = gap <= max_gap && gap <= budget;
        if !affordable && reads <= max_reads {
            break;
        }
        budget = budget.saturating_sub(gap);
        bridged[i] = true;
        reads -= 1;
    }
    let mut out: Vec<Range<u64>> = Vec::with_capacity(touching.len());
    for (i, span) in touching.into_iter().enumerate() {
        match out.last_mut() {
            Some(last) if bridged[i - 1] => last.end = span.end,
            _ => out.push(span),
        }
    }
    out
}

/// Finds a sample's bytes in the buffers read for `ranges` (same order).
pub fn slice_of<'a>(ranges: &[Range<u64>], buffers: &'a [bytes::Bytes], offset: u64, size: u64) -> Option<&'a [u8]> {
    let i = ranges.partition_point(|r| r.start <= offset).checked_sub(1)?;
    let start = usize::try_from(offset - ranges[i].start).ok()?;
    buffers.get(i)?.get(start..start.checked_add(usize::try_from(size).ok()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_adjacent_and_near_ranges() {
        let offsets = [100, 110, 130, 1000, 50];
        let sizes = [10, 20, 5, 10, 10];
        let policy = |max_gap, max_reads| ReadPolicy { max_gap, max_reads };
        // 75 bytes wanted: gaps may add up to 18 bytes.
        assert_eq!(coalesce(&offsets, &sizes, policy(0, 100)), [50..60, 100..135, 1000..1010]);
        assert_eq!(
            coalesce(&offsets, &sizes, policy(40, 100)),
            [50..60, 100..135, 1000..1010],
            "40 bytes is over the budget"
        );
        let big = [1000, 1000, 1000, 1000, 1000];
        assert_eq!(
            coalesce(&offsets, &big, policy(40, 100)),
            vec![Range { start: 50, end: 2000 }],
            "overlapping spans"
        );
        // Interleaved audio (10 bytes) between video chunks (100 bytes): the video read bridges
        // the audio, the audio read does not drag in the video...
        let video = coalesce(&[0, 110, 220], &[100, 100, 100], policy(64, 100));
        assert_eq!(video, vec![Range { start: 0, end: 320 }]);
        let audio = coalesce(&[100, 210, 320], &[10, 10, 10], policy(64, 100));
        assert_eq!(audio, [100..110, 210..220, 320..330]);
        // ...unless that would take more reads than allowed.
        let capped = coalesce(&[100, 210, 320, 1000], &[10, 10, 10, 10], policy(64, 2));
        assert_eq!(capped, [100..330, 1000..1010]);
    }

    #[test]
    fn finds_sample_bytes() {
        let ranges = [0..10, 100..110];
        let buffers = [bytes::Bytes::from_static(b"0123456789"), bytes::Bytes::from_static(b"abcdefghij")];
        assert_eq!(slice_of(&ranges, &buffers, 102, 3), Some(&b"cde"[..]));
        assert_eq!(slice_of(&ranges, &buffers, 8, 2), Some(&b"89"[..]));
        assert_eq!(slice_of(&ranges, &buffers, 8, 5), None);
        assert_eq!(slice_of(&ranges, &buffers, 50, 1), None);
    }
}
