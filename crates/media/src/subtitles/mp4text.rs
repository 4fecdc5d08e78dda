//! PURE: subtitle tracks inside MP4 sources: 3GPP timed text (`tx3g`, what ffmpeg's `mov_text` and
//! most MP4 tools write) and WebVTT in ISOBMFF (`wvtt`, ISO/IEC 14496-30), sample by sample into cues.

use super::{Cue, SubtitleError, cue_text, webvtt};
use crate::mp4::boxes::{self, FourCc};

/// How a text track's samples are coded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFormat {
    /// `tx3g`: a 16-bit length, the text, then modifier boxes: `styl` gives bold, italic and
    /// underline (`<b>`, `<i>`, `<u>`); fonts, sizes and colours are left to the player.
    Tx3g,
    /// `wvtt`: `vttc` boxes (one per cue, with `iden`, `sttg`, `payl`) or an empty `vtte`; the sample
    /// entry's `vttC` gives the file header's `STYLE` and `REGION` blocks.
    Wvtt { header_blocks: Vec<String> },
}

/// The handlers a subtitle track may have.
pub const HANDLERS: [FourCc; 3] = [*b"text", *b"sbtl", *b"subt"];

/// The format of an `stsd` payload's first sample entry, when it is one estuary reads.
pub fn text_format(stsd_payload: &[u8]) -> Option<TextFormat> {
    let entry = boxes::boxes(stsd_payload.get(8..)?).next()?.ok()?;
    match &entry.kind {
        b"tx3g" => Some(TextFormat::Tx3g),
        b"wvtt" => {
            // SampleEntry: 6 reserved bytes and a data reference index, then boxes.
            let config = boxes::find(entry.payload.get(8..)?, b"vttC").ok().flatten();
            let header = config.map(|c| String::from_utf8_lossy(c.payload).into_owned());
            Some(TextFormat::Wvtt { header_blocks: header.as_deref().map(webvtt::header_blocks).unwrap_or_default() })
        }
        _ => None,
    }
}

/// The cues of one sample shown from `start_ms` to `end_ms`; none for an empty sample.
pub fn decode_sample(
    format: &TextFormat,
    sample: &[u8],
    start_ms: u64,
    end_ms: u64,
) -> Result<Vec<Cue>, SubtitleError> {
    if end_ms <= start_ms {
        return Ok(Vec::new());
    }
    let cue = |id: Option<String>, settings: String, text: String| Cue { start_ms, end_ms, id, settings, text };
    match format {
        TextFormat::Tx3g => {
            let Some(len) = sample.get(..2).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))) else {
                return Ok(Vec::new());
            };
            let text = sample.get(2..2 + len).ok_or(SubtitleError::ShortTx3g)?;
            let styles = styles(&sample[2 + len..]);
            let text = cue_text(&styled(&decode_text(text)?, &styles), false);
            Ok(if text.is_empty() { Vec::new() } else { vec![cue(None, String::new(), text)] })
        }
        TextFormat::Wvtt { .. } => {
            let mut cues = Vec::new();
            for b in boxes::boxes(sample) {
                let b = b.map_err(SubtitleError::WvttSample)?;
                if &b.kind != b"vttc" {
                    continue; // `vtte` (nothing shown) and `vtta` (comments)
                }
                let mut id = None;
                let (mut settings, mut text) = (String::new(), String::new());
                for child in boxes::boxes(b.payload) {
                    let child = child.map_err(SubtitleError::WvttCue)?;
                    let value = String::from_utf8_lossy(child.payload);
                    match &child.kind {
                        b"iden" => id = Some(value.lines().next().unwrap_or("").to_string()).filter(|i| !i.is_empty()),
                        b"sttg" => settings = value.split_whitespace().collect::<Vec<_>>().join(" "),
                        b"payl" => text = cue_text(&value, false),
                        _ => {}
                    }
                }
                if !text.is_empty() {
                    cues.push(cue(id.filter(|i| !i.contains("-->")), settings, text));
                }
            }
            Ok(cues)
        }
    }
}

/// A `styl` record: characters `start..end` in bold (1), italic (2) and/or underline (4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Style {
    start: usize,
    end: usize,
    flags: u8,
}

/// The records of the sample's `styl` box, in order and without overlaps (others are dropped).
fn styles(modifiers: &[u8]) -> Vec<Style> {
    let Some(styl) = boxes::boxes(modifiers).flatten().find(|b| &b.kind == b"styl") else { return Vec::new() };
    let count = styl.payload.get(..2).map_or(0, |c| usize::from(u16::from_be_bytes([c[0], c[1]])));
    let mut out: Vec<Style> = Vec::new();
    for record in styl.payload.get(2..).unwrap_or_default().chunks_exact(12).take(count) {
        let start = usize::from(u16::from_be_bytes([record[0], record[1]]));
        let end = usize::from(u16::from_be_bytes([record[2], record[3]]));
        let flags = record[6] & 0x07;
        if start < end && flags != 0 && out.last().is_none_or(|last| last.end <= start) {
            out.push(Style { start, end, flags });
        }
    }
    out
}

/// Plain text as WebVTT cue text: `&` and `<` escaped, the styled runs wrapped in `<b>`, `<i>`, `<u>`.
fn styled(text: &str, styles: &[Style]) -> String {
    const TAGS: [(u8, &str); 3] = [(1, "b"), (2, "i"), (4, "u")];
    let mut out = String::with_capacity(text.len() + 16 * styles.len());
    let mut open: Option<&Style> = None;
    let tags = |style: &Style, closing: bool| {
        let mut tags: Vec<&str> = TAGS.iter().filter(|(bit, _)| style.flags & bit != 0).map(|(_, t)| *t).collect();
        if closing {
            tags.reverse();
        }
        tags.iter().map(|t| format!("<{}{t}>", if closing { "/" } else { "" })).collect::<String>()
    };
    for (i, c) in text.chars().enumerate() {
        if let Some(style) = open.filter(|s| s.end == i) {
            out.push_str(&tags(style, true));
            open = None;
        }
        if let Some(style) = styles.iter().find(|s| s.start == i) {
            out.push_str(&tags(style, false));
            open = Some(style);
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            c => out.push(c),
        }
    }
    if let Some(style) = open {
        out.push_str(&tags(style, true));
    }
    out
}

/// tx3g text: UTF-8, or UTF-16 after a byte-order mark.
fn decode_text(bytes: &[u8]) -> Result<String, SubtitleError> {
    match bytes {
        [0xfe, 0xff, rest @ ..] | [0xff, 0xfe, rest @ ..] => {
            let big = bytes[0] == 0xfe;
            let units = rest
                .chunks_exact(2)
                .map(|u| if big { u16::from_be_bytes([u[0], u[1]]) } else { u16::from_le_bytes([u[0], u[1]]) });
            Ok(char::decode_utf16(units).collect::<Result<String, _>>()?)
        }
        _ => Ok(String::from_utf8_lossy(bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn tx3g_samples() {
        let mut sample = vec![0, 8];
        sample.extend_from_slice(b"a<b\n\nc&d");
        // Italic over "c&" (characters 5 and 6), bold and underlined "d" (to the end).
        let record = |start: u16, end: u16, flags: u8| {
            [&start.to_be_bytes()[..], &end.to_be_bytes(), &[0, 1, flags, 18, 255, 255, 255, 255]].concat()
        };
        sample.extend(boxed(b"styl", &[&[0, 2][..], &record(5, 7, 2), &record(7, 8, 5)].concat()));
        let cues = decode_sample(&TextFormat::Tx3g, &sample, 1000, 2500).unwrap();
        assert_eq!(cues.len(), 1);
        assert_eq!(
            (cues[0].start_ms, cues[0].end_ms, cues[0].text.as_str()),
            (1000, 2500, "a&lt;b\n<i>c&amp;</i><b><u>d</u></b>")
        );
        assert!(decode_sample(&TextFormat::Tx3g, &[0, 0], 0, 10).unwrap().is_empty());
        assert!(decode_sample(&TextFormat::Tx3g, &[0, 9, b'x'], 0, 10).is_err());
        let utf16 = [0, 6, 0xfe, 0xff, 0, b'h', 0, b'i'];
        assert_eq!(decode_sample(&TextFormat::Tx3g, &utf16, 0, 10).unwrap()[0].text, "hi");
    }

    #[test]
    fn wvtt_samples_and_entries() {
        let cue = [boxed(b"iden", b"7"), boxed(b"sttg", b"line:0"), boxed(b"payl", b"<i>Hi</i>")].concat();
        let sample = [boxed(b"vttc", &cue), boxed(b"vttc", &boxed(b"payl", b"two"))].concat();
        let format = TextFormat::Wvtt { header_blocks: Vec::new() };
        let cues = decode_sample(&format, &sample, 0, 40).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(
            (cues[0].id.as_deref(), cues[0].settings.as_str(), cues[0].text.as_str()),
            (Some("7"), "line:0", "<i>Hi</i>")
        );
        assert!(decode_sample(&format, &boxed(b"vtte", &[]), 0, 40).unwrap().is_empty());
        assert!(decode_sample(&format, b"\0\0\0\x63vttc", 0, 40).is_err());

        let entry =
            boxed(b"wvtt", &[&[0u8; 8][..], &boxed(b"vttC", b"WEBVTT\n\nSTYLE\n::cue { color: red }")].concat());
        let stsd = [&[0u8, 0, 0, 0, 0, 0, 0, 1][..], &entry].concat();
        assert_eq!(
            text_format(&stsd),
            Some(TextFormat::Wvtt { header_blocks: vec!["STYLE\n::cue { color: red }".into()] })
        );
        let tx3g = [&[0u8, 0, 0, 0, 0, 0, 0, 1][..], &boxed(b"tx3g", &[0; 38])].concat();
        assert_eq!(text_format(&tx3g), Some(TextFormat::Tx3g));
        assert_eq!(text_format(&[0, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
