//! A user's or peer's connection as the handlers see it: plain TCP, or TLS
//! the server terminated (`--tls-cert`, ACME). Two variants rather than a
//! trait object or generics: the plain path pays one predictable branch per
//! poll and no allocation, lock or copy, and every handler keeps one
//! concrete type.
//!
//! Endings are the same on both: a clean end is a FIN (after TLS's
//! `close_notify`), an abort is a TCP reset of the socket underneath, never
//! a `close_notify` that would make a cut-off transfer look complete.

use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;
use uptun_protocol::{abort_tcp, end_tcp, RelayError, RelayStats};

/// TLS over the accepted TCP socket.
pub(crate) type Tls = TlsStream<TcpStream>;

/// A connection the server accepted: plain TCP (`Left`), or TLS it
/// terminated (`Right`, boxed: rustls' state is large, and most connections
/// are plain). `Either` forwards every read and write, vectored ones too,
/// so the link writer's gathered frames stay one write.
pub(crate) type Socket = Either<TcpStream, Box<Tls>>;

/// The reading half of a [`Socket`]. TLS has one state for both ways, so
/// its halves (tokio's `split`) share it behind a lock, taken only on the
/// TLS path.
pub(crate) type SocketRead = Either<OwnedReadHalf, ReadHalf<Tls>>;

/// The writing half of a [`Socket`].
pub(crate) type SocketWrite = Either<OwnedWriteHalf, WriteHalf<Tls>>;

/// What the handlers do with a whole [`Socket`] besides reading and writing.
pub(crate) trait SocketExt {
    /// Splits the connection so each direction can be driven on its own.
    fn into_split(self) -> (SocketRead, SocketWrite);

    /// Closes the connection with a TCP reset (`SO_LINGER` 0): for users
    /// turned away or aborted, which must not see a clean end.
    fn abort(self);
}

impl SocketExt for Socket {
    fn into_split(self) -> (SocketRead, SocketWrite) {
        match self {
            Either::Left(tcp) => {
                let (read, write) = tcp.into_split();
                (Either::Left(read), Either::Left(write))
            }
            Either::Right(tls) => {
                let (read, write) = tokio::io::split(*tls);
                (Either::Right(read), Either::Right(write))
            }
        }
    }

    fn abort(self) {
        match self {
            Either::Left(tcp) => abort_tcp(tcp),
            Either::Right(tls) => abort_tls(*tls),
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
        (Either::Left(read), Either::Left(write)) => {
            end_tcp(read, write, outcome, fin_delivered).await
        }
        (Either::Right(mut read), Either::Right(write)) => match outcome {
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
