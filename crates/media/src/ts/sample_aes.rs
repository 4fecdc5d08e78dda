//! PURE: Apple's `SAMPLE-AES` for MPEG-TS ("MPEG-2 Stream Encryption Format for HTTP Live
//! Streaming"): AES-128 CBC over parts of each H.264 slice NAL unit (1 block in 10 after a 32-byte
//! clear leader) and of each AAC frame (every whole block after a 16-byte leader), the IV reset at
//! each; tables, PES headers and every other NAL unit stay clear. The PMT says so with stream
//! types 0xDB and 0xCF and Apple's descriptors ([`pmt_descriptors`]).
//!
//! A slice is encrypted without its emulation prevention bytes (as players decrypt it) and escaped
//! again, which can change its length by a few bytes. So that a segment's length (its TS packets,
//! the continuity counters that run on from segment to segment, the I-frame byte ranges) still
//! follows from sample sizes alone, every protected access unit ends with a filler NAL unit that
//! takes up the difference: [`SLACK`] bytes in all ([`write_slack`]).

use aes::Aes128;
use aes::cipher::{BlockEncryptMut, InnerIvInit, KeyInit, generic_array::GenericArray};
use bytes::{BufMut, BytesMut};

use super::es::Elementary;
use crate::PackagingError;
use crate::cenc::ContentKey;

/// How many bytes longer a protected access unit's slices may come out once escaped again. Past it
/// the access unit cannot keep its counted length: the ciphertext would have to emulate 17 start
/// code prefixes in one access unit (about 2^-22 a byte each), which no segment will see.
pub const ALLOWANCE: usize = 16;
/// How many bytes a protected video access unit has more than a clear one: a filler NAL unit (start
/// code, header, trailing bits) around the allowance.
pub const SLACK: usize = 4 + 1 + ALLOWANCE + 1;
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

    /// Appends H.264 NAL unit `nal` (escaped, as a sample holds it, without its start code): a slice
    /// (type 1 or 5) longer than 48 bytes encrypted, anything else as it is. Returns how many bytes
    /// longer it came out (fewer when escapes fell in the encrypted blocks).
    pub fn write_nal(&self, nal: &[u8], out: &mut BytesMut) -> isize {
        let kind = nal.first().map_or(0, |b| b & 0x1F);
        if !matches!(kind, 1 | 5) || nal.len() <= 48 {
            out.put_slice(nal);
            return 0;
        }
        let mut raw = unescape(nal);
        let mut chain = self.chain();
        let mut at = VIDEO_LEADER;
        while raw.len().saturating_sub(at) > 16 {
            chain.encrypt_block_mut(GenericArray::from_mut_slice(&mut raw[at..at + 16]));
            at += VIDEO_STRIDE;
        }
        let before = out.len();
        escape(&raw, out);
        (out.len() - before) as isize - nal.len() as isize
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

/// Appends the filler NAL unit that brings a protected access unit to its counted length, its
/// slices having come out `growth` bytes longer; an error past the [`ALLOWANCE`].
pub fn write_slack(growth: isize, out: &mut BytesMut) -> Result<(), PackagingError> {
    let fill = usize::try_from(ALLOWANCE as isize - growth).map_err(|_| {
        PackagingError::malformed(format!(
            "a SAMPLE-AES access unit grew {growth} bytes escaped, past its {ALLOWANCE}-byte allowance"
        ))
    })?;
    out.put_slice(&[0, 0, 0, 1, 0x0C]);
    out.put_bytes(0xFF, fill);
    out.put_u8(0x80);
    Ok(())
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

/// `nal` without its emulation prevention bytes (each 0x03 after two zero bytes).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        raw.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    raw
}

/// Appends `raw` with emulation prevention: a 0x03 wherever two zero bytes precede a byte of 3 or
/// less, and after a last zero byte.
fn escape(raw: &[u8], out: &mut BytesMut) {
    let mut zeros = 0;
    let mut from = 0;
    for (i, &b) in raw.iter().enumerate() {
        if zeros >= 2 && b <= 3 {
            out.put_slice(&raw[from..i]);
            out.put_u8(3);
            from = i;
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out.put_slice(&raw[from..]);
    if raw.last() == Some(&0) {
        out.put_u8(3);
    }
}

#[cfg(test)]
#[path = "sample_aes_tests.rs"]
mod tests;
