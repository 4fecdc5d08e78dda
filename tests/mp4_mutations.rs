//! Hundreds of truncated and bit-flipped copies of the sample MP4 go through the index builder and the whole
//! packaging path: each gives `Ok` or an error, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use estuary::packaging::fmp4::{self, FragmentSamples, InitTrack, SampleFlags};
use estuary::packaging::mp4::{IndexLimits, MoovLocator, Probe, TrackKind, build_index};
use estuary::packaging::presentation::{self, RenditionInput};
use estuary::packaging::{PackagingError, dash, hls};

const SAMPLE: &[u8] = include_bytes!("../assets/sample/sample.mp4");

/// Everything the server does with a source, without I/O. Returns whether it was packaged.
fn package(file: &[u8]) -> Result<usize, PackagingError> {
    let mut loc = MoovLocator::new(file.len() as u64, 16 << 20);
    let mut range = loc.start()?;
    let moov = loop {
        let end = (range.end as usize).min(file.len());
        match loc.feed(range.start, &file[range.start as usize..end])? {
            Probe::Read(r) => range = r,
            Probe::Found(r) => break &file[r.start as usize..r.end as usize],
        }
    };
    let index = build_index(moov, file.len() as u64, IndexLimits { max_samples_per_track: 100_000 })?;
    let inputs: Vec<RenditionInput<'_>> = index
        .tracks
        .iter()
        .enumerate()
        .map(|(i, track)| RenditionInput {
            source: 0,
            track_index: i,
            track,
            movie_timescale: index.movie_timescale,
            name: None,
            language: None,
        })
        .collect();
    let p = presentation::build(&inputs, 6.0)?;
    let mut bytes = hls::master_playlist(&p).len() + dash::static_mpd(&p).len();
    for r in p.renditions() {
        bytes += hls::media_playlist(&p, r).len();
        let track = &index.tracks[r.track_index];
        bytes += fmp4::write_init(&InitTrack {
            kind: track.kind,
            timescale: track.timescale,
            movie_timescale: index.movie_timescale,
            language: &track.language,
            stsd: &track.stsd,
            edit: track.edit,
            display: r.resolution,
        })
        .len();
        let s = &track.samples;
        let range = r.segments.samples(0).expect("every rendition has a first segment");
        let payload: Vec<&[u8]> = range
            .clone()
            .map(|i| {
                let start = s.offsets[i] as usize;
                &file[start..start + s.sizes[i] as usize]
            })
            .collect();
        let sync: Vec<bool> = range.clone().map(|i| s.is_sync(i)).collect();
        let flags = if track.kind == TrackKind::Video { SampleFlags::PerSample(&sync) } else { SampleFlags::AllSync };
        bytes += fmp4::write_segment(
            &FragmentSamples {
                sequence: 1,
                base_decode_time: s.dts[range.start],
                durations: &s.durations[range.clone()],
                sizes: &s.sizes[range.clone()],
                cts: (!s.cts.is_empty()).then(|| &s.cts[range.clone()]),
                flags,
            },
            &payload,
        )
        .len();
    }
    Ok(bytes)
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn moov_end() -> usize {
    // ftyp (32) + moov: the region where mutations matter.
    let size = u32::from_be_bytes(SAMPLE[32..36].try_into().unwrap()) as usize;
    32 + size
}

fn check(label: &str, file: &[u8], outcomes: &mut [usize; 2]) {
    match catch_unwind(AssertUnwindSafe(|| package(file))) {
        Ok(Ok(_)) => outcomes[0] += 1,
        Ok(Err(_)) => outcomes[1] += 1,
        Err(_) => panic!("packaging panicked on {label}"),
    }
}

#[test]
fn the_unmutated_sample_packages() {
    assert!(package(SAMPLE).unwrap() > 1000);
}

#[test]
fn truncated_copies_never_panic() {
    let mut outcomes = [0; 2];
    let mut rng = Rng(0x5eed_0001);
    let mut lengths: Vec<usize> = (0..moov_end() + 64).step_by(37).collect();
    lengths.extend((0..150).map(|_| rng.below(SAMPLE.len())));
    for len in &lengths {
        check(&format!("the first {len} bytes"), &SAMPLE[..*len], &mut outcomes);
    }
    assert!(lengths.len() >= 400, "{} truncations", lengths.len());
    assert!(outcomes[1] > 300, "most truncations are refused: {outcomes:?}");
}

#[test]
fn bit_flipped_copies_never_panic() {
    let mut outcomes = [0; 2];
    let mut rng = Rng(0x5eed_0002);
    let end = moov_end();
    for round in 0..600 {
        let mut file = SAMPLE.to_vec();
        let flips = 1 + rng.below(if round % 3 == 0 { 8 } else { 1 });
        for _ in 0..flips {
            let at = rng.below(end);
            file[at] ^= 1 << rng.below(8);
        }
        check(&format!("round {round}"), &file, &mut outcomes);
    }
    // Flips in sizes, counts and offsets are caught; flips in unused fields still package.
    eprintln!("bit flips: {} packaged, {} refused", outcomes[0], outcomes[1]);
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn hostile_counts_are_refused_without_allocating() {
    // Every 32-bit word in the moov set to 0xffffffff in turn: sizes, counts, offsets, timescales.
    let mut outcomes = [0; 2];
    let end = moov_end();
    for at in (32..end - 4).step_by(4) {
        let mut file = SAMPLE.to_vec();
        file[at..at + 4].copy_from_slice(&[0xff; 4]);
        check(&format!("0xffffffff at byte {at}"), &file, &mut outcomes);
    }
    assert!(outcomes[1] > 0, "{outcomes:?}");
}
