//! A user's or peer's connection as the handlers see it: plain TCP, or TLS
//! the server terminated (`--tls-cert`, ACME). An enum rather than a trait
//! object or generics: the plain path pays one predictable branch per poll
//! and no allocation, lock or copy, and every handler keeps one concrete type.
//!
//! Endings are the same on both: a clean end is a FIN (after TLS's
//! `close_notify`), an abort is a TCP reset of the socket underneath, never
//! a `close_notify` that would make a cut-off transfer look complete.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use uptun_protocol::{abort_tcp, end_tcp, RelayError, RelayStats};

/// TLS over the accepted TCP socket.
pub(crate) type Tls = TlsStream<TcpStream>;

/// A connection the server accepted, with TLS terminated if it was TLS.
#[derive(Debug)]
pub(crate) enum Socket {
    Plain(TcpStream),
    /// Boxed: rustls' state is large, and most connections are plain.
    Tls(Box<Tls>),
}

/// The reading half of a [`Socket`].
#[derive(Debug)]
pub(crate) enum SocketRead {
    Plain(OwnedReadHalf),
    /// tokio's `split`: TLS has one state for both ways, so the halves
    /// share it behind a lock (taken only on the TLS path).
    Tls(tokio::io::ReadHalf<Tls>),
}

/// The writing half of a [`Socket`].
#[derive(Debug)]
pub(crate) enum SocketWrite {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<Tls>),
}

impl Socket {
    /// Splits the connection so each direction can be driven on its own.
    pub fn into_split(self) -> (SocketRead, SocketWrite) {
        match self {
            Socket::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                (SocketRead::Plain(read), SocketWrite::Plain(write))
            }
            Socket::Tls(tls) => {
                let (read, write) = tokio::io::split(*tls);
                (SocketRead::Tls(read), SocketWrite::Tls(write))
            }
        }
    }

    /// Closes the connection with a TCP reset (`SO_LINGER` 0): for users
    /// turned away or aborted, which must not see a clean end.
    pub fn abort(self) {
        match self {
            Socket::Plain(tcp) => abort_tcp(tcp),
            Socket::Tls(tls) => abort_tls(*tls),
        }
    }
}

/// Ends a split connection after a relay, as [`uptun_protocol::end_tcp`]
/// describes: nothing more after a clean end (the relay already sent the
/// FIN, and `close_notify` before it on TLS), a reset after an abnormal one,
/// unless the peer's whole reply and FIN already went out (then the far
/// end's remaining bytes are read and dropped for a while, so the kernel
/// sends what it holds instead of resetting it away).
pub(crate) async fn end(
    read: SocketRead,
    write: SocketWrite,
    outcome: &Result<RelayStats, RelayError>,
    fin_delivered: bool,
) {
    match (read, write) {
        (SocketRead::Plain(read), SocketWrite::Plain(write)) => {
            end_tcp(read, write, outcome, fin_delivered).await
        }
        (SocketRead::Tls(mut read), SocketWrite::Tls(write)) => match outcome {
            Ok(_) => {}
            Err(_) if fin_delivered => {
                let mut sink = tokio::io::sink();
                let discard = tokio::io::copy(&mut read, &mut sink);
                let _ = Box::pin(tokio::time::timeout(DISCARD_AFTER_FAILURE, discard)).await;
            }
            Err(_) => abort_tls(read.unsplit(write)),
        },
        _ => unreachable!("the halves of one socket are of one kind"),
    }
}

/// As long as `end_tcp` waits for a far end to finish after a failure.
const DISCARD_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(10);

/// Resets the TCP socket under a TLS stream. Dropping the stream without
/// `shutdown` sends no `close_notify`; the zero linger makes the close a
/// reset, so the user sees `ECONNRESET` as a plain user would.
fn abort_tls(tls: Tls) {
    let (tcp, _session) = tls.into_inner();
    abort_tcp(tcp);
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Socket::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncRead for SocketRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SocketRead::Plain(io) => Pin::new(io).poll_read(cx, buf),
            SocketRead::Tls(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

/// Forwards every write method, vectored ones included: the link writer
/// gathers frames into one vectored write, and a wrapper that dropped
/// `poll_write_vectored` would turn it into a write per slice.
macro_rules! forward_writes {
    ($type:ident) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $type::Plain(io) => Pin::new(io).poll_write(cx, data),
                    $type::Tls(io) => Pin::new(io).poll_write(cx, data),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $type::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
                    $type::Tls(io) => Pin::new(io).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $type::Plain(io) => io.is_write_vectored(),
                    $type::Tls(io) => io.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $type::Plain(io) => Pin::new(io).poll_flush(cx),
                    $type::Tls(io) => Pin::new(io).poll_flush(cx),
                }
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $type::Plain(io) => Pin::new(io).poll_shutdown(cx),
                    $type::Tls(io) => Pin::new(io).poll_shutdown(cx),
                }
            }
        }
    };
}

forward_writes!(Socket);
forward_writes!(SocketWrite);
