//! PURE: `cbcs` over many protected ranges at once. Each range is its own CBC chain from the
//! constant IV (a block waits on the one before it, so one chain runs at AES's latency); eight
//! chains side by side let AES-NI encrypt eight independent blocks in one pipelined call, which is
//! what a segment's samples, one chain or two each, give. The bytes are those of one chain at a
//! time ([`super::SampleCipher`]'s `cbc_pattern`).

use aes::Aes128;
use aes::cipher::{BlockEncrypt, generic_array::GenericArray};

/// Chains encrypted side by side (the `aes` crate's AES-NI batch).
const LANES: usize = 8;

/// One range's chain: where its next block is and the ciphertext before it.
struct Chain<'a> {
    range: &'a mut [u8],
    at: usize,
    previous: [u8; 16],
}

/// Where the block after the one at `at` lies in a `(crypt, skip)` pattern: the next of its run of
/// `crypt`, else the first of the next stride.
fn next_block(at: usize, (crypt, skip): (usize, usize)) -> usize {
    let stride = 16 * (crypt + skip);
    if (at % stride) / 16 + 1 < crypt { at + 16 } else { (at / stride + 1) * stride }
}

/// Encrypts every range with `aes` in CBC from `iv`, over `crypt` blocks then `skip` left clear,
/// and so on; a last block shorter than 16 bytes stays clear.
pub(super) fn encrypt<'a>(
    aes: &Aes128,
    iv: [u8; 16],
    (crypt, skip): (usize, usize),
    ranges: impl IntoIterator<Item = &'a mut [u8]>,
) {
    let mut waiting = ranges.into_iter().filter(|r| r.len() >= 16 && crypt > 0);
    let mut lanes: [Option<Chain<'a>>; LANES] = Default::default();
    loop {
        for lane in lanes.iter_mut().filter(|l| l.is_none()) {
            *lane = waiting.next().map(|range| Chain { range, at: 0, previous: iv });
        }
        let mut blocks = [GenericArray::default(); LANES];
        let mut which = [0usize; LANES];
        let mut n = 0;
        for (i, chain) in lanes.iter().enumerate() {
            if let Some(c) = chain {
                let block = &c.range[c.at..c.at + 16];
                blocks[n].iter_mut().zip(block.iter().zip(c.previous)).for_each(|(b, (p, v))| *b = p ^ v);
                which[n] = i;
                n += 1;
            }
        }
        if n == 0 {
            return;
        }
        aes.encrypt_blocks(&mut blocks[..n]);
        for (block, &i) in blocks[..n].iter().zip(&which[..n]) {
            let Some(c) = &mut lanes[i] else { continue };
            c.range[c.at..c.at + 16].copy_from_slice(block);
            c.previous.copy_from_slice(block);
            c.at = next_block(c.at, (crypt, skip));
            if c.at + 16 > c.range.len() {
                lanes[i] = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockEncryptMut, InnerIvInit, KeyInit};

    use super::*;

    /// One chain at a time, block by block: the reference.
    fn one_by_one(aes: &Aes128, iv: [u8; 16], (crypt, skip): (usize, usize), range: &mut [u8]) {
        let mut cbc = cbc::Encryptor::<Aes128>::inner_iv_init(aes.clone(), &iv.into());
        for run in range.chunks_mut(16 * (crypt + skip)) {
            for block in run.chunks_exact_mut(16).take(crypt) {
                cbc.encrypt_block_mut(GenericArray::from_mut_slice(block));
            }
        }
    }

    #[test]
    fn side_by_side_chains_give_the_bytes_of_one_chain_at_a_time() {
        let aes = Aes128::new(&[9; 16].into());
        let iv = [5; 16];
        for pattern in [(1, 9), (1, 0), (2, 3)] {
            // Ranges of every length class: empty, under a block, one block, partial last blocks,
            // many strides; more of them than lanes, of unequal lengths.
            let lengths: Vec<usize> = (0..40).map(|i| (i * 97 + i * i * 13) % 2000).collect();
            let clear: Vec<Vec<u8>> =
                lengths.iter().enumerate().map(|(k, &n)| (0..n).map(|i| (i * 31 + k * 7) as u8).collect()).collect();
            let mut side_by_side = clear.clone();
            encrypt(&aes, iv, pattern, side_by_side.iter_mut().map(|r| r.as_mut_slice()));
            for (k, range) in clear.iter().enumerate() {
                let mut alone = range.clone();
                one_by_one(&aes, iv, pattern, &mut alone);
                assert_eq!(side_by_side[k], alone, "range {k} ({} bytes), pattern {pattern:?}", range.len());
            }
        }
        assert_eq!(next_block(0, (1, 9)), 160);
        assert_eq!((next_block(0, (2, 3)), next_block(16, (2, 3))), (16, 80));
    }
}
