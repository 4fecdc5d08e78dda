//! PURE: HLS `METHOD=AES-128`: a whole segment encrypted with AES-128 in CBC mode and PKCS#7
//! padding, its IV the segment's media sequence number when the playlist gives none (RFC 8216
//! 5.2), as every HLS player and `openssl aes-128-cbc` decrypt it.

use aes::Aes128;
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};

use crate::cenc::ContentKey;

/// The IV of the segment with media sequence number `msn`: the number as a 128-bit big-endian integer.
pub fn sequence_iv(msn: u64) -> [u8; 16] {
    u128::from(msn).to_be_bytes()
}

/// `segment` encrypted with `key` and `iv`, padded to whole blocks (1 to 16 bytes more).
pub fn encrypt_segment(key: &ContentKey, iv: [u8; 16], segment: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes128>::new(key.secret().into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(segment)
}

#[cfg(test)]
mod tests {
    use cbc::cipher::BlockDecryptMut;

    use super::*;
    use crate::cenc::KeyId;

    #[test]
    fn segments_pad_to_whole_blocks_and_decrypt_back() {
        let key = ContentKey::new(KeyId([1; 16]), [9; 16]);
        assert_eq!(sequence_iv(7), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        for len in [0, 1, 15, 16, 188 * 7] {
            let clear: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = encrypt_segment(&key, sequence_iv(3), &clear);
            assert_eq!(sealed.len(), (len / 16 + 1) * 16, "{len}");
            let opened = cbc::Decryptor::<Aes128>::new(&[9; 16].into(), &sequence_iv(3).into())
                .decrypt_padded_vec_mut::<Pkcs7>(&sealed)
                .unwrap();
            assert_eq!(opened, clear);
        }
        assert_ne!(encrypt_segment(&key, sequence_iv(1), b"x"), encrypt_segment(&key, sequence_iv(2), b"x"));
    }
}
