//! PURE: what a pushed MPEG-TS segment carries, for the multivariant playlist: its PMT's streams,
//! and from the first PES of each, the H.264 SPS (profile, level, picture size) and the AAC ADTS
//! header (profile, channels, rate). Reads at most what it needs; anything it cannot read is left
//! out (the playlist then simply says less).

use std::collections::HashMap;

use super::PACKET;
use crate::nal::{Bits, skip_scaling_list};

/// The facts found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsFacts {
    /// RFC 6381 codecs, video first (`avc1.64001f`, `mp4a.40.2`).
    pub codecs: Vec<String>,
    pub resolution: Option<(u32, u32)>,
    pub channels: Option<u16>,
    pub sample_rate: Option<u32>,
}

/// PES bytes kept per stream: enough for the parameter sets at the start of a segment.
const KEEP: usize = 64 * 1024;

pub fn probe(ts: &[u8]) -> TsFacts {
    let mut pmt_pid = None;
    let mut streams: Vec<(u16, u8)> = Vec::new();
    let mut pes: HashMap<u16, Vec<u8>> = HashMap::new();
    for p in ts.chunks_exact(PACKET).filter(|p| p[0] == 0x47) {
        let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1FFF;
        let start = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let mut at = 4;
        if afc & 2 != 0 {
            at += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || at >= PACKET {
            continue;
        }
        let payload = &p[at..];
        if pid == 0 && start {
            // PAT: pointer, then the first program's PMT PID.
            let section = payload.get(1 + usize::from(payload[0])..).unwrap_or_default();
            pmt_pid = section.get(10..12).map(|b| u16::from_be_bytes([b[0], b[1]]) & 0x1FFF);
        } else if Some(pid) == pmt_pid && start && streams.is_empty() {
            streams = pmt_streams(payload.get(1 + usize::from(payload[0])..).unwrap_or_default());
        } else if let Some(&(_, _)) = streams.iter().find(|(s, _)| *s == pid) {
            let kept = pes.entry(pid).or_default();
            if (start || !kept.is_empty()) && kept.len() < KEEP {
                kept.extend_from_slice(payload);
            }
        }
    }
    let mut facts = TsFacts::default();
    // Video first, then audio, as CODECS lists them.
    for video in [true, false] {
        for &(pid, stream_type) in &streams {
            let Some(data) = pes.get(&pid).map(|d| pes_payload(d)) else { continue };
            match stream_type {
                0x1B if video => {
                    if let Some((codec, size)) = h264(data) {
                        facts.codecs.push(codec);
                        facts.resolution = facts.resolution.or(size);
                    }
                }
                0x0F if !video => {
                    if let Some((codec, channels, rate)) = adts(data) {
                        facts.codecs.push(codec);
                        facts.channels = facts.channels.or(Some(channels));
                        facts.sample_rate = facts.sample_rate.or(Some(rate));
                    }
                }
                _ => {}
            }
        }
    }
    facts
}

pub(super) fn pmt_streams(section: &[u8]) -> Vec<(u16, u8)> {
    let Some(len) = section.get(1..3).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]) & 0x0FFF)) else {
        return Vec::new();
    };
    let Some(info) = section.get(10..12).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]) & 0x0FFF)) else {
        return Vec::new();
    };
    let end = (3 + len).saturating_sub(4).min(section.len());
    let mut at = 12 + info;
    let mut streams = Vec::new();
    while at + 5 <= end {
        let pid = u16::from_be_bytes([section[at + 1], section[at + 2]]) & 0x1FFF;
        streams.push((pid, section[at]));
        at += 5 + usize::from(u16::from_be_bytes([section[at + 3], section[at + 4]]) & 0x0FFF);
    }
    streams
}

/// A PES packet's data after its header.
fn pes_payload(pes: &[u8]) -> &[u8] {
    match pes {
        [0, 0, 1, _, _, _, _, _, header_len, ..] => pes.get(9 + usize::from(*header_len)..).unwrap_or_default(),
        _ => &[],
    }
}

/// `avc1.PPCCLL` and the picture size from the first SPS of an Annex B stream.
fn h264(data: &[u8]) -> Option<(String, Option<(u32, u32)>)> {
    let at = data.windows(4).position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1F == 7)? + 3;
    let nal = data[at..].windows(3).position(|w| w == [0, 0, 1]).map_or(&data[at..], |end| &data[at..at + end]);
    let rbsp: Vec<u8> = crate::nal::unescape(nal.get(1..)?, usize::MAX);
    let codec = format!("avc1.{:02x}{:02x}{:02x}", rbsp.first()?, rbsp.get(1)?, rbsp.get(2)?);
    Some((codec, sps_size(&rbsp)))
}

/// The cropped picture size an SPS (RBSP, after its NAL header) describes.
fn sps_size(rbsp: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits::new(rbsp);
    b.skip(24)?;
    let profile = *rbsp.first()?;
    b.ue()?;
    let mut chroma = 1;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = b.ue()?;
        if chroma == 3 {
            b.flag()?;
        }
        b.ue()?;
        b.ue()?;
        b.flag()?;
        if b.flag()? {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if b.flag()? {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?;
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.flag()?;
            b.se()?;
            b.se()?;
            for _ in 0..b.ue()? {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?;
    b.flag()?;
    let width_mbs = b.ue()?.checked_add(1)?;
    let height_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = u32::from(b.flag()?);
    if frame_mbs_only == 0 {
        b.flag()?;
    }
    b.flag()?;
    let (mut crop_x, mut crop_y) = (0, 0);
    if b.flag()? {
        let (l, r, t, bo) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
        let (unit_x, unit_y) = match chroma {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        crop_x = l.checked_add(r)?.checked_mul(unit_x)?;
        crop_y = t.checked_add(bo)?.checked_mul(unit_y * (2 - frame_mbs_only))?;
    }
    let width = width_mbs.checked_mul(16)?.checked_sub(crop_x)?;
    let height = (2 - frame_mbs_only).checked_mul(height_units)?.checked_mul(16)?.checked_sub(crop_y)?;
    Some((width, height))
}

/// `mp4a.40.N`, channels and rate from the first ADTS header.
fn adts(data: &[u8]) -> Option<(String, u16, u32)> {
    let at = data.windows(2).position(|w| w[0] == 0xFF && w[1] & 0xF0 == 0xF0)?;
    let h = data.get(at..at + 7)?;
    let profile = (h[2] >> 6) + 1;
    let rate = [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350]
        .get(usize::from((h[2] >> 2) & 0xF))
        .copied()?;
    let channels = u16::from(((h[2] & 1) << 2) | (h[3] >> 6));
    Some((format!("mp4a.40.{profile}"), channels, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_samples_sps_says_640x360() {
        // The bundled sample's avcC: version, profile, compatibility, level, length size, SPS count,
        // then the SPS's length and bytes.
        let init = include_bytes!("../../../../assets/sample/hls/init.mp4");
        let at = init.windows(4).position(|w| w == b"avcC").unwrap() + 4;
        let len = usize::from(u16::from_be_bytes([init[at + 6], init[at + 7]]));
        let sps = &init[at + 8..at + 8 + len];
        let mut annex_b = vec![0, 0, 0, 1];
        annex_b.extend_from_slice(sps);
        assert_eq!(h264(&annex_b), Some(("avc1.64001e".to_owned(), Some((640, 360)))));
    }

    #[test]
    fn any_prefix_or_garbage_is_read_without_panicking() {
        use crate::ts::es::Elementary;
        use crate::ts::mux::{AUDIO_PID, VIDEO_PID};
        use crate::ts::segment::{SampleTimes, TrackIn, mux};
        let init = include_bytes!("../../../../assets/sample/hls/init.mp4");
        let at = init.windows(4).position(|w| w == b"avcC").unwrap() + 4;
        let len = usize::from(u16::from_be_bytes([init[at + 6], init[at + 7]]));
        let sets = [&[0u8, 0, 0, 1][..], &init[at + 8..at + 8 + len]].concat();
        let video = Elementary::Video { hevc: false, length_size: 4, parameter_sets: sets.into() };
        let audio = Elementary::Aac { profile: 2, frequency_index: 3, channels: 2 };
        let frame = [0u8, 0, 0, 2, 0x65, 0x88];
        let sample = |dts| SampleTimes { dts, pts: dts, size: 6, sync: true };
        let tracks = [
            TrackIn {
                es: &video,
                pid: VIDEO_PID,
                pcr: true,
                samples: vec![sample(900_000)],
                data: vec![&frame],
                sealed: false,
            },
            TrackIn {
                es: &audio,
                pid: AUDIO_PID,
                pcr: false,
                samples: vec![sample(900_000)],
                data: vec![&[1; 20]],
                sealed: false,
            },
        ];
        let ts = mux(&tracks, 0, &[], None).unwrap();
        let facts = probe(&ts);
        assert_eq!((facts.codecs.join(","), facts.resolution), ("avc1.64001e,mp4a.40.2".into(), Some((640, 360))));
        for end in 0..ts.len() {
            probe(&ts[..end]);
        }
        let mut garbage = ts.to_vec();
        for (i, b) in garbage.iter_mut().enumerate().skip(4) {
            *b = b.wrapping_mul(31).wrapping_add(i as u8);
        }
        probe(&garbage);
        for seed in 0..64u8 {
            let rbsp: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(seed).wrapping_add(seed)).collect();
            sps_size(&rbsp);
        }
    }

    #[test]
    fn adts_headers_say_profile_rate_and_channels() {
        assert_eq!(adts(&[0xFF, 0xF1, 0x4C, 0x80, 0x02, 0x3F, 0xFC]), Some(("mp4a.40.2".into(), 2, 48_000)));
        assert_eq!(adts(&[1, 2, 3]), None);
    }
}
