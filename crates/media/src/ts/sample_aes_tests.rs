//! SAMPLE-AES against a decryptor written as players do it (ffmpeg's `hls_sample_encryption`,
//! hls.js's `sample-aes`): emulation prevention removed, then CBC from the IV over the blocks.

use aes::cipher::{BlockDecrypt, BlockDecryptMut, KeyInit, KeyIvInit};

use super::*;
use crate::cenc::KeyId;

const KEY: [u8; 16] = [0x3C; 16];
const IV: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

fn cipher() -> SampleAes {
    SampleAes::new(&ContentKey::new(KeyId([1; 16]), KEY), IV)
}

/// One level of escapes dropped, as a player does first: every 0x03 after two zeros.
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut i = 0;
    while i < nal.len() {
        if i + 2 < nal.len() && nal[i] == 0 && nal[i + 1] == 0 && nal[i + 2] == 3 {
            raw.extend_from_slice(&[0, 0]);
            i += 3;
        } else {
            raw.push(nal[i]);
            i += 1;
        }
    }
    raw
}

/// A player's view of a protected NAL unit: one level of escapes dropped, then the blocks at
/// 32 + 160k decrypted while more than 16 bytes remain.
fn player_decrypts(nal: &[u8]) -> Vec<u8> {
    let mut raw = unescape(nal);
    let mut chain = cbc::Decryptor::<Aes128>::new(&KEY.into(), &IV.into());
    let mut at = 32;
    while raw.len() > at + 16 {
        chain.decrypt_block_mut(GenericArray::from_mut_slice(&mut raw[at..at + 16]));
        at += 160;
    }
    raw
}

fn escaped(raw: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    escape(raw, &mut out);
    out.to_vec()
}

#[test]
fn slices_decrypt_as_players_read_them_and_other_units_stay_clear() {
    for len in [40, 48, 49, 64, 65, 200, 1000, 4099] {
        // An IDR slice whose bytes count up, with escapes now and then (zeros before a 1).
        let mut raw: Vec<u8> = (0..len).map(|i| if i % 97 < 2 { 0 } else { (i % 251) as u8 | 1 }).collect();
        raw[0] = 0x65;
        let nal = escaped(&raw);
        let mut out = BytesMut::new();
        cipher().write_nal(&nal, &mut out);
        assert_eq!(player_decrypts(&out), nal, "{len} bytes: the slice as the sample had it");
        if nal.len() <= 48 {
            assert_eq!(&out[..], &nal[..], "a short slice stays clear");
        } else {
            assert_eq!(unescape(&out)[..32], nal[..32], "the leader is clear");
            assert_ne!(unescape(&out)[32..48], nal[32..48], "the first block is not");
        }
    }
    // Parameter sets, SEI, fillers: as they are, however long.
    let sei = [&[0x06u8][..], &[0x55; 100]].concat();
    let mut out = BytesMut::new();
    cipher().write_nal(&sei, &mut out);
    assert_eq!(&out[..], &sei[..]);
}

#[test]
fn escapes_are_kept_through_a_players_unescaping_and_ciphertext_is_escaped() {
    // A plaintext block chosen so that its ciphertext opens with a start code prefix (00 00 01).
    let mut wanted = [0x77u8; 16];
    wanted[..3].copy_from_slice(&[0, 0, 1]);
    let mut block = GenericArray::clone_from_slice(&wanted);
    Aes128::new(&KEY.into()).decrypt_block(&mut block);
    let plain: Vec<u8> = block.iter().zip(IV).map(|(b, iv)| b ^ iv).collect();
    // The leader holds an escape of the sample's own (00 00 03 01): kept through the player's
    // unescaping, it is escaped once more.
    let mut nal = vec![0x41; 20];
    nal.extend_from_slice(&[0, 0, 3, 1]);
    nal.extend_from_slice(&[0x41; 8]);
    nal.extend_from_slice(&plain);
    nal.extend_from_slice(&[0x42; 20]);
    assert_eq!(nal[32..48], plain[..]);
    let mut out = BytesMut::new();
    cipher().write_nal(&nal, &mut out);
    assert_eq!(&out[20..25], &[0, 0, 3, 3, 1], "the sample's escape, escaped");
    assert_eq!(&out[33..37], &[0, 0, 3, 1], "the ciphertext escaped");
    assert_eq!(out.len(), nal.len() + 2);
    assert_eq!(player_decrypts(&out), nal);
}

#[test]
fn escaping_round_trips_and_fillers_are_as_long_as_asked() {
    for raw in [&[0u8, 0, 0, 0][..], &[0, 0, 1, 0, 0, 2, 5], &[1, 0, 0], &[0, 0, 3, 3], &[]] {
        let nal = escaped(raw);
        assert_eq!(unescape(&nal), raw, "{raw:?} -> {nal:?}");
        assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] < 3), "{nal:?}");
    }
    assert_eq!(escaped(&[0, 0, 1]), [0, 0, 3, 1]);
    assert_eq!(escaped(&[5, 0, 0]), [5, 0, 0, 3]);
    // Against the rule byte by byte, on bytes thick with zeros and small values.
    let reference = |raw: &[u8]| {
        let (mut out, mut zeros) = (Vec::new(), 0);
        for &b in raw {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            out.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        if raw.last() == Some(&0) {
            out.push(3);
        }
        out
    };
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..5_000 {
        let raw: Vec<u8> = (0..(state % 40) as usize)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                [0, 0, 0, 1, 2, 3, 4, 0x80][(state % 8) as usize]
            })
            .collect();
        assert_eq!(escaped(&raw), reference(&raw), "{raw:?}");
    }
    for len in [FILLER_MIN, 7, 300] {
        let mut out = BytesMut::new();
        filler(len, &mut out);
        assert_eq!(out.len(), len);
        assert_eq!((&out[..5], out.last()), (&[0, 0, 0, 1, 0x0C][..], Some(&0x80)));
        assert!(out[5..len - 1].iter().all(|&b| b == 0xFF));
    }
}

#[test]
fn aac_frames_encrypt_whole_blocks_after_the_leader() {
    for len in [10, 31, 32, 33, 47, 48, 300] {
        let clear: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut frame = clear.clone();
        cipher().seal_aac_frame(&mut frame);
        let blocks = if len < 32 { 0 } else { (len - 16) / 16 };
        let end = 16 + 16 * blocks;
        if blocks == 0 {
            assert_eq!(frame, clear, "{len}");
            continue;
        }
        assert_eq!(&frame[..16], &clear[..16]);
        assert_eq!(&frame[end..], &clear[end..], "a partial block stays clear");
        let mut chain = cbc::Decryptor::<Aes128>::new(&KEY.into(), &IV.into());
        for block in frame[16..end].chunks_exact_mut(16) {
            chain.decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        assert_eq!(frame, clear, "{len}");
    }
}

#[test]
fn the_pmt_names_each_stream_as_apple_asks() {
    let aac = Elementary::Aac { profile: 2, frequency_index: 3, channels: 2 };
    assert_eq!(stream_type(&aac), Some(0xCF));
    let d = pmt_descriptors(&aac);
    assert_eq!(&d[..6], b"\x0F\x04aacd");
    assert_eq!(&d[6..8], &[0x05, 14]);
    assert_eq!(&d[8..16], b"apadzaac");
    // AAC-LC, 48 kHz, stereo: the AudioSpecificConfig 0x1190.
    assert_eq!(&d[16..], &[0, 0, 1, 2, 0x11, 0x90]);
    let h264 = Elementary::Video { hevc: false, length_size: 4, parameter_sets: bytes::Bytes::new() };
    assert_eq!(stream_type(&h264), Some(0xDB));
    assert_eq!(pmt_descriptors(&h264), b"\x0F\x04zavc");
    let hevc = Elementary::Video { hevc: true, length_size: 4, parameter_sets: bytes::Bytes::new() };
    assert_eq!(stream_type(&hevc), None);
}
