//! The link writer: the one task that owns a link's write half. Control
//! frames go first; then whatever else is ready is gathered, up to a bound,
//! into one vectored write.

use std::future::Future;
use std::io::IoSlice;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::control::ControlQueue;
use super::link::Outgoing;
use crate::frame::{Frame, HEADER_LEN};

/// Bounds on one gathered write.
const MAX_BATCH_FRAMES: usize = 64;
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// A batch smaller than this waits one scheduler turn for more frames.
const YIELD_BELOW: usize = 16 * 1024;

pub(crate) async fn run<W: AsyncWrite + Unpin>(
    mut io: W,
    mut data_rx: mpsc::Receiver<Outgoing>,
    ctrl: &ControlQueue,
    cancel: &CancellationToken,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let mut batch: Vec<Frame> = Vec::with_capacity(MAX_BATCH_FRAMES);
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut headers: Vec<u8> = Vec::with_capacity(MAX_BATCH_FRAMES * HEADER_LEN);
    // A stream-queue item taken while waiting, not yet batched.
    let mut pending: Option<Outgoing> = None;
    loop {
        if pending.is_none() && ctrl.is_empty() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return close(io).await,
                _ = ctrl.ready() => {}
                item = data_rx.recv() => match item {
                    Some(item) => pending = Some(item),
                    None => return Ok(()),
                },
            }
        }
        let mut bytes = 0;
        let mut yielded = false;
        loop {
            // Control first, then whatever DATA is ready, up to the bounds.
            let room = MAX_BATCH_FRAMES.saturating_sub(batch.len());
            bytes += ctrl.take(&mut batch, room);
            while bytes < MAX_BATCH_BYTES && batch.len() < MAX_BATCH_FRAMES {
                let Some(item) = pending.take().or_else(|| data_rx.try_recv().ok()) else {
                    break;
                };
                match item {
                    Outgoing::Frame(f) => {
                        bytes += HEADER_LEN + f.payload.len();
                        batch.push(f);
                    }
                    Outgoing::Flush(tx) => flushes.push(tx),
                }
            }
            // A small batch waits one turn of the scheduler, so streams that
            // are ready right now add their frames to the same write.
            if yielded || bytes >= YIELD_BELOW || batch.len() >= MAX_BATCH_FRAMES {
                break;
            }
            yielded = true;
            tokio::task::yield_now().await;
        }
        write_batch(&mut io, &batch, &mut headers, write_timeout).await?;
        batch.clear();
        for tx in flushes.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// How long a closing link waits to end its write side cleanly.
const CLOSE_WAIT: Duration = Duration::from_millis(250);

/// The link is closing: end the write side the way the transport ends
/// cleanly (a FIN on TCP, as dropping it would; a Close message on a
/// WebSocket, which dropping would not send, and the peer would read an
/// abort). A peer that reads nothing does not hold the close up.
async fn close<W: AsyncWrite + Unpin>(mut io: W) -> std::io::Result<()> {
    let _ = tokio::time::timeout(CLOSE_WAIT, io.shutdown()).await;
    Ok(())
}

/// Writes a batch. Most writes finish at once; one that has to wait gets a
/// deadline, as a peer that stops reading must not pin this link forever.
async fn write_batch<W: AsyncWrite + Unpin>(
    io: &mut W,
    batch: &[Frame],
    headers: &mut Vec<u8>,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let write = write_frames(io, batch, headers);
    tokio::pin!(write);
    let first_try = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    match first_try {
        Poll::Ready(result) => result,
        Poll::Pending => match tokio::time::timeout(write_timeout, write).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer read nothing for {} s", write_timeout.as_secs()),
            )),
        },
    }
}

/// Writes the frames' headers and payloads with as few syscalls as the
/// transport allows, without copying payloads.
async fn write_frames<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[Frame],
    headers: &mut Vec<u8>,
) -> std::io::Result<()> {
    if frames.is_empty() {
        return Ok(());
    }
    headers.clear();
    if !io.is_write_vectored() {
        return write_copied(io, frames, headers).await;
    }
    for f in frames {
        headers.extend_from_slice(&f.header().encode());
    }
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(frames.len() * 2);
    for (i, f) in frames.iter().enumerate() {
        slices.push(IoSlice::new(&headers[i * HEADER_LEN..(i + 1) * HEADER_LEN]));
        if !f.payload.is_empty() {
            slices.push(IoSlice::new(&f.payload));
        }
    }
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        let n = io.write_vectored(remaining).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut remaining, n);
    }
    io.flush().await
}

/// Bytes copied together before a write when the transport cannot write
/// vectored: four TLS records' worth.
const COPY_CHUNK: usize = 64 * 1024;

/// For transports that take one buffer per write (TLS makes a record of
/// each, WebSocket a message): frames are copied together, in chunks of
/// at most `COPY_CHUNK` (so the buffer stays that small), rather than each
/// header and payload sent on its own.
async fn write_copied<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[Frame],
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    for f in frames {
        buf.extend_from_slice(&f.header().encode());
        let mut payload = &f.payload[..];
        while !payload.is_empty() {
            let take = payload
                .len()
                .min(COPY_CHUNK.saturating_sub(buf.len()).max(1));
            buf.extend_from_slice(&payload[..take]);
            payload = &payload[take..];
            if buf.len() >= COPY_CHUNK {
                io.write_all(buf).await?;
                buf.clear();
            }
        }
    }
    if !buf.is_empty() {
        io.write_all(buf).await?;
        buf.clear();
    }
    io.flush().await
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::Context;

    use bytes::Bytes;

    use super::*;
    use crate::frame::FrameType;

    /// A writer that takes one buffer per write, as TLS does, and keeps
    /// what it was given and the size of each write.
    #[derive(Default)]
    struct OneBufferPerWrite {
        written: Vec<u8>,
        writes: Vec<usize>,
    }

    impl AsyncWrite for OneBufferPerWrite {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(data);
            self.writes.push(data.len());
            Poll::Ready(Ok(data.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn without_vectored_writes_frames_go_out_copied_together_in_bounded_chunks() {
        let payload =
            |n: usize, seed: u8| Bytes::from((0..n).map(|i| seed ^ i as u8).collect::<Vec<_>>());
        let frames = vec![
            Frame::new(FrameType::Ping, 0, Bytes::from_static(b"12345678")),
            Frame::new(FrameType::Data, 1, payload(16 * 1024, 1)),
            Frame::new(FrameType::Data, 3, payload(100 * 1024, 2)),
            Frame::new(FrameType::Data, 5, payload(10, 3)),
        ];
        let mut io = OneBufferPerWrite::default();
        assert!(!io.is_write_vectored());
        write_frames(&mut io, &frames, &mut Vec::new())
            .await
            .unwrap();
        let mut expected = Vec::new();
        for f in &frames {
            expected.extend_from_slice(&f.header().encode());
            expected.extend_from_slice(&f.payload);
        }
        assert_eq!(io.written, expected);
        // Few writes, none larger than the chunk, not one per frame part.
        assert!(
            io.writes.iter().all(|&n| n <= COPY_CHUNK),
            "{:?}",
            io.writes
        );
        assert_eq!(io.writes.len(), expected.len().div_ceil(COPY_CHUNK));
    }
}
