//! PURE: the few text primitives the writers use per segment, without `fmt`'s machinery: decimal
//! integers, fixed-point seconds and attribute-safe text appended straight to the buffer.

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut String, n: u64) {
    let _ = write_u64(out, n);
}

/// Writes `n` in decimal to any writer (a `String`, a `Formatter`) without `fmt`'s machinery.
pub(crate) fn write_u64<W: std::fmt::Write + ?Sized>(out: &mut W, n: u64) -> std::fmt::Result {
    let mut digits = [0u8; 20];
    // Only ASCII digits were written.
    out.write_str(std::str::from_utf8(estuary_http::decimal(n, &mut digits)).unwrap_or_default())
}

/// Appends non-negative `value` with exactly `decimals` (at most 9) decimals, rounded (`6.006000`).
pub(crate) fn push_fixed(out: &mut String, value: f64, decimals: u32) {
    let unit = 10u64.pow(decimals.min(9));
    let scaled = (value.max(0.0) * unit as f64).round() as u64;
    push_u64(out, scaled / unit);
    if unit == 1 {
        return;
    }
    out.push('.');
    let fraction = scaled % unit;
    let mut digit = unit / 10;
    while digit > 1 && fraction < digit {
        out.push('0');
        digit /= 10;
    }
    push_u64(out, fraction);
}

/// Appends `s` keeping only characters that need no escaping in an XML attribute.
pub(crate) fn push_attr(out: &mut String, s: &str) {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '$' | '/' | ':' | ',');
    if s.chars().all(safe) {
        out.push_str(s);
    } else {
        out.extend(s.chars().filter(|&c| safe(c)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_fmt() {
        for n in [0u64, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for secs in [0.0, 6.006, 5.0, 0.04, 2.000_000_4, 1.999_999_6, 6.037_333_333, 123_456.5, 0.000_001] {
            let mut out = String::new();
            push_fixed(&mut out, secs, 6);
            assert_eq!(out, format!("{secs:.6}"), "{secs}");
            let mut out = String::new();
            push_fixed(&mut out, secs, 3);
            assert_eq!(out, format!("{secs:.3}"), "{secs}");
        }
        let mut out = String::new();
        push_attr(&mut out, "avc1.64001f\"><x");
        assert_eq!(out, "avc1.64001fx");
    }
}
