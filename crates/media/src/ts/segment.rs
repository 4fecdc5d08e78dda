//! PURE: one MPEG-TS segment of a VOD variant from the samples of its tracks (the video and the
//! audio muxed into it): PAT and PMT, then PES packets interleaved by decode time. A video PES per
//! frame, carrying the PCR; audio frames [`AUDIO_FRAMES_PER_PES`] to a PES. Timestamps are the
//! presentation timeline of the source (edit lists applied) plus [`TIME_OFFSET`], the same for
//! every track and segment, so a player sees one continuous stream.
//!
//! The continuity counters carry on from segment to segment: what a segment starts from is counted
//! from the sizes of the samples before it ([`packets`]), without reading them.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::es::Elementary;
use super::mux::{PMT_PID, Pes, PesShape, Stream, TsWriter, pes_capacity, pes_packets};
use super::sample_aes::{self, SampleAes};
use crate::PackagingError;
use crate::mp4::Track;

/// Added to every timestamp (90 kHz): 10 s, so that edit lists and the PCR lead never go below 0.
pub const TIME_OFFSET: i128 = 900_000;
/// How far the PCR runs ahead of the decode time of the PES it is sent with (90 kHz): 0.5 s, within
/// the one second the T-STD allows.
const PCR_LEAD: u64 = 45_000;
pub const AUDIO_FRAMES_PER_PES: usize = 4;

/// One track of a segment.
pub struct TrackIn<'a> {
    pub es: &'a Elementary,
    pub pid: u16,
    /// Carries the program's PCR (the video, else the audio).
    pub pcr: bool,
    /// Decode and presentation times (90 kHz), sizes and sync flags of the segment's samples.
    pub samples: Vec<SampleTimes>,
    /// The samples' bytes, in order (empty when only counting packets).
    pub data: Vec<&'a [u8]>,
    /// Encrypted in SAMPLE-AES (H.264 and AAC only), which adds [`sample_aes::SLACK`] bytes to
    /// each video sample.
    pub sealed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleTimes {
    pub dts: u64,
    pub pts: u64,
    pub size: usize,
    pub sync: bool,
}

/// A track's decode and presentation times in 90 kHz ticks, for every sample.
pub struct Timeline {
    timescale: i128,
    /// Added to a decode time (track ticks) for the presentation timeline: edit list and the
    /// smallest composition offset (so that no DTS passes its PTS).
    dts_shift: i128,
    pts_shift: i128,
}

impl Timeline {
    pub fn of(track: &Track, movie_timescale: u32) -> Timeline {
        let ts = i128::from(track.timescale.max(1));
        let delay = i128::from(track.edit.delay) * ts / i128::from(movie_timescale.max(1));
        let shift = delay - i128::from(track.edit.media_time);
        let min_cts = track.samples.cts.iter().copied().min().unwrap_or(0).min(0);
        Timeline { timescale: ts, dts_shift: shift + i128::from(min_cts), pts_shift: shift }
    }

    fn ticks_90k(&self, t: i128) -> u64 {
        // In 64 bits while the product fits (any time under about three years at 1 MHz).
        let scaled = match (i64::try_from(t).ok().and_then(|t| t.checked_mul(90_000)), i64::try_from(self.timescale)) {
            (Some(product), Ok(ts)) => i128::from(product / ts),
            _ => t * 90_000 / self.timescale,
        };
        (scaled + TIME_OFFSET).max(0) as u64
    }

    /// Times, size and sync flag of sample `i` of `track`.
    pub fn sample(&self, track: &Track, i: usize) -> SampleTimes {
        let s = &track.samples;
        let dts = i128::from(s.dts[i]);
        SampleTimes {
            dts: self.ticks_90k(dts + self.dts_shift),
            pts: self.ticks_90k(dts + self.pts_shift + i128::from(s.cts_offset(i))),
            size: s.sizes[i] as usize,
            sync: s.is_sync(i),
        }
    }

    pub fn samples(&self, track: &Track, range: Range<usize>) -> Vec<SampleTimes> {
        range.map(|i| self.sample(track, i)).collect()
    }
}

/// A PES of a track: which of its samples, and its header facts.
struct Unit {
    samples: Range<usize>,
    dts: u64,
    pts: u64,
    random_access: bool,
}

fn units(track: &TrackIn<'_>) -> Vec<Unit> {
    let per = if track.es.is_video() { 1 } else { AUDIO_FRAMES_PER_PES };
    (0..track.samples.len())
        .step_by(per)
        .map(|first| {
            let s = &track.samples[first];
            let random_access = !track.es.is_video() || s.sync;
            Unit { samples: first..(first + per).min(track.samples.len()), dts: s.dts, pts: s.pts, random_access }
        })
        .collect()
}

/// The stream id of a track's PES packets.
fn stream_id(es: &Elementary) -> u8 {
    if es.is_video() { 0xE0 } else { 0xC0 }
}

/// The segment's bytes. `counters` are each PID's continuity counter to start from
/// ([`packets`]); the PAT and PMT are one packet per segment, so theirs is `segment & 15`. The
/// tracks `sealed` are encrypted with `seal` (an error without it).
pub fn mux(
    tracks: &[TrackIn<'_>],
    segment: usize,
    counters: &[(u16, u8)],
    seal: Option<&SampleAes>,
) -> Result<Bytes, PackagingError> {
    let size: usize = tracks.iter().flat_map(|t| &t.samples).map(|s| s.size).sum();
    let mut start = counters.to_vec();
    start.extend([(0, (segment & 15) as u8), (PMT_PID, (segment & 15) as u8)]);
    let mut w = TsWriter::new(&start, size + size / 8 + 2 * super::PACKET);
    let unsealable = || PackagingError::UnsupportedCodec("this track in SAMPLE-AES MPEG-TS".into());
    let mut signalled = Vec::with_capacity(tracks.len());
    for t in tracks {
        match t.sealed {
            true => {
                let stream_type = sample_aes::stream_type(t.es).ok_or_else(unsealable)?;
                signalled.push((stream_type, sample_aes::pmt_descriptors(t.es), Some(seal.ok_or_else(unsealable)?)));
            }
            false => signalled.push((t.es.stream_type(), Vec::new(), None)),
        }
    }
    let streams: Vec<Stream<'_>> = tracks
        .iter()
        .zip(&signalled)
        .map(|(t, (stream_type, descriptors, _))| Stream { pid: t.pid, stream_type: *stream_type, descriptors })
        .collect();
    let pcr_pid = tracks.iter().find(|t| t.pcr).or(tracks.first()).map_or(0x1FFF, |t| t.pid);
    w.tables(&streams, pcr_pid);
    let all: Vec<Vec<Unit>> = tracks.iter().map(units).collect();
    // A sealed video track's packets as counted from sizes, and as written so far.
    let counted: Vec<usize> = tracks.iter().map(|t| if t.sealed { packets(t) } else { 0 }).collect();
    let mut written = vec![0usize; tracks.len()];
    let mut payload = BytesMut::new();
    for (t, u) in schedule(&all) {
        let (track, unit) = (&tracks[t], &all[t][u]);
        payload.clear();
        for i in unit.samples.clone() {
            let data = track.data.get(i).ok_or_else(|| PackagingError::malformed("a sample without its bytes"))?;
            track.es.write(data, track.samples[i].sync, signalled[t].2, &mut payload)?;
        }
        let shape = |payload: usize| PesShape {
            payload,
            dts_differs: unit.dts != unit.pts,
            pcr: track.pcr,
            random_access: unit.random_access,
        };
        if track.sealed && track.es.is_video() && u + 1 == all[t].len() {
            // The last access unit brings the track to the packets counted.
            let left = counted[t].saturating_sub(written[t]);
            let fill = filler_for(shape(payload.len()), left).ok_or_else(|| {
                PackagingError::malformed("a segment's slices grew past what SAMPLE-AES counts for them")
            })?;
            sample_aes::filler(fill, &mut payload);
        }
        written[t] += pes_packets(shape(payload.len()));
        w.pes(&Pes {
            pid: track.pid,
            stream_id: stream_id(track.es),
            pts: unit.pts,
            dts: unit.dts,
            pcr: track.pcr.then(|| unit.dts.saturating_sub(PCR_LEAD) * 300),
            random_access: unit.random_access,
            payload: &payload,
        });
    }
    Ok(w.finish().0)
}

/// The filler that makes a PES of this shape (its payload so far) take `packets` TS packets
/// exactly; `None` when it would not fit in them.
fn filler_for(pes: PesShape, packets: usize) -> Option<usize> {
    let fewer = if packets > 1 { pes_capacity(pes, packets - 1) + 1 } else { 0 };
    let fill = fewer.saturating_sub(pes.payload).max(sample_aes::FILLER_MIN);
    (packets > 0 && pes.payload + fill <= pes_capacity(pes, packets)).then_some(fill)
}

/// The order the PES packets of a segment go out in: interleaved by decode time, always the track
/// whose next PES decodes first. `(track, unit)` pairs.
fn schedule(all: &[Vec<Unit>]) -> Vec<(usize, usize)> {
    let mut next = vec![0usize; all.len()];
    let mut order = Vec::with_capacity(all.iter().map(Vec::len).sum());
    while let Some(t) = (0..all.len()).filter(|&t| next[t] < all[t].len()).min_by_key(|&t| all[t][next[t]].dts) {
        order.push((t, next[t]));
        next[t] += 1;
    }
    order
}

/// A keyframe of a segment as an I-frame playlist names it: where its PES lies in the segment
/// (bytes), and the sample it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    pub offset: u64,
    pub len: u64,
    pub sample: usize,
}

/// Where each keyframe of the first track (the video) lies in the clear segment [`mux`] writes for
/// these samples, found from their sizes alone (the same count as [`packets`]). Each keyframe's PES is
/// whole packets one after the other; the segment's PAT and PMT are its first two.
pub fn keyframes(tracks: &[TrackIn<'_>]) -> Vec<Keyframe> {
    let all: Vec<Vec<Unit>> = tracks.iter().map(units).collect();
    let mut at = 2 * super::PACKET as u64;
    let mut found = Vec::new();
    for (t, u) in schedule(&all) {
        let (track, unit) = (&tracks[t], &all[t][u]);
        let len = (unit_packets(track, unit) * super::PACKET) as u64;
        if t == 0 && track.es.is_video() && unit.random_access {
            found.push(Keyframe { offset: at, len, sample: unit.samples.start });
        }
        at += len;
    }
    found
}

fn unit_packets(track: &TrackIn<'_>, u: &Unit) -> usize {
    let payload: usize =
        track.samples[u.samples.clone()].iter().map(|s| s.size + track.es.overhead(s.sync, 0, track.sealed)).sum();
    pes_packets(PesShape { payload, dts_differs: u.dts != u.pts, pcr: track.pcr, random_access: u.random_access })
}

/// TS packets of `track`'s PID in a segment of these samples, counted from their sizes: exact for
/// AAC and for video whose NAL lengths take 4 bytes (as good as every MP4), where a sample's
/// elementary stream does not depend on how many NAL units it holds.
pub fn packets(track: &TrackIn<'_>) -> usize {
    units(track).iter().map(|u| unit_packets(track, u)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::PACKET;
    use crate::ts::mux::{AUDIO_PID, VIDEO_PID};

    fn video() -> Elementary {
        Elementary::Video { hevc: false, length_size: 4, parameter_sets: Bytes::from_static(&[0, 0, 0, 1, 0x67, 1]) }
    }

    fn aac() -> Elementary {
        Elementary::Aac { profile: 2, frequency_index: 3, channels: 2 }
    }

    #[test]
    fn tracks_interleave_by_decode_time_and_packet_counts_are_exact() {
        let (v, a) = (video(), aac());
        let frame = |n: u8| vec![0, 0, 0, 3, 0x65, n, n];
        let frames: Vec<Vec<u8>> = (0..5).map(frame).collect();
        let audio: Vec<Vec<u8>> = (0..9).map(|n| vec![n; 200]).collect();
        let video_samples: Vec<SampleTimes> = (0..5)
            .map(|i| SampleTimes { dts: 900_000 + i * 3600, pts: 903_600 + i * 3600, size: 7, sync: i == 0 })
            .collect();
        let vt = TrackIn {
            es: &v,
            pid: VIDEO_PID,
            pcr: true,
            samples: video_samples.clone(),
            data: frames.iter().map(Vec::as_slice).collect(),
            sealed: false,
        };
        let at = TrackIn {
            es: &a,
            pid: AUDIO_PID,
            pcr: false,
            samples: (0..9)
                .map(|i| SampleTimes { dts: 900_000 + i * 1920, pts: 900_000 + i * 1920, size: 200, sync: true })
                .collect(),
            data: audio.iter().map(Vec::as_slice).collect(),
            sealed: false,
        };
        let ts = mux(&[vt, at], 3, &[(VIDEO_PID, 7)], None).unwrap();
        let pids: Vec<u16> = ts.chunks(PACKET).map(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF).collect();
        assert_eq!(&pids[..2], &[0, PMT_PID], "the tables first");
        // 5 video PES of one packet; audio 4 + 4 + 1 frames of 207 bytes: 5 + 5 + 2 packets.
        assert_eq!(pids.iter().filter(|&&p| p == VIDEO_PID).count(), 5);
        assert_eq!(pids.iter().filter(|&&p| p == AUDIO_PID).count(), 12);
        let counted = |track: &TrackIn<'_>| packets(track);
        // Counted from the sizes alone, without the bytes.
        let vt = TrackIn { es: &v, pid: VIDEO_PID, pcr: true, samples: video_samples, data: Vec::new(), sealed: false };
        assert_eq!(counted(&vt), 5);
        // The video PID's counters go on from 7; the tables' from the segment number.
        let ccs: Vec<u8> = ts
            .chunks(PACKET)
            .filter(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF == VIDEO_PID)
            .map(|p| p[3] & 15)
            .collect();
        assert_eq!(ccs, [7, 8, 9, 10, 11]);
        assert_eq!(ts[3] & 15, 3);
        // The keyframe found from sizes is where the segment has it: the first video PES, after
        // the tables, starting with its PES header and saying random access.
        let frames = keyframes(&[
            vt,
            TrackIn { es: &a, pid: AUDIO_PID, pcr: false, samples: Vec::new(), data: Vec::new(), sealed: false },
        ]);
        assert_eq!(frames, [Keyframe { offset: 2 * PACKET as u64, len: PACKET as u64, sample: 0 }]);
        let packet = &ts[2 * PACKET..3 * PACKET];
        assert!(packet[1] & 0x40 != 0 && packet[5] & 0x40 != 0, "PUSI and random access");
        // Read back from the bytes (as live reads a pushed segment), the keyframe is the same range.
        let scanned = crate::ts::random_access::keyframes(&ts).unwrap();
        assert_eq!(scanned.tables, 2 * PACKET as u64, "PAT and PMT");
        let ranges: Vec<(u64, u64)> = scanned.keyframes.iter().map(|k| (k.offset, k.len)).collect();
        assert_eq!(ranges, frames.iter().map(|k| (k.offset, k.len)).collect::<Vec<_>>());
        assert_eq!(scanned.keyframes[0].pts, Some(903_600), "its PES header's PTS");
        assert_eq!(crate::ts::random_access::keyframes(&ts[PACKET..]), None, "no PAT first");
        // Audio joins the video in decode order: the first audio PES right after the first frame.
        assert_eq!(pids[2..5], [VIDEO_PID, AUDIO_PID, AUDIO_PID]);
    }

    #[test]
    fn sealed_segments_count_their_packets_from_sizes_alone() {
        let (v, a) = (video(), aac());
        let seal = SampleAes::new(&crate::cenc::ContentKey::new(crate::cenc::KeyId([2; 16]), [5; 16]), [0; 16]);
        // Slices of many sizes, each with an escape (00 00 03 01) that is escaped once more.
        let frames: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                let len = 30 + i as usize * 137;
                let mut nal: Vec<u8> =
                    (0..len).map(|j| [0, 0, 3, 1].get(j % 997).copied().unwrap_or((j as u8) | 1)).collect();
                nal[0] = if i == 0 { 0x65 } else { 0x41 };
                [&(len as u32).to_be_bytes()[..], &nal].concat()
            })
            .collect();
        let audio: Vec<Vec<u8>> = (0..50).map(|n| vec![n as u8; 10 + n * 7]).collect();
        let times = |i: u64, size: usize, sync: bool| SampleTimes {
            dts: 900_000 + i * 3000,
            pts: 903_000 + i * 3000,
            size,
            sync,
        };
        fn track<'a>(
            es: &'a Elementary,
            pid: u16,
            pcr: bool,
            samples: Vec<SampleTimes>,
            data: &'a [Vec<u8>],
            with: bool,
        ) -> TrackIn<'a> {
            let data = if with { data.iter().map(Vec::as_slice).collect() } else { Vec::new() };
            TrackIn { es, pid, pcr, samples, data, sealed: true }
        }
        let vs: Vec<SampleTimes> = frames.iter().enumerate().map(|(i, f)| times(i as u64, f.len(), i == 0)).collect();
        let as_: Vec<SampleTimes> =
            audio.iter().enumerate().map(|(i, f)| times(i as u64 * 2 / 3, f.len(), true)).collect();
        let tracks = [
            track(&v, VIDEO_PID, true, vs.clone(), &frames, true),
            track(&a, AUDIO_PID, false, as_.clone(), &audio, true),
        ];
        let ts = mux(&tracks, 0, &[], Some(&seal)).unwrap();
        let counted = [track(&v, VIDEO_PID, true, vs, &frames, false), track(&a, AUDIO_PID, false, as_, &audio, false)];
        let count = |pid: u16| ts.chunks(PACKET).filter(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF == pid).count();
        assert_eq!(count(VIDEO_PID), packets(&counted[0]));
        assert_eq!(count(AUDIO_PID), packets(&counted[1]));
        // The keyframe is found in it (its PMT names the video 0xDB).
        let scanned = crate::ts::random_access::keyframes(&ts).unwrap();
        assert_eq!(scanned.keyframes.len(), 1);
        // The last access unit ends with the filler that brought the video to the count.
        let video: Vec<u8> = ts
            .chunks(PACKET)
            .filter(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF == VIDEO_PID)
            .flat_map(|p| &p[if p[3] & 0x20 != 0 { 5 + usize::from(p[4]) } else { 4 }..])
            .copied()
            .collect();
        let last = video.windows(6).rposition(|w| w == [0, 0, 0, 1, 0x0C, 0xFF]).unwrap();
        assert!(video[last + 5..video.len() - 1].iter().all(|&b| b == 0xFF) && video.ends_with(&[0x80]));
        // The PMT names them as Apple's format does.
        let pmt = &ts[PACKET..2 * PACKET];
        assert!(pmt.windows(3).any(|w| w == [0xDB, 0xE1, 0x00]) && pmt.windows(3).any(|w| w == [0xCF, 0xE1, 0x01]));
        assert!(pmt.windows(4).any(|w| w == b"zavc") && pmt.windows(8).any(|w| w == b"apadzaac"));
        // Slices that grow past what is counted (an escape every 20 bytes): an error, not a segment
        // whose counters jump.
        let dense: Vec<u8> =
            [&[0, 0, 0x10, 0x05, 0x65][..], &[0, 0, 3, 1, 0x55, 0x55, 0x55, 0x55, 0x55, 7].repeat(410)].concat();
        let one = [dense];
        let sample = vec![times(0, one[0].len(), true)];
        let dense_track = track(&v, VIDEO_PID, true, sample, &one, true);
        let err = mux(&[dense_track], 0, &[], Some(&seal)).unwrap_err().to_string();
        assert!(err.contains("grew past"), "{err}");
        // Without the cipher, or for HEVC, a sealed segment is an error rather than clear bytes.
        assert!(mux(&tracks, 0, &[], None).is_err());
        let hevc = Elementary::Video { hevc: true, length_size: 4, parameter_sets: Bytes::new() };
        let hevc_track = track(&hevc, VIDEO_PID, true, Vec::new(), &[], false);
        assert!(mux(&[hevc_track], 0, &[], Some(&seal)).is_err());
    }
}
