//! A reader or writer that tells an observer how many bytes crossed it:
//! the idle timeout stamps activity with it (`idle.rs`), the metrics count
//! bytes per channel with it (`meter.rs`). Both see exactly what the socket
//! moved, as the socket reported it.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a [`Tapped`] reader or writer tells about its traffic.
pub(crate) trait Observe {
    /// `n` bytes (at least one) were read or written.
    fn saw(&mut self, n: usize);
}

/// A reader or writer whose traffic an observer sees.
#[derive(Debug)]
pub(crate) struct Tapped<T, O> {
    io: T,
    observer: O,
}

impl<T, O> Tapped<T, O> {
    pub fn new(io: T, observer: O) -> Self {
        Tapped { io, observer }
    }

    /// The wrapped reader or writer (the observer is dropped).
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T: AsyncRead + Unpin, O: Observe + Unpin> AsyncRead for Tapped<T, O> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.observer.saw(n);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin, O: Observe + Unpin> AsyncWrite for Tapped<T, O> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            if n > 0 {
                self.observer.saw(n);
            }
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
