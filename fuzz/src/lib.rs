//! What the fuzz targets share: one layout that turns a fuzz input into the
//! reads a peer's bytes arrive in, and an `AsyncRead` that delivers them so.
//!
//! Input layout: `[n][n × (length, delay)][data]`. Bit 7 of `n` says the
//! peer keeps the connection open after its last byte (otherwise EOF); the
//! low 7 bits count the (length, delay) pairs that cut `data` into reads,
//! and whatever they leave over is one last read. A seed that is just
//! `0x00` followed by the bytes is those bytes in one read, then EOF.

mod largest;

pub use largest::Largest;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;

/// One read of the peer: how long after the previous one, and its bytes.
#[derive(Debug, Clone)]
pub struct Read<'a> {
    pub delay: Duration,
    pub bytes: &'a [u8],
}

/// A fuzz input cut into reads.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    pub reads: Vec<Read<'a>>,
    /// All the bytes, in order (the concatenation of `reads`).
    pub data: &'a [u8],
    /// After the last read: stay open and silent (true) or EOF.
    pub keep_open: bool,
}

impl<'a> Script<'a> {
    pub fn parse(input: &'a [u8]) -> Script<'a> {
        let Some((&n, rest)) = input.split_first() else {
            return Script {
                reads: Vec::new(),
                data: &[],
                keep_open: false,
            };
        };
        let pairs = usize::from(n & 0x7f).min(rest.len() / 2);
        let (cuts, data) = rest.split_at(pairs * 2);
        let mut reads = Vec::with_capacity(pairs + 1);
        let mut at = 0;
        for cut in cuts.chunks_exact(2) {
            // Lengths above 127 step by 128 bytes, so one read can span
            // a 16 KiB head without a hundred pairs.
            let len = match cut[0] {
                l @ 0..=127 => usize::from(l),
                l => usize::from(l - 127) * 128,
            };
            let len = len.min(data.len() - at);
            reads.push(Read {
                delay: Duration::from_millis(u64::from(cut[1]) * 10),
                bytes: &data[at..at + len],
            });
            at += len;
        }
        if at < data.len() {
            reads.push(Read {
                delay: Duration::ZERO,
                bytes: &data[at..],
            });
        }
        Script {
            reads,
            data,
            keep_open: n & 0x80 != 0,
        }
    }
}

/// Delivers a script's reads: each after its delay (tokio time, so paused
/// time makes it instant), never more than one read per `poll_read`, then
/// EOF or silence. Counts what it delivered. Owns its bytes, so it can be
/// handed to a spawned task.
pub struct Peer {
    reads: VecDeque<(Duration, Bytes)>,
    sleep: Option<Pin<Box<Sleep>>>,
    keep_open: bool,
    pub delivered: usize,
}

impl Peer {
    pub fn new(script: &Script<'_>) -> Peer {
        Peer {
            reads: script
                .reads
                .iter()
                .map(|r| (r.delay, Bytes::copy_from_slice(r.bytes)))
                .collect(),
            sleep: None,
            keep_open: script.keep_open,
            delivered: 0,
        }
    }
}

impl AsyncRead for Peer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            let Some((delay, bytes)) = this.reads.front_mut() else {
                return if this.keep_open {
                    Poll::Pending
                } else {
                    Poll::Ready(Ok(()))
                };
            };
            if !delay.is_zero() {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(*delay)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
                *delay = Duration::ZERO;
            }
            if bytes.is_empty() {
                // An empty cut is only a pause; an empty read would be EOF.
                this.reads.pop_front();
                continue;
            }
            let n = bytes.len().min(out.remaining());
            out.put_slice(&bytes.split_to(n));
            if bytes.is_empty() {
                this.reads.pop_front();
            }
            this.delivered += n;
            return Poll::Ready(Ok(()));
        }
    }
}

/// A current-thread runtime whose clock is paused: timers fire as soon as
/// nothing else can run, so a 10 s header deadline costs no wall time.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let s = Script::parse(b"\x00abc");
        assert_eq!(s.reads.len(), 1);
        assert_eq!(s.data, b"abc");
        assert!(!s.keep_open);
        let s = Script::parse(b"\x82\x01\x05\x09\x00abcdef");
        assert!(s.keep_open);
        let cut: Vec<_> = s.reads.iter().map(|r| r.bytes).collect();
        assert_eq!(cut, [&b"a"[..], b"bcdef"]);
        assert_eq!(s.reads[0].delay, Duration::from_millis(50));
        assert!(Script::parse(b"").reads.is_empty());
    }
}
