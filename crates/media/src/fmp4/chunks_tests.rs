//! The chunk reader on the bundled HLS fMP4 (four segments of one `moof` + `mdat` each, as ffmpeg
//! wrote them): in any split, checked, bounded.

use super::*;
use crate::fmp4::parse::parse_init;

fn asset(name: &str) -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/sample/hls/").to_owned() + name).unwrap()
}

fn init() -> InitInfo {
    parse_init(&asset("init.mp4")).unwrap()
}

fn segments() -> Vec<Vec<u8>> {
    (0..4).map(|i| asset(&format!("seg_{i:03}.m4s"))).collect()
}

fn read_in_pieces(stream: &[u8], piece: impl Fn(usize) -> usize) -> Vec<Chunk> {
    let mut reader = ChunkReader::new(init(), 16 << 20);
    let (mut chunks, mut at, mut i) = (Vec::new(), 0, 0);
    while at < stream.len() {
        let end = (at + piece(i).max(1)).min(stream.len());
        chunks.extend(reader.push(&stream[at..end]).unwrap());
        (at, i) = (end, i + 1);
    }
    reader.finish().unwrap();
    chunks
}

#[test]
fn a_stream_in_any_split_gives_the_same_checked_chunks() {
    let segments = segments();
    let stream = segments.concat();
    let whole = read_in_pieces(&stream, |_| stream.len());
    assert_eq!(whole.len(), 4);
    for (i, chunk) in whole.iter().enumerate() {
        assert_eq!(chunk.bytes[..], segments[i][..], "chunk {i} is the segment as sent");
        assert_eq!(chunk.sequence, i as u32 + 1);
        assert!(chunk.independent, "each segment starts on a keyframe");
        assert_eq!(chunk.runs.len(), 2, "video and audio");
        assert!((chunk.duration_secs(&init()) - 4.0).abs() < 0.1, "{}", chunk.duration_secs(&init()));
    }
    for piece in [|_| 1, |i| 1 + i % 13, |_| 4096, |i| [8, 16, 2000, 7][i % 4]] as [fn(usize) -> usize; 4] {
        let chunks = read_in_pieces(&stream, piece);
        assert_eq!(chunks.len(), 4);
        for (a, b) in chunks.iter().zip(&whole) {
            assert_eq!((&a.bytes, a.sequence), (&b.bytes, b.sequence));
        }
    }
}

#[test]
fn a_chunk_is_given_only_once_it_is_whole() {
    let segments = segments();
    let mut reader = ChunkReader::new(init(), 16 << 20);
    let (most, last) = segments[0].split_at(segments[0].len() - 1);
    assert!(reader.push(most).unwrap().is_empty());
    assert_eq!(reader.finish(), Err(ChunkError::Unfinished(most.len())));
    assert_eq!(reader.push(last).unwrap().len(), 1);
    reader.finish().unwrap();
}

#[test]
fn sequence_numbers_and_decode_times_may_not_go_back() {
    let segments = segments();
    let mut reader = ChunkReader::new(init(), 16 << 20);
    reader.push(&segments[1]).unwrap();
    assert_eq!(reader.push(&segments[0]).unwrap_err(), ChunkError::SequenceBackwards { after: 2, got: 1 });

    // The next segment's reader carries the checks over.
    let mut first = ChunkReader::new(init(), 16 << 20);
    first.push(&segments[0]).unwrap();
    let (sequence, decode_end) = first.position();
    let mut next = ChunkReader::new(init(), 16 << 20).after(sequence, decode_end.clone());
    assert_eq!(next.push(&segments[1]).unwrap().len(), 1);
    let mut replay = ChunkReader::new(init(), 16 << 20).after(sequence, decode_end);
    assert!(matches!(replay.push(&segments[0]), Err(ChunkError::SequenceBackwards { .. })));

    // A track that would decode before the end of its previous chunk.
    let mut overlap = ChunkReader::new(init(), 16 << 20).after(Some(1), [(1, 60_000)]);
    let refused = overlap.push(&segments[1]).unwrap_err();
    assert_eq!(refused, ChunkError::DecodeTimeBackwards { track: 1, ended: 60_000, got: 51_200 });
}

#[test]
fn an_oversized_chunk_is_refused_from_its_box_header() {
    let segments = segments();
    let mut reader = ChunkReader::new(init(), 1000);
    // styp and the two sidx boxes (128 bytes), then the moof's header announcing 2,116 bytes.
    let refused = reader.push(&segments[0][..140]);
    assert_eq!(refused.unwrap_err(), ChunkError::TooLarge { size: 128 + 2116, limit: 1000 });
}

#[test]
fn broken_streams_are_refused_with_their_reason() {
    let segments = segments();
    let moof_at = 128;
    let moof_len = 2116;
    let mdat_first = [&segments[0][moof_at + moof_len..], &segments[0][moof_at..moof_at + moof_len]].concat();
    let err = ChunkReader::new(init(), 16 << 20).push(&mdat_first).unwrap_err();
    assert!(err.to_string().contains("'mdat' without a 'moof'"), "{err}");
    let two_moofs = [&segments[0][..moof_at + moof_len], &segments[0][moof_at..]].concat();
    let err = ChunkReader::new(init(), 16 << 20).push(&two_moofs).unwrap_err();
    assert!(err.to_string().contains("two 'moof'"), "{err}");
    let init_again = asset("init.mp4");
    let err = ChunkReader::new(init(), 16 << 20).push(&init_again).unwrap_err();
    assert!(err.to_string().contains("unexpected 'ftyp'"), "{err}");
    let mut to_the_end = segments[0].clone();
    to_the_end[moof_at..moof_at + 4].copy_from_slice(&[0, 0, 0, 0]);
    let err = ChunkReader::new(init(), 16 << 20).push(&to_the_end).unwrap_err();
    assert!(err.to_string().contains("runs to the end"), "{err}");
    // A moof whose samples lie outside its mdat: parsed before anyone sees the chunk.
    let mut short_mdat = segments[0][..segments[0].len() - 1000].to_vec();
    let mdat_at = moof_at + moof_len;
    let mdat_len = (segments[0].len() - mdat_at - 1000) as u32;
    short_mdat[mdat_at..mdat_at + 4].copy_from_slice(&mdat_len.to_be_bytes());
    let err = ChunkReader::new(init(), 16 << 20).push(&short_mdat).unwrap_err();
    assert!(err.to_string().contains("outside its 'mdat'"), "{err}");
}

#[test]
fn the_random_access_index_after_the_last_fragment_is_not_a_chunk() {
    let segments = segments();
    let mut mfra = vec![0, 0, 0, 16];
    mfra.extend_from_slice(b"mfra");
    mfra.extend_from_slice(&[0; 8]);
    let stream = [segments[0].as_slice(), &mfra].concat();
    let mut reader = ChunkReader::new(init(), 16 << 20);
    assert_eq!(reader.push(&stream).unwrap().len(), 1);
    reader.finish().unwrap();
}
