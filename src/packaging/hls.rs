//! HLS rendering for VOD presentations: the master playlist and one media playlist per rendition (fMP4 segments).
//!
//! URL scheme, relative to the master: `v0.m3u8`, `v0/init.mp4`, `v0/1.m4s`.

use std::fmt::Write;

use crate::packaging::codec::MediaParams;
use crate::packaging::presentation::{Presentation, Rendition};

/// Segments are numbered from 1 in URLs (and as `EXT-X-MEDIA-SEQUENCE`), like DASH's default `startNumber`.
pub const FIRST_SEGMENT_NUMBER: usize = 1;

/// `EXT-X-MAP` in a playlist without `EXT-X-I-FRAMES-ONLY` needs version 6.
const VERSION: u32 = 6;
const AUDIO_GROUP: &str = "audio";

/// A quoted-string attribute value: no double quotes or line breaks allowed.
pub fn quoted(s: &str) -> String {
    s.chars().map(|c| if c == '"' || c == '\n' || c == '\r' { '\'' } else { c }).collect()
}

/// The variant's `CODECS`: its own codec plus every distinct codec of the audio group.
fn variant_codecs(video: &Rendition, audio: &[Rendition]) -> String {
    let mut codecs = vec![video.codecs.as_str()];
    for a in audio {
        if !codecs.contains(&a.codecs.as_str()) {
            codecs.push(&a.codecs);
        }
    }
    codecs.join(",")
}

pub fn master_playlist(p: &Presentation) -> String {
    let mut m = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if p.video.is_empty() {
        // Audio only: each audio rendition is a variant of its own.
        for a in &p.audio {
            let _ = writeln!(
                m,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"\n{}.m3u8",
                a.peak_bps, a.average_bps, a.codecs, a.id
            );
        }
        return m;
    }
    for (i, a) in p.audio.iter().enumerate() {
        let _ = write!(m, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\"", quoted(&a.name));
        if let Some(lang) = &a.language {
            let _ = write!(m, ",LANGUAGE=\"{}\"", quoted(lang));
        }
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = write!(m, ",DEFAULT={default},AUTOSELECT=YES");
        if let MediaParams::Audio { channels, .. } = a.params {
            let _ = write!(m, ",CHANNELS=\"{channels}\"");
        }
        let _ = writeln!(m, ",URI=\"{}.m3u8\"", a.id);
    }
    let audio_peak = p.audio.iter().map(|a| a.peak_bps).max().unwrap_or(0);
    let audio_average = p.audio.iter().map(|a| a.average_bps).max().unwrap_or(0);
    for v in &p.video {
        let _ = write!(
            m,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
            v.peak_bps + audio_peak,
            v.average_bps + audio_average,
            variant_codecs(v, &p.audio)
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(m, ",RESOLUTION={w}x{h}");
        }
        if let Some((num, den)) = v.frame_rate {
            let _ = write!(m, ",FRAME-RATE={:.3}", f64::from(num) / f64::from(den));
        }
        if !p.audio.is_empty() {
            let _ = write!(m, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        let _ = writeln!(m, "\n{}.m3u8", v.id);
    }
    m
}

pub fn media_playlist(p: &Presentation, r: &Rendition) -> String {
    let mut m = format!(
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{FIRST_SEGMENT_NUMBER}\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}/init.mp4\"\n",
        p.target_duration, r.id
    );
    for i in 0..r.segment_count() {
        let _ = writeln!(m, "#EXTINF:{:.6},\n{}/{}.m4s", r.segment_secs(i), r.id, i + FIRST_SEGMENT_NUMBER);
    }
    m.push_str("#EXT-X-ENDLIST\n");
    m
}
