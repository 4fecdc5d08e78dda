//! Socket calls the standard library has no safe form of: registering a plain descriptor with
//! tokio's reactor, `recv` into a buffer's spare capacity, and `sendfile` from a file.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use tokio::io::unix::AsyncFd;

/// An accepted connection registered with the runtime as a plain descriptor, so that readiness can
/// be cleared after a short read without a read that fails.
pub fn register(stream: TcpStream) -> io::Result<AsyncFd<TcpStream>> {
    // SAFETY: the socket is owned by the `AsyncFd` and closed only when it is dropped, so its
    // descriptor stays open and the same for the whole registration.
    unsafe { AsyncFd::register(stream) }.map_err(|e| e.into_parts().1)
}

/// One `recv` into the spare capacity of `input` (grown by the bytes read); `Ok(0)` at the end of
/// the stream, `WouldBlock` when the socket held nothing.
pub fn recv_into(socket: &impl AsRawFd, input: &mut BytesMut) -> io::Result<usize> {
    let room = input.spare_capacity_mut();
    // SAFETY: `recv` writes at most `room.len()` bytes into the spare capacity of `input`; the
    // descriptor is open (borrowed).
    let n = unsafe { libc::recv(socket.as_raw_fd(), room.as_mut_ptr().cast(), room.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel wrote these `n` bytes just past the initialized part.
    unsafe { input.set_len(input.len() + n) };
    Ok(n)
}

/// One `sendfile` of at most `len` bytes of `file` from `*offset` to `socket`, moving `*offset` on;
/// the bytes sent.
pub fn send_file(socket: &impl AsRawFd, file: &File, offset: &mut u64, len: usize) -> io::Result<usize> {
    let mut at = libc::off_t::try_from(*offset).map_err(io::Error::other)?;
    // SAFETY: both descriptors are open for the call (borrowed), and `at` is a valid, writable off_t.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut at, len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset += n as u64;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn recv_fills_spare_capacity_and_sendfile_sends_the_range() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut input = BytesMut::with_capacity(64);
        input.extend_from_slice(b">");
        let n = loop {
            match recv_into(&server, &mut input) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!((n, &input[..]), (5, &b">hello"[..]));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let file = File::open(dir.path().join("f")).unwrap();
        let mut offset = 3;
        assert_eq!(send_file(&server, &file, &mut offset, 4).unwrap(), 4);
        assert_eq!(offset, 7);
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"3456");
    }
}
