//! Unit tests of the channel state machine, with ffmpeg's own HLS fMP4 output (the bundled sample) as the encoder.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::channel::{ChannelState, DropReason, Effect, EndedBy};
use super::manifests::{self, Delta};
use super::model::{ChannelId, ChannelSettings, Status, WindowRequest};
use super::record::TimelineRecord;
use super::upload::{Upload, classify};
use estuary_media::mp4::TrackKind;

/// The bundled sample's HLS init and its first four 4 s segments (video and audio muxed).
pub(super) const INIT: &[u8] = include_bytes!("../../../assets/sample/hls/init.mp4");
pub(super) const SEGMENTS: [&[u8]; 4] = [
    include_bytes!("../../../assets/sample/hls/seg_000.m4s"),
    include_bytes!("../../../assets/sample/hls/seg_001.m4s"),
    include_bytes!("../../../assets/sample/hls/seg_002.m4s"),
    include_bytes!("../../../assets/sample/hls/seg_003.m4s"),
];

pub(super) fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

pub(super) fn channel() -> ChannelState {
    channel_of(4)
}

/// A channel with a target duration of `secs` (the sample's segments last 4 s).
fn channel_of(secs: u64) -> ChannelState {
    let settings = ChannelSettings {
        target_duration: Duration::from_secs(secs),
        window: Duration::from_secs(2 * secs),
        ..Default::default()
    };
    ChannelState::new(ChannelId::parse("news").unwrap(), settings, t(0))
}

pub(super) fn upload(state: &mut ChannelState, path: &str, body: &[u8], now: SystemTime) -> Vec<Effect> {
    let upload = classify(path, Bytes::copy_from_slice(body)).unwrap();
    state.apply(upload, now).unwrap()
}

/// The playlist ffmpeg would push listing `names` from encoder sequence `first`.
fn playlist(first: u64, names: &[&str], end: bool) -> Vec<u8> {
    let mut p = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init_0.mp4\"\n"
    );
    for n in names {
        p.push_str(&format!("#EXTINF:4.000000,\n{n}\n"));
    }
    if end {
        p.push_str("#EXT-X-ENDLIST\n");
    }
    p.into_bytes()
}

pub(super) fn push(state: &mut ChannelState, e: u64, body: &[u8], now: SystemTime) -> Vec<Effect> {
    let name = format!("seg_{e:05}.m4s");
    let mut effects = upload(state, &format!("v0/{name}"), body, now);
    let names: Vec<String> = (e.saturating_sub(2)..=e).map(|k| format!("seg_{k:05}.m4s")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    effects.extend(upload(state, "v0/index.m3u8", &playlist(e.saturating_sub(2), &names, false), now));
    effects
}

#[test]
fn a_last_segment_that_arrives_after_the_closing_playlist_is_committed() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    push(&mut s, 0, SEGMENTS[0], t(5));
    // ffmpeg without -http_persistent: the final playlist (with ENDLIST) lands before its last segment.
    upload(&mut s, "v0/index.m3u8", &playlist(0, &["seg_00000.m4s", "seg_00001.m4s"], true), t(9));
    assert_eq!(s.snapshot(t(9)).last_msn(), Some(0));
    upload(&mut s, "v0/seg_00001.m4s", SEGMENTS[1], t(9));
    let snap = s.snapshot(t(9));
    assert_eq!(snap.last_msn(), Some(1), "the late last segment is committed");
    assert!(!snap.slots[1].discontinuity, "in the same session");
}

#[test]
fn a_pushed_variant_becomes_demuxed_renditions() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    let effects = push(&mut s, 0, SEGMENTS[0], t(5));
    let snap = s.snapshot(t(5));
    assert_eq!(snap.status, Status::Live);
    let ids: Vec<_> = snap.renditions.iter().map(|r| (r.id.to_string(), r.kind, r.muxed)).collect();
    assert_eq!(ids, [("v0".into(), TrackKind::Video, false), ("a0".into(), TrackKind::Audio, true)]);
    assert_eq!(snap.slots.len(), 1);
    let slot = &snap.slots[0];
    assert_eq!((slot.msn, slot.discontinuity), (0, false));
    assert!((slot.duration - 4.0).abs() < 1e-9);
    // Each part is a single-track segment that mp4-atom reads back.
    let video = slot.part(0).unwrap().bytes.clone().unwrap();
    let mut buf = &video[..];
    <mp4_atom::Styp as mp4_atom::Decode>::decode(&mut buf).unwrap();
    let moof = <mp4_atom::Moof as mp4_atom::Decode>::decode(&mut buf).unwrap();
    assert_eq!(moof.traf.len(), 1);
    assert_eq!(moof.traf[0].trun[0].samples.len(), 100);
    // Written through: the variant's own init, two per-track inits, two parts.
    let keys: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Put { key, .. } => Some(key.to_string()),
            Effect::Delete { .. } | Effect::Dropped { .. } => None,
        })
        .collect();
    let epoch = slot.epoch;
    for want in [
        format!("live/news/{epoch}/v0/init.mp4"),
        format!("live/news/{epoch}/a0/init.mp4"),
        format!("live/news/{epoch}/v0/0.m4s"),
        format!("live/news/{epoch}/a0/0.m4s"),
    ] {
        assert!(keys.contains(&want), "{want} in {keys:?}");
    }
    assert!(snap.init(epoch, 0).is_some() && snap.init(epoch, 1).is_some());
}

#[test]
fn the_window_slides_and_playlists_render() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for (e, seg) in SEGMENTS.iter().enumerate() {
        push(&mut s, e as u64, seg, t(4 * e as u64 + 5));
    }
    let snap = s.snapshot(t(20));
    assert_eq!(snap.last_msn(), Some(3));
    // 8 s window, but never under three target durations (12 s): the last three slots.
    let (range, closed) = snap.window(0, WindowRequest::default());
    assert_eq!((range, closed), (1..4, false));
    let text = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full).unwrap();
    let epoch = snap.slots[0].epoch;
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{text}");
    assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"));
    assert!(text.contains(&format!("#EXT-X-MAP:URI=\"v0/{epoch}/init.mp4\"")));
    assert!(text.contains(&format!("v0/{epoch}/3.m4s")));
    assert!(!text.contains("ENDLIST"));
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
    assert!(parsed.segments.iter().all(|seg| (seg.duration.round() as u64) <= parsed.target_duration));
    assert_eq!(estuary_media::manifest::rules::media_playlist_problems(&text), Vec::<String>::new());
    let master = manifests::render_multivariant(&snap, "");
    assert!(master.contains("CODECS=\"avc1.64001e,mp4a.40.2\""), "{master}");
    assert!(master.contains("URI=\"a0.m3u8\"") && master.contains("\nv0.m3u8\n"));
    let mpd = manifests::render_mpd(&snap, WindowRequest::default(), "http://x/time").unwrap();
    assert!(
        mpd.contains("type=\"dynamic\"") && mpd.contains("startNumber=\"1\"") && mpd.contains("UTCTiming"),
        "{mpd}"
    );
}

#[test]
fn an_encoder_restart_is_a_discontinuity_not_a_reset() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for e in 0..2u64 {
        push(&mut s, e, SEGMENTS[e as usize], t(4 * e + 5));
    }
    let first_epoch = s.snapshot(t(20)).slots[0].epoch;
    // ffmpeg ends its playlist, then starts again from sequence 0 with new bytes
    // (the segment arrives before the playlist that lists it, as ffmpeg sends them).
    upload(&mut s, "v0/index.m3u8", &playlist(0, &["seg_00000.m4s", "seg_00001.m4s"], true), t(12));
    upload(&mut s, "v0/init_0.mp4", INIT, t(30));
    push(&mut s, 0, SEGMENTS[2], t(34));
    let snap = s.snapshot(t(34));
    let last = snap.slots.last().unwrap().clone();
    assert_eq!(last.msn, 2, "the media sequence keeps counting");
    assert!(last.discontinuity);
    assert_ne!(last.epoch, first_epoch, "a new epoch, so no URL is reused");
    // The new session goes on in the same epoch, without another discontinuity.
    push(&mut s, 1, SEGMENTS[3], t(38));
    let snap = s.snapshot(t(38));
    let next = snap.slots.last().unwrap();
    assert_eq!((next.msn, next.epoch, next.discontinuity), (3, last.epoch, false));
    // Decode times continue across the restart (the new session's tfdt started at 0 again), in the
    // slots and in the segments' own tfdt, for every track.
    use estuary_media::fmp4::parse::{parse_init, parse_segment};
    let (old, new) = (&snap.slots[1], &snap.slots[2]);
    for r in 0..snap.renditions.len() {
        let (before, after) = (old.part(r).unwrap(), new.part(r).unwrap());
        assert!(after.decode_time >= before.decode_time + before.duration, "rendition {r}");
        let init = parse_init(snap.init(new.epoch, r).unwrap()).unwrap();
        let runs = parse_segment(after.bytes.as_ref().unwrap(), &init).unwrap();
        assert_eq!(runs[0].base_decode_time, after.decode_time, "rendition {r}: the segment says so too");
    }
    let text = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert_eq!(text.matches("#EXT-X-MAP").count(), 2);
    let mpd = manifests::render_mpd(&snap, WindowRequest::default(), "http://x/time").unwrap();
    assert_eq!(mpd.matches("<Period").count(), 2, "{mpd}");
}

#[test]
fn static_mpds_start_at_their_range_and_last_to_the_end_of_their_last_period() {
    use estuary_media::manifest::MpdTiming;
    // An outage, then a new encoder session: a second Period.
    let mut s = two_sessions();
    s.end(EndedBy::Operator);
    let snap = s.snapshot(t(50));
    let segments: f64 = snap.slots.iter().map(|slot| slot.duration).sum();

    // A range from the second slot: the presentation starts there, and so does its timeline.
    let second = &snap.slots[1];
    let range = WindowRequest { start: Some(second.pdt + Duration::from_millis(100)), end: Some(second.end()) };
    let mpd = manifests::mpd(&snap, range, "/time").unwrap();
    assert!(matches!(mpd.timing, MpdTiming::Static { duration } if (duration - second.duration).abs() < 1e-6));
    assert_eq!(mpd.periods.len(), 1);
    assert_eq!(mpd.periods[0].start, 0.0);
    let template = &mpd.periods[0].adaptation_sets[0].representations[0].template;
    assert_eq!(template.presentation_time_offset, Some(template.times[0]), "the timeline starts at 0");
    assert_eq!(template.start_number, second.msn);

    // The recording: both Periods, the outage between them included in the duration.
    let mpd = manifests::mpd(&snap, WindowRequest { start: Some(SystemTime::UNIX_EPOCH), end: None }, "/time").unwrap();
    assert_eq!(mpd.periods.len(), 2);
    let last = mpd.periods.last().unwrap();
    let MpdTiming::Static { duration } = mpd.timing else { panic!("a recording is static") };
    assert!((duration - (last.start + snap.slots.last().unwrap().duration)).abs() < 1e-6, "{duration}");
    assert!(duration > segments + 10.0, "the outage is inside the presentation: {duration} vs {segments}");
}

#[test]
fn lost_segments_are_skipped_and_bad_ones_change_nothing() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    push(&mut s, 0, SEGMENTS[0], t(5));
    // seg 1 never arrives; seg 2 does.
    upload(&mut s, "v0/seg_00002.m4s", SEGMENTS[2], t(13));
    let effects = upload(
        &mut s,
        "v0/index.m3u8",
        &playlist(0, &["seg_00000.m4s", "seg_00001.m4s", "seg_00002.m4s"], false),
        t(13),
    );
    let dropped: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Dropped { segment, reason } => Some((segment.as_str(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, [("v0/seg_00001.m4s", DropReason::NeverUploaded)], "the loss is reported, not silent");
    let snap = s.snapshot(t(13));
    assert_eq!(snap.last_msn(), Some(2));
    assert!(snap.slot(1).unwrap().part(0).is_none(), "a gap where seg 1 was lost");
    assert!(
        manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full)
            .unwrap()
            .contains("#EXT-X-GAP")
    );
    // Garbage never reaches the state.
    assert!(classify("v0/seg_00003.m4s", Bytes::from_static(b"garbage garbage garbage")).is_err());
}

#[test]
fn idle_channels_end_and_stopped_ones_refuse_uploads() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    push(&mut s, 0, SEGMENTS[0], t(5));
    assert!(!s.tick(t(30)));
    assert!(s.tick(t(70)), "60 s without uploads");
    let snap = s.snapshot(t(70));
    assert_eq!(snap.status, Status::Ended);
    assert!(
        manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full)
            .unwrap()
            .ends_with("#EXT-X-ENDLIST\n")
    );
    s.end(EndedBy::Operator);
    let again = classify("v0/seg_00001.m4s", Bytes::from_static(SEGMENTS[1])).unwrap();
    assert!(s.apply(again, t(80)).is_err());
    s.resume();
    assert!(matches!(classify("v0/seg_00001.m4s", Bytes::from_static(SEGMENTS[1])), Ok(Upload::Segment { .. })));
}

#[test]
fn the_timeline_survives_a_restart() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for e in 0..2u64 {
        push(&mut s, e, SEGMENTS[e as usize], t(4 * e + 5));
    }
    let json = serde_json::to_vec(&s.to_record()).unwrap();
    let record: TimelineRecord = serde_json::from_slice(&json).unwrap();
    let channel = super::record::ChannelRecord {
        id: s.id.clone(),
        key_sha256: super::key::KeyHash::of("x").to_hex(),
        token: None,
        settings: s.settings.clone(),
        created_ms: 0,
        stopped: false,
    };
    let init = estuary_media::fmp4::parse::parse_init(INIT).unwrap();
    let inits = |_, _| Some(Bytes::from_static(INIT));
    let sources = |_: &str| Some((Bytes::from_static(INIT), std::sync::Arc::new(init.clone())));
    let mut restored = ChannelState::restore(&channel, &record, inits, sources);
    let before = s.snapshot(t(20));
    let after = restored.snapshot(t(20));
    assert_eq!(after.slots.len(), before.slots.len());
    assert_eq!(after.slots[1].msn, 1);
    assert!(after.slots[1].part(0).unwrap().bytes.is_none(), "bytes come from storage after a restart");
    // The encoder carries on: numbering continues without a reset.
    push(&mut restored, 2, SEGMENTS[2], t(13));
    assert_eq!(restored.snapshot(t(13)).last_msn(), Some(2));
}

#[test]
fn uploads_never_listed_are_dropped_oldest_first_and_reported() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    let mut dropped = Vec::new();
    for e in 0..300u64 {
        for effect in upload(&mut s, &format!("v9/seg_{e:05}.m4s"), SEGMENTS[0], t(2 + e)) {
            if let Effect::Dropped { segment, reason } = effect {
                dropped.push((segment, reason));
            }
        }
    }
    assert_eq!(dropped.len(), 300 - 256);
    assert_eq!(dropped[0], ("v9/seg_00000.m4s".to_owned(), DropReason::Overflow));
    assert_eq!(dropped[43].0, "v9/seg_00043.m4s");
}

#[test]
fn bytes_in_memory_are_counted_as_parts_gain_and_lose_them() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    let held = |snap: &super::model::ChannelSnapshot| -> u64 {
        snap.slots
            .iter()
            .flat_map(|slot| slot.parts.iter().flatten())
            .filter(|p| p.bytes.is_some())
            .map(|p| p.size)
            .sum()
    };
    for e in 0..12u64 {
        push(&mut s, e, SEGMENTS[(e % 4) as usize], t(4 * e + 5));
    }
    // Every part holds its segment until storage has it (window_bytes also checks the running count
    // against a full recount in debug builds).
    let snap = s.snapshot(t(60));
    let all = held(&snap);
    assert!(all > 0);
    assert_eq!(s.window_bytes(), all);
    for slot in &snap.slots {
        for r in 0..slot.parts.len() {
            s.mark_stored(slot.msn, r);
        }
    }
    // Stored parts older than the window and three target durations leave memory; the count follows.
    assert!(s.tick(t(60)));
    let kept = held(&s.snapshot(t(60)));
    assert!(kept > 0 && kept < all, "{kept} of {all}");
    assert_eq!(s.window_bytes(), kept);
}

/// A channel with two encoder sessions and an outage between them, ended: the fixture of the golden
/// live outputs.
fn two_sessions() -> ChannelState {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for e in 0..3u64 {
        push(&mut s, e, SEGMENTS[e as usize], t(4 * e + 5));
    }
    upload(&mut s, "v0/index.m3u8", &playlist(0, &["seg_00000.m4s", "seg_00001.m4s", "seg_00002.m4s"], true), t(16));
    upload(&mut s, "v0/init_0.mp4", INIT, t(40));
    push(&mut s, 0, SEGMENTS[3], t(44));
    s
}

/// The live playlists and MPDs of a fixed channel, against `tests/golden/live-*` (`UPDATE_GOLDEN=1`
/// rewrites them): what players get changes only on purpose.
#[test]
fn golden_live_outputs() {
    let mut s = two_sessions();
    let live = s.snapshot(t(50));
    s.end(EndedBy::Operator);
    let ended = s.snapshot(t(50));
    let second = &ended.slots[1];
    let range = WindowRequest { start: Some(second.pdt + Duration::from_millis(100)), end: Some(second.end()) };
    let recording = WindowRequest { start: Some(SystemTime::UNIX_EPOCH), end: None };
    let outputs = [
        ("live-master.m3u8", manifests::render_multivariant(&live, "")),
        ("live-v0.m3u8", manifests::render_media_playlist(&live, 0, WindowRequest::default(), Delta::Full).unwrap()),
        ("live-a0.m3u8", manifests::render_media_playlist(&live, 1, WindowRequest::default(), Delta::Full).unwrap()),
        ("live-dynamic.mpd", manifests::render_mpd(&live, WindowRequest::default(), "../../time").unwrap()),
        ("live-range.mpd", manifests::render_mpd(&ended, range, "../../time").unwrap()),
        ("live-recording.mpd", manifests::render_mpd(&ended, recording, "../../time").unwrap()),
        ("live-recording-v0.m3u8", manifests::render_media_playlist(&ended, 0, recording, Delta::Full).unwrap()),
    ];
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    for (file, text) in outputs {
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden.join(file), &text).unwrap();
        }
        let want = std::fs::read_to_string(golden.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (run with UPDATE_GOLDEN=1)"));
        assert_eq!(text, want, "differs from tests/golden/{file}");
    }
}

/// An encoder restart starts `tfdt` at 0 again; the channel moves the new session's decode times
/// forward so every track continues (GStreamer's HLS stalls on decode times that go back), in the
/// parts, in the segments' own `tfdt`, and by one shift for all tracks (their sync is kept).
#[test]
fn decode_times_continue_across_an_encoder_restart() {
    use estuary_media::fmp4::parse::{parse_init, parse_segment};
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for e in 0..3u64 {
        push(&mut s, e, SEGMENTS[e as usize], t(4 * e + 5));
    }
    upload(&mut s, "v0/index.m3u8", &playlist(0, &["seg_00000.m4s", "seg_00001.m4s", "seg_00002.m4s"], true), t(16));
    upload(&mut s, "v0/init_0.mp4", INIT, t(30));
    // The new session's first segment is the sample's first: tfdt 0 in both tracks.
    push(&mut s, 0, SEGMENTS[0], t(34));
    let snap = s.snapshot(t(34));
    let (old, new) = (&snap.slots[2], &snap.slots[3]);
    assert_ne!(old.epoch, new.epoch);
    let mut starts = Vec::new();
    for r in 0..snap.renditions.len() {
        let (before, after) = (old.part(r).unwrap(), new.part(r).unwrap());
        assert!(after.decode_time >= before.decode_time + before.duration, "rendition {r} goes on");
        let init = parse_init(snap.init(new.epoch, r).unwrap()).unwrap();
        let runs = parse_segment(after.bytes.as_ref().unwrap(), &init).unwrap();
        assert_eq!(runs[0].base_decode_time, after.decode_time, "rendition {r}: its tfdt says so too");
        starts.push(after.decode_time as f64 / f64::from(snap.renditions[r].timescale));
    }
    // The sample's tracks both start at 0: shifted alike, they still start together.
    assert!((starts[0] - starts[1]).abs() < 0.001, "{starts:?}");
    let mpd = manifests::render_mpd(&snap, WindowRequest::default(), "/time").unwrap();
    assert!(!mpd.contains("<S t=\"0\""), "the new Period's timeline starts where the old one ended: {mpd}");
}

/// A subtitle rendition's WebVTT segments follow the video across an encoder restart: the second
/// session's video is moved on in time, and its subtitles' `X-TIMESTAMP-MAP` with it.
#[test]
fn subtitles_move_with_the_video_across_an_encoder_restart() {
    let vtt = |n: u64| {
        format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n00:00:0{n}.500 --> 00:00:0{n}.900\ncue\n")
    };
    let vtt_playlist = |count: u64, end: bool| {
        let mut p = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n".to_owned();
        (0..count).for_each(|n| p.push_str(&format!("#EXTINF:4.0,\nfr_{n}.vtt\n")));
        if end {
            p.push_str("#EXT-X-ENDLIST\n");
        }
        p
    };
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for e in 0..3u64 {
        push(&mut s, e, SEGMENTS[e as usize], t(4 * e + 5));
        upload(&mut s, &format!("subs/fr_{e}.vtt"), vtt(e).as_bytes(), t(4 * e + 5));
        upload(&mut s, "subs/fr.m3u8", vtt_playlist(e + 1, false).as_bytes(), t(4 * e + 5));
    }
    upload(&mut s, "v0/index.m3u8", &playlist(0, &["seg_00000.m4s", "seg_00001.m4s", "seg_00002.m4s"], true), t(16));
    upload(&mut s, "subs/fr.m3u8", vtt_playlist(3, true).as_bytes(), t(16));
    // The new session starts its video (and its subtitles) at 0 again.
    push(&mut s, 0, SEGMENTS[0], t(34));
    upload(&mut s, "subs/fr_0.vtt", vtt(0).as_bytes(), t(34));
    upload(&mut s, "subs/fr.m3u8", vtt_playlist(1, false).as_bytes(), t(34));
    let snap = s.snapshot(t(34));
    let text = snap.renditions.iter().position(|r| r.kind == TrackKind::Text).expect("a subtitle rendition");
    assert_eq!(snap.renditions[text].id.to_string(), "s0");
    let (old, new) = (&snap.slots[2], &snap.slots[3]);
    assert_ne!(old.epoch, new.epoch);
    let body = |slot: &super::model::Slot| {
        String::from_utf8(slot.part(text).unwrap().bytes.clone().unwrap().to_vec()).unwrap()
    };
    assert_eq!(body(old), vtt(2), "the first session is served as pushed");
    // The video moved on by the first session's 12 s: so does cue time 0 (12 s at 90 kHz).
    assert_eq!(body(new), vtt(0).replace("MPEGTS:0,", "MPEGTS:1080000,"));
    let video = snap.renditions.iter().position(|r| r.kind == TrackKind::Video).unwrap();
    let moved = new.part(video).unwrap().decode_time as f64 / f64::from(snap.renditions[video].timescale);
    assert!((moved - 12.0).abs() < 0.05, "the video moved by {moved} s");
}

/// What a pod writing a channel shares with the others only grows: a second variant's parts arriving
/// (not yet stored) never take back the slots and parts already listed (they were, once: players on
/// the other pods got 404 for segments their playlists had just listed).
#[test]
fn the_shared_timeline_never_takes_back_what_it_listed() {
    let mut s = channel();
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    upload(&mut s, "v1/init_0.mp4", INIT, t(1));
    let listed = |s: &ChannelState| -> Vec<(u64, usize)> {
        let shared = s.to_shared_record(None);
        let parts = shared.slots.iter().flat_map(|slot| {
            slot.parts.iter().enumerate().filter(|(_, p)| p.is_some()).map(move |(r, _)| (slot.msn, r))
        });
        parts.collect()
    };
    let store_all = |s: &mut ChannelState| {
        let snap = s.snapshot(t(60));
        for slot in &snap.slots {
            for (r, part) in slot.parts.iter().enumerate() {
                if part.is_some() {
                    s.mark_stored(slot.msn, r);
                }
            }
        }
    };
    for e in 0..4u64 {
        push(&mut s, e, SEGMENTS[e as usize], t(4 * e + 5));
    }
    store_all(&mut s);
    let before = listed(&s);
    assert_eq!(before.len(), 8, "four slots of v0's two renditions: {before:?}");
    // v1's first segments arrive, not yet stored: nothing listed goes away, nothing of v1 is listed.
    for e in 0..2u64 {
        upload(&mut s, &format!("v1/seg_{e:05}.m4s"), SEGMENTS[e as usize], t(4 * e + 20));
    }
    let names = ["seg_00000.m4s", "seg_00001.m4s"];
    upload(&mut s, "v1/index.m3u8", &playlist(0, &names, false), t(21));
    assert!(s.snapshot(t(60)).renditions.len() == 4, "v1 adds two renditions");
    let during = listed(&s);
    assert_eq!(during, before, "v1's unstored parts change nothing listed");
    store_all(&mut s);
    let after = listed(&s);
    assert!(before.iter().all(|p| after.contains(p)), "{before:?} then {after:?}");
    assert!(after.contains(&(0, 2)) && after.contains(&(1, 2)), "v1's parts, once stored, are listed: {after:?}");
}

#[test]
fn delta_playlists_leave_out_what_is_older_than_six_target_durations() {
    let settings = ChannelSettings {
        target_duration: Duration::from_secs(4),
        window: Duration::from_secs(60),
        ..Default::default()
    };
    let mut s = ChannelState::new(ChannelId::parse("news").unwrap(), settings, t(0));
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    for e in 0..10u64 {
        push(&mut s, e, SEGMENTS[e as usize % 4], t(4 * e + 5));
    }
    let snap = s.snapshot(t(50));
    let full = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full).unwrap();
    let delta = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::SkipOlder).unwrap();
    let problems = estuary_media::manifest::rules::media_playlist_problems;
    assert_eq!((problems(&full), problems(&delta)), (Vec::<String>::new(), Vec::<String>::new()));
    assert!(full.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.000\n"), "{full}");
    assert!(!full.contains("EXT-X-SKIP:"));
    // 40 s listed; the segments that end 24 s or more before the end (the first four) are skipped.
    assert!(delta.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n"), "{delta}");
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "{delta}");
    let line = |text: &str, tag: &str| text.lines().find(|l| l.starts_with(tag)).map(str::to_owned);
    assert_eq!(line(&delta, "#EXT-X-MEDIA-SEQUENCE"), line(&full, "#EXT-X-MEDIA-SEQUENCE"));
    assert_eq!(line(&delta, "#EXT-X-DISCONTINUITY-SEQUENCE"), line(&full, "#EXT-X-DISCONTINUITY-SEQUENCE"));
    let uris = |text: &str| text.lines().filter(|l| l.ends_with(".m4s")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(uris(&delta), uris(&full)[4..]);
    let after_skip = delta.split("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n").nth(1).unwrap();
    assert!(
        after_skip.starts_with("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:") || after_skip.starts_with("#EXT-X-MAP:"),
        "{delta}"
    );
    // A recording offers no delta and ignores the ask.
    s.end(EndedBy::Idle);
    let ended = s.snapshot(t(60));
    let closed = manifests::render_media_playlist(&ended, 0, WindowRequest::default(), Delta::SkipOlder).unwrap();
    assert!(!closed.contains("CAN-SKIP-UNTIL") && !closed.contains("EXT-X-SKIP"), "{closed}");
}

#[test]
fn chunks_of_the_segment_uploading_are_listed_as_parts() {
    use estuary_media::fmp4::chunks::ChunkReader;
    // The sample's segments are one chunk of about 4 s each: parts of under half a 10 s target.
    let mut s = channel_of(10);
    upload(&mut s, "v0/init_0.mp4", INIT, t(1));
    push(&mut s, 0, SEGMENTS[0], t(5));
    push(&mut s, 1, SEGMENTS[1], t(9));
    // The next two numbers of the variant's names continue it; others do not.
    assert!(s.open_upload("v0/seg_00004.m4s").is_none(), "three ahead");
    assert!(s.open_upload("v1/seg_00002.m4s").is_none(), "another folder");
    assert!(s.open_upload("v0/part_00002.m4s").is_none(), "another name");
    let open = s.open_upload("v0/seg_00002.m4s").expect("the next segment continues v0");
    assert_eq!(open.encoder_msn, 2);
    let mut reader = ChunkReader::new(open.init.clone(), 16 << 20);
    let chunks = reader.push(SEGMENTS[2]).unwrap();
    assert_eq!(chunks.len(), 1, "the sample's segments are one chunk each");
    let before = s.version;
    assert!(s.on_chunk(&open, &chunks[0], t(10), t(10) + Duration::from_millis(3)));
    assert!(s.version > before, "a part is a publication");

    let snap = s.snapshot(t(11));
    let text = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full).unwrap();
    let epoch = snap.slots[0].epoch;
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=4.000\n"), "{text}");
    // Chunks as long as a 4 s target's segments make no parts worth offering: classic.
    let mut classic = snap.clone();
    classic.settings.target_duration = Duration::from_secs(4);
    assert!(!classic.offers_parts() && snap.offers_parts());
    let plain = manifests::render_media_playlist(&classic, 0, WindowRequest::default(), Delta::Full).unwrap();
    assert!(!plain.contains("EXT-X-PART") && !plain.contains("PRELOAD-HINT"), "{plain}");
    assert!(text.ends_with(&format!(
        "v0/{epoch}/1.m4s\n#EXT-X-PART:DURATION=4.00000,URI=\"v0/{epoch}/2.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0/{epoch}/2.1.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"a0.m3u8\",LAST-MSN=2,LAST-PART=0\n"
    )), "{text}");
    assert_eq!(estuary_media::manifest::rules::media_playlist_problems(&text), Vec::<String>::new());
    assert!(snap.has_part(0, 2, 0) && !snap.has_part(0, 2, 1) && !snap.has_reached(0, 2));
    assert_eq!((snap.part_publish_latency.samples, snap.part_publish_latency.max_ms), (1, 3.0));

    // The encoder starts uploading segment 3 a moment before it lists segment 2: segment 2's parts
    // stay listed, as they were, until it does.
    let next = s.open_upload("v0/seg_00003.m4s").expect("two ahead of the last listed");
    let chunks = ChunkReader::new(next.init.clone(), 16 << 20).push(SEGMENTS[3]).unwrap();
    assert!(s.on_chunk(&next, &chunks[0], t(12), t(12)));
    let during =
        manifests::render_media_playlist(&s.snapshot(t(12)), 0, WindowRequest::default(), Delta::Full).unwrap();
    let open_part = format!("#EXT-X-PART:DURATION=4.00000,URI=\"v0/{epoch}/2.0.m4s\",INDEPENDENT=YES\n");
    assert!(during.contains(&open_part) && !during.contains("/3.0.m4s\",INDEPENDENT"), "{during}");
    assert_eq!(estuary_media::manifest::rules::media_playlist_problems(&during), Vec::<String>::new());

    // Once the playlist lists it, the segment is whole and keeps its part.
    push(&mut s, 2, SEGMENTS[2], t(13));
    let snap = s.snapshot(t(13));
    let text = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full).unwrap();
    assert!(
        text.contains(&format!("\"v0/{epoch}/2.0.m4s\",INDEPENDENT=YES\n#EXTINF:4.000000,\nv0/{epoch}/2.m4s\n")),
        "{text}"
    );
    // Then segment 3's part is listed, and the hint is its next (4 s of a 10 s target).
    assert!(
        text.contains(&format!("v0/{epoch}/2.m4s\n#EXT-X-PART:DURATION=4.00000,URI=\"v0/{epoch}/3.0.m4s\"")),
        "{text}"
    );
    assert!(text.contains(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0/{epoch}/3.1.m4s\"")), "{text}");
    // The whole segment is its parts' bytes.
    let whole = snap.slot(2).and_then(|slot| slot.part(0)).and_then(|p| p.bytes.clone()).unwrap();
    assert_eq!(whole, snap.low_latency.segment(0, 2).unwrap().parts[0].bytes);
    // A recording lists no parts.
    s.end(EndedBy::Idle);
    let closed =
        manifests::render_media_playlist(&s.snapshot(t(20)), 0, WindowRequest::default(), Delta::Full).unwrap();
    assert!(!closed.contains("EXT-X-PART"), "{closed}");
}
