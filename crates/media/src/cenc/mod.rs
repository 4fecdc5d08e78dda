//! PURE: Common Encryption (ISO/IEC 23001-7) of fMP4 samples, in its two schemes: `cenc` (AES-128
//! CTR) and `cbcs` (AES-128 CBC, 1:9 pattern for video, constant IV). Video by subsamples (each
//! VCL NAL unit's length and slice header left clear; parameter sets and SEI left clear), audio
//! whole. The boxes that say so: `sinf` in the init segment's sample entry, `senc` + `saiz` +
//! `saio` in each fragment, `pssh`.
//!
//! Invariants: a content key never prints (its `Debug` shows the KID); the same key, IV and sample
//! give the same bytes on every pod; a sample whose NAL units run past its end is an error, never a
//! partly encrypted sample.

mod boxes;
mod cbc_lanes;
mod cipher;
mod pushed;
mod sample;
mod signalling;
mod slice_header;

pub(crate) use boxes::sample_aux_len;
pub use boxes::{SystemId, aux_info_len, protect_stsd, write_pssh, write_sample_aux, write_seig_group};
pub use cipher::{SampleCipher, Scheme};
pub use pushed::{PushedSegment, protect_pushed_init, protect_pushed_segment};
pub use sample::{
    CBCS_CLEAR_LEAD, SampleAux, SampleLayout, Subsample, has_subsamples, sample_aux, sample_aux_with, sample_iv,
};
pub use signalling::{MAX_PSSH_BYTES, Pssh, Signalling, init_pssh, parse_pssh_boxes};
pub use slice_header::SliceHeaders;

use std::fmt;

/// A 16-byte key id (KID), as `tenc`, `pssh` and the manifests carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// The KID as a UUID (`8-4-4-4-12` lowercase hex), as DASH's `cenc:default_KID` writes it.
    pub fn uuid(&self) -> String {
        let hex = self.hex();
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }

    /// The KID as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 32 hex digits, with or without the UUID's dashes.
    pub fn parse(text: &str) -> Option<KeyId> {
        parse_hex16(text).map(KeyId)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.uuid())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uuid())
    }
}

/// A content key and its KID. The secret is readable only by the encryptor; nothing prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey {
    pub kid: KeyId,
    key: [u8; 16],
}

impl ContentKey {
    pub fn new(kid: KeyId, key: [u8; 16]) -> ContentKey {
        ContentKey { kid, key }
    }

    /// A key given as 32 hex digits.
    pub fn from_hex(kid: KeyId, key: &str) -> Option<ContentKey> {
        parse_hex16(key).map(|key| ContentKey { kid, key })
    }

    pub(crate) fn secret(&self) -> &[u8; 16] {
        &self.key
    }

    /// A key derived from this one for `kid` (live key rotation with a static key): AES-128 under
    /// this key of `kid` with its last byte flipped, so that no derived key is ever the public
    /// `cbcs` constant IV of a KID (AES-128 of the KID itself). Every pod derives the same.
    pub fn derive(&self, kid: KeyId) -> ContentKey {
        use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
        let mut block = GenericArray::clone_from_slice(&kid.0);
        block[15] ^= 0xFF;
        aes::Aes128::new(&self.key.into()).encrypt_block(&mut block);
        ContentKey { kid, key: block.into() }
    }

    /// The key's 16 bytes, for the one place that hands keys out: the edge's key delivery (HLS
    /// AES-128), which answers `Cache-Control: private, no-store`.
    pub fn expose_for_delivery(&self) -> [u8; 16] {
        self.key
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentKey {{ kid: {}, key: <redacted> }}", self.kid)
    }
}

/// 32 hex digits (dashes ignored) as 16 bytes.
fn parse_hex16(text: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_read_and_write_as_uuids_and_keys_never_print() {
        let kid = KeyId::parse("10000000-1000-1000-1000-100000000001").unwrap();
        assert_eq!(kid.uuid(), "10000000-1000-1000-1000-100000000001");
        assert_eq!(kid.hex(), "10000000100010001000100000000001");
        assert_eq!(KeyId::parse(&kid.hex()), Some(kid));
        for bad in ["", "1234", "zz000000100010001000100000000001", "100000001000100010001000000000011"] {
            assert_eq!(KeyId::parse(bad), None, "{bad}");
        }
        let key = ContentKey::from_hex(kid, "3a2a1b68dd2bd9b2eeb25e84c4776668").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("3a2a1b68") && shown.contains("redacted"), "{shown}");
    }
}
