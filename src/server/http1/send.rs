//! Writing to a client socket without waiting on it for ever: gathered writes from memory, and
//! `sendfile` from an open file (the page cache's or a memory file's pages go to the socket with no
//! copy through user space). Every wait for room in the socket is bounded by the send timeout: a
//! client that accepts nothing for that long is cut off. Pages of a source file that are not cached
//! are read ahead on a blocking thread first, so `sendfile` never waits on a disk on an async worker.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::unix::AsyncFd;

use estuary_sys::page_cache;

/// The most `sendfile` is asked for at once; the socket takes what fits.
const SENDFILE_STEP: u64 = 1 << 20;

/// The client socket, registered with the runtime as a plain descriptor so that readiness can be
/// cleared after a short read without a read that fails (`read_more`).
pub(super) type Socket = AsyncFd<std::net::TcpStream>;

/// Registers an accepted connection with the runtime.
pub(super) fn register(stream: std::net::TcpStream) -> io::Result<Socket> {
    estuary_sys::socket::register(stream)
}

/// Waits until the socket has room, for at most `timeout`; the caller then tries again.
async fn room(socket: &Socket, timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(timeout, socket.writable()).await {
        Ok(ready) => {
            ready?.clear_ready();
            Ok(())
        }
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client accepted no bytes within the send timeout")),
    }
}

/// Reads what the socket holds into the spare capacity of `input`: `Ok(None)` when it held nothing
/// after all. A read that did not fill the room it had emptied the socket: its readiness is cleared
/// then, so the next wait sleeps until new bytes arrive instead of costing a read that fails (what
/// nginx does with edge-triggered epoll). The readiness cleared is the one seen before the read,
/// so bytes that arrive after it are never missed.
pub(super) async fn read_more(socket: &Socket, input: &mut BytesMut) -> io::Result<Option<usize>> {
    let mut ready = socket.readable().await?;
    let wanted = input.spare_capacity_mut().len();
    let n = match estuary_sys::socket::recv_into(socket.get_ref(), input) {
        Ok(n) => n,
        Err(e) => {
            match e.kind() {
                io::ErrorKind::WouldBlock => ready.clear_ready(),
                io::ErrorKind::Interrupted => {}
                _ => return Err(e),
            }
            return Ok(None);
        }
    };
    if n < wanted {
        ready.clear_ready();
    }
    Ok(Some(n))
}

/// Writes every byte of `bufs`, in order.
pub(super) async fn write_all(socket: &Socket, bufs: &mut [IoSlice<'_>], timeout: Duration) -> io::Result<()> {
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match (&mut socket.get_ref()).write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => room(socket, timeout).await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends `span` of `file`. A file that ends before the span does is an error (the body would be
/// short of its length): the caller closes the connection.
pub(super) async fn send_file(
    socket: &Socket,
    file: &Arc<File>,
    span: Range<u64>,
    timeout: Duration,
) -> io::Result<()> {
    let mut at = span.start;
    while at < span.end {
        let step = (span.end - at).min(SENDFILE_STEP);
        if !page_cache::holds(file, at, step) {
            let (f, from) = (file.clone(), at);
            tokio::task::spawn_blocking(move || page_cache::read_ahead(&f, from, step))
                .await
                .map_err(io::Error::other)??;
        }
        let mut offset = at;
        match estuary_sys::socket::send_file(socket.get_ref(), file, &mut offset, step as usize) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended before its body did")),
            Ok(_) => at = offset,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => room(socket, timeout).await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[tokio::test]
    async fn spans_of_a_file_arrive_in_order_and_a_short_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            listener.accept().unwrap().0.read_to_end(&mut got).unwrap();
            got
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap().into_std().unwrap();
        let stream = register(stream).unwrap();
        let t = Duration::from_secs(5);
        write_all(&stream, &mut [IoSlice::new(b"head:"), IoSlice::new(b"")], t).await.unwrap();
        send_file(&stream, &file, 2_000_000..2_900_000, t).await.unwrap();
        send_file(&stream, &file, 10..1_500_010, t).await.unwrap();
        let short = send_file(&stream, &file, 2_999_990..3_000_100, t).await.unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        drop(stream);
        let got = reader.join().unwrap();
        let mut want = b"head:".to_vec();
        want.extend_from_slice(&data[2_000_000..2_900_000]);
        want.extend_from_slice(&data[10..1_500_010]);
        want.extend_from_slice(&data[2_999_990..]);
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the bytes differ");
    }

    #[test]
    fn the_page_cache_is_asked_and_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        let file = File::open(&path).unwrap();
        page_cache::read_ahead(&file, 0, 1 << 20).unwrap();
        // Just written and read ahead: cached, where the kernel can tell.
        // (A kernel before 6.5, or a seccomp profile that refuses `cachestat`, cannot tell: then
        // `holds` is false and every step is read ahead first, which is slower but correct.)
        if page_cache::holds(&file, 0, 0) {
            assert!(page_cache::holds(&file, 0, 1 << 20));
        }
    }
}
