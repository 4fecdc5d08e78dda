//! PURE: live HLS rendering from a channel snapshot: the master playlist and sliding-window (or DVR)
//! media playlists with blocking-reload support, discontinuities, program date-times and gaps.

use std::fmt::Write;
use std::time::SystemTime;

use super::model::{ChannelSnapshot, Container, LiveRendition, Status, WindowRequest};
use crate::packaging::hls::quoted;
use crate::packaging::mp4::TrackKind;

const VERSION: u32 = 6;
const AUDIO_GROUP: &str = "audio";

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

/// The renditions a master playlist or MPD offers: every video rendition with media, and audio from
/// audio-only variants (or, when there are none, the first muxed audio track).
pub fn offered(snap: &ChannelSnapshot) -> (Vec<usize>, Vec<usize>) {
    let has_media = |r: usize| snap.edge_of(r).is_some();
    let of_kind =
        |kind: TrackKind| (0..snap.renditions.len()).filter(move |&r| snap.renditions[r].kind == kind && has_media(r));
    let video: Vec<usize> = of_kind(TrackKind::Video).collect();
    let mut audio: Vec<usize> = of_kind(TrackKind::Audio).filter(|&r| !snap.renditions[r].muxed).collect();
    if audio.is_empty() {
        audio.extend(of_kind(TrackKind::Audio).take(1));
    }
    (video, audio)
}

fn codecs_of(r: &LiveRendition) -> Option<&str> {
    r.codecs.as_deref()
}

/// `query` (`?start=...`, or empty) is carried into the media playlist URIs.
pub fn master(snap: &ChannelSnapshot, query: &str) -> String {
    let mut m = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let (video, audio) = offered(snap);
    let r = |i: usize| &snap.renditions[i];
    if snap.container == Some(Container::Ts) || video.is_empty() {
        // TS variants carry their own audio; audio-only channels list audio as variants.
        let all: Vec<usize> = if video.is_empty() { audio.clone() } else { video.clone() };
        for i in all {
            let _ = write!(
                m,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
                r(i).peak_bps.max(1),
                r(i).average_bps.max(1)
            );
            if let Some(c) = codecs_of(r(i)) {
                let _ = write!(m, ",CODECS=\"{c}\"");
            }
            let _ = writeln!(m, "\n{}.m3u8{query}", r(i).id);
        }
        return m;
    }
    for (n, &a) in audio.iter().enumerate() {
        let _ = write!(m, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\"", quoted(&r(a).name));
        if let Some(lang) = &r(a).language {
            let _ = write!(m, ",LANGUAGE=\"{}\"", quoted(lang));
        }
        let _ = write!(m, ",DEFAULT={},AUTOSELECT=YES", if n == 0 { "YES" } else { "NO" });
        if let Some(ch) = r(a).channels {
            let _ = write!(m, ",CHANNELS=\"{ch}\"");
        }
        let _ = writeln!(m, ",URI=\"{}.m3u8{query}\"", r(a).id);
    }
    let audio_peak = audio.iter().map(|&a| r(a).peak_bps).max().unwrap_or(0);
    let audio_average = audio.iter().map(|&a| r(a).average_bps).max().unwrap_or(0);
    for &v in &video {
        let _ = write!(
            m,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
            (r(v).peak_bps + audio_peak).max(1),
            (r(v).average_bps + audio_average).max(1)
        );
        let mut codecs: Vec<&str> = codecs_of(r(v)).into_iter().collect();
        for &a in &audio {
            if let Some(c) = codecs_of(r(a))
                && !codecs.contains(&c)
            {
                codecs.push(c);
            }
        }
        if !codecs.is_empty() {
            let _ = write!(m, ",CODECS=\"{}\"", codecs.join(","));
        }
        if let Some((w, h)) = r(v).resolution {
            let _ = write!(m, ",RESOLUTION={w}x{h}");
        }
        if !audio.is_empty() {
            let _ = write!(m, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        let _ = writeln!(m, "\n{}.m3u8{query}", r(v).id);
    }
    m
}

/// The media playlist of rendition `r`; `None` while it has no segment in the requested window.
pub fn media(snap: &ChannelSnapshot, r: usize, req: WindowRequest) -> Option<String> {
    let (range, closed) = snap.window(r, req);
    if range.is_empty() {
        return None;
    }
    let rendition = &snap.renditions[r];
    let container = snap.container?;
    let first = &snap.slots[range.start];
    let dvr_range = req.start.is_some() || req.end.is_some();
    let mut m = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n", snap.settings.target_secs());
    if !closed {
        m.push_str("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n");
    }
    let _ = writeln!(m, "#EXT-X-MEDIA-SEQUENCE:{}", first.msn);
    let _ = writeln!(m, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", snap.discontinuity_sequence(range.start));
    if dvr_range && closed {
        m.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    m.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let timescale = f64::from(rendition.timescale.max(1));
    let mut epoch = None;
    for slot in &snap.slots[range] {
        if slot.discontinuity {
            m.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if container == Container::Fmp4 && epoch != Some(slot.epoch) {
            let _ = writeln!(m, "#EXT-X-MAP:URI=\"{}/{}/init.mp4\"", rendition.id, slot.epoch);
        }
        epoch = Some(slot.epoch);
        m.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        write_iso_time(&mut m, slot.pdt);
        m.push('\n');
        let duration = match slot.part(r) {
            Some(p) => p.duration as f64 / timescale,
            None => slot.duration,
        };
        let _ = writeln!(m, "#EXTINF:{duration:.6},");
        if slot.part(r).is_none() {
            m.push_str("#EXT-X-GAP\n");
        }
        let _ = writeln!(m, "{}/{}/{}.{}", rendition.id, slot.epoch, slot.msn, container.extension());
    }
    if closed {
        m.push_str("#EXT-X-ENDLIST\n");
    }
    Some(m)
}

/// How long a blocked `_HLS_msn` request may wait before 503: about three target durations,
/// well inside CloudFront's 30 s origin timeout.
pub fn blocking_timeout(snap: &ChannelSnapshot) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(snap.settings.target_secs() * 3).clamp(3, 20))
}

/// Whether `_HLS_msn` asks for something too far ahead to wait for (RFC 8216bis: more than two ahead).
pub fn too_far_ahead(snap: &ChannelSnapshot, msn: u64) -> bool {
    match snap.last_msn() {
        Some(last) => snap.status != Status::Ended && msn > last + 2,
        None => msn > 2,
    }
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
    }
}
