//! Sealed memory files: bytes copied once into a `memfd`, sealed against any change and mapped
//! read-only, so the same pages can be read as a `Bytes` and handed to a socket with `sendfile`,
//! and never change while the kernel still sends them. Linux only; elsewhere `None`.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

/// `body` copied into a sealed memory file: the same bytes, mapped from it (kept alive with
/// `owner`, say a charge against a memory budget, until the last clone is dropped), and the file to
/// send from. `None` when the platform or the kernel says no (descriptor limit, no memfd).
pub fn sealed<T: Send + Sync + 'static>(body: &[u8], owner: T) -> Option<(Bytes, Arc<File>)> {
    imp::sealed(body, owner)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};

    use super::*;

    /// A read-only shared mapping of a whole memory file; unmapped on drop.
    struct Mapping<T> {
        ptr: *const u8,
        len: usize,
        _file: Arc<File>,
        _owner: T,
    }

    // SAFETY: the mapping is read-only and its file sealed against writes: the bytes never change,
    // so sharing and sending the pointer between threads is sound (`T` is itself Send + Sync).
    unsafe impl<T: Send> Send for Mapping<T> {}
    // SAFETY: as above.
    unsafe impl<T: Sync> Sync for Mapping<T> {}

    impl<T> AsRef<[u8]> for Mapping<T> {
        fn as_ref(&self) -> &[u8] {
            // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    impl<T> Drop for Mapping<T> {
        fn drop(&mut self) {
            // SAFETY: `ptr`/`len` are exactly the mapping made in `sealed`, unmapped only here.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }

    pub(super) fn sealed<T: Send + Sync + 'static>(body: &[u8], owner: T) -> Option<(Bytes, Arc<File>)> {
        if body.is_empty() {
            return None;
        }
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
        let mapping = Mapping { ptr: ptr as *const u8, len: body.len(), _file: file.clone(), _owner: owner };
        Some((Bytes::from_owner(mapping), file))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn sealed<T>(_: &[u8], _: T) -> Option<(Bytes, Arc<File>)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Owner(Arc<AtomicBool>);

    impl Drop for Owner {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sealed_bytes_read_the_same_cannot_change_and_keep_their_owner() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let dropped = Arc::new(AtomicBool::new(false));
        let (mapped, file) = sealed(&body, Owner(dropped.clone())).expect("memory files work on Linux");
        assert_eq!(&mapped[..], &body[..]);
        let mut from_file = vec![0; 1000];
        file.read_exact_at(&mut from_file, 5000).unwrap();
        assert_eq!(&from_file[..], &body[5000..6000]);
        assert!(file.write_at(b"x", 0).is_err(), "sealed against writes");
        let slice = mapped.slice(10..20);
        drop((mapped, file));
        assert!(!dropped.load(Ordering::SeqCst), "a slice still holds the mapping");
        drop(slice);
        assert!(dropped.load(Ordering::SeqCst));
        assert!(sealed(&[], ()).is_none(), "nothing to map");
    }
}
