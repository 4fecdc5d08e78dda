//! Sample entries (`stsd`) to codec facts players need: the RFC 6381 `CODECS` string, picture size, channels, rate.

use crate::PackagingError;
use crate::mp4::boxes::{self, FourCc, Reader, fourcc_str};

/// What kind of media a sample entry carries, with its basic parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaParams {
    Video { width: u16, height: u16 },
    Audio { channels: u16, sample_rate: u32 },
}

/// A described sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecInfo {
    /// The sample entry type (`avc1`, `mp4a`, ...).
    pub fourcc: FourCc,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`).
    pub codecs: String,
    pub params: MediaParams,
}

const VIDEO_ENTRIES: &[&FourCc] = &[b"avc1", b"avc3", b"hvc1", b"hev1", b"av01", b"vp09"];

/// Whether a sample entry of this type is a visual one.
pub(crate) fn is_video_entry(kind: &FourCc) -> bool {
    VIDEO_ENTRIES.contains(&kind)
}
const AUDIO_ENTRIES: &[&FourCc] = &[b"mp4a", b"ac-3", b"ec-3", b"Opus", b"fLaC"];

/// Describes the first sample entry of an `stsd` payload (the box without its header).
pub fn describe_stsd(stsd_payload: &[u8]) -> Result<CodecInfo, PackagingError> {
    let mut r = Reader::new(stsd_payload, "stsd");
    r.skip(4)?; // version, flags
    let count = r.u32()?;
    if count == 0 {
        return Err(PackagingError::malformed("stsd has no sample entry"));
    }
    let entry =
        boxes::boxes(r.rest()).next().ok_or_else(|| PackagingError::malformed("stsd has no sample entry"))??;
    if VIDEO_ENTRIES.contains(&&entry.kind) {
        describe_video(entry.kind, entry.payload)
    } else if AUDIO_ENTRIES.contains(&&entry.kind) {
        describe_audio(entry.kind, entry.payload)
    } else {
        Err(PackagingError::UnsupportedCodec(fourcc_str(entry.kind)))
    }
}

/// The first sample entry of an `stsd` payload: its type and the boxes it carries (`avcC`, `hvcC`,
/// `esds`, ...), for what needs the decoder configuration itself (the MPEG-TS muxer).
pub fn entry_boxes(stsd_payload: &[u8]) -> Result<(FourCc, &[u8]), PackagingError> {
    let entry = boxes::boxes(stsd_payload.get(8..).unwrap_or_default())
        .next()
        .ok_or_else(|| PackagingError::malformed("stsd has no sample entry"))??;
    let skip = if VIDEO_ENTRIES.contains(&&entry.kind) {
        VISUAL_ENTRY_LEN
    } else {
        let version = entry.payload.get(8..10).map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
        AUDIO_ENTRY_LEN + [0, 16, 36].get(usize::from(version)).copied().unwrap_or(0)
    };
    let children = entry.payload.get(skip..).ok_or_else(|| PackagingError::malformed("sample entry is too short"))?;
    Ok((entry.kind, children))
}

/// Bytes of a visual sample entry before its boxes.
const VISUAL_ENTRY_LEN: usize = 78;
/// Bytes of a version-0 audio sample entry before its boxes.
const AUDIO_ENTRY_LEN: usize = 28;

/// The fourcc of the first sample entry, for messages about tracks we skip.
pub fn first_entry_type(stsd_payload: &[u8]) -> Option<FourCc> {
    boxes::boxes(stsd_payload.get(8..)?).next()?.ok().map(|b| b.kind)
}

fn describe_video(kind: FourCc, entry: &[u8]) -> Result<CodecInfo, PackagingError> {
    let mut r = Reader::new(entry, "visual sample entry");
    r.skip(8 + 16)?; // reserved, data_reference_index, pre_defined/reserved
    let width = r.u16()?;
    let height = r.u16()?;
    r.skip(50)?; // resolutions, reserved, frame_count, compressorname, depth, pre_defined
    let children = r.rest();
    let config = |k: &FourCc| -> Result<&[u8], PackagingError> {
        boxes::find(children, k)?.map(|b| b.payload).ok_or_else(|| {
            PackagingError::malformed(format!("'{}' without its '{}' box", fourcc_str(kind), fourcc_str(*k)))
        })
    };
    let codecs = match &kind {
        b"avc1" | b"avc3" => avc(&kind, config(b"avcC")?)?,
        b"hvc1" | b"hev1" => hevc(&kind, config(b"hvcC")?)?,
        b"av01" => av1(config(b"av1C")?)?,
        _ => vp9(config(b"vpcC")?)?,
    };
    Ok(CodecInfo { fourcc: kind, codecs, params: MediaParams::Video { width, height } })
}

fn describe_audio(kind: FourCc, entry: &[u8]) -> Result<CodecInfo, PackagingError> {
    let mut r = Reader::new(entry, "audio sample entry");
    r.skip(8)?; // reserved, data_reference_index
    let qt_version = r.u16()?;
    r.skip(6)?;
    let channels = r.u16()?;
    r.skip(6)?; // sample size, compression id, packet size
    let sample_rate = r.u32()? >> 16;
    match qt_version {
        0 => {}
        1 => r.skip(16)?,
        2 => r.skip(36)?,
        v => return Err(PackagingError::malformed(format!("audio sample entry version {v}"))),
    }
    let children = r.rest();
    let (codecs, channels) = match &kind {
        b"mp4a" => {
            let esds = boxes::find(children, b"esds")?
                .ok_or_else(|| PackagingError::malformed("'mp4a' without its 'esds' box"))?;
            let (codecs, asc_channels) = mp4a(esds.payload)?;
            (codecs, asc_channels.unwrap_or(channels))
        }
        b"ac-3" => ("ac-3".to_owned(), channels),
        b"ec-3" => ("ec-3".to_owned(), channels),
        b"Opus" => ("opus".to_owned(), channels),
        _ => ("flac".to_owned(), channels),
    };
    Ok(CodecInfo { fourcc: kind, codecs, params: MediaParams::Audio { channels, sample_rate } })
}

/// `avc1.PPCCLL` from an AVCDecoderConfigurationRecord.
fn avc(kind: &FourCc, avcc: &[u8]) -> Result<String, PackagingError> {
    let b = avcc.get(1..4).ok_or_else(|| PackagingError::malformed("avcC is too short"))?;
    Ok(format!("{}.{:02x}{:02x}{:02x}", fourcc_str(*kind), b[0], b[1], b[2]))
}

/// `hvc1.1.6.L93.B0` from an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 annex E).
fn hevc(kind: &FourCc, hvcc: &[u8]) -> Result<String, PackagingError> {
    let mut r = Reader::new(hvcc, "hvcC");
    r.skip(1)?;
    let b = r.u8()?;
    let (space, tier, profile) = (b >> 6, (b >> 5) & 1, b & 0x1f);
    let compat = r.u32()?.reverse_bits();
    let constraints = r.bytes(6)?;
    let level = r.u8()?;
    let space = ["", "A", "B", "C"][usize::from(space)];
    let mut s =
        format!("{}.{space}{profile}.{compat:X}.{}{level}", fourcc_str(*kind), if tier == 1 { 'H' } else { 'L' });
    let used = constraints.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    for c in &constraints[..used] {
        s.push_str(&format!(".{c:X}"));
    }
    Ok(s)
}

/// `av01.P.LLT.DD` from an AV1CodecConfigurationRecord.
fn av1(av1c: &[u8]) -> Result<String, PackagingError> {
    let b = av1c.get(1..3).ok_or_else(|| PackagingError::malformed("av1C is too short"))?;
    let (profile, level) = (b[0] >> 5, b[0] & 0x1f);
    let tier = if b[1] & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (b[1] & 0x40 != 0, b[1] & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Ok(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// `vp09.PP.LL.DD` from a VPCodecConfigurationRecord (full box).
fn vp9(vpcc: &[u8]) -> Result<String, PackagingError> {
    let b = vpcc.get(4..7).ok_or_else(|| PackagingError::malformed("vpcC is too short"))?;
    Ok(format!("vp09.{:02}.{:02}.{:02}", b[0], b[1], b[2] >> 4))
}

/// The MPEG-4 object type and decoder-specific info (for AAC, the AudioSpecificConfig) of an
/// `esds` payload; the info is empty when absent.
pub fn esds_config(esds: &[u8]) -> Result<(u8, &[u8]), PackagingError> {
    let mut r = Reader::new(esds, "esds");
    r.skip(4)?; // version, flags
    expect_descriptor(&mut r, 0x03)?;
    r.skip(2)?; // ES_ID
    let flags = r.u8()?;
    if flags & 0x80 != 0 {
        r.skip(2)?;
    }
    if flags & 0x40 != 0 {
        let len = r.u8()?;
        r.skip(usize::from(len))?;
    }
    if flags & 0x20 != 0 {
        r.skip(2)?;
    }
    expect_descriptor(&mut r, 0x04)?;
    let object_type = r.u8()?;
    r.skip(12)?; // stream type, buffer size, max and average bitrate
    if object_type != 0x40 {
        return Ok((object_type, &[]));
    }
    expect_descriptor(&mut r, 0x05)?;
    Ok((object_type, r.rest()))
}

/// `mp4a.40.2` (and the channel count of the AudioSpecificConfig) from an `esds` payload.
fn mp4a(esds: &[u8]) -> Result<(String, Option<u16>), PackagingError> {
    let (object_type, asc) = esds_config(esds)?;
    if object_type != 0x40 {
        return Ok((format!("mp4a.{object_type:02X}"), None));
    }
    let mut bits = BitReader { data: asc, pos: 0 };
    let mut aot = bits.read(5)?;
    if aot == 31 {
        aot = 32 + bits.read(6)?;
    }
    let freq_index = bits.read(4)?;
    if freq_index == 15 {
        bits.read(24)?;
    }
    let channel_config = bits.read(4)?;
    let channels = match channel_config {
        0 => None,
        1..=6 => Some(channel_config as u16),
        7 => Some(8),
        _ => None,
    };
    Ok((format!("mp4a.40.{aot}"), channels))
}

/// Reads an MPEG-4 descriptor tag and its variable-length size.
fn expect_descriptor(r: &mut Reader<'_>, tag: u8) -> Result<usize, PackagingError> {
    let found = r.u8()?;
    if found != tag {
        return Err(PackagingError::malformed(format!("esds: expected descriptor {tag:#04x}, found {found:#04x}")));
    }
    let mut len = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok(len)
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: usize) -> Result<u32, PackagingError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or_else(|| PackagingError::malformed("AudioSpecificConfig is too short"))?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings() {
        assert_eq!(avc(b"avc1", &[1, 0x64, 0x00, 0x1f, 0xff]).unwrap(), "avc1.64001f");
        // Main profile, level 3.1, progressive-source flag set: the usual hvc1.1.6.L93.B0.
        let hvcc = [1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93];
        assert_eq!(hevc(b"hvc1", &hvcc).unwrap(), "hvc1.1.6.L93.B0");
        assert_eq!(av1(&[0x81, 0x08, 0x0c]).unwrap(), "av01.0.08M.08");
        assert_eq!(vp9(&[1, 0, 0, 0, 0, 31, 0x80]).unwrap(), "vp09.00.31.08");
        // ES_Descriptor > DecoderConfigDescriptor(0x40) > AudioSpecificConfig AAC-LC 48 kHz stereo.
        let esds = [
            0, 0, 0, 0, 0x03, 25, 0, 1, 0, 0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 1, 0xf4, 0, 0, 1, 0xf4, 0, 0x05, 2, 0x11,
            0x90,
        ];
        assert_eq!(mp4a(&esds).unwrap(), ("mp4a.40.2".to_owned(), Some(2)));
        assert!(mp4a(&esds[..10]).is_err());
    }

    #[test]
    fn unsupported_entries_are_named() {
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend_from_slice(&[0, 0, 0, 16, b'm', b'p', b'4', b'v', 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(describe_stsd(&stsd), Err(PackagingError::UnsupportedCodec("mp4v".into())));
        assert_eq!(first_entry_type(&stsd), Some(*b"mp4v"));
    }
}
