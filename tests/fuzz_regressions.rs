//! Replays the fuzz corpus (`fuzz/regressions/mp4_index/`) through the packaging dry run on stable Rust:
//! every input that once crashed, or seeds the fuzzer, must give `Ok` or an error.

use estuary::packaging::inspect::dry_run;
use estuary::packaging::mp4::IndexLimits;

#[test]
fn every_regression_input_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/mp4_index");
    let mut seen = 0;
    let mut packaged = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = std::panic::catch_unwind(|| dry_run(&data, 6.0, IndexLimits { max_samples_per_track: 200_000 }));
        match outcome {
            Ok(Ok(_)) => packaged.push(name),
            Ok(Err(_)) => {}
            Err(_) => panic!("{name} panicked"),
        }
        seen += 1;
    }
    assert!(seen >= 3, "the corpus is in place ({seen} files)");
    for seed in ["tiny-faststart.mp4", "tiny-moov-at-end.mp4"] {
        assert!(packaged.iter().any(|p| p == seed), "the valid seed {seed} packages");
    }
}

#[test]
fn every_ingest_regression_input_is_handled() {
    use bytes::Bytes;
    use estuary::live::upload::classify;
    use estuary::packaging::fmp4::parse::{parse_init, parse_segment};

    let init = parse_init(include_bytes!("../assets/sample/hls/init.mp4")).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/ingest_upload");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let body = Bytes::from(std::fs::read(&path).unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = std::panic::catch_unwind(|| {
            for upload in ["v0/seg.m4s", "v0/init.mp4", "v0/seg.ts", "v0/index.m3u8"] {
                let _ = classify(upload, body.clone());
            }
            parse_segment(&body, &init).is_ok()
        });
        assert!(outcome.is_ok(), "{name} panicked");
        seen += 1;
    }
    assert!(seen >= 4, "the corpus is in place ({seen} files)");
}
