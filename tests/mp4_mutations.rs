//! Hundreds of truncated and bit-flipped copies of the sample MP4 go through the index builder and the whole
//! packaging path: each gives `Ok` or an error, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use estuary::packaging::PackagingError;
use estuary::packaging::inspect::dry_run;
use estuary::packaging::mp4::IndexLimits;

const SAMPLE: &[u8] = include_bytes!("../assets/sample/sample.mp4");

/// Everything the server does with a source, without I/O.
fn package(file: &[u8]) -> Result<usize, PackagingError> {
    dry_run(file, 6.0, IndexLimits { max_samples_per_track: 100_000 }).map(|d| d.bytes_produced)
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
