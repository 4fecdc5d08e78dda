//! CMAF chunks from a real encoder, read as they arrive: ffmpeg encodes in real time into
//! fragmented MP4 with 0.5 s fragments on a pipe, and the chunk reader hands out each checked
//! chunk while ffmpeg is still encoding the rest.

use std::io::Read;
use std::process::{Command, Stdio};

use estuary::packaging::fmp4::chunks::ChunkReader;
use estuary::packaging::fmp4::parse::parse_init;
use estuary::packaging::mp4::boxes::BoxHeader;

/// The length of the init segment (`ftyp` + `moov`) at the start of `stream`, once it is all there.
fn init_len(stream: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let header = BoxHeader::parse(&stream[at..]).ok()??;
        let end = at + header.size? as usize;
        if end > stream.len() {
            return None;
        }
        if &header.kind == b"moov" {
            return Some(end);
        }
        at = end;
    }
}

#[test]
fn chunks_of_a_live_encode_come_out_checked_while_it_runs() {
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"])
        .args(["-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"])
        .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-c:a", "aac"])
        .args(["-f", "mp4", "-movflags", "+empty_moov+default_base_moof+cmaf", "-frag_duration", "500000"])
        .args(["-flush_packets", "1", "pipe:1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg is needed by this test (run ./scripts/test, which installs it)");
    let mut out = ffmpeg.stdout.take().unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut reader = None;
    let mut chunks = Vec::new();
    let mut first_chunk_while_encoding = None;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let reader = match &mut reader {
            Some(reader) => reader,
            None => {
                received.extend_from_slice(&buf[..n]);
                let Some(len) = init_len(&received) else { continue };
                let init = parse_init(&received[..len]).unwrap();
                let reader = reader.insert((ChunkReader::new(init.clone(), 8 << 20), init));
                let rest = received.split_off(len);
                chunks.extend(reader.0.push(&rest).unwrap());
                continue;
            }
        };
        chunks.extend(reader.0.push(&buf[..n]).unwrap());
        if !chunks.is_empty() && first_chunk_while_encoding.is_none() {
            first_chunk_while_encoding = Some(ffmpeg.try_wait().unwrap().is_none());
        }
    }
    assert!(ffmpeg.wait().unwrap().success());
    let (reader, init) = reader.expect("an init segment");
    reader.finish().unwrap();
    assert_eq!(first_chunk_while_encoding, Some(true), "the first chunk came out before the encode ended");

    // 4 s in fragments of about 0.5 s.
    assert!((8..=9).contains(&chunks.len()), "{} chunks", chunks.len());
    assert!(chunks.windows(2).all(|w| w[0].sequence < w[1].sequence));
    for chunk in &chunks {
        let secs = chunk.duration_secs(&init);
        assert!(secs <= 0.55, "a chunk of {secs} s");
        // Independent exactly when its video starts on a keyframe: frame 0, 50, 100... (25 fps).
        let video = chunk.runs.iter().find(|r| r.track_id == 1).expect("video in every chunk");
        let timescale = u64::from(init.track(1).unwrap().timescale);
        let frame = video.base_decode_time * 25 / timescale;
        assert_eq!(chunk.independent, frame % 50 == 0, "chunk {} starts at frame {frame}", chunk.sequence);
    }
    assert!(chunks[0].independent);
}
