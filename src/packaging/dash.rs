//! DASH rendering for VOD presentations: a static MPD (isoff-live profile) with `SegmentTemplate` + `SegmentTimeline`.
//!
//! It addresses the same init and media segment URLs as the HLS playlists,
//! so a CDN caches one copy of each segment for both.

use std::fmt::Write;

use crate::packaging::codec::MediaParams;
use crate::packaging::hls::FIRST_SEGMENT_NUMBER;
use crate::packaging::presentation::{Presentation, Rendition};

/// ISO 8601 duration in seconds with millisecond precision.
pub fn iso_duration(secs: f64) -> String {
    format!("PT{:.3}S", secs.max(0.0))
}

/// Attribute-safe text: only characters that need no escaping.
fn attr(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `<SegmentTimeline>` with runs of equal durations folded into `@r`.
pub fn write_timeline(m: &mut String, times: &[u64], indent: &str) {
    let _ = writeln!(m, "{indent}<SegmentTimeline>");
    let mut i = 0;
    while i + 1 < times.len() {
        let d = times[i + 1] - times[i];
        let mut r = 0;
        while i + r + 2 < times.len() && times[i + r + 2] - times[i + r + 1] == d {
            r += 1;
        }
        let t = if i == 0 { format!(" t=\"{}\"", times[0]) } else { String::new() };
        let rep = if r > 0 { format!(" r=\"{r}\"") } else { String::new() };
        let _ = writeln!(m, "{indent}  <S{t} d=\"{d}\"{rep}/>");
        i += r + 1;
    }
    let _ = writeln!(m, "{indent}</SegmentTimeline>");
}

fn write_representation(m: &mut String, r: &Rendition) {
    let _ =
        write!(m, "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"", r.id, r.peak_bps, attr(&r.codecs));
    match r.params {
        MediaParams::Video { .. } => {
            if let Some((w, h)) = r.resolution {
                let _ = write!(m, " width=\"{w}\" height=\"{h}\"");
            }
            if let Some((num, den)) = r.frame_rate {
                let rate = if den == 1 { num.to_string() } else { format!("{num}/{den}") };
                let _ = write!(m, " frameRate=\"{rate}\"");
            }
            let _ = writeln!(m, ">");
        }
        MediaParams::Audio { channels, sample_rate } => {
            let _ = writeln!(m, " audioSamplingRate=\"{sample_rate}\">");
            let _ = writeln!(
                m,
                "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{channels}\"/>"
            );
        }
    }
    let _ = writeln!(
        m,
        "        <SegmentTemplate timescale=\"{}\" initialization=\"$RepresentationID$/init.mp4\" media=\"$RepresentationID$/$Number$.m4s\" startNumber=\"{FIRST_SEGMENT_NUMBER}\">",
        r.timescale
    );
    write_timeline(m, &r.times, "          ");
    let _ = writeln!(m, "        </SegmentTemplate>\n      </Representation>");
}

/// Groups renditions into adaptation sets: one per codec family (video) or per language and codec (audio).
fn adaptation_sets(renditions: &[Rendition]) -> Vec<Vec<&Rendition>> {
    let mut sets: Vec<Vec<&Rendition>> = Vec::new();
    for r in renditions {
        let family = |x: &Rendition| (x.codecs.split('.').next().unwrap_or("").to_owned(), x.language.clone());
        match sets.iter_mut().find(|s| family(s[0]) == family(r)) {
            Some(set) => set.push(r),
            None => sets.push(vec![r]),
        }
    }
    sets
}

pub fn static_mpd(p: &Presentation) -> String {
    let mut m = String::with_capacity(2048);
    let _ = writeln!(m, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        m,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" \
         mediaPresentationDuration=\"{}\" maxSegmentDuration=\"{}\" minBufferTime=\"{}\">",
        iso_duration(p.duration_secs),
        iso_duration(p.max_segment_secs),
        iso_duration(p.max_segment_secs.ceil())
    );
    let _ = writeln!(m, "  <Period id=\"0\" start=\"PT0S\">");
    let mut set_id = 0;
    for set in adaptation_sets(&p.video) {
        let max_w = set.iter().filter_map(|r| r.resolution).map(|(w, _)| w).max().unwrap_or(0);
        let max_h = set.iter().filter_map(|r| r.resolution).map(|(_, h)| h).max().unwrap_or(0);
        let _ = write!(
            m,
            "    <AdaptationSet id=\"{set_id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{max_w}\" maxHeight=\"{max_h}\""
        );
        if max_w > 0 && max_h > 0 {
            let g = gcd(max_w, max_h);
            let _ = write!(m, " par=\"{}:{}\"", max_w / g, max_h / g);
        }
        let _ = writeln!(m, ">");
        set.iter().for_each(|r| write_representation(&mut m, r));
        let _ = writeln!(m, "    </AdaptationSet>");
        set_id += 1;
    }
    for set in adaptation_sets(&p.audio) {
        let _ = write!(
            m,
            "    <AdaptationSet id=\"{set_id}\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\""
        );
        if let Some(lang) = &set[0].language {
            let _ = write!(m, " lang=\"{}\"", attr(lang));
        }
        let _ = writeln!(m, ">");
        set.iter().for_each(|r| write_representation(&mut m, r));
        let _ = writeln!(m, "    </AdaptationSet>");
        set_id += 1;
    }
    let _ = writeln!(m, "  </Period>\n</MPD>");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_fold_equal_durations() {
        let mut m = String::new();
        write_timeline(&mut m, &[0, 6, 12, 18, 22], "");
        assert_eq!(m, "<SegmentTimeline>\n  <S t=\"0\" d=\"6\" r=\"2\"/>\n  <S d=\"4\"/>\n</SegmentTimeline>\n");
        assert_eq!(iso_duration(16.02133), "PT16.021S");
    }
}
