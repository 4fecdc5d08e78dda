//! The page cache: reading a file's bytes only if the page cache already holds them (`preadv2` with `RWF_NOWAIT`,
//! Linux 4.14+): such a read never waits on the disk, so it may run on an async worker and skip the
//! hop to a blocking thread, the largest cost of streaming a hot file in small chunks. Anything else
//! (pages not cached, a short read, an older kernel or another platform) answers `None`, and the
//! caller reads on a blocking thread as before. Also: whether a range is cached at all (`cachestat`,
//! Linux 6.5+), and reading a range ahead, for the edge's `sendfile`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

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

/// `cachestat(2)`'s result (Linux 6.5+).
#[repr(C)]
#[derive(Default)]
struct CacheStat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

#[repr(C)]
struct CacheStatRange {
    off: u64,
    len: u64,
}

/// The same number on x86-64 and arm64 (the generic syscall table).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_CACHESTAT: libc::c_long = 451;

/// Every page of `len` bytes at `offset` is in the page cache (a memory file's always are).
/// Where the kernel cannot say, false: the caller reads ahead first.
pub fn holds(file: &File, offset: u64, len: u64) -> bool {
    #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let range = CacheStatRange { off: offset, len };
        let mut stat = CacheStat::default();
        // SAFETY: `range` and `stat` are valid for the call; the descriptor is open (borrowed).
        let r = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range, &mut stat, 0) };
        // SAFETY: sysconf only reads a constant of the system.
        let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let pages = (offset + len).div_ceil(page) - offset / page;
        r == 0 && stat.nr_cache >= pages
    }
    #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    {
        let _ = (file, offset, len);
        false
    }
}

/// Brings `len` bytes at `offset` into the page cache (blocking: run off the async workers).
pub fn read_ahead(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let offset = libc::off64_t::try_from(offset).map_err(io::Error::other)?;
    // SAFETY: the descriptor is open for the call.
    if unsafe { libc::readahead(file.as_raw_fd(), offset, len as usize) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
