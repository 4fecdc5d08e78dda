//! Scattered reads: one run of a file read straight into many buffers (`preadv`), so that bytes the
//! caller wants in one place (a segment's samples behind its header) land there without a second
//! copy, and bytes it does not want (what lies between them) go to scratch.

use std::fs::File;
use std::io::{self, IoSliceMut};

/// Most buffers one `preadv` takes (Linux's `IOV_MAX`).
const MAX_BUFFERS: usize = 1024;

/// Fills every buffer of `bufs`, in order, from the file's bytes at `offset` onwards; a file that
/// ends first is an `UnexpectedEof` error (the caller discards what was read).
pub fn read_exact_vectored_at(file: &File, mut bufs: &mut [IoSliceMut<'_>], mut offset: u64) -> io::Result<()> {
    IoSliceMut::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let count = bufs.len().min(MAX_BUFFERS);
        let read = read_vectored_at(file, &mut bufs[..count], offset)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended before the read"));
        }
        IoSliceMut::advance_slices(&mut bufs, read);
        offset += read as u64;
    }
    Ok(())
}

#[cfg(unix)]
fn read_vectored_at(file: &File, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let offset = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let count = libc::c_int::try_from(bufs.len()).map_err(io::Error::other)?;
    loop {
        // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix (std guarantees it); each
        // points at a live, writable buffer borrowed for the call, and `count` is their number.
        let read = unsafe { libc::preadv(file.as_raw_fd(), bufs.as_ptr().cast(), count, offset) };
        match usize::try_from(read) {
            Ok(read) => return Ok(read),
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(not(unix))]
fn read_vectored_at(file: &File, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_vectored(bufs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_buffers_get_the_file_in_order_and_a_short_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = File::open(&path).unwrap();
        let (mut a, mut empty, mut b) = (vec![0u8; 10], Vec::<u8>::new(), vec![0u8; 3000]);
        let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut empty), IoSliceMut::new(&mut b)];
        read_exact_vectored_at(&file, &mut bufs, 100).unwrap();
        assert_eq!(a, content[100..110]);
        assert_eq!(b, content[110..3110]);

        // More buffers than one call takes.
        let mut many = vec![[0u8; 3]; MAX_BUFFERS + 7];
        let mut bufs: Vec<IoSliceMut<'_>> = many.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        read_exact_vectored_at(&file, &mut bufs, 0).unwrap();
        assert_eq!(many.concat(), content[..3 * (MAX_BUFFERS + 7)]);

        let mut past = vec![0u8; 100];
        let err = read_exact_vectored_at(&file, &mut [IoSliceMut::new(&mut past)], 4950).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
