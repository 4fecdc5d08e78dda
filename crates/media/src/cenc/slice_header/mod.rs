//! PURE: how long a slice's header is (H.264 and HEVC), from the track's parameter sets, so that
//! `cbcs` leaves the whole of it clear, as decoders that parse a slice before they decrypt it need
//! (HEVC's entry points, with wavefronts or tiles, often take it past the usual 32 bytes).
//!
//! Parameter sets come from the sample entry (`avcC`, `hvcC`); a slice naming one it lacks, or
//! syntax this reader does not follow (slice groups, MVC, range extensions), gives `None`, and
//! the caller keeps its fixed clear lead.

mod avc;
mod hevc;

use crate::nal::{escaped_len, unescape};

/// A bit reader over an RBSP (emulation prevention removed).
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    pub(super) fn flag(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    pub(super) fn u(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | u32::from(self.flag()?)))
    }

    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    pub(super) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.u(zeros)?;
        let value = (1u64 << zeros) - 1 + u64::from(rest);
        // No header field this reader takes is near this; past it the data is not a header, and
        // every sum and product of fields stays far from overflowing.
        (value <= MAX_FIELD).then_some(value as u32)
    }

    pub(super) fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 { k.div_ceil(2) as i32 } else { -((k / 2) as i32) })
    }
}

/// The largest Exp-Golomb value read.
const MAX_FIELD: u64 = 1 << 20;

/// Bits to write a value below `n` (`Ceil(Log2(n))`).
pub(super) fn ceil_log2(n: u32) -> u32 {
    if n <= 1 { 0 } else { 32 - (n - 1).leading_zeros() }
}

/// How much of a NAL unit is read for its slice header, in turn: nearly every header fits the
/// first; past the last, a header is not believed.
const READS: [usize; 3] = [64, 512, 4096];
/// Most of a parameter set read.
const MAX_HEADER: usize = 4096;

/// A track's parameter sets, read for their slices' headers.
#[derive(Debug, Clone, Default)]
pub enum SliceHeaders {
    Avc(avc::Sets),
    Hevc(hevc::Sets),
    #[default]
    Unknown,
}

impl SliceHeaders {
    /// From a track's `stsd` box (header included): its H.264 or HEVC configuration's parameter
    /// sets; `Unknown` for anything else.
    pub fn of_stsd(stsd: &[u8]) -> SliceHeaders {
        let entry = || {
            let payload = crate::mp4::boxes::boxes(stsd).next()?.ok()?.payload;
            let (kind, children) = crate::codec::entry_boxes(payload).ok()?;
            let config = |name: &[u8; 4]| crate::mp4::boxes::find(children, name).ok().flatten().map(|b| b.payload);
            match &kind {
                b"avc1" | b"avc3" => Some(SliceHeaders::of_config(false, config(b"avcC")?)),
                b"hvc1" | b"hev1" => Some(SliceHeaders::of_config(true, config(b"hvcC")?)),
                _ => None,
            }
        };
        entry().unwrap_or_default()
    }

    /// From the sample entry's configuration record (`avcC` or `hvcC` payload).
    pub fn of_config(hevc: bool, config: &[u8]) -> SliceHeaders {
        let sets = match hevc {
            true => hevc::Sets::of_hvcc(config).map(SliceHeaders::Hevc),
            false => avc::Sets::of_avcc(config).map(SliceHeaders::Avc),
        };
        sets.unwrap_or_default()
    }

    /// How many bytes of slice NAL unit `nal` (escaped, its NAL header included) its header
    /// takes, up to the byte its last bit is in; `None` when it cannot be told.
    pub fn header_len(&self, nal: &[u8]) -> Option<usize> {
        if matches!(self, SliceHeaders::Unknown) {
            return None;
        }
        for limit in READS {
            let raw = unescape(nal, limit);
            let bits = match self {
                SliceHeaders::Avc(sets) => sets.header_bits(&raw),
                SliceHeaders::Hevc(sets) => sets.header_bits(&raw),
                SliceHeaders::Unknown => None,
            };
            match bits {
                Some(bits) => return escaped_len(nal, bits.div_ceil(8)),
                // Read further only when the header may have run past what was read.
                None if raw.len() < limit => return None,
                None => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_and_escapes() {
        // 1, 010, 011, 00100, 00111: 0, 1, 2, 3, 6.
        let data = [0b1010_0110, 0b0100_0011, 0b1000_0000];
        let mut b = Bits::new(&data);
        let read: Vec<u32> = (0..5).map(|_| b.ue().unwrap()).collect();
        assert_eq!(read, [0, 1, 2, 3, 6]);
        let mut b = Bits::new(&[0b0010_0000]);
        assert_eq!(b.se(), Some(2));
        assert_eq!(Bits::new(&[0, 0, 0, 0, 0]).ue(), None, "more than 31 zeros");
        assert_eq!((ceil_log2(1), ceil_log2(2), ceil_log2(3), ceil_log2(4), ceil_log2(5)), (0, 1, 2, 2, 3));
        // 2^21 - 1 needs 21 zeros: over the largest field.
        let mut b = Bits::new(&[0, 0, 0b0000_0100, 0, 0, 0]);
        assert_eq!(b.ue(), None);
    }

    /// Hostile parameter sets and slices: never a panic, never a length past the NAL unit.
    #[test]
    fn any_bytes_are_read_without_panicking() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let len = (next() % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let hevc = round % 2 == 0;
            // A configuration with one SPS and one PPS of random bytes after plausible headers.
            let config = match hevc {
                true => {
                    let mut c = vec![1; 22];
                    c.extend_from_slice(&[2, 33, 0, 1, 0, len as u8 + 2, 0x42, 0x01]);
                    c.extend_from_slice(&bytes);
                    c.extend_from_slice(&[34, 0, 1, 0, 4, 0x44, 0x01, 0xC0, next() as u8]);
                    c
                }
                false => {
                    let mut c = vec![1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, len as u8 + 1, 0x67];
                    c.extend_from_slice(&bytes);
                    c.extend_from_slice(&[1, 0, 3, 0x68, 0xEE, next() as u8]);
                    c
                }
            };
            let headers = SliceHeaders::of_config(hevc, &config);
            let nal: Vec<u8> = if hevc { vec![0x26, 0x01] } else { vec![0x65] }
                .into_iter()
                .chain((0..(next() % 200) as usize).map(|_| next() as u8))
                .collect();
            if let Some(header) = headers.header_len(&nal) {
                assert!(header <= nal.len());
            }
            let _ = SliceHeaders::of_config(hevc, &bytes);
        }
    }
}
