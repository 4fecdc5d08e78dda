//! PURE: Apple's `SAMPLE-AES` for MPEG-TS ("MPEG-2 Stream Encryption Format for HTTP Live
//! Streaming"): AES-128 CBC over parts of each H.264 slice NAL unit (1 block in 10 after a 32-byte
//! clear leader) and of each AAC frame (every whole block after a 16-byte leader), the IV reset at
//! each; tables, PES headers and every other NAL unit stay clear. The PMT says so with stream
//! types 0xDB and 0xCF and Apple's descriptors ([`pmt_descriptors`]).
//!
//! A slice is encrypted as it stands in the sample (its emulation prevention bytes in place), then
//! escaped once more: a player drops one level of escapes, decrypts, and has the slice as it was
//! (Bento4 and Apple's tools write it so; ffmpeg and hls.js read it so). Escaping again makes a
//! slice a few bytes longer. So that a segment's TS packet count (which the continuity counters
//! run on, segment after segment) still follows from sample sizes alone, each protected video
//! sample is counted [`SLACK`] bytes longer than its clear form, and the segment's last access unit
//! ends with a filler NAL unit that brings the video to the packets counted ([`filler`]).

use aes::Aes128;
use aes::cipher::{BlockEncryptMut, InnerIvInit, KeyInit, generic_array::GenericArray};
use bytes::{BufMut, BytesMut};

use super::es::Elementary;
use crate::cenc::ContentKey;

/// What each protected video sample is counted longer than its clear form: room for its slices
/// to grow when escaped again (a few bytes in a thousand; the segment's samples share it), and for
/// the filler NAL unit that takes up what is left.
pub const SLACK: usize = 24;
/// The smallest filler NAL unit: start code, header, trailing bits.
pub const FILLER_MIN: usize = 4 + 1 + 1;
/// Clear bytes at the start of a slice NAL unit (its type byte and 31 more: the slice header).
const VIDEO_LEADER: usize = 32;
/// Clear bytes at the start of an AAC frame, after its ADTS header.
const AUDIO_LEADER: usize = 16;
/// A protected block and the clear bytes after it, in a slice.
const VIDEO_STRIDE: usize = 16 + 144;

/// One segment's key and IV, expanded once.
#[derive(Clone)]
pub struct SampleAes {
    aes: Aes128,
    iv: [u8; 16],
}

impl std::fmt::Debug for SampleAes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SampleAes(..)")
    }
}

impl SampleAes {
    /// The cipher of a segment under `key` with `iv` (the playlist's, or its media sequence number).
    pub fn new(key: &ContentKey, iv: [u8; 16]) -> SampleAes {
        SampleAes { aes: Aes128::new(key.secret().into()), iv }
    }

    /// CBC from the IV: every protected block (a NAL unit, an audio frame) starts a chain.
    fn chain(&self) -> cbc::Encryptor<Aes128> {
        cbc::Encryptor::<Aes128>::inner_iv_init(self.aes.clone(), &self.iv.into())
    }

    /// Appends H.264 NAL unit `nal` (as a sample holds it, without its start code): a slice (type 1
    /// or 5) longer than 48 bytes encrypted and escaped once more, anything else as it is.
    pub fn write_nal(&self, nal: &[u8], out: &mut BytesMut) {
        let kind = nal.first().map_or(0, |b| b & 0x1F);
        if !matches!(kind, 1 | 5) || nal.len() <= 48 {
            out.put_slice(nal);
            return;
        }
        let mut sealed = nal.to_vec();
        let mut chain = self.chain();
        let mut at = VIDEO_LEADER;
        while sealed.len().saturating_sub(at) > 16 {
            chain.encrypt_block_mut(GenericArray::from_mut_slice(&mut sealed[at..at + 16]));
            at += VIDEO_STRIDE;
        }
        escape(&sealed, out);
    }

    /// Encrypts AAC frame `frame` (its raw data, after the ADTS header) in place: after 16 clear
    /// bytes, every whole block; a frame under 32 bytes stays clear, as do the last bytes short of
    /// a block.
    pub fn seal_aac_frame(&self, frame: &mut [u8]) {
        if frame.len() < AUDIO_LEADER + 16 {
            return;
        }
        let mut chain = self.chain();
        for block in frame[AUDIO_LEADER..].chunks_exact_mut(16) {
            chain.encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
    }
}

/// Appends a filler NAL unit of `len` bytes (at least [`FILLER_MIN`]).
pub fn filler(len: usize, out: &mut BytesMut) {
    out.put_slice(&[0, 0, 0, 1, 0x0C]);
    out.put_bytes(0xFF, len.saturating_sub(FILLER_MIN));
    out.put_u8(0x80);
}

/// The stream type of `es` encrypted in SAMPLE-AES: 0xDB for H.264, 0xCF for AAC in ADTS; `None`
/// for HEVC, which the format does not define in MPEG-TS.
pub fn stream_type(es: &Elementary) -> Option<u8> {
    match es {
        Elementary::Video { hevc: false, .. } => Some(0xDB),
        Elementary::Video { hevc: true, .. } => None,
        Elementary::Aac { .. } => Some(0xCF),
    }
}

/// The PMT's descriptors for `es` encrypted in SAMPLE-AES: a private data indicator (`zavc`,
/// `aacd`) and, for audio, the setup information a registration descriptor (`apad`) carries: `zaac`,
/// no priming, version 1, and the AudioSpecificConfig.
pub fn pmt_descriptors(es: &Elementary) -> Vec<u8> {
    let mut out = vec![0x0F, 4];
    match *es {
        Elementary::Video { .. } => out.extend_from_slice(b"zavc"),
        Elementary::Aac { profile, frequency_index, channels } => {
            out.extend_from_slice(b"aacd");
            let config = (u16::from(profile) << 11) | (u16::from(frequency_index) << 7) | (u16::from(channels) << 3);
            out.extend_from_slice(&[0x05, 14]);
            out.extend_from_slice(b"apadzaac");
            out.extend_from_slice(&[0, 0, 1, 2]);
            out.extend_from_slice(&config.to_be_bytes());
        }
    }
    out
}

/// Appends `raw` with emulation prevention: a 0x03 wherever two zero bytes precede a byte of 3 or
/// less (an escape already there included), and after a last zero byte. The bytes between zeros
/// are copied in runs, the zeros found by a SIMD search.
fn escape(raw: &[u8], out: &mut BytesMut) {
    out.reserve(raw.len() + raw.len() / 64 + 1);
    let (mut from, mut search) = (0, 0);
    while let Some(zero) = memchr::memchr(0, &raw[search..]).map(|at| at + search) {
        match (raw.get(zero + 1), raw.get(zero + 2)) {
            (Some(0), Some(&next)) if next <= 3 => {
                out.put_slice(&raw[from..zero + 2]);
                out.put_u8(3);
                from = zero + 2;
                search = zero + 2;
            }
            _ => search = zero + 1,
        }
    }
    out.put_slice(&raw[from..]);
    if raw.last() == Some(&0) {
        out.put_u8(3);
    }
}

#[cfg(test)]
#[path = "sample_aes_tests.rs"]
mod tests;
