//! Which byte ranges to read for a set of samples: adjacent (and nearly adjacent) samples become one read.

use std::ops::Range;

/// Byte ranges covering every `(offset, size)` sample, sorted, with ranges
/// separated by at most `max_gap` bytes merged into one.
pub fn coalesce(offsets: &[u64], sizes: &[u32], max_gap: u64) -> Vec<Range<u64>> {
    let mut spans: Vec<Range<u64>> =
        offsets.iter().zip(sizes).filter(|(_, s)| **s > 0).map(|(&o, &s)| o..o + u64::from(s)).collect();
    spans.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for span in spans {
        match out.last_mut() {
            Some(last) if span.start <= last.end.saturating_add(max_gap) => last.end = last.end.max(span.end),
            _ => out.push(span),
        }
    }
    out
}

/// Finds a sample's bytes in the buffers read for `ranges` (same order).
pub fn slice_of<'a>(ranges: &[Range<u64>], buffers: &'a [bytes::Bytes], offset: u64, size: u32) -> Option<&'a [u8]> {
    let i = ranges.partition_point(|r| r.start <= offset).checked_sub(1)?;
    let start = (offset - ranges[i].start) as usize;
    buffers.get(i)?.get(start..start + size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_adjacent_and_near_ranges() {
        let offsets = [100, 110, 130, 1000, 50];
        let sizes = [10, 20, 5, 10, 10];
        assert_eq!(coalesce(&offsets, &sizes, 0), [50..60, 100..135, 1000..1010]);
        assert_eq!(coalesce(&offsets, &sizes, 40), [50..135, 1000..1010]);
        assert_eq!(coalesce(&offsets, &sizes, 10_000), vec![Range { start: 50, end: 1010 }]);
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
