//! `cbcs` leaves each slice's whole header clear: its length, measured from the track's parameter
//! sets, against ffmpeg's own reading of the same slices (`trace_headers`, a second
//! implementation) for x264 (CABAC with B-frames and weighted prediction, CAVLC, several slices,
//! interlaced) and x265 (wavefront entry points, several slice segments). A protected HEVC asset's
//! subsamples leave those headers clear, past the usual 32 bytes.

mod common;

use std::path::Path;

use estuary::packaging::cenc::{SampleLayout, Scheme, SliceHeaders, sample_aux_with};
use estuary::packaging::inspect::moov_of;
use estuary::packaging::mp4::{IndexLimits, build_index};

/// Encodes two seconds of a test pattern with `codec` and its `params`.
fn encode(dir: &Path, name: &str, codec: &str, params: &[&str]) -> std::path::PathBuf {
    let file = dir.join(name);
    let mut args = vec!["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "2", "-c:v", codec];
    args.extend_from_slice(params);
    args.extend(["-y", file.to_str().unwrap()]);
    let out = common::tools::run("ffmpeg", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    file
}

/// Each slice header's length in bytes, in decode order, as ffmpeg's `trace_headers` reads it.
fn traced(file: &Path) -> Vec<usize> {
    let out = common::tools::run(
        "ffmpeg",
        &["-v", "trace", "-i", file.to_str().unwrap(), "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    let mut lengths = Vec::new();
    let mut current: Option<usize> = None;
    for line in text.lines().filter_map(|l| l.split_once("[trace_headers @ ").map(|(_, r)| r)) {
        let body = line.split_once("] ").map_or("", |(_, b)| b);
        if body == "Slice Header" || body == "Slice Segment Header" {
            lengths.extend(current.take());
            current = Some(0);
            continue;
        }
        let fields: Vec<&str> = body.split_whitespace().collect();
        match (current.as_mut(), fields.first().and_then(|f| f.parse::<usize>().ok())) {
            (Some(end), Some(pos)) if fields.len() >= 3 => *end = (*end).max(pos + fields[2].len()),
            (Some(_), _) => lengths.extend(current.take()),
            _ => {}
        }
    }
    lengths.extend(current);
    lengths.into_iter().map(|bits| bits.div_ceil(8)).collect()
}

/// Each slice header's length in bytes, in decode order, as estuary measures it.
fn measured(file: &Path) -> Vec<usize> {
    let bytes = std::fs::read(file).unwrap();
    let index = build_index(moov_of(&bytes, 1 << 26).unwrap(), bytes.len() as u64, IndexLimits::default()).unwrap();
    let track = index.video().next().unwrap();
    let headers = SliceHeaders::of_stsd(&track.stsd);
    let hevc = track.stsd.windows(4).any(|w| w == b"hvcC");
    let mut lengths = Vec::new();
    for (&offset, &size) in track.samples.offsets.iter().zip(&track.samples.sizes) {
        let mut rest = &bytes[offset as usize..offset as usize + size as usize];
        while rest.len() > 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let nal = &rest[4..4 + len];
            let slice = if hevc { (nal[0] >> 1) & 0x3F < 32 } else { matches!(nal[0] & 0x1F, 1 | 5) };
            if slice {
                lengths.push(
                    headers.header_len(nal).unwrap_or_else(|| panic!("a slice not measured: {:02x?}", &nal[..8])),
                );
            }
            rest = &rest[4 + len..];
        }
    }
    lengths
}

#[test]
fn slice_headers_are_measured_as_ffmpeg_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let clips = [
        ("cabac.mp4", "libx264", vec!["-x264-params", "bframes=3:weightp=2:weightb=1:ref=4"]),
        ("cavlc.mp4", "libx264", vec!["-profile:v", "baseline"]),
        ("slices.mp4", "libx264", vec!["-x264-params", "slices=4:b-pyramid=normal"]),
        ("interlaced.mp4", "libx264", vec!["-x264-params", "interlaced=1:bframes=2"]),
        ("wpp.mp4", "libx265", vec!["-tag:v", "hvc1", "-x265-params", "log-level=error:wpp=1:ctu=16:bframes=3"]),
        (
            "segments.mp4",
            "libx265",
            vec!["-tag:v", "hvc1", "-x265-params", "log-level=error:slices=3:ctu=32:weightb=1"],
        ),
    ];
    let mut longest = 0;
    for (name, codec, params) in clips {
        let file = encode(dir.path(), name, codec, &params);
        let (ours, ffmpeg) = (measured(&file), traced(&file));
        assert!(ours.len() >= 50, "{name}: {} slices", ours.len());
        assert_eq!(ours, ffmpeg, "{name}: slice header lengths");
        eprintln!("{name}: {} slices, {:?}", ours.len(), &ours[..12]);
        longest = longest.max(*ours.iter().max().unwrap());
    }
    assert!(longest > 32, "some headers are past the usual 32-byte lead: {longest}");
    // `cbcs` encrypts none of those header bytes: every protected range starts past them.
    let file = dir.path().join("wpp.mp4");
    let bytes = std::fs::read(&file).unwrap();
    let index = build_index(moov_of(&bytes, 1 << 26).unwrap(), bytes.len() as u64, IndexLimits::default()).unwrap();
    let track = index.video().next().unwrap();
    let (layout, headers) = (SampleLayout::of_stsd(&track.stsd).unwrap(), SliceHeaders::of_stsd(&track.stsd));
    for (&offset, &size) in track.samples.offsets.iter().zip(&track.samples.sizes) {
        let sample = &bytes[offset as usize..offset as usize + size as usize];
        let aux = sample_aux_with(Scheme::Cbcs, [0; 8], (layout, &headers), sample).unwrap();
        let mut protected = Vec::new();
        let mut at = 0;
        for s in &aux.subsamples {
            at += usize::from(s.clear);
            protected.push(at..at + s.protected as usize);
            at += s.protected as usize;
        }
        let mut nal_at = 0;
        while nal_at + 4 < sample.len() {
            let len = u32::from_be_bytes(sample[nal_at..nal_at + 4].try_into().unwrap()) as usize;
            let nal = &sample[nal_at + 4..nal_at + 4 + len];
            if let Some(header) = headers.header_len(nal) {
                let clear_until = nal_at + 4 + header.max(32);
                assert!(protected.iter().all(|r| r.is_empty() || r.start >= clear_until || r.end <= nal_at), "{aux:?}");
            }
            nal_at += 4 + len;
        }
    }
}
