//! PURE: how long a slice's header is (H.264 and HEVC), from the track's parameter sets, so that
//! `cbcs` leaves the whole of it clear, as decoders that parse a slice before they decrypt it need
//! (HEVC's entry points, with wavefronts or tiles, often take it past the usual 32 bytes).
//!
//! Parameter sets come from the sample entry (`avcC`, `hvcC`); a slice naming one it lacks, or
//! syntax this reader does not follow (slice groups, MVC, range extensions), gives `None`, and
//! the caller keeps its fixed clear lead.

mod avc;
mod hevc;

pub(super) use crate::nal::{Bits, ceil_log2};
use crate::nal::{escaped_len, unescape};

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
