//! Fuzzes what the ingest tier does with an encoder's upload: recognising it by name and content, and
//! splitting fMP4 media segments per track against a real init segment.
//!
//!     cargo +nightly fuzz run ingest_upload fuzz/regressions/ingest_upload
#![no_main]

use bytes::Bytes;
use estuary::live::upload::classify;
use estuary::packaging::fmp4::parse::{parse_init, parse_segment};
use libfuzzer_sys::fuzz_target;

const INIT: &[u8] = include_bytes!("../../assets/sample/hls/init.mp4");

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    for name in ["v0/seg.m4s", "v0/init.mp4", "v0/seg.ts", "v0/index.m3u8"] {
        let _ = classify(name, body.clone());
    }
    if let Ok(init) = parse_init(INIT) {
        let _ = parse_segment(&body, &init);
    }
});
