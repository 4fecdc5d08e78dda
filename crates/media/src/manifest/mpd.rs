//! PURE: the one MPD writer (isoff-live profile, `SegmentTemplate` + `SegmentTimeline`), static or
//! dynamic, from the [model](super), appended to a caller's buffer. Every `<MPD` estuary serves is
//! written here.

use std::fmt::Write;

use super::text::{push_attr, push_fixed, push_u64};
use super::{
    AdaptationSet, Mpd, MpdTiming, PeriodId, ProducerReference, Representation, ServiceDescription, SubtitleTrack,
    push_iso_duration, write_iso_time,
};
use crate::cenc::{Signalling, SystemId};
use crate::mp4::TrackKind;
use estuary_http::content_type;

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

pub fn write_mpd(out: &mut String, m: &Mpd<'_>) {
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"");
    let duration = |out: &mut String, name: &str, secs: f64| {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        push_iso_duration(out, secs);
        out.push('"');
    };
    match m.timing {
        MpdTiming::Static { duration: length } => {
            out.push_str(" type=\"static\"");
            duration(out, "mediaPresentationDuration", length);
        }
        MpdTiming::Dynamic {
            availability_start,
            published,
            minimum_update_period,
            time_shift_buffer_depth,
            suggested_presentation_delay,
        } => {
            out.push_str(" type=\"dynamic\" availabilityStartTime=\"");
            write_iso_time(out, availability_start);
            out.push_str("\" publishTime=\"");
            write_iso_time(out, published);
            out.push('"');
            duration(out, "minimumUpdatePeriod", minimum_update_period);
            duration(out, "timeShiftBufferDepth", time_shift_buffer_depth);
            duration(out, "suggestedPresentationDelay", suggested_presentation_delay);
        }
    }
    if let Some(protection) = &m.protection {
        out.push_str(" xmlns:cenc=\"urn:mpeg:cenc:2013\"");
        if protection.systems.iter().any(|p| p.system == SystemId::PLAYREADY) {
            out.push_str(" xmlns:mspr=\"urn:microsoft:playready\"");
        }
        if protection.clearkey_licence.is_some() {
            out.push_str(" xmlns:dashif=\"https://dashif.org/CPS\"");
        }
    }
    duration(out, "maxSegmentDuration", m.max_segment_duration);
    duration(out, "minBufferTime", m.min_buffer_time);
    out.push_str(">\n");
    if let Some(service) = &m.service_description {
        write_service_description(out, service);
    }
    for period in &m.periods {
        out.push_str("  <Period id=\"");
        match period.id {
            PeriodId::Number(n) => push_u64(out, n),
            PeriodId::Slot { epoch, msn } => {
                push_u64(out, epoch);
                out.push('-');
                push_u64(out, msn);
            }
        }
        if period.start > 0.0 {
            out.push('"');
            duration(out, "start", period.start);
            out.push_str(">\n");
        } else {
            out.push_str("\" start=\"PT0S\">\n");
        }
        for set in &period.adaptation_sets {
            write_adaptation_set(out, set, m.utc_timing, m.protection.as_ref().map(|p| (p, m.key_rotation)));
        }
        for (i, track) in period.subtitles.iter().enumerate() {
            write_text_set(out, period.adaptation_sets.len() + i, track);
        }
        out.push_str("  </Period>\n");
    }
    if let Some(url) = m.utc_timing {
        let _ = writeln!(out, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{url}\"/>");
    }
    out.push_str("</MPD>\n");
}

/// Milliseconds, as `Latency` takes them.
fn millis(secs: f64) -> u64 {
    (secs * 1000.0).round().max(0.0) as u64
}

fn write_service_description(out: &mut String, s: &ServiceDescription) {
    out.push_str("  <ServiceDescription id=\"0\">\n");
    out.push_str("    <Scope schemeIdUri=\"urn:dvb:dash:lowlatency:scope:2019\"/>\n");
    let _ = writeln!(
        out,
        "    <Latency referenceId=\"0\" target=\"{}\" min=\"{}\" max=\"{}\"/>",
        millis(s.latency_target),
        millis(s.latency_min),
        millis(s.latency_max)
    );
    out.push_str("    <PlaybackRate min=\"");
    push_fixed(out, s.playback_rate.0, 2);
    out.push_str("\" max=\"");
    push_fixed(out, s.playback_rate.1, 2);
    out.push_str("\"/>\n  </ServiceDescription>\n");
}

fn write_producer_reference(out: &mut String, prt: &ProducerReference, utc_timing: Option<&str>) {
    out.push_str("        <ProducerReferenceTime id=\"0\" type=\"encoder\" wallClockTime=\"");
    write_iso_time(out, prt.wall_clock);
    out.push_str("\" presentationTime=\"");
    push_u64(out, prt.presentation_time);
    match utc_timing {
        Some(url) => {
            out.push_str("\">\n");
            let _ =
                writeln!(out, "          <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{url}\"/>");
            out.push_str("        </ProducerReferenceTime>\n");
        }
        None => out.push_str("\"/>\n"),
    }
}

fn write_adaptation_set(
    out: &mut String,
    set: &AdaptationSet<'_>,
    utc_timing: Option<&str>,
    protection: Option<(&Signalling, bool)>,
) {
    let (content, mime) = match set.kind {
        TrackKind::Video => ("video", content_type::MP4),
        TrackKind::Audio => ("audio", content_type::AUDIO_MP4),
        TrackKind::Text => ("text", content_type::WEBVTT),
    };
    let _ = write!(
        out,
        "    <AdaptationSet id=\"{}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\"",
        set.id
    );
    if set.kind == TrackKind::Video {
        let sizes = || set.representations.iter().filter_map(|r| r.stream.resolution);
        let max_w = sizes().map(|(w, _)| w).max().unwrap_or(0);
        let max_h = sizes().map(|(_, h)| h).max().unwrap_or(0);
        let _ = write!(out, " maxWidth=\"{max_w}\" maxHeight=\"{max_h}\"");
        if max_w > 0 && max_h > 0 {
            let g = gcd(max_w, max_h);
            let _ = write!(out, " par=\"{}:{}\"", max_w / g, max_h / g);
        }
    }
    if let Some(lang) = set.language {
        out.push_str(" lang=\"");
        push_attr(out, lang);
        out.push('"');
    }
    out.push_str(">\n");
    if let Some((protection, rotation)) = protection.filter(|_| set.kind != TrackKind::Text) {
        super::protection::write_content_protection(out, protection, rotation);
    }
    if let Some(main) = set.trick_mode_for {
        let _ = writeln!(
            out,
            "      <EssentialProperty schemeIdUri=\"http://dashif.org/guidelines/trickmode\" value=\"{main}\"/>"
        );
    }
    for r in &set.representations {
        write_representation(out, r, utc_timing);
    }
    out.push_str("    </AdaptationSet>\n");
}

/// A subtitle track as a `text/vtt` adaptation set: one WebVTT file (`BaseURL`), which dash.js,
/// Shaka and ExoPlayer all read (segmented text would need `stpp` or `wvtt` in fMP4).
fn write_text_set(out: &mut String, id: usize, track: &SubtitleTrack<'_>) {
    let _ = write!(out, "    <AdaptationSet id=\"{id}\" contentType=\"text\" mimeType=\"text/vtt\"");
    if let Some(lang) = track.language {
        out.push_str(" lang=\"");
        push_attr(out, lang);
        out.push('"');
    }
    out.push_str(">\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n      <Label>");
    push_xml_text(out, track.name);
    let _ = write!(
        out,
        "</Label>\n      <Representation id=\"s{}\" bandwidth=\"{}\">\n        <BaseURL>{}</BaseURL>\n      </Representation>\n    </AdaptationSet>\n",
        track.index,
        track.bandwidth.max(1),
        track.uri
    );
}

/// Appends `s` as XML character data.
fn push_xml_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

fn write_representation(out: &mut String, r: &Representation<'_>, utc_timing: Option<&str>) {
    let s = &r.stream;
    let _ = write!(out, "      <Representation id=\"{}", s.id);
    if let Some(rate) = r.trick_rate {
        let _ = write!(out, "-iframes\" maxPlayoutRate=\"{rate}\" codingDependency=\"false");
    }
    let _ = write!(out, "\" bandwidth=\"{}\"", s.peak_bps.max(1));
    if let Some(codecs) = s.codecs {
        out.push_str(" codecs=\"");
        push_attr(out, codecs);
        out.push('"');
    }
    if let Some((w, h)) = s.resolution {
        let _ = write!(out, " width=\"{w}\" height=\"{h}\"");
    }
    if let Some((num, den)) = s.frame_rate.filter(|&(_, den)| den > 0) {
        if den == 1 {
            let _ = write!(out, " frameRate=\"{num}\"");
        } else {
            let _ = write!(out, " frameRate=\"{num}/{den}\"");
        }
    }
    if let Some(rate) = s.sample_rate {
        let _ = write!(out, " audioSamplingRate=\"{rate}\"");
    }
    out.push_str(">\n");
    if let Some(channels) = s.channels {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{channels}\"/>"
        );
    }
    if let Some(prt) = &r.producer_reference {
        write_producer_reference(out, prt, utc_timing);
    }
    let t = &r.template;
    let _ = write!(out, "        <SegmentTemplate timescale=\"{}\"", t.timescale);
    if let Some(pto) = t.presentation_time_offset {
        let _ = write!(out, " presentationTimeOffset=\"{pto}\"");
    }
    if let Some(offset) = t.availability_time_offset {
        out.push_str(" availabilityTimeOffset=\"");
        push_fixed(out, offset, 3);
        out.push_str("\" availabilityTimeComplete=\"false\"");
    }
    out.push_str(" initialization=\"");
    t.urls.push_initialization(out);
    out.push_str("\" media=\"");
    t.urls.push_media(out);
    out.push_str("\" startNumber=\"");
    push_u64(out, t.start_number);
    out.push_str("\">\n");
    write_timeline(out, &t.times, "          ");
    out.push_str("        </SegmentTemplate>\n      </Representation>\n");
}

/// `<SegmentTimeline>` with runs of equal durations folded into `@r`.
fn write_timeline(out: &mut String, times: &[u64], indent: &str) {
    let _ = writeln!(out, "{indent}<SegmentTimeline>");
    let mut i = 0;
    while i + 1 < times.len() {
        let d = times[i + 1].saturating_sub(times[i]);
        let mut r = 0;
        while i + r + 2 < times.len() && times[i + r + 2].saturating_sub(times[i + r + 1]) == d {
            r += 1;
        }
        out.push_str(indent);
        out.push_str("  <S");
        if i == 0 {
            out.push_str(" t=\"");
            push_u64(out, times[0]);
            out.push('"');
        }
        out.push_str(" d=\"");
        push_u64(out, d);
        if r > 0 {
            out.push_str("\" r=\"");
            push_u64(out, r as u64);
        }
        out.push_str("\"/>\n");
        i += r + 1;
    }
    let _ = writeln!(out, "{indent}</SegmentTimeline>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_fold_equal_durations() {
        let mut m = String::new();
        write_timeline(&mut m, &[0, 6, 12, 18, 22], "");
        assert_eq!(m, "<SegmentTimeline>\n  <S t=\"0\" d=\"6\" r=\"2\"/>\n  <S d=\"4\"/>\n</SegmentTimeline>\n");
    }
}
