//! PURE: live's adapter into the manifest model: a channel snapshot as a multivariant playlist,
//! sliding-window or DVR media playlists (discontinuities, program date-times, gaps, blocking
//! reload), and the MPD: dynamic while live, static for a closed range or a recording, one Period per
//! discontinuity.

use std::borrow::Cow;
use std::ops::Range;
use std::time::SystemTime;

use super::ll_dash::LowLatencyDash;
use super::model::{ChannelSnapshot, Status, WindowRequest};
use super::offer::{offered, stream};
use estuary_media::manifest::{
    self, MediaPlaylist, MediaSegment, Mpd, MpdTiming, Multivariant, ObjectUri, Period, PeriodId, PlaylistType,
    ProducerReference, Representation, SegmentTemplate, ServerControl, SubtitleTrack,
};
use estuary_media::mp4::TrackKind;
use estuary_media::url::{Container, LivePath, TemplateUrls};

/// `query` (`?start=...`, or empty) is carried into the media playlist URIs.
pub fn multivariant<'a>(snap: &'a ChannelSnapshot, query: &'a str) -> Multivariant<'a> {
    let (video, audio) = offered(snap);
    let streams = |list: Vec<usize>| list.into_iter().map(|i| stream(&snap.renditions[i])).collect();
    Multivariant {
        video: streams(video),
        audio: streams(audio),
        // TS variants carry their own audio.
        muxed_audio: snap.container == Some(Container::Ts),
        alternate_audio: Vec::new(),
        query,
        i_frames: super::trick_play::i_frame_streams(snap),
        subtitles: subtitles(snap),
        session_key: None,
    }
}

/// The subtitle renditions with segments, as the master's `SUBTITLES` group. (The MPD offers none:
/// DASH carries live text as `stpp` or `wvtt` in fMP4, not as WebVTT segments.)
fn subtitles(snap: &ChannelSnapshot) -> Vec<SubtitleTrack<'_>> {
    (0..snap.renditions.len())
        .filter(|&r| snap.renditions[r].kind == TrackKind::Text && snap.edge_of(r).is_some())
        .map(|r| {
            let rendition = &snap.renditions[r];
            SubtitleTrack {
                index: rendition.id.index,
                uri: ObjectUri::Live(LivePath::Playlist(rendition.id)),
                language: rendition.language.as_deref(),
                name: &rendition.name,
                bandwidth: rendition.peak_bps,
            }
        })
        .collect()
}

/// Delta playlists (`_HLS_skip=YES`) leave out segments older than this many target durations
/// from the playlist's end: the least RFC 8216bis allows.
const SKIP_TARGETS: u32 = 6;

/// Which form of a media playlist a player asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// Every segment of the window.
    Full,
    /// A live window's older segments left out (`_HLS_skip=YES`: a delta playlist, `EXT-X-SKIP`).
    SkipOlder,
}

/// The media playlist of rendition `r`; `None` while it has no segment in the requested window.
pub fn media_playlist(snap: &ChannelSnapshot, r: usize, req: WindowRequest, delta: Delta) -> Option<MediaPlaylist> {
    let (range, closed) = snap.window(r, req);
    if range.is_empty() {
        return None;
    }
    let container = snap.container_of(r)?;
    let rendition = &snap.renditions[r];
    let timescale = f64::from(rendition.timescale.max(1));
    let dvr_range = req.start.is_some() || req.end.is_some();
    let mut epoch = None;
    let segments = snap.slots[range.clone()]
        .iter()
        .map(|slot| {
            let part = slot.part(r);
            let new_epoch = epoch != Some(slot.epoch);
            epoch = Some(slot.epoch);
            MediaSegment {
                duration: part.map_or(slot.duration, |p| p.duration as f64 / timescale),
                uri: ObjectUri::Live(LivePath::Segment(rendition.id, slot.epoch, slot.msn, container)),
                map: (container == Container::Fmp4 && new_epoch)
                    .then_some(ObjectUri::Live(LivePath::Init(rendition.id, slot.epoch))),
                discontinuity: slot.discontinuity,
                program_date_time: Some(slot.pdt),
                gap: part.is_none(),
                parts: Vec::new(),
                key: None,
            }
        })
        .collect();
    let live = !closed && !dvr_range;
    let can_skip_until = live.then(|| f64::from(SKIP_TARGETS * snap.settings.target_secs()));
    let mut segments: Vec<MediaSegment> = segments;
    let skipped = match can_skip_until {
        Some(until) if delta == Delta::SkipOlder => skip_older(&mut segments, until),
        _ => None,
    };
    let mut playlist = MediaPlaylist {
        target_duration: snap.settings.target_secs(),
        media_sequence: snap.slots[range.start].msn,
        discontinuity_sequence: Some(snap.discontinuity_sequence(range.start)),
        playlist_type: (dvr_range && closed).then_some(PlaylistType::Vod),
        server_control: (!closed).then_some(ServerControl {
            can_block_reload: true,
            can_skip_until,
            ..Default::default()
        }),
        part_target: None,
        skipped_segments: skipped,
        segments,
        open_parts: Vec::new(),
        open_key: None,
        preload_hint: None,
        rendition_reports: Vec::new(),
        ended: closed,
        protection: None,
    };
    if live {
        super::ll_hls::add_parts(snap, r, &mut playlist);
    }
    Some(playlist)
}

/// Leaves out the segments that end `until` seconds or more before the playlist's end; the first
/// one kept carries the init map the skipped ones named, so it plays on its own. `None` when none
/// can go (the full playlist is the answer then).
fn skip_older(segments: &mut Vec<MediaSegment>, until: f64) -> Option<u64> {
    let total: f64 = segments.iter().map(|s| s.duration).sum();
    let mut end = 0.0;
    let mut skip = 0;
    for segment in segments.iter() {
        end += segment.duration;
        if end > total - until {
            break;
        }
        skip += 1;
    }
    if skip == 0 {
        return None;
    }
    let map = segments[..skip].iter().rev().find_map(|s| s.map);
    segments.drain(..skip);
    if let Some(first) = segments.first_mut() {
        first.map = first.map.or(map);
    }
    Some(skip as u64)
}

fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Whether slot `i` begins a Period: a discontinuity or a new epoch.
fn begins_period(snap: &ChannelSnapshot, i: usize) -> bool {
    i == 0 || snap.slots[i].discontinuity || snap.slots[i].epoch != snap.slots[i - 1].epoch
}

/// The MPD, or `None` for TS channels (DASH needs fMP4) and channels without media yet.
///
/// While live it is dynamic: Periods start at their first slot's time after `availabilityStartTime`,
/// searched back through the DVR window so ids and starts stay put as the window slides. A closed
/// range or a recording is static: the presentation starts at the range's first slot (Periods and
/// `presentationTimeOffset`s measured from there), and lasts until the end of its last Period, so
/// encoder outages between Periods are inside it.
pub fn mpd<'a>(snap: &'a ChannelSnapshot, req: WindowRequest, time_url: &'a str) -> Option<Mpd<'a>> {
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
    let origin = if live { snap.availability_start } else { snap.slots[range.start].pdt };
    let mut bounds: Vec<Range<usize>> = Vec::new();
    for i in range.clone() {
        match bounds.last_mut() {
            Some(p) if !begins_period(snap, i) => p.end = i + 1,
            _ => bounds.push(i..i + 1),
        }
    }
    // LL-DASH: only the live edge's Period announces its next segment.
    let low_latency = live.then(|| super::ll_dash::low_latency(snap)).flatten();
    let last_period = bounds.len().saturating_sub(1);
    let mut periods = Vec::with_capacity(bounds.len());
    let mut last_length = 0.0;
    for (index, period) in bounds.into_iter().enumerate() {
        let edge = low_latency.filter(|_| index == last_period);
        let begin = if live {
            (0..=period.start).rev().find(|&i| begins_period(snap, i)).unwrap_or(period.start)
        } else {
            period.start
        };
        let start_slot = &snap.slots[begin];
        let representations = |members: &[usize]| {
            members.iter().filter_map(|&r| representation(snap, r, period.clone(), begin, edge)).collect()
        };
        let video_sets: Vec<Representation<'a>> = representations(&video);
        let mut sets = manifest::adaptation_sets(TrackKind::Video, video_sets, 0);
        let audio_sets: Vec<Representation<'a>> = representations(&audio);
        sets.extend(manifest::adaptation_sets(TrackKind::Audio, audio_sets, sets.len() as u32));
        last_length = snap.slots[period.clone()].iter().map(|s| s.duration).sum();
        periods.push(Period {
            id: PeriodId::Slot { epoch: start_slot.epoch, msn: start_slot.msn },
            start: secs_between(origin, start_slot.pdt).max(0.0),
            adaptation_sets: sets,
            subtitles: Vec::new(),
        });
    }
    let target = f64::from(snap.settings.target_secs());
    let timing = if live {
        MpdTiming::Dynamic {
            availability_start: snap.availability_start,
            published: snap.published,
            minimum_update_period: target / 2.0,
            time_shift_buffer_depth: snap.slots[range].iter().map(|s| s.duration).sum(),
            // A low-latency MPD suggests the delay its ServiceDescription targets: Shaka takes this
            // attribute as its live delay, and a delay of three segments would undo the low latency.
            suggested_presentation_delay: low_latency.map_or(3.0 * target, |ll| ll.service.latency_target),
        }
    } else {
        let last_start = periods.last().map_or(0.0, |p| p.start);
        MpdTiming::Static { duration: last_start + last_length }
    };
    Some(Mpd {
        timing,
        min_buffer_time: target,
        max_segment_duration: target,
        periods,
        utc_timing: Some(time_url),
        service_description: low_latency.map(|ll| ll.service),
        protection: None,
        key_rotation: false,
    })
}

/// Rendition `r` in the Period of slots `period`, which began at slot `begin`; `None` when it has no
/// segment there. `low_latency` is given for the live edge's Period of a channel with parts.
fn representation(
    snap: &ChannelSnapshot,
    r: usize,
    period: Range<usize>,
    begin: usize,
    low_latency: Option<LowLatencyDash>,
) -> Option<Representation<'_>> {
    let rendition = &snap.renditions[r];
    let ts = rendition.timescale.max(1);
    let slots = &snap.slots[period];
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
    let last = slots.iter().rev().find_map(|s| s.part(r))?;
    times.push(last.decode_time + last.duration);
    times.dedup();
    if times.len() < 2 {
        return None;
    }
    // The Period-relative origin: the track time at the slot that began the Period.
    let offset_secs = secs_between(snap.slots[begin].pdt, slots[0].pdt).max(0.0);
    let pto = times[0].saturating_sub((offset_secs * f64::from(ts)) as u64);
    let first_msn = slots.iter().find(|s| s.part(r).is_some()).map_or(slots[0].msn, |s| s.msn);
    let (epoch, last_msn) = (slots[0].epoch, slots[slots.len() - 1].msn);
    let producer_reference = low_latency.map(|_| {
        // Media time `times[0]` is at `slots[0].pdt` on the MPD's own clock (see `pto`).
        ProducerReference { presentation_time: times[0], wall_clock: slots[0].pdt }
    });
    if low_latency.is_some() {
        super::ll_dash::announce_next(snap, r, epoch, last_msn, &mut times);
    }
    Some(Representation {
        stream: stream(rendition),
        template: SegmentTemplate {
            timescale: ts,
            presentation_time_offset: Some(pto),
            urls: TemplateUrls::Live { rendition: rendition.id, epoch },
            start_number: first_msn,
            times: Cow::Owned(times),
            availability_time_offset: low_latency.map(|ll| ll.availability_time_offset),
        },
        producer_reference,
        trick_rate: None,
    })
}

/// The multivariant playlist, rendered.
pub fn render_multivariant(snap: &ChannelSnapshot, query: &str) -> String {
    let mut out = String::with_capacity(1024);
    manifest::hls::write_multivariant(&mut out, &multivariant(snap, query));
    out
}

/// A media playlist, rendered.
pub fn render_media_playlist(snap: &ChannelSnapshot, r: usize, req: WindowRequest, delta: Delta) -> Option<String> {
    let playlist = media_playlist(snap, r, req, delta)?;
    let mut out = String::with_capacity(256 + 96 * playlist.segments.len());
    manifest::hls::write_media_playlist(&mut out, &playlist);
    Some(out)
}

/// The I-frame playlist of MPEG-TS rendition `r`, rendered.
pub fn render_i_frame_playlist(snap: &ChannelSnapshot, r: usize, req: WindowRequest) -> Option<String> {
    let playlist = super::trick_play::i_frame_playlist(snap, r, req)?;
    let mut out = String::with_capacity(256 + 96 * playlist.frames.len());
    manifest::hls::write_i_frame_playlist(&mut out, &playlist);
    Some(out)
}

/// The MPD, rendered.
pub fn render_mpd(snap: &ChannelSnapshot, req: WindowRequest, time_url: &str) -> Option<String> {
    let mpd = mpd(snap, req, time_url)?;
    let mut out = String::with_capacity(4096);
    manifest::mpd::write_mpd(&mut out, &mpd);
    Some(out)
}
