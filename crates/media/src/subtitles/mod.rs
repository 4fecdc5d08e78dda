//! PURE: subtitles as one model whatever they came from (a WebVTT sidecar, a `tx3g` or `wvtt` MP4
//! track): timed cues on the presentation timeline, and the WebVTT that players are given, whole
//! (DASH) or cut into the segments of the video's plan (HLS, with `X-TIMESTAMP-MAP`).

pub mod mp4text;
pub mod webvtt;

use std::fmt::Write;

use super::manifest::text::push_u64;

/// Most cues one subtitle track may have (a feature film has 1,000 to 2,000).
pub const MAX_CUES: usize = 100_000;

/// Why subtitles could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubtitleError {
    #[error("not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("not WebVTT: it does not start with \"WEBVTT\"")]
    NoSignature,
    #[error("not WebVTT: the first line is not \"WEBVTT\"")]
    BadSignature,
    #[error("more than {MAX_CUES} cues")]
    TooManyCues,
    #[error("a tx3g sample is shorter than its text length")]
    ShortTx3g,
    #[error("tx3g text: {0}")]
    Utf16(#[from] std::char::DecodeUtf16Error),
    #[error("a wvtt sample: {0}")]
    WvttSample(crate::PackagingError),
    #[error("a wvtt cue: {0}")]
    WvttCue(crate::PackagingError),
}

/// A subtitle track as players see it (`s0`, `s1`, ...).
#[derive(Debug, Clone)]
pub struct SubtitleRendition {
    pub index: u16,
    /// BCP 47.
    pub language: Option<String>,
    /// The label players show.
    pub name: String,
    pub subtitles: std::sync::Arc<Subtitles>,
}

impl SubtitleRendition {
    /// Labels a track: its given name, else its language, else `Subtitles`, numbered after the first.
    pub fn new(index: u16, name: Option<String>, language: Option<String>, subtitles: Subtitles) -> Self {
        let name = name.or_else(|| language.clone()).unwrap_or_else(|| match index {
            0 => "Subtitles".to_owned(),
            i => format!("Subtitles {}", i + 1),
        });
        SubtitleRendition { index, language, name, subtitles: std::sync::Arc::new(subtitles) }
    }
}

/// One cue, in milliseconds of the presentation timeline (edit lists applied, 0 at the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The WebVTT cue identifier, when it has one.
    pub id: Option<String>,
    /// WebVTT cue settings (`align:start line:10%`), or empty.
    pub settings: String,
    /// The cue text, WebVTT-safe: no blank lines, no `-->`.
    pub text: String,
}

/// A subtitle track: its cues in start order, and the `STYLE` and `REGION` blocks every WebVTT
/// file made from it repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subtitles {
    pub header_blocks: Vec<String>,
    pub cues: Vec<Cue>,
}

impl Subtitles {
    /// Sorts the cues by start (WebVTT wants them in order; MP4 samples may not be).
    pub fn new(header_blocks: Vec<String>, mut cues: Vec<Cue>) -> Subtitles {
        cues.sort_by_key(|c| (c.start_ms, c.end_ms));
        Subtitles { header_blocks, cues }
    }

    pub fn memory_bytes(&self) -> usize {
        let cue = |c: &Cue| c.text.len() + c.settings.len() + c.id.as_ref().map_or(0, String::len) + 96;
        self.cues.iter().map(cue).sum::<usize>() + self.header_blocks.iter().map(String::len).sum::<usize>()
    }

    /// The cues showing at some time in `[start_ms, end_ms)`: a cue that spans a segment bound is in
    /// both segments (players drop the repeat, as the HLS spec expects).
    pub fn cues_between(&self, start_ms: u64, end_ms: u64) -> impl Iterator<Item = &Cue> {
        // Cues are sorted by start: every one that starts before `end_ms` is a candidate.
        let last = self.cues.partition_point(|c| c.start_ms < end_ms);
        self.cues[..last].iter().filter(move |c| c.end_ms > start_ms)
    }

    /// The whole track as one WebVTT file (DASH's `text/vtt` representation).
    pub fn write_whole(&self, out: &mut String) {
        self.write_header(out, None);
        self.cues.iter().for_each(|c| write_cue(out, c));
        out.push('\n');
    }

    /// One HLS WebVTT segment: the cues between `start_ms` and `end_ms`, and an `X-TIMESTAMP-MAP`
    /// that puts cue time 0 at `mpegts_zero` (the 90 kHz timestamp of presentation time 0 in the
    /// media segments it plays with). It ends with a blank line, as every block does: a reader that
    /// joins the segments into one stream (ffmpeg's HLS demuxer) must not read the next segment's
    /// `WEBVTT` line as more text of this one's last cue.
    pub fn write_segment(&self, out: &mut String, start_ms: u64, end_ms: u64, mpegts_zero: u64) {
        self.write_header(out, Some(mpegts_zero));
        self.cues_between(start_ms, end_ms).for_each(|c| write_cue(out, c));
        out.push('\n');
    }

    fn write_header(&self, out: &mut String, mpegts_zero: Option<u64>) {
        out.push_str("WEBVTT\n");
        if let Some(zero) = mpegts_zero {
            out.push_str("X-TIMESTAMP-MAP=MPEGTS:");
            push_u64(out, zero);
            out.push_str(",LOCAL:00:00:00.000\n");
        }
        for block in &self.header_blocks {
            out.push('\n');
            out.push_str(block);
            out.push('\n');
        }
    }
}

fn write_cue(out: &mut String, cue: &Cue) {
    out.push('\n');
    if let Some(id) = &cue.id {
        out.push_str(id);
        out.push('\n');
    }
    write_timestamp(out, cue.start_ms);
    out.push_str(" --> ");
    write_timestamp(out, cue.end_ms);
    if !cue.settings.is_empty() {
        out.push(' ');
        out.push_str(&cue.settings);
    }
    out.push('\n');
    out.push_str(&cue.text);
    out.push('\n');
}

/// `hh:mm:ss.ttt`.
pub fn write_timestamp(out: &mut String, ms: u64) {
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let _ = write!(out, "{hours:02}:{:02}:{:02}.{:03}", rest / 60_000, rest / 1000 % 60, rest % 1000);
}

/// Makes text safe as a WebVTT cue payload: line breaks normalised, blank lines and `-->` (which
/// would end the cue) removed, `&` and `<` escaped when the source is plain text (`tx3g`).
pub fn cue_text(raw: &str, plain: bool) -> String {
    let raw = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(raw.len());
    for line in raw.split('\n').map(str::trim_end).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        let line: String = line.chars().filter(|&c| c == '\t' || !c.is_control()).collect();
        let line = line.replace("-->", "->");
        if plain {
            out.push_str(&line.replace('&', "&amp;").replace('<', "&lt;"));
        } else {
            out.push_str(&line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_ms: u64, end_ms: u64, text: &str) -> Cue {
        Cue { start_ms, end_ms, id: None, settings: String::new(), text: text.into() }
    }

    #[test]
    fn segments_repeat_cues_that_span_their_bounds() {
        let subs = Subtitles::new(vec![], vec![cue(5000, 7000, "b"), cue(1000, 2000, "a"), cue(12000, 13000, "c")]);
        let texts = |a, b| subs.cues_between(a, b).map(|c| c.text.as_str()).collect::<Vec<_>>();
        assert_eq!(texts(0, 6000), ["a", "b"]);
        assert_eq!(texts(6000, 12000), ["b"]);
        assert_eq!(texts(12000, 16000), ["c"]);
        assert_eq!(texts(7000, 12000), Vec::<&str>::new());
    }

    #[test]
    fn writes_segments_with_a_timestamp_map() {
        let mut c = cue(61_500, 3_723_004, "<i>Hi</i>");
        c.id = Some("1".into());
        c.settings = "align:start".into();
        let subs = Subtitles::new(vec!["STYLE\n::cue { color: yellow }".into()], vec![c]);
        let mut out = String::new();
        subs.write_segment(&mut out, 60_000, 66_000, 900_000);
        assert_eq!(
            out,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\nSTYLE\n::cue { color: yellow }\n\n\
             1\n00:01:01.500 --> 01:02:03.004 align:start\n<i>Hi</i>\n\n"
        );
        let mut whole = String::new();
        subs.write_whole(&mut whole);
        assert!(whole.starts_with("WEBVTT\n\nSTYLE") && !whole.contains("X-TIMESTAMP-MAP"), "{whole}");
    }

    #[test]
    fn plain_text_is_made_safe() {
        assert_eq!(cue_text("a < b & c\r\n\r\n--> d\0\n", true), "a &lt; b &amp; c\n-> d");
        assert_eq!(cue_text("<b>x</b>\n\ny", false), "<b>x</b>\ny");
    }
}
