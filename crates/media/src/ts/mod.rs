//! MPEG-TS: segments as encoders push them (a structural check: sync bytes on a 188-byte grid), and
//! segments packaged from MP4 samples for players that take only TS ([`es`] the elementary
//! streams, [`mux`] the transport stream).

pub mod es;
pub mod mux;
pub mod probe;
pub mod random_access;
pub mod sample_aes;
pub mod segment;

use crate::PackagingError;

pub const PACKET: usize = 188;
const SYNC: u8 = 0x47;

/// Checks that `data` is a whole number of TS packets, each starting with the sync byte.
pub fn check_segment(data: &[u8]) -> Result<(), PackagingError> {
    if data.len() < PACKET {
        return Err(PackagingError::NotMp4(format!("not an MPEG-TS segment ({} bytes)", data.len())));
    }
    if data.len() % PACKET != 0 {
        return Err(PackagingError::Truncated(format!(
            "{} bytes is not a whole number of 188-byte TS packets",
            data.len()
        )));
    }
    match data.chunks_exact(PACKET).position(|p| p[0] != SYNC) {
        None => Ok(()),
        Some(i) => Err(PackagingError::malformed(format!("TS packet {i} has no sync byte"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_packets() {
        let mut ts = vec![0u8; PACKET * 3];
        for p in ts.chunks_exact_mut(PACKET) {
            p[0] = SYNC;
        }
        assert!(check_segment(&ts).is_ok());
        assert!(check_segment(&ts[..PACKET * 2 + 5]).is_err());
        ts[PACKET] = 0;
        assert!(check_segment(&ts).is_err());
        assert!(check_segment(b"garbage").is_err());
    }
}
