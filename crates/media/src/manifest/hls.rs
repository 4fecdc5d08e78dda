//! PURE: the one HLS writer: multivariant and media playlists from the [model](super), appended to a
//! caller's buffer. Every `#EXT-X-STREAM-INF` and `#EXTINF` estuary serves is written here.
//!
//! Ours rather than `m3u8-rs`'s: that writer formats each segment through owned strings (and has no
//! LL-HLS tags, which issue 13 needs); see ARCHITECTURE.md.

use std::fmt::{self, Write};

use super::text::push_fixed;
use super::{MediaPlaylist, Multivariant, ObjectUri, PartialSegment, PlaylistType, ServerControl, Stream};

/// `EXT-X-MAP` in a playlist without `EXT-X-I-FRAMES-ONLY` needs version 6.
const VERSION: u32 = 6;
/// `EXT-X-SKIP` (a delta playlist) needs version 9.
const DELTA_VERSION: u32 = 9;
const AUDIO_GROUP: &str = "audio";
const SUBTITLES_GROUP: &str = "subs";

impl ObjectUri {
    fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        match self {
            ObjectUri::Vod(p) => p.write_from_playlist(out),
            ObjectUri::Live(p) => p.write_to(out),
        }
    }

    fn push_to(&self, out: &mut String) {
        let _ = self.write_to(out);
    }
}

impl fmt::Display for ObjectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// A quoted-string attribute value: no double quotes or line breaks allowed.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            f.write_char(if matches!(c, '"' | '\n' | '\r') { '\'' } else { c })?;
        }
        Ok(())
    }
}

/// The multivariant playlist. With an audio group, each video variant's `BANDWIDTH` and `CODECS`
/// include the group's; without one (audio-only, or audio muxed into the variants) each variant
/// stands alone.
pub fn write_multivariant(out: &mut String, m: &Multivariant<'_>) {
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some(key) = &m.session_key {
        super::protection::write_key(out, "#EXT-X-SESSION-KEY", key);
    }
    let alternates = !m.video.is_empty() && m.muxed_audio && !m.alternate_audio.is_empty();
    let audio_group = !m.video.is_empty() && (!m.muxed_audio || alternates);
    if audio_group {
        write_audio_media(out, m);
    }
    for s in &m.subtitles {
        let _ = write!(out, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLES_GROUP}\",NAME=\"{}\"", Quoted(s.name));
        if let Some(lang) = s.language {
            let _ = write!(out, ",LANGUAGE=\"{}\"", Quoted(lang));
        }
        // Subtitles are the viewer's choice: none is on by default; each may be picked by language.
        let _ = writeln!(out, ",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"{}{}\"", s.uri, m.query);
    }
    let subtitles = !m.subtitles.is_empty();
    if m.video.is_empty() {
        for s in &m.audio {
            write_variant(out, s, &[], m.query, Groups { audio: false, subtitles, alternate_bps: 0 });
        }
        return;
    }
    // Muxed (MPEG-TS): each variant carries the audio, so its BANDWIDTH and CODECS count it; with
    // alternates, a player that picks one still loads the variant's own audio, so BANDWIDTH counts
    // the largest alternate on top.
    let alternate_bps = m.alternate_audio.iter().map(|a| a.peak_bps).max().unwrap_or(0);
    for v in &m.video {
        write_variant(out, v, &m.audio, m.query, Groups { audio: audio_group, subtitles, alternate_bps });
    }
    write_i_frame_streams(out, &m.i_frames);
}

/// The `EXT-X-MEDIA` audio group. With muxed audio, the muxed rendition comes first with no URI
/// (it is in the variant's own segments), then the alternates with their audio-only playlists.
fn write_audio_media(out: &mut String, m: &Multivariant<'_>) {
    let alternates = if m.muxed_audio { &m.alternate_audio[..] } else { &[] };
    for (i, a) in m.audio.iter().chain(alternates).enumerate() {
        let _ = write!(out, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\"", Quoted(a.name));
        if let Some(lang) = a.language {
            let _ = write!(out, ",LANGUAGE=\"{}\"", Quoted(lang));
        }
        let _ = write!(out, ",DEFAULT={},AUTOSELECT=YES", if i == 0 { "YES" } else { "NO" });
        if let Some(channels) = a.channels {
            let _ = write!(out, ",CHANNELS=\"{channels}\"");
        }
        match m.muxed_audio && i == 0 {
            true => out.push('\n'),
            false => {
                let _ = writeln!(out, ",URI=\"{}.m3u8{}\"", a.id, m.query);
            }
        }
    }
}

/// The groups a variant names.
#[derive(Clone, Copy)]
struct Groups {
    audio: bool,
    subtitles: bool,
    /// Bits per second an alternate audio rendition may add to the variant's own.
    alternate_bps: u64,
}

fn write_i_frame_streams(out: &mut String, streams: &[super::IFrameStream<'_>]) {
    for i in streams {
        let _ = write!(out, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={}", i.peak_bps.max(1));
        if let Some(codecs) = i.stream.codecs {
            let _ = write!(out, ",CODECS=\"{codecs}\"");
        }
        if let Some((w, h)) = i.stream.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        let _ = writeln!(out, ",URI=\"{}\"", i.uri);
    }
}

/// An I-frame playlist (version 5: `EXT-X-MAP` with `EXT-X-I-FRAMES-ONLY`).
pub fn write_i_frame_playlist(out: &mut String, p: &super::IFramePlaylist) {
    let target = p.frames.iter().map(|f| f.duration.round() as u64).max().unwrap_or(1).max(1);
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:5\n#EXT-X-TARGETDURATION:{target}\n");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", p.media_sequence);
    if let Some(d) = p.discontinuity_sequence {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{d}");
    }
    if p.playlist_type == Some(PlaylistType::Vod) {
        out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    out.push_str("#EXT-X-I-FRAMES-ONLY\n");
    for (i, frame) in p.frames.iter().enumerate() {
        if frame.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(map) = frame.map {
            let _ = write!(out, "#EXT-X-MAP:URI=\"{}\"", map.uri);
            if let Some((len, offset)) = map.range {
                let _ = write!(out, ",BYTERANGE=\"{len}@{offset}\"");
            }
            out.push('\n');
        }
        if let Some(key) = p.protection.as_ref().filter(|_| i == 0) {
            super::protection::write_key(out, "#EXT-X-KEY", key);
        }
        out.push_str("#EXTINF:");
        push_fixed(out, frame.duration, 6);
        let range = frame.range;
        match p.whole_objects {
            true => {
                let _ = writeln!(out, ",\n{}", range.uri);
            }
            false => {
                let _ = writeln!(out, ",\n#EXT-X-BYTERANGE:{}@{}\n{}", range.len, range.offset, range.uri);
            }
        }
    }
    if p.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
}

/// One `#EXT-X-STREAM-INF` and its URI; `audio` is what the variant plays with: the group named by
/// `AUDIO` (`groups.audio`), or the audio muxed into it.
fn write_variant(out: &mut String, s: &Stream<'_>, audio: &[Stream<'_>], query: &str, groups: Groups) {
    let audio_peak = audio.iter().map(|a| a.peak_bps).max().unwrap_or(0);
    let audio_average = audio.iter().map(|a| a.average_bps).max().unwrap_or(0);
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
        (s.peak_bps + audio_peak + groups.alternate_bps).max(1),
        (s.average_bps + audio_average).max(1)
    );
    // The variant's own codec plus every distinct codec of its audio group.
    let mut codecs = s.codecs.into_iter().chain(audio.iter().filter_map(|a| a.codecs)).peekable();
    if codecs.peek().is_some() {
        out.push_str(",CODECS=\"");
        let mut written: Vec<&str> = Vec::with_capacity(2);
        for c in codecs {
            if !written.contains(&c) {
                if !written.is_empty() {
                    out.push(',');
                }
                out.push_str(c);
                written.push(c);
            }
        }
        out.push('"');
    }
    if let Some((w, h)) = s.resolution {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    if let Some((num, den)) = s.frame_rate.filter(|&(_, den)| den > 0) {
        let _ = write!(out, ",FRAME-RATE={:.3}", f64::from(num) / f64::from(den));
    }
    if groups.audio && !audio.is_empty() {
        let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
    }
    if groups.subtitles {
        let _ = write!(out, ",SUBTITLES=\"{SUBTITLES_GROUP}\"");
    }
    let _ = writeln!(out, "\n{}.m3u8{query}", s.id);
}

/// A media playlist.
pub fn write_media_playlist(out: &mut String, p: &MediaPlaylist) {
    // The lowest version that has what the playlist uses: float durations need 3, `KEYFORMAT` 5,
    // `EXT-X-MAP` 6.
    let version = match p.skipped_segments {
        Some(_) => DELTA_VERSION,
        None if p.segments.iter().any(|s| s.map.is_some()) || p.part_target.is_some() => VERSION,
        None if p
            .protection
            .iter()
            .chain(p.segments.iter().filter_map(|s| s.key.as_ref()))
            .any(|k| k.names_keyformat()) =>
        {
            5
        }
        None => 3,
    };
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{}\n", p.target_duration);
    if let Some(control) = p.server_control {
        write_server_control(out, control);
    }
    if let Some(target) = p.part_target {
        out.push_str("#EXT-X-PART-INF:PART-TARGET=");
        push_fixed(out, target, 3);
        out.push('\n');
    }
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", p.media_sequence);
    if let Some(d) = p.discontinuity_sequence {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{d}");
    }
    match p.playlist_type {
        Some(PlaylistType::Vod) => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
        Some(PlaylistType::Event) => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        None => {}
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some(key) = &p.protection {
        super::protection::write_key(out, "#EXT-X-KEY", key);
    }
    if let Some(skipped) = p.skipped_segments {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    for s in &p.segments {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(map) = s.map {
            out.push_str("#EXT-X-MAP:URI=\"");
            map.push_to(out);
            out.push_str("\"\n");
        }
        if let Some(pdt) = s.program_date_time {
            out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
            super::write_iso_time(out, pdt);
            out.push('\n');
        }
        if let Some(key) = &s.key {
            super::protection::write_key(out, "#EXT-X-KEY", key);
        }
        s.parts.iter().for_each(|part| write_part(out, part));
        out.push_str("#EXTINF:");
        push_fixed(out, s.duration, 6);
        out.push_str(",\n");
        if s.gap {
            out.push_str("#EXT-X-GAP\n");
        }
        s.uri.push_to(out);
        out.push('\n');
    }
    if let Some(key) = p.open_parts.first().and(p.open_key.as_ref()) {
        super::protection::write_key(out, "#EXT-X-KEY", key);
    }
    p.open_parts.iter().for_each(|part| write_part(out, part));
    if let Some(hint) = p.preload_hint {
        out.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"");
        hint.push_to(out);
        out.push_str("\"\n");
    }
    for report in &p.rendition_reports {
        out.push_str("#EXT-X-RENDITION-REPORT:URI=\"");
        report.uri.push_to(out);
        let _ = write!(out, "\",LAST-MSN={}", report.last_msn);
        if let Some(part) = report.last_part {
            let _ = write!(out, ",LAST-PART={part}");
        }
        out.push('\n');
    }
    if p.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
}

fn write_server_control(out: &mut String, control: ServerControl) {
    let mut attributes = Vec::with_capacity(3);
    if control.can_block_reload {
        attributes.push(("CAN-BLOCK-RELOAD", None));
    }
    if let Some(until) = control.can_skip_until {
        attributes.push(("CAN-SKIP-UNTIL", Some(until)));
    }
    if let Some(hold_back) = control.part_hold_back {
        attributes.push(("PART-HOLD-BACK", Some(hold_back)));
    }
    for (i, (name, value)) in attributes.iter().enumerate() {
        out.push_str(if i == 0 { "#EXT-X-SERVER-CONTROL:" } else { "," });
        out.push_str(name);
        out.push('=');
        match value {
            Some(secs) => push_fixed(out, *secs, 3),
            None => out.push_str("YES"),
        }
    }
    if !attributes.is_empty() {
        out.push('\n');
    }
}

fn write_part(out: &mut String, part: &PartialSegment) {
    out.push_str("#EXT-X-PART:DURATION=");
    push_fixed(out, part.duration, 5);
    out.push_str(",URI=\"");
    part.uri.push_to(out);
    out.push('"');
    if part.independent {
        out.push_str(",INDEPENDENT=YES");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::{MediaSegment, ServerControl};
    use super::*;
    use crate::mp4::TrackKind;
    use crate::url::{Container, LivePath};

    fn stream(id: &str, codecs: &'static str, bps: u64) -> Stream<'static> {
        let id = id.parse().unwrap();
        let kind = if codecs.starts_with("mp4a") { TrackKind::Audio } else { TrackKind::Video };
        Stream {
            id,
            kind,
            codecs: Some(codecs),
            peak_bps: bps,
            average_bps: bps / 2,
            resolution: None,
            frame_rate: None,
            channels: (kind == TrackKind::Audio).then_some(2),
            sample_rate: None,
            language: None,
            name: "Audio \"main\"",
        }
    }

    #[test]
    fn variants_carry_their_audio_group() {
        let m = Multivariant {
            video: vec![stream("v0", "avc1.64001f", 1000)],
            audio: vec![stream("a0", "mp4a.40.2", 100), stream("a1", "mp4a.40.2", 200)],
            muxed_audio: false,
            alternate_audio: Vec::new(),
            query: "?start=1.000",
            i_frames: Vec::new(),
            subtitles: Vec::new(),
            session_key: None,
        };
        let mut out = String::new();
        write_multivariant(&mut out, &m);
        assert!(out.contains("NAME=\"Audio 'main'\""), "{out}");
        assert!(out.contains("URI=\"a1.m3u8?start=1.000\""), "{out}");
        assert!(out.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=1200,AVERAGE-BANDWIDTH=600,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\nv0.m3u8?start=1.000\n"
        ));
        // Audio muxed into the variant (MPEG-TS): counted in its BANDWIDTH and CODECS, no group.
        let mut muxed = String::new();
        let audio = vec![m.audio[0].clone()];
        write_multivariant(&mut muxed, &Multivariant { muxed_audio: true, audio, ..m.clone() });
        assert!(!muxed.contains("#EXT-X-MEDIA") && !muxed.contains("AUDIO="), "{muxed}");
        assert!(
            muxed.contains("BANDWIDTH=1100,AVERAGE-BANDWIDTH=550,CODECS=\"avc1.64001f,mp4a.40.2\"\nv0.m3u8"),
            "{muxed}"
        );
        // Muxed audio with an alternate: both in one group, the muxed one with no URI (it is in the
        // variant's segments), the alternate with its audio-only playlist; BANDWIDTH counts both.
        let (first, second) = (m.audio[0].clone(), m.audio[1].clone());
        let alternate_audio = vec![second];
        let mut alt = String::new();
        write_multivariant(
            &mut alt,
            &Multivariant { muxed_audio: true, audio: vec![first], alternate_audio, ..m.clone() },
        );
        let group: Vec<&str> = alt.lines().filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO")).collect();
        assert_eq!(group.len(), 2, "{alt}");
        assert!(group[0].contains("DEFAULT=YES") && !group[0].contains("URI="), "{alt}");
        assert!(
            group[1].contains("DEFAULT=NO,AUTOSELECT=YES") && group[1].ends_with("URI=\"a1.m3u8?start=1.000\""),
            "{alt}"
        );
        assert!(
            alt.contains("BANDWIDTH=1300,AVERAGE-BANDWIDTH=550,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\n"),
            "{alt}"
        );
        // A subtitle group: offered off by default, named by every variant (muxed or audio-only too).
        let subtitles = vec![super::super::SubtitleTrack {
            index: 0,
            uri: ObjectUri::Vod(crate::url::VodPath::SubtitlePlaylist(0, Container::Ts)),
            language: Some("fr"),
            name: "Fran\u{e7}ais",
            bandwidth: 100,
        }];
        let audio = vec![m.audio[0].clone()];
        let mut subbed = String::new();
        write_multivariant(&mut subbed, &Multivariant { muxed_audio: true, audio, subtitles, ..m.clone() });
        assert!(subbed.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Fran\u{e7}ais\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"s0.m3u8?start=1.000\"\n"
        ), "{subbed}");
        assert!(subbed.contains("CODECS=\"avc1.64001f,mp4a.40.2\",SUBTITLES=\"subs\"\nv0.m3u8"), "{subbed}");
    }

    #[test]
    fn live_playlists_carry_maps_gaps_and_control() {
        let v0 = "v0".parse().unwrap();
        let segment = |msn, gap| MediaSegment {
            duration: 2.0,
            uri: ObjectUri::Live(LivePath::Segment(v0, 5, msn, Container::Fmp4)),
            map: (msn == 10).then_some(ObjectUri::Live(LivePath::Init(v0, 5))),
            discontinuity: false,
            program_date_time: Some(std::time::SystemTime::UNIX_EPOCH),
            gap,
            parts: Vec::new(),
            key: None,
        };
        let p = MediaPlaylist {
            target_duration: 2,
            media_sequence: 10,
            discontinuity_sequence: Some(0),
            playlist_type: None,
            server_control: Some(ServerControl { can_block_reload: true, ..Default::default() }),
            part_target: None,
            skipped_segments: None,
            segments: vec![segment(10, false), segment(11, true)],
            open_parts: Vec::new(),
            open_key: None,
            preload_hint: None,
            rendition_reports: Vec::new(),
            ended: false,
            protection: None,
        };
        let mut out = String::new();
        write_media_playlist(&mut out, &p);
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n\
             #EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"v0/5/init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000000,\nv0/5/10.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000000,\n#EXT-X-GAP\nv0/5/11.m4s\n"
        );
        // The parts of a segment that starts a key period: its key between the last whole segment
        // and them.
        let key = crate::manifest::SegmentEncryption::Aes128 { uri: "/keys/k.key".into() };
        let part =
            PartialSegment { duration: 0.5, uri: ObjectUri::Live(LivePath::Part(v0, 5, 12, 0)), independent: true };
        let open = MediaPlaylist { open_parts: vec![part], open_key: Some(key.clone()), ..p.clone() };
        let mut out = String::new();
        write_media_playlist(&mut out, &open);
        assert!(
            out.ends_with("v0/5/11.m4s\n#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k.key\"\n#EXT-X-PART:DURATION=0.50000,URI=\"v0/5/12.0.m4s\",INDEPENDENT=YES\n"),
            "{out}"
        );
        // No open parts: no key for them.
        let mut out = String::new();
        write_media_playlist(&mut out, &MediaPlaylist { open_key: Some(key), ..p });
        assert!(!out.contains("EXT-X-KEY"), "{out}");
    }
}
