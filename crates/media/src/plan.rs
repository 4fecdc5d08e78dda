//! Segment plans: keyframe-aligned cut points near a target duration, shared by every track of a presentation.
//!
//! Times here are presentation times: decode time plus composition offset,
//! moved by the track's edit list, so that audio is cut where video is even
//! when their encoder delays differ.

use std::cmp::Ordering;

use crate::mp4::{Track, TrackKind};

/// A time in some timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaTime {
    pub ticks: i64,
    pub timescale: u32,
}

impl MediaTime {
    pub fn secs(self) -> f64 {
        self.ticks as f64 / f64::from(self.timescale)
    }

    /// Exact comparison across timescales.
    pub fn cmp_exact(self, other: MediaTime) -> Ordering {
        (i128::from(self.ticks) * i128::from(other.timescale))
            .cmp(&(i128::from(other.ticks) * i128::from(self.timescale)))
    }
}

/// Where segments start, in presentation time, decided on a reference track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Start of every segment after the first (the first starts with the track).
    pub cuts: Vec<MediaTime>,
}

/// The samples of one track that make up each segment: segment `i` is
/// `bounds[i]..bounds[i + 1]`. Never holds an empty segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSegments {
    pub bounds: Vec<u32>,
}

impl TrackSegments {
    pub fn count(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    pub fn samples(&self, segment: usize) -> Option<std::ops::Range<usize>> {
        Some(*self.bounds.get(segment)? as usize..*self.bounds.get(segment + 1)? as usize)
    }
}

/// Presentation time of sample `i`: dts + cts - media_time + delay.
fn presentation(track: &Track, movie_timescale: u32, i: usize) -> MediaTime {
    let ts = track.timescale;
    let delay = (u128::from(track.edit.delay) * u128::from(ts) / u128::from(movie_timescale.max(1))) as i64;
    let ticks =
        track.samples.dts[i] as i64 + i64::from(track.samples.cts_offset(i)) - track.edit.media_time as i64 + delay;
    MediaTime { ticks, timescale: ts }
}

/// Cuts the reference track near every multiple of `target_secs`, at sync samples.
///
/// Each cut goes to the sync sample nearest its ideal time (so irregular
/// GOPs do not make the plan drift), and no cut is made closer than half a
/// target to the end (no tiny trailing segment).
pub fn plan(reference: &Track, movie_timescale: u32, target_secs: f64) -> SegmentPlan {
    let s = &reference.samples;
    if s.is_empty() {
        return SegmentPlan { cuts: Vec::new() };
    }
    let ts = f64::from(reference.timescale);
    let target = (target_secs * ts).max(1.0);
    let candidates: Vec<usize> = match (&s.sync, reference.kind) {
        (Some(sync), _) => sync.iter().map(|&i| i as usize).filter(|&i| i > 0).collect(),
        (None, _) => (1..s.len()).collect(),
    };
    let start = presentation(reference, movie_timescale, 0).ticks as f64;
    let end = start + (s.end_time() - s.dts[0]) as f64;
    // Candidate times must rise; a (damaged) table whose keyframes go back in time
    // loses the ones that do, so the search below always moves forward.
    let mut times: Vec<f64> = Vec::with_capacity(candidates.len());
    for &i in &candidates {
        let t = presentation(reference, movie_timescale, i).ticks as f64;
        if t > times.last().copied().unwrap_or(start) {
            times.push(t);
        }
    }

    let mut cuts = Vec::new();
    let mut last = start;
    let mut k = 1.0;
    loop {
        let ideal = start + k * target;
        if ideal >= end - target / 2.0 {
            break;
        }
        let after_last = times.partition_point(|&t| t <= last);
        let i = after_last + times[after_last..].partition_point(|&t| t < ideal);
        let below = (i > after_last).then(|| i - 1);
        let above = (i < times.len()).then_some(i);
        let pick = match (below, above) {
            (Some(b), Some(a)) => {
                if ideal - times[b] <= times[a] - ideal {
                    b
                } else {
                    a
                }
            }
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => break,
        };
        let t = times[pick];
        if end - t < target / 2.0 {
            break;
        }
        cuts.push(MediaTime { ticks: t as i64, timescale: reference.timescale });
        last = t;
        // The next ideal cut is the first grid point clearly after this one.
        k = ((t - start) / target + 0.5).floor() + 1.0;
    }
    SegmentPlan { cuts }
}

/// Applies a plan to a track: video cuts at its sync sample nearest each cut,
/// audio (and any track without sync samples) at the first sample at or after it.
/// Empty segments (a track that starts late or ends early) are dropped.
pub fn split(plan: &SegmentPlan, track: &Track, movie_timescale: u32) -> TrackSegments {
    let n = track.samples.len();
    let mut bounds = vec![0u32];
    for &cut in &plan.cuts {
        let at = match (track.kind, &track.samples.sync) {
            (TrackKind::Video, Some(sync)) => nearest_sync(track, movie_timescale, sync, cut),
            _ => first_at_or_after(track, movie_timescale, cut),
        };
        if at > *bounds.last().unwrap_or(&0) as usize && at < n {
            bounds.push(at as u32);
        }
    }
    bounds.push(n as u32);
    bounds.dedup();
    TrackSegments { bounds }
}

fn first_at_or_after(track: &Track, movie_timescale: u32, cut: MediaTime) -> usize {
    // Presentation order equals decode order for tracks without composition offsets.
    let (mut lo, mut hi) = (0, track.samples.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if presentation(track, movie_timescale, mid).cmp_exact(cut) == Ordering::Less {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn nearest_sync(track: &Track, movie_timescale: u32, sync: &[u32], cut: MediaTime) -> usize {
    let ticks = |i: u32| presentation(track, movie_timescale, i as usize);
    let pos = sync.partition_point(|&i| ticks(i).cmp_exact(cut) == Ordering::Less);
    let dist = |i: u32| (ticks(i).secs() - cut.secs()).abs();
    match (pos.checked_sub(1).map(|p| sync[p]), sync.get(pos).copied()) {
        (Some(b), Some(a)) => (if dist(b) <= dist(a) { b } else { a }) as usize,
        (Some(b), None) => b as usize,
        (None, Some(a)) => a as usize,
        (None, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{CodecInfo, MediaParams};
    use crate::mp4::{Edit, SampleTable};

    /// A 25 fps video track with keyframes at the given frame numbers.
    fn video(frames: usize, keyframes: &[u32]) -> Track {
        let samples = SampleTable {
            dts: (0..frames as u64).map(|i| i * 512).collect(),
            durations: vec![512; frames],
            cts: Vec::new(),
            sizes: vec![100; frames],
            offsets: (0..frames as u64).map(|i| i * 100).collect(),
            sync: Some(keyframes.to_vec()),
        };
        track(TrackKind::Video, 12800, samples)
    }

    fn track(kind: TrackKind, timescale: u32, samples: SampleTable) -> Track {
        Track {
            id: 1,
            kind,
            timescale,
            language: "und".into(),
            codec: CodecInfo {
                fourcc: *b"avc1",
                codecs: "avc1.64001e".into(),
                params: MediaParams::Video { width: 64, height: 64 },
            },
            stsd: bytes::Bytes::new(),
            edit: Edit::default(),
            display: None,
            samples,
        }
    }

    fn durations(t: &Track, segs: &TrackSegments) -> Vec<f64> {
        let s = &t.samples;
        (0..segs.count())
            .map(|i| {
                let r = segs.samples(i).unwrap();
                let end = if r.end < s.len() { s.dts[r.end] } else { s.end_time() };
                (end - s.dts[r.start]) as f64 / f64::from(t.timescale)
            })
            .collect()
    }

    #[test]
    fn regular_gops_give_exact_targets_and_no_tiny_tail() {
        // 16 s, keyframe every 2 s: 6 + 6 + 4.
        let v = video(400, &(0..8).map(|k| k * 50).collect::<Vec<_>>());
        let segs = split(&plan(&v, 1000, 6.0), &v, 1000);
        assert_eq!(durations(&v, &segs), [6.0, 6.0, 4.0]);
        // 12.5 s: the 0.5 s remainder joins the last segment.
        let v = video(313, &(0..7).map(|k| k * 50).collect::<Vec<_>>());
        let segs = split(&plan(&v, 1000, 6.0), &v, 1000);
        assert_eq!(durations(&v, &segs), [6.0, 6.52]);
    }

    #[test]
    fn irregular_gops_stay_near_the_grid() {
        // Keyframes at 0, 5, 7, 13, 17, 19 s over 24 s.
        let keys: Vec<u32> = [0, 5, 7, 13, 17, 19].iter().map(|s| s * 25).collect();
        let v = video(600, &keys);
        let segs = split(&plan(&v, 1000, 6.0), &v, 1000);
        assert_eq!(durations(&v, &segs), [5.0, 8.0, 4.0, 7.0]);
        let total: f64 = durations(&v, &segs).iter().sum();
        assert!((total - 24.0).abs() < 1e-9);
    }

    #[test]
    fn audio_is_cut_where_video_is() {
        let v = video(400, &(0..8).map(|k| k * 50).collect::<Vec<_>>());
        let frames = 751;
        let samples = SampleTable {
            dts: (0..frames as u64).map(|i| i * 1024).collect(),
            durations: vec![1024; frames],
            cts: Vec::new(),
            sizes: vec![10; frames],
            offsets: vec![0; frames],
            sync: None,
        };
        let mut a = track(TrackKind::Audio, 48000, samples);
        a.edit.media_time = 1024; // AAC priming
        let p = plan(&v, 1000, 6.0);
        let segs = split(&p, &a, 1000);
        assert_eq!(segs.count(), 3);
        // The first audio sample presented at or after 6 s: (i * 1024 - 1024) / 48000 >= 6.
        assert_eq!(segs.bounds[1], 283);
        assert_eq!(*segs.bounds.last().unwrap(), 751);
    }
}
