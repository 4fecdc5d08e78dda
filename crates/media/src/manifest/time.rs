//! PURE: times and durations as manifests write them (ISO 8601 in UTC, `PT..S` durations).

use std::fmt::Write;

use super::text::push_fixed;
use std::time::SystemTime;

/// Appends an ISO 8601 duration in seconds with millisecond precision (`PT6.006S`).
pub fn push_iso_duration(out: &mut String, secs: f64) {
    out.push_str("PT");
    push_fixed(out, secs, 3);
    out.push('S');
}

/// ISO 8601 with milliseconds in UTC, as `EXT-X-PROGRAM-DATE-TIME` and DASH want it.
pub fn iso_time(t: SystemTime) -> String {
    let mut s = String::with_capacity(24);
    write_iso_time(&mut s, t);
    s
}

/// [`iso_time`] appended to `out`: plain integer formatting, as chrono's `format` parses its pattern on
/// every call (it was most of a live playlist's rendering time).
pub fn write_iso_time(out: &mut String, t: SystemTime) {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::<chrono::Utc>::from(t);
    let (date, time) = (t.date_naive(), t.time());
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second(),
        (time.nanosecond() / 1_000_000).min(999)
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn iso_times_match_chronos_own_formatting() {
        for ms in [0u64, 999, 1_000, 1_800_000_123_456, 951_782_400_000, 4_102_444_799_999] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_millis(ms) + Duration::from_nanos(456_789);
            let chrono = chrono::DateTime::<chrono::Utc>::from(t).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(iso_time(t), chrono, "{ms}");
        }
        assert_eq!(
            iso_time(SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_123_456)),
            "2027-01-15T08:02:03.456Z"
        );
        let iso_duration = |secs| {
            let mut out = String::new();
            push_iso_duration(&mut out, secs);
            out
        };
        assert_eq!(iso_duration(16.02133), "PT16.021S");
        assert_eq!(iso_duration(-1.0), "PT0.000S");
        assert_eq!(iso_duration(7.0), "PT7.000S");
    }
}
