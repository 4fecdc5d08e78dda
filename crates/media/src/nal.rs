//! PURE: emulation prevention of H.264/HEVC NAL units: the RBSP inside an escaped NAL unit, and
//! where in the escaped unit a length of RBSP ends.

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
}
