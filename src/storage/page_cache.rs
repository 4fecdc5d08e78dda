//! Reading a file's bytes only if the page cache already holds them (`preadv2` with `RWF_NOWAIT`,
//! Linux 4.14+): such a read never waits on the disk, so it may run on an async worker and skip the
//! hop to a blocking thread, the largest cost of streaming a hot file in small chunks. Anything else
//! (pages not cached, a short read, an older kernel or another platform) answers `None`, and the
//! caller reads on a blocking thread as before.

use std::fs::File;

use bytes::Bytes;

/// Exactly `len` bytes at `offset`, when all of them are in the page cache.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn read_cached(file: &File, offset: u64, len: usize) -> Option<Bytes> {
    use std::os::fd::AsRawFd;
    let offset = libc::off_t::try_from(offset).ok()?;
    // Not zeroed first: the kernel writes every byte that is kept.
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    // SAFETY: `iov` points at the `len` bytes of capacity of `buf`, which outlives the call; the
    // descriptor belongs to `file`, open for the whole call.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if usize::try_from(read).ok() != Some(len) {
        return None;
    }
    // SAFETY: the kernel wrote all `len` bytes (a full read).
    unsafe { buf.set_len(len) };
    Some(Bytes::from(buf))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn read_cached(_file: &File, _offset: u64, _len: usize) -> Option<Bytes> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_pages_are_read_and_anything_short_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, (0..=255u8).cycle().take(100_000).collect::<Vec<u8>>()).unwrap();
        let file = File::open(&path).unwrap();
        // Just written, so cached (where the platform can tell; elsewhere always None).
        if let Some(bytes) = read_cached(&file, 1000, 5000) {
            assert_eq!(bytes.len(), 5000);
            assert_eq!(bytes[0], (1000 % 256) as u8);
        }
        assert_eq!(read_cached(&file, 99_000, 5000), None, "past the end: a short read");
    }
}
