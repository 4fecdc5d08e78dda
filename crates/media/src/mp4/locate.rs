//! Finding the `moov` box of an MP4 with a few small range reads, wherever it sits (front or end of the file).
//!
//! The caller does the reads; [`MoovLocator`] only decides which bytes to read next.

use std::ops::Range;

use super::boxes::{BoxHeader, fourcc_str};
use crate::PackagingError;

/// How many bytes to read when looking at a new place in the file: enough
/// to hold a whole faststart `moov` of a short clip in one go.
pub const PROBE_BYTES: u64 = 64 * 1024;

/// Top-level box types that an MP4 or QuickTime file may start with.
const LEADING_BOXES: &[&[u8; 4]] =
    &[b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"uuid", b"junk", b"styp"];

/// At most this many top-level boxes are walked before giving up.
const MAX_TOP_LEVEL_BOXES: u32 = 1000;

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Read these bytes and [`MoovLocator::feed`] them.
    Read(Range<u64>),
    /// The `moov` box occupies these bytes of the file.
    Found(Range<u64>),
}

/// Walks the top-level boxes of a file of known size, one header at a time.
#[derive(Debug)]
pub struct MoovLocator {
    file_size: u64,
    max_moov: u64,
    pos: u64,
    seen: u32,
}

impl MoovLocator {
    pub fn new(file_size: u64, max_moov: u64) -> Self {
        MoovLocator { file_size, max_moov, pos: 0, seen: 0 }
    }

    /// The first read to make.
    pub fn start(&self) -> Result<Range<u64>, PackagingError> {
        if self.file_size < 8 {
            return Err(PackagingError::NotMp4(format!("the file has {} bytes", self.file_size)));
        }
        Ok(0..PROBE_BYTES.min(self.file_size))
    }

    fn read_from(&self, pos: u64) -> Probe {
        Probe::Read(pos..(pos + PROBE_BYTES).min(self.file_size))
    }

    /// Takes the bytes read at `offset` and says what comes next.
    pub fn feed(&mut self, offset: u64, bytes: &[u8]) -> Result<Probe, PackagingError> {
        loop {
            if self.pos >= self.file_size {
                return Err(PackagingError::NotMp4("no 'moov' box".into()));
            }
            if self.seen >= MAX_TOP_LEVEL_BOXES {
                return Err(PackagingError::NotMp4(format!("no 'moov' box in the first {MAX_TOP_LEVEL_BOXES} boxes")));
            }
            let available = self.pos.checked_sub(offset).and_then(|rel| bytes.get(rel as usize..)).unwrap_or(&[]);
            let header = match BoxHeader::parse(available) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    // Not a whole header in hand: read at the header, unless that is what we just did.
                    let left = self.file_size - self.pos;
                    if offset == self.pos && available.len() as u64 >= left.min(PROBE_BYTES) {
                        return Err(PackagingError::Truncated(format!(
                            "{left} stray bytes at the end instead of a box"
                        )));
                    }
                    return Ok(self.read_from(self.pos));
                }
                Err(e) if self.seen == 0 => return Err(PackagingError::NotMp4(e.to_string())),
                Err(e) => return Err(e),
            };
            if self.seen == 0 && !LEADING_BOXES.contains(&&header.kind) {
                return Err(PackagingError::NotMp4(format!(
                    "it starts with '{}', not 'ftyp' or 'moov'",
                    fourcc_str(header.kind)
                )));
            }
            let size = header.size.unwrap_or(self.file_size - self.pos);
            let end = self.pos.checked_add(size).ok_or_else(|| PackagingError::malformed("box size overflows"))?;
            if end > self.file_size {
                return Err(PackagingError::Truncated(format!(
                    "'{}' at byte {} needs {size} bytes but the file ends {} bytes later",
                    fourcc_str(header.kind),
                    self.pos,
                    self.file_size - self.pos
                )));
            }
            if &header.kind == b"moov" {
                if size > self.max_moov {
                    return Err(PackagingError::TooLarge(format!(
                        "'moov' is {size} bytes, over the {} byte limit",
                        self.max_moov
                    )));
                }
                return Ok(Probe::Found(self.pos..end));
            }
            self.seen += 1;
            self.pos = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], len: usize) -> Vec<u8> {
        let mut v = (len as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.resize(len, 0);
        v
    }

    /// Runs the locator against an in-memory file, counting reads.
    fn locate(file: &[u8]) -> (Result<Range<u64>, PackagingError>, usize) {
        let mut loc = MoovLocator::new(file.len() as u64, 1 << 20);
        let mut range = match loc.start() {
            Ok(r) => r,
            Err(e) => return (Err(e), 0),
        };
        let mut reads = 0;
        loop {
            reads += 1;
            let bytes = &file[range.start as usize..range.end as usize];
            match loc.feed(range.start, bytes) {
                Ok(Probe::Read(r)) => range = r,
                Ok(Probe::Found(r)) => return (Ok(r), reads),
                Err(e) => return (Err(e), reads),
            }
            assert!(reads < 100);
        }
    }

    #[test]
    fn moov_at_the_front_needs_one_read() {
        let file = [bx(b"ftyp", 24), bx(b"moov", 500), bx(b"mdat", 200_000)].concat();
        assert_eq!(locate(&file), (Ok(24..524), 1));
    }

    #[test]
    fn moov_at_the_end_skips_the_media_data() {
        let file = [bx(b"ftyp", 24), bx(b"free", 8), bx(b"mdat", 500_000), bx(b"moov", 700)].concat();
        let (found, reads) = locate(&file);
        assert_eq!(found, Ok(500_032..500_732));
        assert_eq!(reads, 2);
    }

    #[test]
    fn garbage_truncation_and_limits() {
        assert!(matches!(locate(b"hello, this is not a video file at all").0, Err(PackagingError::NotMp4(_))));
        assert!(matches!(locate(&[0u8; 4]).0, Err(PackagingError::NotMp4(_))));
        let truncated = [bx(b"ftyp", 24), bx(b"mdat", 500_000)].concat();
        assert!(matches!(locate(&truncated[..100_000]).0, Err(PackagingError::Truncated(_))));
        let no_moov = [bx(b"ftyp", 24), bx(b"mdat", 1000)].concat();
        assert!(matches!(locate(&no_moov).0, Err(PackagingError::NotMp4(_))));
        let big = [bx(b"ftyp", 24), bx(b"moov", 2 << 20)].concat();
        assert!(matches!(locate(&big).0, Err(PackagingError::TooLarge(_))));
    }
}
