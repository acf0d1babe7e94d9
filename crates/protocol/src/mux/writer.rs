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
                _ = cancel.cancelled() => return Ok(()),
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
