//! PURE: reading WebVTT files (sidecars, and the `vttC` header of `wvtt` tracks) into [`Subtitles`].
//!
//! What a browser's parser skips, this skips too (a cue with a bad timing line, `NOTE` blocks),
//! and says how many it skipped; a file that is not WebVTT at all is an error.

use super::{Cue, MAX_CUES, SubtitleError, Subtitles, cue_text};

/// What reading a WebVTT file gave: the subtitles, and the line of each block it skipped.
#[derive(Debug)]
pub struct Parsed {
    pub subtitles: Subtitles,
    pub skipped_lines: Vec<usize>,
}

/// Parses a WebVTT file.
pub fn parse(bytes: &[u8]) -> Result<Parsed, SubtitleError> {
    let text = std::str::from_utf8(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let first = text.lines().next().unwrap_or("");
    let signature = first.strip_prefix("WEBVTT").ok_or(SubtitleError::NoSignature)?;
    if !(signature.is_empty() || signature.starts_with([' ', '\t'])) {
        return Err(SubtitleError::BadSignature);
    }
    let mut header_blocks = Vec::new();
    let mut cues = Vec::new();
    let mut skipped_lines = Vec::new();
    for (line, block) in blocks(&text).skip(1) {
        let first = block.lines().next().unwrap_or("");
        if is_keyword(first, "NOTE") {
            continue;
        }
        if !block.contains("-->") {
            // STYLE and REGION blocks belong before the first cue; anything else is not WebVTT.
            if cues.is_empty() && (is_keyword(first, "STYLE") || is_keyword(first, "REGION")) {
                header_blocks.push(block.to_string());
            } else {
                skipped_lines.push(line);
            }
            continue;
        }
        match parse_cue(block) {
            Some(cue) if cues.len() < MAX_CUES => cues.push(cue),
            Some(_) => return Err(SubtitleError::TooManyCues),
            None => skipped_lines.push(line),
        }
    }
    Ok(Parsed { subtitles: Subtitles::new(header_blocks, cues), skipped_lines })
}

/// The header of a `wvtt` sample entry (`vttC`): its `STYLE` and `REGION` blocks.
pub fn header_blocks(config: &str) -> Vec<String> {
    parse(config.as_bytes()).map(|p| p.subtitles.header_blocks).unwrap_or_default()
}

/// The 33-bit MPEG-2 timestamps `X-TIMESTAMP-MAP` counts in wrap at this.
const MPEGTS_WRAP: i64 = 1 << 33;

/// A live WebVTT segment with its cues moved `secs` later on the media timeline, as the channel
/// moved its media (a new encoder session continuing the old one's timeline): the `MPEGTS` of its
/// `X-TIMESTAMP-MAP` grows by `secs` at 90 kHz (one is added, from 0, where the header had none).
/// Nothing else of the segment changes.
pub fn shift_timestamp_map(segment: &str, secs: f64) -> String {
    let ticks = (secs * 90_000.0).round() as i64;
    if ticks == 0 {
        return segment.to_owned();
    }
    let header_end = segment.find("\n\n").unwrap_or(segment.len());
    let mut out = String::with_capacity(segment.len() + 64);
    let mut mapped = false;
    for line in segment[..header_end].split_inclusive('\n') {
        match line.trim_end().strip_prefix("X-TIMESTAMP-MAP=") {
            Some(map) if !mapped => {
                let mut fields: Vec<String> = map.split(',').map(str::to_owned).collect();
                for field in &mut fields {
                    if let Some(value) = field.strip_prefix("MPEGTS:").and_then(|v| v.trim().parse::<i64>().ok()) {
                        *field = format!("MPEGTS:{}", (value + ticks).rem_euclid(MPEGTS_WRAP));
                    }
                }
                out.push_str("X-TIMESTAMP-MAP=");
                out.push_str(&fields.join(","));
                if line.ends_with('\n') {
                    out.push('\n');
                }
                mapped = true;
            }
            _ => out.push_str(line),
        }
    }
    if !mapped {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("X-TIMESTAMP-MAP=MPEGTS:{},LOCAL:00:00:00.000", ticks.rem_euclid(MPEGTS_WRAP)));
        if header_end == segment.len() {
            out.push('\n');
        }
    }
    out.push_str(&segment[header_end..]);
    out
}

/// `NOTE`, `STYLE`, `REGION`: the word alone or followed by white space.
fn is_keyword(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// The text's blocks (runs of non-blank lines), with the line number each starts on (from 1).
fn blocks(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    let mut line = 1;
    std::iter::from_fn(move || {
        // Skip blank lines.
        while text[at..].starts_with('\n') {
            at += 1;
            line += 1;
        }
        if at >= text.len() {
            return None;
        }
        let len = text[at..].find("\n\n").unwrap_or(text.len() - at);
        let block = (line, text[at..at + len].trim_end_matches('\n'));
        line += text[at..at + len].matches('\n').count();
        at += len;
        Some(block)
    })
}

/// An optional identifier line, the timing line, then the text.
fn parse_cue(block: &str) -> Option<Cue> {
    let mut lines = block.splitn(2, '\n');
    let first = lines.next()?;
    let (id, timing, text) = if first.contains("-->") {
        (None, first, lines.next().unwrap_or(""))
    } else {
        let mut rest = lines.next()?.splitn(2, '\n');
        (Some(first.to_string()), rest.next()?, rest.next().unwrap_or(""))
    };
    let (start, after) = timing.split_once("-->")?;
    let after = after.trim_start_matches([' ', '\t']);
    let (end, settings) = after.split_once([' ', '\t']).unwrap_or((after, ""));
    let (start_ms, end_ms) = (timestamp(start.trim_end_matches([' ', '\t']))?, timestamp(end)?);
    (end_ms > start_ms).then(|| Cue {
        start_ms,
        end_ms,
        id,
        settings: settings.split_whitespace().collect::<Vec<_>>().join(" "),
        text: cue_text(text, false),
    })
}

/// `hh:mm:ss.ttt` (hours of two or more digits) or `mm:ss.ttt`, in milliseconds.
fn timestamp(s: &str) -> Option<u64> {
    let (clock, millis) = s.split_once('.')?;
    let digits = |s: &str, len: Option<usize>| {
        let ok = !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
        (ok && len.is_none_or(|l| s.len() == l)).then(|| s.parse::<u64>().ok()).flatten()
    };
    let millis = digits(millis, Some(3))?;
    let mut parts = clock.split(':').rev();
    let seconds = digits(parts.next()?, Some(2)).filter(|&s| s < 60)?;
    let minutes = digits(parts.next()?, Some(2)).filter(|&m| m < 60)?;
    let hours = match parts.next() {
        Some(h) if h.len() >= 2 => digits(h, None)?,
        Some(_) => return None,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cues_ids_settings_and_styles() {
        let file = "\u{feff}WEBVTT - a title\r\nKind: captions\r\n\r\nSTYLE\r\n::cue { color: lime }\r\n\r\n\
                    NOTE a note\r\n\r\nintro\r\n00:01.000 --> 00:03.500 align:start  line:0\r\n<v Bob>Hello</v>\r\nthere\r\n\r\n\
                    01:00:00.000 --> 01:00:02.000\r\nlater\r\n";
        let p = parse(file.as_bytes()).unwrap();
        assert!(p.skipped_lines.is_empty(), "{:?}", p.skipped_lines);
        assert_eq!(p.subtitles.header_blocks, ["STYLE\n::cue { color: lime }"]);
        let c = &p.subtitles.cues;
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].start_ms, c[0].end_ms, c[0].id.as_deref()), (1000, 3500, Some("intro")));
        assert_eq!(c[0].settings, "align:start line:0");
        assert_eq!(c[0].text, "<v Bob>Hello</v>\nthere");
        assert_eq!((c[1].start_ms, c[1].end_ms, c[1].id.as_deref()), (3_600_000, 3_602_000, None));
    }

    #[test]
    fn skips_bad_cues_and_refuses_what_is_not_webvtt() {
        let p = parse(b"WEBVTT\n\n00:01.000 --> 00:00.500\nbackwards\n\n1:02.000 --> 00:03.000\nbad\n\nstray\n\n00:04.000 --> 00:05.000\nok\n")
            .unwrap();
        assert_eq!(p.subtitles.cues.len(), 1);
        assert_eq!(p.skipped_lines, [3, 6, 9]);
        for bad in [&b"1\n00:01.000 --> 00:02.000\nx"[..], b"WEBVTTX\n", b"", b"WEBVTT\xff"] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn timestamp_maps_move_with_the_media() {
        let segment = "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:900000\n\n00:01.000 --> 00:02.000\nhi\n";
        assert_eq!(shift_timestamp_map(segment, 0.0), segment);
        assert_eq!(
            shift_timestamp_map(segment, 2.0),
            "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:1080000\n\n00:01.000 --> 00:02.000\nhi\n"
        );
        assert_eq!(
            shift_timestamp_map("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", 1.0),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:90000,LOCAL:00:00:00.000\n\n00:01.000 --> 00:02.000\nhi\n"
        );
        assert_eq!(shift_timestamp_map("WEBVTT", 1.0), "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:90000,LOCAL:00:00:00.000\n");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp("00:00.001"), Some(1));
        assert_eq!(timestamp("100:00:00.000"), Some(360_000_000));
        for bad in ["0:00.000", "00:60.000", "00:00.00", "00:00", "a0:00.000", "00:00:00:00.000"] {
            assert_eq!(timestamp(bad), None, "{bad}");
        }
    }
}
