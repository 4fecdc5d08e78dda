//! `ProgressStream`: a socket whose writes must make progress. A write the client does not accept
//! for the send timeout (it stopped reading) fails with `TimedOut`, which ends the connection and
//! frees whatever its response held.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub(super) struct ProgressStream<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write is pending; disarmed by any progress.
    stalled: Pin<Box<Sleep>>,
    armed: bool,
}

impl<S> ProgressStream<S> {
    pub(super) fn new(inner: S, timeout: Duration) -> Self {
        ProgressStream { inner, timeout, stalled: Box::pin(tokio::time::sleep(timeout)), armed: false }
    }

    /// Called when a write is pending: arms the deadline, or fails once it has passed.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self.armed {
            self.armed = true;
            self.stalled.as_mut().reset(Instant::now() + self.timeout);
        }
        ready!(self.stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client accepted no bytes within the send timeout",
        )))
    }

    fn progressed<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.armed = false;
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProgressStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProgressStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            done => self.progressed(done),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            done => self.progressed(done),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_reader_that_stops_reading_is_cut_after_the_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let mut stream = ProgressStream::new(server, Duration::from_millis(50));
        stream.write_all(&[0u8; 1024]).await.unwrap();
        let err = stream.write_all(&[0u8; 10]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test]
    async fn a_slow_but_steady_reader_is_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 4096 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                total += tokio::io::AsyncReadExt::read(&mut client, &mut buf).await.unwrap();
            }
        });
        let mut stream = ProgressStream::new(server, Duration::from_millis(200));
        stream.write_all(&[1u8; 4096]).await.unwrap();
        reader.await.unwrap();
    }
}
