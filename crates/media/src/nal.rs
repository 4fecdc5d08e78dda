//! PURE: reading H.264/HEVC NAL units: emulation prevention (the RBSP inside an escaped NAL unit,
//! and where in the escaped unit a length of RBSP ends), the RBSP's bits and Exp-Golomb codes, and
//! the H.264 scaling lists parameter sets carry.

/// `nal` (escaped) without its emulation prevention bytes (each 0x03 after two zeros), at most
/// `limit` bytes of it.
pub(crate) fn unescape(nal: &[u8], limit: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(limit.min(nal.len()));
    let mut zeros = 0;
    for &b in nal {
        if raw.len() >= limit {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        raw.push(b);
    }
    raw
}

/// How many bytes of `nal` (escaped) hold its first `raw` bytes once unescaped.
pub(crate) fn escaped_len(nal: &[u8], raw: usize) -> Option<usize> {
    let (mut seen, mut zeros) = (0, 0);
    for (i, &b) in nal.iter().enumerate() {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        seen += 1;
        if seen == raw {
            return Some(i + 1);
        }
    }
    None
}

/// A bit reader over an RBSP (emulation prevention removed).
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn flag(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    pub(crate) fn u(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | u32::from(self.flag()?)))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    pub(crate) fn ue(&mut self) -> Option<u32> {
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

    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 { k.div_ceil(2) as i32 } else { -((k / 2) as i32) })
    }
}

/// The largest Exp-Golomb value read.
const MAX_FIELD: u64 = 1 << 20;

/// Bits to write a value below `n` (`Ceil(Log2(n))`).
pub(crate) fn ceil_log2(n: u32) -> u32 {
    if n <= 1 { 0 } else { 32 - (n - 1).leading_zeros() }
}

/// Skips an H.264 `scaling_list()` of `size` coefficients.
pub(crate) fn skip_scaling_list(b: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()?).rem_euclid(256);
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_dropped_and_found() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3], usize::MAX), [0, 0, 1, 0, 0]);
        assert_eq!(unescape(&[1, 0, 0, 3, 1, 5], 10), [1, 0, 0, 1, 5]);
        assert_eq!(unescape(&[1, 0, 0, 3, 1, 5], 2), [1, 0]);
        assert_eq!((escaped_len(&[1, 0, 0, 3, 1, 5], 3), escaped_len(&[1, 0, 0, 3, 1, 5], 4)), (Some(3), Some(5)));
        assert_eq!(escaped_len(&[1, 2], 3), None);
    }

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
}
