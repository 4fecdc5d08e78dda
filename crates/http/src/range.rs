//! `Range: bytes=…` parsing against a known length (RFC 9110 §14).

use std::ops::Range;

/// How to answer a request, given its `Range` header and the representation length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable range: send the whole representation (200).
    Full,
    /// Send these bytes (206), end exclusive.
    Partial(Range<u64>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Resolves a `Range` header value against a representation of `len` bytes.
///
/// A syntactically invalid header, another unit, or several ranges are
/// ignored (a full 200 is always a valid answer); a single range that lies
/// wholly past the end is unsatisfiable.
pub fn resolve(header: Option<&str>, len: u64) -> RangeOutcome {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if len == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Partial(len.saturating_sub(n)..len),
            None => RangeOutcome::Full,
        },
        // bytes=A-: from A to the end.
        (false, true) => match parse(first) {
            Some(a) if a < len => RangeOutcome::Partial(a..len),
            Some(_) => RangeOutcome::Unsatisfiable,
            None => RangeOutcome::Full,
        },
        // bytes=A-B, inclusive.
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a > b => RangeOutcome::Full,
            (Some(a), Some(_)) if a >= len => RangeOutcome::Unsatisfiable,
            (Some(a), Some(b)) => RangeOutcome::Partial(a..b.saturating_add(1).min(len)),
            _ => RangeOutcome::Full,
        },
        (true, true) => RangeOutcome::Full,
    }
}

/// The `Content-Range` value of a 206.
pub fn content_range(range: &Range<u64>, len: u64) -> String {
    format!("bytes {}-{}/{len}", range.start, range.end - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    #[test]
    fn ranges() {
        assert_eq!(resolve(None, 100), Full);
        assert_eq!(resolve(Some("bytes=0-9"), 100), Partial(0..10));
        assert_eq!(resolve(Some("bytes=90-"), 100), Partial(90..100));
        assert_eq!(resolve(Some("bytes=-10"), 100), Partial(90..100));
        assert_eq!(resolve(Some("bytes=-1000"), 100), Partial(0..100));
        assert_eq!(resolve(Some("bytes=50-5000"), 100), Partial(50..100));
        assert_eq!(resolve(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=5-1"), 100), Full);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), 100), Full);
        assert_eq!(resolve(Some("items=0-1"), 100), Full);
        assert_eq!(resolve(Some("bytes=abc"), 100), Full);
        assert_eq!(resolve(Some("bytes=0-18446744073709551615"), 100), Partial(0..100));
        assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
    }
}
