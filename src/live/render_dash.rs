//! PURE: the live DASH MPD from a channel snapshot: dynamic while live (static once ended), one
//! Period per discontinuity, `SegmentTemplate` + `SegmentTimeline` in each track's timescale, `UTCTiming`.

use std::fmt::Write;
use std::time::SystemTime;

use super::model::{ChannelSnapshot, Container, Status, WindowRequest};
use super::render_hls::{iso_time, offered};
use crate::packaging::dash::{iso_duration, write_timeline};
use crate::packaging::mp4::TrackKind;

fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The MPD, or `None` for TS channels (DASH needs fMP4) and channels without media yet.
pub fn mpd(snap: &ChannelSnapshot, req: WindowRequest, time_url: &str) -> Option<String> {
    if snap.container != Some(Container::Fmp4) {
        return None;
    }
    let (video, audio) = offered(snap);
    let reference = video.first().or(audio.first()).copied()?;
    let (range, closed) = snap.window(reference, req);
    if range.is_empty() {
        return None;
    }
    let live = snap.status != Status::Ended && !closed;
    let target = f64::from(snap.settings.target_secs());
    let window_secs: f64 = snap.slots[range.clone()].iter().map(|s| s.duration).sum();
    let first_pdt = snap.slots[range.start].pdt;
    let mut m = String::with_capacity(4096);
    m.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ =
        write!(m, "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"");
    if live {
        let _ = write!(
            m,
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\"",
            iso_time(snap.availability_start),
            iso_time(snap.published),
            iso_duration(target / 2.0),
            iso_duration(window_secs),
            iso_duration(3.0 * target),
        );
    } else {
        let _ = write!(m, " type=\"static\" mediaPresentationDuration=\"{}\"", iso_duration(window_secs));
    }
    let _ = writeln!(m, " minBufferTime=\"{}\" maxSegmentDuration=\"{}\">", iso_duration(target), iso_duration(target));

    // Periods: split the window at discontinuities. A period's id and start come from the slot
    // that began it (searched back through the DVR window), so they stay stable as the window slides.
    let mut periods: Vec<std::ops::Range<usize>> = Vec::new();
    for i in range.clone() {
        if i == range.start || snap.slots[i].discontinuity || snap.slots[i].epoch != snap.slots[i - 1].epoch {
            periods.push(i..i + 1);
        } else if let Some(p) = periods.last_mut() {
            p.end = i + 1;
        }
    }
    for period in periods {
        let begin = (0..=period.start)
            .rev()
            .find(|&i| i == 0 || snap.slots[i].discontinuity || snap.slots[i].epoch != snap.slots[i - 1].epoch)
            .unwrap_or(period.start);
        let start_slot = &snap.slots[begin];
        let origin = if live { snap.availability_start } else { first_pdt };
        let start = secs_between(origin, start_slot.pdt).max(0.0);
        let _ =
            writeln!(m, "  <Period id=\"{}-{}\" start=\"{}\">", start_slot.epoch, start_slot.msn, iso_duration(start));
        for (set, kind, members) in [(0, TrackKind::Video, &video), (1, TrackKind::Audio, &audio)] {
            if members.is_empty() {
                continue;
            }
            let (content, mime) =
                if kind == TrackKind::Video { ("video", "video/mp4") } else { ("audio", "audio/mp4") };
            let _ = write!(
                m,
                "    <AdaptationSet id=\"{set}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\""
            );
            if let Some(lang) = members.iter().find_map(|&r| snap.renditions[r].language.clone()) {
                let _ = write!(m, " lang=\"{}\"", lang.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ""));
            }
            let _ = writeln!(m, ">");
            for &r in members.iter() {
                representation(&mut m, snap, r, period.clone(), begin);
            }
            let _ = writeln!(m, "    </AdaptationSet>");
        }
        let _ = writeln!(m, "  </Period>");
    }
    let _ = writeln!(m, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{time_url}\"/>\n</MPD>");
    Some(m)
}

fn representation(m: &mut String, snap: &ChannelSnapshot, r: usize, period: std::ops::Range<usize>, begin: usize) {
    let rendition = &snap.renditions[r];
    let ts = rendition.timescale.max(1);
    let slots = &snap.slots[period.clone()];
    // Times of every slot of the period in this track: its part's, or (for a gap) extrapolated.
    let mut times: Vec<u64> = Vec::with_capacity(slots.len() + 1);
    for (k, slot) in slots.iter().enumerate() {
        let t = match slot.part(r) {
            Some(p) => p.decode_time,
            None => match times.last() {
                Some(&prev) => prev + (slots[k - 1].duration * f64::from(ts)) as u64,
                None => continue,
            },
        };
        times.push(t);
    }
    let Some(last) = slots.iter().rev().find_map(|s| s.part(r)) else { return };
    times.push(last.decode_time + last.duration);
    if times.len() < 2 {
        return;
    }
    times.dedup();
    // The period-relative origin: the track time at the slot that began the period.
    let offset_secs = secs_between(snap.slots[begin].pdt, slots[0].pdt).max(0.0);
    let pto = times[0].saturating_sub((offset_secs * f64::from(ts)) as u64);
    let first_msn = slots.iter().find(|s| s.part(r).is_some()).map_or(slots[0].msn, |s| s.msn);
    let _ = write!(m, "      <Representation id=\"{}\" bandwidth=\"{}\"", rendition.id, rendition.peak_bps.max(1));
    if let Some(c) = &rendition.codecs {
        let _ = write!(m, " codecs=\"{c}\"");
    }
    if let Some((w, h)) = rendition.resolution {
        let _ = write!(m, " width=\"{w}\" height=\"{h}\"");
    }
    if let Some(rate) = rendition.sample_rate {
        let _ = write!(m, " audioSamplingRate=\"{rate}\"");
    }
    let _ = writeln!(m, ">");
    if let Some(ch) = rendition.channels {
        let _ = writeln!(
            m,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>"
        );
    }
    let epoch = slots[0].epoch;
    let _ = writeln!(
        m,
        "        <SegmentTemplate timescale=\"{ts}\" presentationTimeOffset=\"{pto}\" initialization=\"{id}/{epoch}/init.mp4\" media=\"{id}/{epoch}/$Number$.m4s\" startNumber=\"{first_msn}\">",
        id = rendition.id
    );
    write_timeline(m, &times, "          ");
    let _ = writeln!(m, "        </SegmentTemplate>\n      </Representation>");
}
