//! PURE: the two schemes of common encryption over a sample's protected bytes, with the key
//! expanded once: `cenc` (AES-128 CTR, one keystream running on across a sample's subsamples) and
//! `cbcs` (AES-128 CBC with a constant IV, restarted at each subsample, over 1 block in 10 for video
//! and every block for audio; a partial last block stays clear).

use std::fmt;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher, generic_array::GenericArray};

use super::{ContentKey, SampleAux, SampleLayout};
use crate::PackagingError;

/// AES-128 in CTR mode with a 64-bit big-endian block counter after the 8-byte IV.
type Ctr = ctr::Ctr64BE<Aes128>;

/// A protection scheme of ISO/IEC 23001-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AES-CTR, full blocks of each subsample: Widevine, PlayReady and ClearKey everywhere but Apple.
    Cenc,
    /// AES-CBC with a pattern and a constant IV: FairPlay, and Widevine and PlayReady on newer
    /// devices; one encryption for every device.
    Cbcs,
}

impl Scheme {
    /// The scheme's four-character code (`schm`, DASH's `mp4protection` value).
    pub fn fourcc(self) -> &'static [u8; 4] {
        match self {
            Scheme::Cenc => b"cenc",
            Scheme::Cbcs => b"cbcs",
        }
    }

    /// The scheme's name, as the DASH `value` and the config write it.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
        }
    }

    /// `cbcs`'s pattern for a track (`crypt`, `skip` 16-byte blocks): 1:9 for video, and for audio
    /// every block (1:0), as ISO/IEC 23001-7 and Apple require. `None` for `cenc`.
    pub fn pattern(self, layout: SampleLayout) -> Option<(u8, u8)> {
        match (self, layout) {
            (Scheme::Cenc, _) => None,
            (Scheme::Cbcs, SampleLayout::Nal { .. }) => Some((1, 9)),
            (Scheme::Cbcs, SampleLayout::Whole) => Some((1, 0)),
        }
    }
}

/// A content key expanded for one scheme, made once and shared by every segment it encrypts.
#[derive(Clone)]
pub struct SampleCipher {
    aes: Aes128,
    scheme: Scheme,
    constant_iv: [u8; 16],
    kid: super::KeyId,
}

impl SampleCipher {
    pub fn new(key: &ContentKey, scheme: Scheme) -> SampleCipher {
        let aes = Aes128::new(key.secret().into());
        SampleCipher { constant_iv: constant_iv(&aes, key), aes, scheme, kid: key.kid }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The KID of the key it encrypts with.
    pub fn kid(&self) -> super::KeyId {
        self.kid
    }

    /// `cbcs`'s constant IV (in `tenc`): the KID encrypted under the key, so that it is the same
    /// on every pod and tells nothing of the key. Unused by `cenc`.
    pub fn constant_iv(&self) -> [u8; 16] {
        self.constant_iv
    }

    /// Encrypts `sample` in place as `aux` says (a `layout` track's sample): its subsamples'
    /// protected bytes, or the whole sample when it has none. Subsamples that run past the sample
    /// are an error, and nothing is encrypted then.
    pub fn encrypt_in_place(
        &self,
        layout: SampleLayout,
        aux: &SampleAux,
        sample: &mut [u8],
    ) -> Result<(), PackagingError> {
        self.encrypt_samples_in_place(layout, [(aux, sample)])
    }

    /// Encrypts many samples of a `layout` track in place, each as its `aux` says: the bytes
    /// [`SampleCipher::encrypt_in_place`] gives each, `cbcs`'s chains (one per protected range)
    /// run eight at a time. When any sample's subsamples run past it, nothing is encrypted.
    pub fn encrypt_samples_in_place<'a>(
        &self,
        layout: SampleLayout,
        samples: impl IntoIterator<Item = (&'a SampleAux, &'a mut [u8])>,
    ) -> Result<(), PackagingError> {
        let samples: Vec<(&SampleAux, &mut [u8])> = samples.into_iter().collect();
        for (aux, sample) in &samples {
            let covered: u64 = aux.subsamples.iter().map(|s| u64::from(s.clear) + u64::from(s.protected)).sum();
            if covered > sample.len() as u64 {
                return Err(PackagingError::malformed("subsamples run past the end of their sample"));
            }
        }
        match self.scheme.pattern(layout) {
            None => {
                for (aux, sample) in samples {
                    let mut counter = [0u8; 16];
                    counter[..8].copy_from_slice(&aux.iv.unwrap_or_default());
                    let core =
                        ctr::CtrCore::<Aes128, ctr::flavors::Ctr64BE>::inner_iv_init(self.aes.clone(), &counter.into());
                    let mut ctr = Ctr::from_core(core);
                    protected_ranges(aux, sample).for_each(|r| ctr.apply_keystream(r));
                }
            }
            Some((crypt, skip)) => {
                let ranges = samples.into_iter().flat_map(|(aux, sample)| protected_ranges(aux, sample));
                super::cbc_lanes::encrypt(&self.aes, self.constant_iv, (usize::from(crypt), usize::from(skip)), ranges);
            }
        }
        Ok(())
    }

    /// One `cbcs` protected range: CBC from the constant IV over `crypt` blocks, then `skip` blocks
    /// left clear, and so on; the chain runs on over the encrypted blocks only, and a last block
    /// shorter than 16 bytes stays clear.
    #[cfg(test)]
    fn cbc_pattern(&self, (crypt, skip): (u8, u8), range: &mut [u8]) {
        let pattern = (usize::from(crypt), usize::from(skip));
        super::cbc_lanes::encrypt(&self.aes, self.constant_iv, pattern, [range]);
    }
}

/// The protected bytes of `sample` as `aux` says (checked to lie within it): each subsample's
/// after its clear bytes, or the whole sample when it has none.
fn protected_ranges<'a>(aux: &SampleAux, sample: &'a mut [u8]) -> impl Iterator<Item = &'a mut [u8]> {
    let mut rest = sample;
    let mut subsamples = aux.subsamples.iter();
    let mut whole_left = aux.subsamples.is_empty();
    std::iter::from_fn(move || {
        if std::mem::take(&mut whole_left) {
            return Some(std::mem::take(&mut rest));
        }
        let s = subsamples.next()?;
        let (clear, protected) = (usize::from(s.clear), s.protected as usize);
        let after_clear = std::mem::take(&mut rest).get_mut(clear..)?;
        let (range, after) = after_clear.split_at_mut(protected.min(after_clear.len()));
        rest = after;
        Some(range)
    })
}

/// `cbcs`'s constant IV for `key`: AES-128 of its KID under it.
fn constant_iv(aes: &Aes128, key: &ContentKey) -> [u8; 16] {
    let mut block = GenericArray::clone_from_slice(&key.kid.0);
    aes.encrypt_block(&mut block);
    block.into()
}

impl fmt::Debug for SampleCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SampleCipher {{ scheme: {}, key: <redacted> }}", self.scheme.name())
    }
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockDecrypt, BlockEncryptMut, KeyIvInit};

    use super::*;
    use crate::cenc::{KeyId, Subsample};

    fn cipher(scheme: Scheme) -> SampleCipher {
        SampleCipher::new(&ContentKey::new(KeyId([1; 16]), [7; 16]), scheme)
    }

    /// Decrypts one `cbcs` range as a player does, block by block.
    fn cbcs_decrypt(iv: [u8; 16], (crypt, skip): (usize, usize), range: &mut [u8]) {
        let aes = Aes128::new(&[7; 16].into());
        let mut previous = iv;
        for run in range.chunks_mut(16 * (crypt + skip)) {
            for block in run.chunks_exact_mut(16).take(crypt) {
                let cipher: [u8; 16] = block.try_into().unwrap();
                aes.decrypt_block(GenericArray::from_mut_slice(block));
                block.iter_mut().zip(previous).for_each(|(b, p)| *b ^= p);
                previous = cipher;
            }
        }
    }

    #[test]
    fn cbcs_encrypts_one_block_in_ten_from_the_constant_iv_at_each_subsample() {
        let c = cipher(Scheme::Cbcs);
        let clear: Vec<u8> = (0..700u32).map(|i| (i * 7) as u8).collect();
        let mut sample = clear.clone();
        let aux = SampleAux {
            iv: None,
            subsamples: vec![Subsample { clear: 10, protected: 400 }, Subsample { clear: 6, protected: 284 }],
        };
        let layout = SampleLayout::Nal { length_size: 4, hevc: false };
        c.encrypt_in_place(layout, &aux, &mut sample).unwrap();
        // Clear: the clear counts, blocks 2-10 of each stride, and the partial last block.
        assert_eq!(sample[..10], clear[..10]);
        assert_ne!(sample[10..26], clear[10..26]);
        assert_eq!(sample[26..170], clear[26..170]);
        assert_ne!(sample[170..186], clear[170..186]);
        assert_eq!(sample[410..416], clear[410..416]);
        let mut opened = sample.clone();
        cbcs_decrypt(c.constant_iv(), (1, 9), &mut opened[10..410]);
        cbcs_decrypt(c.constant_iv(), (1, 9), &mut opened[416..700]);
        assert_eq!(opened, clear);
        // The second subsample starts again from the constant IV: its first block, encrypted
        // alone, is what the sample holds.
        let mut alone = clear[416..432].to_vec();
        c.cbc_pattern((1, 0), &mut alone);
        assert_eq!(alone, sample[416..432]);
    }

    #[test]
    fn cbcs_audio_is_every_block_and_cenc_one_keystream() {
        let c = cipher(Scheme::Cbcs);
        let clear = vec![0x42u8; 100];
        let mut sample = clear.clone();
        let aux = SampleAux { iv: None, subsamples: vec![Subsample { clear: 0, protected: 96 }] };
        c.encrypt_in_place(SampleLayout::Whole, &aux, &mut sample).unwrap();
        let mut opened = sample.clone();
        cbcs_decrypt(c.constant_iv(), (1, 0), &mut opened[..96]);
        assert_eq!(opened, clear);
        assert_eq!(sample[96..], clear[96..]);
        // The same blocks as CBC from the constant IV over the whole range.
        let mut whole = clear[..96].to_vec();
        let mut cbc = cbc::Encryptor::<Aes128>::new(&[7; 16].into(), &c.constant_iv().into());
        whole.chunks_exact_mut(16).for_each(|b| cbc.encrypt_block_mut(GenericArray::from_mut_slice(b)));
        assert_eq!(whole, sample[..96]);

        let c = cipher(Scheme::Cenc);
        let mut sample = clear.clone();
        let aux = SampleAux { iv: Some([3; 8]), subsamples: Vec::new() };
        c.encrypt_in_place(SampleLayout::Whole, &aux, &mut sample).unwrap();
        let mut counter = [0u8; 16];
        counter[..8].copy_from_slice(&[3; 8]);
        Ctr::new(&[7; 16].into(), &counter.into()).apply_keystream(&mut sample);
        assert_eq!(sample, clear);
    }

    #[test]
    fn the_constant_iv_is_the_kid_under_the_key_and_keys_never_print() {
        let c = cipher(Scheme::Cbcs);
        let mut kid = GenericArray::clone_from_slice(&[1; 16]);
        Aes128::new(&[7; 16].into()).encrypt_block(&mut kid);
        assert_eq!(c.constant_iv(), <[u8; 16]>::from(kid));
        assert_eq!(format!("{c:?}"), "SampleCipher { scheme: cbcs, key: <redacted> }");
        let aux = SampleAux { iv: None, subsamples: vec![Subsample { clear: 90, protected: 32 }] };
        let mut short = vec![0; 100];
        assert!(c.encrypt_in_place(SampleLayout::Whole, &aux, &mut short).is_err());
        assert_eq!(short, vec![0; 100]);
    }
}
