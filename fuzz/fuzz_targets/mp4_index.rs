//! Fuzzes the MP4 index builder and everything packaging does with its result.
//!
//!     cargo +nightly fuzz run mp4_index fuzz/regressions/mp4_index
//!
//! Crashes found go into `fuzz/regressions/mp4_index/`, which `tests/fuzz_regressions.rs` replays on stable.
#![no_main]

use estuary::packaging::inspect::dry_run;
use estuary::packaging::mp4::IndexLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dry_run(data, 6.0, IndexLimits { max_samples_per_track: 200_000 });
});
