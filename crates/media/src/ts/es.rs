//! PURE: MP4 samples as MPEG-TS elementary streams. H.264 and HEVC samples (length-prefixed NAL
//! units) become Annex B access units, each opened by an access unit delimiter, with the parameter
//! sets from the sample entry before every sync sample; AAC frames get an ADTS header each.

use bytes::{BufMut, Bytes, BytesMut};

use super::sample_aes::{self, SampleAes};
use crate::PackagingError;
use crate::codec;
use crate::mp4::boxes::{self, Reader, fourcc_str};

const START: [u8; 4] = [0, 0, 0, 1];

/// How one track's samples become its elementary stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elementary {
    /// H.264 (`stream_type` 0x1B) or HEVC (0x24).
    Video { hevc: bool, length_size: usize, parameter_sets: Bytes },
    /// AAC in ADTS (`stream_type` 0x0F).
    Aac { profile: u8, frequency_index: u8, channels: u8 },
}

impl Elementary {
    /// What a track's `stsd` box (header included) says; an error for codecs TS carries not here.
    pub fn of_stsd(stsd: &[u8]) -> Result<Elementary, PackagingError> {
        let payload = boxes::boxes(stsd).next().ok_or_else(|| PackagingError::malformed("empty stsd"))??.payload;
        let (kind, children) = codec::entry_boxes(payload)?;
        let config = |name: &[u8; 4]| -> Result<&[u8], PackagingError> {
            boxes::find(children, name)?.map(|b| b.payload).ok_or_else(|| {
                PackagingError::malformed(format!("'{}' without its '{}'", fourcc_str(kind), fourcc_str(*name)))
            })
        };
        match &kind {
            b"avc1" | b"avc3" => avc(config(b"avcC")?),
            b"hvc1" | b"hev1" => hevc(config(b"hvcC")?),
            b"mp4a" => aac(codec::esds_config(config(b"esds")?)?),
            _ => Err(PackagingError::UnsupportedCodec(format!("{} in MPEG-TS", fourcc_str(kind)))),
        }
    }

    /// `stream_type` in the PMT.
    pub fn stream_type(&self) -> u8 {
        match self {
            Elementary::Video { hevc: false, .. } => 0x1B,
            Elementary::Video { hevc: true, .. } => 0x24,
            Elementary::Aac { .. } => 0x0F,
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(self, Elementary::Video { .. })
    }

    /// How many bytes [`Elementary::write`] adds to a sample of `size` bytes holding `nal_units` NAL
    /// units (video) or one frame (audio); `sealed`: as counted in SAMPLE-AES ([`sample_aes::SLACK`]
    /// more for video, which the segment's last access unit makes exact).
    pub fn overhead(&self, sync: bool, nal_units: usize, sealed: bool) -> usize {
        match self {
            Elementary::Video { length_size, parameter_sets, hevc } => {
                aud(*hevc).len()
                    + nal_units * (START.len() - length_size)
                    + if sync { parameter_sets.len() } else { 0 }
                    + if sealed { sample_aes::SLACK } else { 0 }
            }
            Elementary::Aac { .. } => ADTS_LEN,
        }
    }

    /// Appends `sample` as its elementary stream to `out`, in SAMPLE-AES with `seal`.
    pub fn write(
        &self,
        sample: &[u8],
        sync: bool,
        seal: Option<&SampleAes>,
        out: &mut BytesMut,
    ) -> Result<(), PackagingError> {
        match self {
            Elementary::Video { hevc: true, .. } if seal.is_some() => {
                Err(PackagingError::UnsupportedCodec("HEVC in SAMPLE-AES MPEG-TS".into()))
            }
            Elementary::Video { hevc, length_size, parameter_sets } => {
                out.put_slice(aud(*hevc));
                if sync {
                    out.put_slice(parameter_sets);
                }
                // An access unit has one delimiter, first: the sample's own become filler data after
                // its pictures, of the same size, so the stream's length never depends on them.
                let mut fillers = 0;
                let mut rest = sample;
                while !rest.is_empty() {
                    let (len, body) = rest.split_at_checked(*length_size).ok_or_else(truncated_nal)?;
                    let len = len.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
                    let (nal, after) = body.split_at_checked(len).ok_or_else(truncated_nal)?;
                    if is_delimiter(*hevc, nal) {
                        fillers += 1;
                    } else {
                        out.put_slice(&START);
                        match seal {
                            Some(seal) => seal.write_nal(nal, out),
                            None => out.put_slice(nal),
                        }
                    }
                    rest = after;
                }
                for _ in 0..fillers {
                    out.put_slice(&START);
                    out.put_slice(filler(*hevc));
                }
                Ok(())
            }
            &Elementary::Aac { profile, frequency_index, channels } => {
                let len = sample.len() + ADTS_LEN;
                if len >= 1 << 13 {
                    return Err(PackagingError::malformed(format!("an AAC frame of {} bytes", sample.len())));
                }
                // ADTS header, no CRC: sync, MPEG-4, layer 0, protection absent; profile, rate, channels;
                // frame length (13 bits); buffer fullness 0x7FF (variable); one raw data block.
                out.put_slice(&[
                    0xFF,
                    0xF1,
                    ((profile - 1) << 6) | (frequency_index << 2) | (channels >> 2),
                    ((channels & 3) << 6) | (len >> 11) as u8,
                    (len >> 3) as u8,
                    (((len & 7) << 5) as u8) | 0x1F,
                    0xFC,
                ]);
                let at = out.len();
                out.put_slice(sample);
                if let Some(seal) = seal {
                    seal.seal_aac_frame(&mut out[at..]);
                }
                Ok(())
            }
        }
    }
}

const ADTS_LEN: usize = 7;

fn truncated_nal() -> PackagingError {
    PackagingError::malformed("a video sample's NAL unit runs past the sample")
}

/// The access unit delimiter opening each access unit (any picture type).
fn aud(hevc: bool) -> &'static [u8] {
    if hevc { &[0, 0, 0, 1, 0x46, 0x01, 0x50] } else { &[0, 0, 0, 1, 0x09, 0xF0] }
}

/// Whether `nal` is an access unit delimiter of the usual size (H.264 type 9, HEVC type 35).
fn is_delimiter(hevc: bool, nal: &[u8]) -> bool {
    match hevc {
        false => nal.len() == 2 && nal[0] & 0x1F == 9,
        true => nal.len() == 3 && (nal[0] >> 1) & 0x3F == 35,
    }
}

/// A filler data NAL unit as long as a delimiter (H.264 type 12, HEVC type 38), trailing bits only.
fn filler(hevc: bool) -> &'static [u8] {
    if hevc { &[0x4C, 0x01, 0x80] } else { &[0x0C, 0x80] }
}

/// Parameter sets as Annex B NAL units, in order.
fn annex_b(sets: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::new();
    for set in sets {
        out.put_slice(&START);
        out.put_slice(set);
    }
    out.freeze()
}

/// AVCDecoderConfigurationRecord: NAL length size, SPS and PPS.
fn avc(avcc: &[u8]) -> Result<Elementary, PackagingError> {
    let mut r = Reader::new(avcc, "avcC");
    r.skip(4)?;
    let length_size = usize::from(r.u8()? & 3) + 1;
    let mut sets = Vec::new();
    for mask in [0x1F, 0xFF] {
        let count = r.u8()? & mask;
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            sets.push(r.bytes(len)?);
        }
    }
    Ok(Elementary::Video { hevc: false, length_size, parameter_sets: annex_b(&sets) })
}

/// HEVCDecoderConfigurationRecord: NAL length size, and the VPS, SPS, PPS (and SEI) arrays.
fn hevc(hvcc: &[u8]) -> Result<Elementary, PackagingError> {
    let mut r = Reader::new(hvcc, "hvcC");
    r.skip(21)?;
    let length_size = usize::from(r.u8()? & 3) + 1;
    let arrays = r.u8()?;
    let mut sets = Vec::new();
    for _ in 0..arrays {
        r.skip(1)?;
        let count = r.u16()?;
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            sets.push(r.bytes(len)?);
        }
    }
    Ok(Elementary::Video { hevc: true, length_size, parameter_sets: annex_b(&sets) })
}

/// AudioSpecificConfig: object type, sampling frequency index, channel configuration.
fn aac((object_type, asc): (u8, &[u8])) -> Result<Elementary, PackagingError> {
    let unsupported = || PackagingError::UnsupportedCodec("this AAC configuration in ADTS".into());
    if object_type != 0x40 || asc.len() < 2 {
        return Err(unsupported());
    }
    let profile = asc[0] >> 3;
    let frequency_index = ((asc[0] & 7) << 1) | (asc[1] >> 7);
    let channels = (asc[1] >> 3) & 0xF;
    // ADTS carries the profiles 1-4 (AAC Main, LC, SSR, LTP), a table rate, 1-7 channels (HE-AAC
    // streams are signalled as LC with SBR implicit, as encoders do in ADTS).
    let profile = if profile == 5 || profile == 29 { 2 } else { profile };
    if !(1..=4).contains(&profile) || frequency_index > 12 || !(1..=7).contains(&channels) {
        return Err(unsupported());
    }
    Ok(Elementary::Aac { profile, frequency_index, channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_samples_become_annex_b_with_parameter_sets_on_sync_samples() {
        let avcc = [1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3];
        let es = avc(&avcc).unwrap();
        let sample = [0, 0, 0, 2, 0x65, 0xAA, 0, 0, 0, 1, 0x06];
        let mut out = BytesMut::new();
        es.write(&sample, true, None, &mut out).unwrap();
        let want = [
            &[0, 0, 0, 1, 0x09, 0xF0][..],
            &[0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3],
            &[0, 0, 0, 1, 0x65, 0xAA, 0, 0, 0, 1, 0x06],
        ]
        .concat();
        assert_eq!(&out[..], &want[..]);
        assert_eq!(out.len(), sample.len() + es.overhead(true, 2, false));
        let mut plain = BytesMut::new();
        es.write(&sample, false, None, &mut plain).unwrap();
        assert_eq!(plain.len(), sample.len() + es.overhead(false, 2, false));
        assert!(es.write(&[0, 0, 0, 9, 1], false, None, &mut plain).is_err(), "a NAL past the sample");
        // A sample's own delimiter: one delimiter first all the same, the sample's as filler after,
        // and the same length as without it counted.
        let with_aud = [0, 0, 0, 2, 0x09, 0x10, 0, 0, 0, 2, 0x41, 0xBB];
        let mut out = BytesMut::new();
        es.write(&with_aud, false, None, &mut out).unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0xBB, 0, 0, 0, 1, 0x0C, 0x80]);
        assert_eq!(out.len(), with_aud.len() + es.overhead(false, 2, false));
    }

    #[test]
    fn aac_frames_get_adts_headers() {
        // AAC-LC, 48 kHz (index 3), stereo.
        let es = aac((0x40, &[0x11, 0x90])).unwrap();
        assert_eq!(es, Elementary::Aac { profile: 2, frequency_index: 3, channels: 2 });
        let mut out = BytesMut::new();
        es.write(&[0xAB; 10], true, None, &mut out).unwrap();
        // A 17-byte frame: profile 2, index 3, 2 channels, length 17, fullness 0x7FF.
        assert_eq!(&out[..7], &[0xFF, 0xF1, 0x4C, 0x80, 0x02, 0x3F, 0xFC]);
        assert!(aac((0x40, &[0x11])).is_err());
        assert!(aac((0x6B, &[])).is_err(), "MP3 is not ADTS AAC");
    }
}
