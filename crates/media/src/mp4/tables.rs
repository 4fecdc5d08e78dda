//! `SampleTable`: our own compact per-sample index (times, sizes, offsets, sync), expanded once from the MP4 sample tables.
//!
//! The `mp4` crate parses the boxes; its per-sample lookups rescan the
//! tables, so we expand them here once into flat arrays, checking as we go
//! that no count makes us allocate more than the file could describe.

use std::ops::Range;

use crate::PackagingError;

/// Every sample of one track, in decode order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleTable {
    /// Decode time of each sample, in the track timescale.
    pub dts: Vec<u64>,
    pub durations: Vec<u32>,
    /// Composition offsets (`pts - dts`); empty when the track has none.
    pub cts: Vec<i32>,
    pub sizes: Vec<u32>,
    /// Byte offset of each sample in the file.
    pub offsets: Vec<u64>,
    /// Indices of sync samples, ascending; `None` when every sample is one.
    pub sync: Option<Vec<u32>>,
}

/// The sample tables of one `stbl`, as parsed (not yet expanded).
#[derive(Debug, Clone, Default)]
pub struct RawTables {
    /// `stts`: (sample count, sample delta) runs.
    pub stts: Vec<(u32, u32)>,
    /// `ctts`: (sample count, composition offset) runs.
    pub ctts: Option<Vec<(u32, i32)>>,
    /// `stss`: 1-based sync sample numbers.
    pub stss: Option<Vec<u32>>,
    pub stsc: Vec<StscRun>,
    /// `stsz`: a constant size (non-zero), or one size per sample.
    pub sample_size: u32,
    pub sample_count: u32,
    pub sample_sizes: Vec<u32>,
    /// `stco` or `co64`.
    pub chunk_offsets: Vec<u64>,
}

/// One `stsc` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StscRun {
    pub first_chunk: u32,
    pub samples_per_chunk: u32,
    pub description: u32,
}

impl SampleTable {
    /// Expands the tables, checking that they agree with each other and with a file of `file_size` bytes.
    pub fn expand(t: &RawTables, file_size: u64, max_samples: u32) -> Result<SampleTable, PackagingError> {
        let count = t.sample_count;
        if count > max_samples {
            return Err(PackagingError::TooLarge(format!(
                "{count} samples in one track, over the limit of {max_samples}"
            )));
        }
        let n = count as usize;
        let sizes = if t.sample_size != 0 {
            vec![t.sample_size; n]
        } else if t.sample_sizes.len() == n {
            t.sample_sizes.clone()
        } else {
            return Err(PackagingError::malformed("stsz lists fewer sizes than samples"));
        };

        let mut dts = Vec::with_capacity(n);
        let mut durations = Vec::with_capacity(n);
        let mut time = 0u64;
        for &(count, delta) in &t.stts {
            if (dts.len() as u64) + u64::from(count) > n as u64 {
                return Err(PackagingError::malformed(format!("stts describes more samples than the {n} in stsz")));
            }
            for _ in 0..count {
                dts.push(time);
                durations.push(delta);
                time = time
                    .checked_add(u64::from(delta))
                    .ok_or_else(|| PackagingError::malformed("stts time overflows"))?;
            }
        }
        if dts.len() != n {
            return Err(PackagingError::malformed(format!("stts describes {} samples, stsz {n}", dts.len())));
        }

        let mut cts = Vec::new();
        if let Some(ctts) = &t.ctts {
            cts.reserve(n);
            'entries: for &(count, offset) in ctts {
                for _ in 0..count {
                    if cts.len() == n {
                        break 'entries;
                    }
                    cts.push(offset);
                }
            }
            // Some muxers leave the last samples out of ctts; they keep the last offset.
            let last = cts.last().copied().unwrap_or(0);
            cts.resize(n, last);
        }

        let offsets = chunk_layout(t, &sizes, file_size)?;

        let sync = match &t.stss {
            None => None,
            Some(stss) => {
                let mut prev = 0u32;
                let mut sync = Vec::with_capacity(stss.len());
                for &s in stss {
                    if s == 0 || s as usize > n || s <= prev {
                        return Err(PackagingError::malformed(format!("stss entry {s} is out of order or range")));
                    }
                    sync.push(s - 1);
                    prev = s;
                }
                Some(sync)
            }
        };
        Ok(SampleTable { dts, durations, cts, sizes, offsets, sync })
    }

    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// End of the last sample's decode span.
    pub fn end_time(&self) -> u64 {
        match (self.dts.last(), self.durations.last()) {
            (Some(&d), Some(&dur)) => d + u64::from(dur),
            _ => 0,
        }
    }

    pub fn is_sync(&self, i: usize) -> bool {
        match &self.sync {
            None => true,
            Some(s) => s.binary_search(&(i as u32)).is_ok(),
        }
    }

    /// Composition offset of sample `i` (0 without ctts).
    pub fn cts_offset(&self, i: usize) -> i32 {
        self.cts.get(i).copied().unwrap_or(0)
    }

    /// Sum of the sizes of `range`'s samples.
    pub fn bytes_in(&self, range: Range<usize>) -> u64 {
        self.sizes[range].iter().map(|&s| u64::from(s)).sum()
    }

    /// Index of the first sample whose decode time is at or after `time`.
    pub fn first_at_or_after(&self, time: u64) -> usize {
        self.dts.partition_point(|&d| d < time)
    }

    /// Bytes of memory the table holds, for cache weighing.
    pub fn memory_bytes(&self) -> usize {
        self.dts.len() * 8
            + self.durations.len() * 4
            + self.cts.len() * 4
            + self.sizes.len() * 4
            + self.offsets.len() * 8
            + self.sync.as_ref().map_or(0, |s| s.len() * 4)
    }
}

/// The file offset of every sample, from stsc + stco/co64 + sizes.
fn chunk_layout(t: &RawTables, sizes: &[u32], file_size: u64) -> Result<Vec<u64>, PackagingError> {
    let n = sizes.len();
    let chunks = t.chunk_offsets.len();
    let entries = &t.stsc;
    let mut offsets = Vec::with_capacity(n);
    for (i, e) in entries.iter().enumerate() {
        let first = e.first_chunk as usize;
        let next_first = entries.get(i + 1).map_or(chunks + 1, |n| n.first_chunk as usize);
        if first == 0 || next_first <= first {
            return Err(PackagingError::malformed("stsc chunk numbers are out of order"));
        }
        if e.description != 1 {
            return Err(PackagingError::malformed("more than one sample description in a track"));
        }
        for chunk in first..next_first.min(chunks + 1) {
            let mut pos = t.chunk_offsets[chunk - 1];
            for _ in 0..e.samples_per_chunk {
                if offsets.len() == n {
                    break;
                }
                let size = u64::from(sizes[offsets.len()]);
                let end = pos.checked_add(size).ok_or_else(|| PackagingError::malformed("sample offset overflows"))?;
                if end > file_size {
                    return Err(PackagingError::Truncated(format!(
                        "sample data ends at byte {end} but the file has {file_size}"
                    )));
                }
                offsets.push(pos);
                pos = end;
            }
        }
    }
    if offsets.len() != n {
        return Err(PackagingError::malformed(format!("the chunk tables place {} of {n} samples", offsets.len())));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> RawTables {
        RawTables {
            stts: vec![(5, 512)],
            ctts: Some(vec![(1, 1024), (1, -512)]),
            stss: Some(vec![1, 4]),
            stsc: vec![
                StscRun { first_chunk: 1, samples_per_chunk: 2, description: 1 },
                StscRun { first_chunk: 2, samples_per_chunk: 3, description: 1 },
            ],
            sample_size: 0,
            sample_count: 5,
            sample_sizes: vec![10, 20, 30, 40, 50],
            chunk_offsets: vec![100, 1000],
        }
    }

    #[test]
    fn expands_tables() {
        let t = SampleTable::expand(&tables(), 10_000, 100).unwrap();
        assert_eq!(t.dts, [0, 512, 1024, 1536, 2048]);
        assert_eq!(t.cts, [1024, -512, -512, -512, -512]);
        assert_eq!(t.offsets, [100, 110, 1000, 1030, 1070]);
        assert_eq!(t.sync, Some(vec![0, 3]));
        assert!(t.is_sync(3) && !t.is_sync(2));
        assert_eq!(t.end_time(), 2560);
        assert_eq!(t.first_at_or_after(1000), 2);
        assert_eq!(t.bytes_in(1..3), 50);
    }

    #[test]
    fn refuses_inconsistent_tables() {
        assert!(matches!(SampleTable::expand(&tables(), 1050, 100), Err(PackagingError::Truncated(_))));
        assert!(matches!(SampleTable::expand(&tables(), 10_000, 4), Err(PackagingError::TooLarge(_))));
        let t = RawTables { stts: vec![(u32::MAX, 1)], ..tables() };
        assert!(SampleTable::expand(&t, 10_000, 100).is_err());
        let t = RawTables { chunk_offsets: vec![100], ..tables() };
        assert!(SampleTable::expand(&t, 10_000, 100).is_err());
        let t = RawTables { stss: Some(vec![4, 1]), ..tables() };
        assert!(SampleTable::expand(&t, 10_000, 100).is_err());
        let t = RawTables { sample_size: 7, sample_sizes: vec![], sample_count: u32::MAX, ..tables() };
        assert!(matches!(SampleTable::expand(&t, 10_000, 100), Err(PackagingError::TooLarge(_))));
    }
}
