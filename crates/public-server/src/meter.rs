//! Metering one stream: it counts as active on its channel while it lives,
//! and its bytes are tallied where they cross the user's socket (or the
//! client's stream). A tally adds to the channel's shared counter only in
//! steps of `STEP` bytes and when it ends, so streams on both cores do not
//! fight over one cache line for every read; the price is that a stream's
//! last (under `STEP`) bytes show up when it ends.

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use uptun_protocol::MuxStream;

use crate::metrics::ChannelStats;
use crate::tap::{Observe, Tapped};

/// Bytes a tally holds back before adding them to the channel's counter.
pub(crate) const STEP: u64 = 64 * 1024;

/// A stream opened to an agent, with the meter that counts it. Derefs to
/// the stream, so code that only talks on it need not know.
#[derive(Debug)]
pub(crate) struct MeteredStream {
    stream: MuxStream,
    meter: StreamMeter,
}

impl MeteredStream {
    pub fn new(stream: MuxStream, meter: StreamMeter) -> Self {
        MeteredStream { stream, meter }
    }

    pub fn into_parts(self) -> (MuxStream, StreamMeter) {
        (self.stream, self.meter)
    }

    /// Counts bytes that crossed outside a relay (a banner, first bytes).
    pub fn add(&self, way: Way, n: usize) {
        self.meter.add(way, n);
    }
}

impl Deref for MeteredStream {
    type Target = MuxStream;

    fn deref(&self) -> &MuxStream {
        &self.stream
    }
}

/// Keeps a stream counted as active on its channel until dropped.
#[derive(Debug)]
pub(crate) struct StreamMeter {
    stats: Arc<ChannelStats>,
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Way {
    /// From the user (or client) toward the agent.
    ToAgent,
    /// From the agent back to the user (or client).
    FromAgent,
}

impl StreamMeter {
    pub fn new(stats: Arc<ChannelStats>) -> Self {
        stats.opened.fetch_add(1, Ordering::Relaxed);
        stats.active.fetch_add(1, Ordering::Relaxed);
        StreamMeter { stats }
    }

    /// A tally of bytes going `way`.
    pub fn tally(&self, way: Way) -> Tally {
        Tally {
            stats: self.stats.clone(),
            way,
            pending: 0,
        }
    }

    /// Wraps a socket half (or anything that reads or writes) so the bytes
    /// through it are tallied going `way`.
    pub fn count<T>(&self, way: Way, io: T) -> Counted<T> {
        Tapped::new(io, self.tally(way))
    }

    /// Bytes that crossed outside a counted wrapper (a banner written, a
    /// user's first bytes sent on).
    pub fn add(&self, way: Way, n: usize) {
        self.tally(way).add(n);
    }
}

impl Drop for StreamMeter {
    fn drop(&mut self) {
        // Release: the stream's tallies were added before this (they are
        // dropped first), so a reader that sees the stream gone (Acquire)
        // sees all its bytes.
        self.stats.active.fetch_sub(1, Ordering::Release);
    }
}

/// Bytes going one way on one stream, added to the channel in steps.
#[derive(Debug)]
pub(crate) struct Tally {
    stats: Arc<ChannelStats>,
    way: Way,
    pending: u64,
}

impl Tally {
    pub fn add(&mut self, n: usize) {
        self.pending += n as u64;
        if self.pending >= STEP {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let total = match self.way {
            Way::ToAgent => &self.stats.to_agent,
            Way::FromAgent => &self.stats.from_agent,
        };
        total.fetch_add(std::mem::take(&mut self.pending), Ordering::Relaxed);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if self.pending > 0 {
            self.flush();
        }
    }
}

/// A reader or writer whose bytes are tallied.
pub(crate) type Counted<T> = Tapped<T, Tally>;

impl Observe for Tally {
    fn saw(&mut self, n: usize) {
        self.add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    fn totals(stats: &ChannelStats) -> (u64, u64, i64) {
        (
            stats.to_agent.load(Ordering::Relaxed),
            stats.from_agent.load(Ordering::Relaxed),
            stats.active.load(Ordering::Relaxed),
        )
    }

    /// Sends `n` bytes through `b` and reads them from `up`.
    async fn pass(b: &mut DuplexStream, up: &mut Counted<DuplexStream>, n: usize) {
        b.write_all(&vec![7u8; n]).await.unwrap();
        let mut got = vec![0u8; n];
        up.read_exact(&mut got).await.unwrap();
    }

    #[tokio::test]
    async fn bytes_show_in_steps_while_they_move_and_all_at_the_end() {
        let stats = Arc::new(ChannelStats::default());
        let meter = StreamMeter::new(stats.clone());
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut up = meter.count(Way::ToAgent, a);
        pass(&mut b, &mut up, STEP as usize - 1).await;
        assert_eq!(totals(&stats), (0, 0, 1), "under one step: held back");
        pass(&mut b, &mut up, 11).await;
        assert_eq!(totals(&stats), (STEP + 10, 0, 1), "a step: added");
        pass(&mut b, &mut up, 10).await;
        meter.add(Way::FromAgent, 5);
        assert_eq!(totals(&stats), (STEP + 10, 5, 1));
        let inner = up.into_inner();
        assert_eq!(totals(&stats), (STEP + 20, 5, 1), "the rest at the end");
        drop((inner, meter));
        assert_eq!(totals(&stats), (STEP + 20, 5, 0));
        assert_eq!(stats.opened.load(Ordering::Relaxed), 1);
    }
}
