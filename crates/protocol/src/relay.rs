//! Moving bytes between a stream and a socket (or two streams), both ways at
//! once, with half-close carried through: EOF on one side becomes FIN, FIN
//! becomes a write shutdown, and the other direction keeps flowing.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::error::StreamError;
use crate::mux::{MuxStream, StreamEvent};
use crate::terminal::ExitStatus;

/// Bytes moved by a finished relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// From the local side into the stream.
    pub sent: u64,
    /// From the stream out to the local side.
    pub received: u64,
}

/// Why a relay stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("{0}")]
    Local(std::io::Error),
}

/// Reads of up to this size go into a buffer on the stack of the poll that
/// reads, and only the bytes read are copied out; so a waiting stream holds
/// no buffer at all, on the heap or in its task (10,000 idle streams must
/// stay cheap), while a whole request or reply still arrives in one read and
/// leaves in one frame. A read that fills it switches to heap buffers that
/// double up to the frame size; a smaller read switches back.
const STACK_READ: usize = 16 * 1024;

/// Reads up to `limit` (at most `STACK_READ`) bytes into a buffer that lives
/// only during each poll, so the waiting future carries no buffer.
async fn read_on_stack<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> std::io::Result<Bytes> {
    std::future::poll_fn(|cx| {
        // Uninitialised: zeroing 16 KiB on every poll would cost more than
        // the read of a keystroke.
        let mut space = [MaybeUninit::<u8>::uninit(); STACK_READ];
        let mut buf = ReadBuf::uninit(&mut space[..limit.min(STACK_READ)]);
        std::pin::Pin::new(&mut *reader)
            .poll_read(cx, &mut buf)
            .map_ok(|()| Bytes::copy_from_slice(buf.filled()))
    })
    .await
}

/// How long a failed relay keeps writing out what the peer sent before its
/// FIN, before it gives up and aborts.
const DELIVER_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(10);

/// Relays between `stream` and a local reader/writer until both directions
/// have finished. On failure the stream is reset with the reason.
pub async fn relay<R, W>(stream: MuxStream, reader: R, writer: W) -> Result<RelayStats, RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    relay_core(stream, reader, writer).await.0
}

/// `relay`, also returning the exit status the peer's FIN carried, if it
/// carried one (a terminal stream's process, §6.8), for a client that
/// exits with it. Once a status came the process is gone and nothing reads
/// more input: the relay ends without waiting for the local side's EOF.
pub async fn relay_exit<R, W>(
    stream: MuxStream,
    reader: R,
    writer: W,
) -> Result<(RelayStats, Option<ExitStatus>), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (outcome, ending) = relay_core(stream, reader, writer).await;
    outcome.map(|stats| (stats, ending.exit))
}

/// `relay`, also telling whether everything the peer sent, and its FIN,
/// went out to the local side (so a failure was in the other direction):
/// what [`end_tcp`] needs to end a socket honestly.
pub async fn relay_ending<R, W>(
    stream: MuxStream,
    reader: R,
    writer: W,
) -> (Result<RelayStats, RelayError>, bool)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (outcome, ending) = relay_core(stream, reader, writer).await;
    (outcome, ending.fin_delivered)
}

/// How a relay ended, besides its outcome.
#[derive(Default)]
struct Ending {
    /// Everything the peer sent, and its FIN, went out to the local side.
    fin_delivered: bool,
    /// The exit status the peer's FIN carried.
    exit: Option<ExitStatus>,
}

async fn relay_core<R, W>(
    stream: MuxStream,
    mut reader: R,
    mut writer: W,
) -> (Result<RelayStats, RelayError>, Ending)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let max = stream.max_data();
    // Counted outside `up`, which is dropped unfinished when the peer's
    // process has exited; atomic only so the future stays `Send`.
    let sent = AtomicU64::new(0);
    let up = async {
        let mut buf = BytesMut::new();
        let mut want = STACK_READ;
        loop {
            let credit = stream.credit().await?;
            let limit = want.min(credit).min(max);
            let read = async {
                if limit <= STACK_READ {
                    read_on_stack(&mut reader, limit).await
                } else {
                    buf.reserve(limit);
                    reader.read_buf(&mut (&mut buf).limit(limit)).await?;
                    Ok(buf.split().freeze())
                }
            };
            // A stream that dies while its local side is quiet must not leave
            // this task parked on the read forever.
            let data = tokio::select! {
                read = read => read.map_err(RelayError::Local)?,
                err = stream.failed() => return Err(err.into()),
            };
            let n = data.len();
            if n == 0 {
                stream.finish().await?;
                return Ok::<u64, RelayError>(sent.load(Relaxed));
            }
            want = if n == limit {
                (want * 2).min(max)
            } else if n <= STACK_READ {
                STACK_READ
            } else {
                want
            };
            sent.fetch_add(n as u64, Relaxed);
            stream.send(data).await?;
        }
    };
    let down = async {
        let mut received = 0u64;
        let exit = loop {
            let chunk = match stream.recv_event().await? {
                StreamEvent::Data(chunk) => chunk,
                // A size means nothing to a socket or a pipe.
                StreamEvent::Resize(_) => continue,
                StreamEvent::End(exit) => break exit,
            };
            received += chunk.len() as u64;
            writer.write_all(&chunk).await.map_err(RelayError::Local)?;
            // Some writers hold bytes back until flushed (stdout is line
            // buffered); for sockets this is free.
            writer.flush().await.map_err(RelayError::Local)?;
        };
        writer.shutdown().await.map_err(RelayError::Local)?;
        Ok::<_, RelayError>((received, exit))
    };
    tokio::pin!(up, down);
    let mut ending = Ending::default();
    let outcome = tokio::select! {
        up_done = &mut up => match up_done {
            Ok(sent) => down.await.map(|(received, exit)| {
                ending.exit = exit;
                RelayStats { sent, received }
            }),
            Err(err) => {
                // Whatever the peer sent before its FIN is queued here: the
                // local side gets it (and the FIN) before the abort; bounded,
                // so a local side that stops reading cannot keep the failed
                // stream's task alive. Boxed: a rare path whose timer need
                // not live in every relay.
                if stream.remote_finished() {
                    let delivered = Box::pin(tokio::time::timeout(DELIVER_AFTER_FAILURE, down)).await;
                    ending.fin_delivered = matches!(delivered, Ok(Ok(_)));
                }
                Err(err)
            }
        },
        down_done = &mut down => match down_done {
            Ok((received, Some(exit))) => {
                // The process is gone: our side ends here, whatever the
                // local reader still holds. The FIN may find the stream
                // already closed by the peer; the status came all the same.
                ending = Ending { fin_delivered: true, exit: Some(exit) };
                let _ = stream.finish().await;
                Ok(RelayStats { sent: sent.load(Relaxed), received })
            }
            Ok((received, None)) => {
                ending.fin_delivered = true;
                up.await.map(|sent| RelayStats { sent, received })
            }
            Err(err) => Err(err),
        },
    };
    if let Err(err) = &outcome {
        stream.reset(&err.to_string());
    }
    (outcome, ending)
}

/// Relays between `stream` and a TCP socket. An abnormal end (the stream was
/// reset, its link lost or declared dead, the socket failed) resets the
/// socket instead of closing it, so the far end sees `ECONNRESET` and cannot
/// take a truncated transfer for a complete one. A clean FIN stays a FIN.
///
/// One exception keeps data: when everything the peer sent, and its FIN,
/// already went into the socket, a reset would throw away what the kernel
/// has not sent yet. The socket then closes like a clean end once the far
/// end has finished sending (its bytes are discarded: the stream is gone),
/// or after 10 s, when closing with its bytes unread resets it.
pub async fn relay_tcp(stream: MuxStream, socket: TcpStream) -> Result<RelayStats, RelayError> {
    let (mut read, mut write) = socket.into_split();
    let (outcome, fin_delivered) = relay_ending(stream, &mut read, &mut write).await;
    end_tcp(read, write, &outcome, fin_delivered).await;
    outcome
}

/// Ends a TCP socket after a relay as [`relay_tcp`] describes: nothing more
/// after a clean end, a reset after an abnormal one, unless the peer's
/// whole reply and FIN already went into the socket. For relays whose
/// socket halves are wrapped (idle timers, first-byte checks) and unwrapped
/// again to be ended.
pub async fn end_tcp(
    mut read: OwnedReadHalf,
    write: OwnedWriteHalf,
    outcome: &Result<RelayStats, RelayError>,
    fin_delivered: bool,
) {
    match outcome {
        Ok(_) => {}
        Err(_) if fin_delivered => {
            let mut sink = tokio::io::sink();
            let discard = tokio::io::copy(&mut read, &mut sink);
            let _ = Box::pin(tokio::time::timeout(DELIVER_AFTER_FAILURE, discard)).await;
        }
        Err(_) => abort_split(read, write),
    }
}

/// Closes a split socket with a TCP reset, like [`abort_tcp`].
fn abort_split(read: OwnedReadHalf, write: OwnedWriteHalf) {
    // Dropping the write half would send a FIN first; forget it, so the only
    // thing the peer sees after the data is the RST.
    let _ = read.as_ref().set_zero_linger();
    write.forget();
}

/// Closes a socket with a TCP reset (`SO_LINGER` 0): for connections turned
/// away or aborted, which must not look like a clean end.
pub fn abort_tcp(socket: TcpStream) {
    let _ = socket.set_zero_linger();
}

/// Relays between two streams (a client's stream and an agent's), passing
/// chunks through without copying, and terminal sizes and exit statuses
/// with them. Credit chains: a slow consumer on one side
/// holds back the producer on the other.
pub async fn bridge(a: MuxStream, b: MuxStream) -> Result<RelayStats, StreamError> {
    bridge_counted(a, b, |_| {}, |_| {}).await
}

/// [`bridge`], telling `a_to_b` and `b_to_a` the size of each chunk as it
/// passes, so a caller can keep live byte counts (the stats come only at
/// the end, and only for a clean one).
pub async fn bridge_counted(
    a: MuxStream,
    b: MuxStream,
    a_to_b: impl FnMut(usize),
    b_to_a: impl FnMut(usize),
) -> Result<RelayStats, StreamError> {
    async fn pipe(
        from: &MuxStream,
        to: &MuxStream,
        mut counted: impl FnMut(usize),
    ) -> Result<u64, StreamError> {
        let mut total = 0u64;
        loop {
            match from.recv_event().await? {
                StreamEvent::Data(chunk) => {
                    total += chunk.len() as u64;
                    counted(chunk.len());
                    to.send(chunk).await?;
                }
                StreamEvent::Resize(size) => to.send_resize(size).await?,
                StreamEvent::End(status) => {
                    to.finish_with(status).await?;
                    return Ok(total);
                }
            }
        }
    }
    match tokio::try_join!(pipe(&a, &b, a_to_b), pipe(&b, &a, b_to_a)) {
        Ok((sent, received)) => Ok(RelayStats { sent, received }),
        Err(err) => {
            let reason = err.to_string();
            a.reset(&reason);
            b.reset(&reason);
            Err(err)
        }
    }
}
