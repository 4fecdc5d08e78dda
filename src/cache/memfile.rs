//! Cached bodies in memory files (`memfd`): a segment the cache keeps is copied once into a sealed
//! memory file and mapped read-only, so that handlers still see a `Bytes`, and the edge's HTTP/1
//! writer can hand the file's pages to the socket with `sendfile` instead of copying the body from
//! user memory on every response. Sealed against writes, the pages never change while the kernel
//! still sends them, even after the entry is evicted. Linux only; elsewhere, and when the kernel
//! refuses (descriptor limit), the body stays where it was.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use crate::storage::budget::{ByteBudget, Charge};

/// Bodies smaller than this stay on the heap: one gathered write sends them with their head, and a
/// descriptor each would cost more than it saves. At the default 512 MiB cache this bounds the
/// memory files to 4,096 descriptors.
pub const MIN_BYTES: usize = 128 * 1024;

/// `body` moved into a memory file: the same bytes, mapped from it, with the file to send from and
/// a charge of its length against `budget`. `None` when the platform, the kernel or the budget says
/// no; the caller keeps `body` as it is.
pub fn store(body: &Bytes, budget: &Arc<ByteBudget>) -> Option<(Bytes, Arc<File>)> {
    if body.len() < MIN_BYTES {
        return None;
    }
    let charge = budget.try_charge(body.len() as u64).ok()?;
    imp::store(body, charge)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};

    use super::*;

    /// A read-only shared mapping of a whole memory file; unmapped on drop.
    struct Mapping {
        ptr: *const u8,
        len: usize,
        _file: Arc<File>,
        _charge: Charge,
    }

    // SAFETY: the mapping is read-only and its file sealed against writes: the bytes never change,
    // so sharing and sending the pointer between threads is sound.
    unsafe impl Send for Mapping {}
    // SAFETY: as above.
    unsafe impl Sync for Mapping {}

    impl AsRef<[u8]> for Mapping {
        fn as_ref(&self) -> &[u8] {
            // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: `ptr`/`len` are exactly the mapping made in `store`, unmapped only here.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }

    pub fn store(body: &Bytes, charge: Charge) -> Option<(Bytes, Arc<File>)> {
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: a constant, NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(c"estuary-cache".as_ptr(), flags) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let mut file = unsafe { File::from_raw_fd(fd) };
        file.set_len(body.len() as u64).ok()?;
        file.write_all(body).ok()?;
        let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: `fd` is open; adding seals to a memory file created with MFD_ALLOW_SEALING.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return None;
        }
        // SAFETY: mapping `len` bytes of an open file of that length, read-only and shared.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), body.len(), libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0)
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        let file = Arc::new(file);
        let mapping = Mapping { ptr: ptr as *const u8, len: body.len(), _file: file.clone(), _charge: charge };
        Some((Bytes::from_owner(mapping), file))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn store(_: &Bytes, _: Charge) -> Option<(Bytes, Arc<File>)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::time::Duration;

    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_body_in_a_memory_file_reads_the_same_and_cannot_change() {
        let body = Bytes::from((0..300_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
        let budget = ByteBudget::new(1 << 20, Duration::ZERO);
        let (mapped, file) = store(&body, &budget).expect("memory files work on Linux");
        assert_eq!(mapped, body);
        let mut from_file = vec![0; 1000];
        file.read_exact_at(&mut from_file, 5000).unwrap();
        assert_eq!(&from_file[..], &body[5000..6000]);
        assert!(file.write_at(b"x", 0).is_err(), "sealed against writes");
        assert_eq!(budget.in_use(), body.len() as u64, "charged while it lives");
        drop((mapped, file));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn small_bodies_and_a_full_budget_stay_where_they_are() {
        let budget = ByteBudget::new(1 << 20, Duration::ZERO);
        assert!(store(&Bytes::from(vec![1u8; MIN_BYTES - 1]), &budget).is_none());
        let full = ByteBudget::new(MIN_BYTES as u64 * 2, Duration::ZERO);
        let _held = full.try_charge(MIN_BYTES as u64 * 2).unwrap();
        assert!(store(&Bytes::from(vec![1u8; MIN_BYTES + 1]), &full).is_none());
    }
}
