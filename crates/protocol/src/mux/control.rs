//! The control queue: frames that overtake DATA (WINDOW, RESET, REFUSE,
//! PING, PONG, GOAWAY). It is bounded by construction, not by dropping
//! frames or by closing the link when a burst comes: credit owed to one
//! stream is merged into one WINDOW, only the latest PING and PONG are kept,
//! and a stream ends at most once (one RESET or REFUSE), so the queue holds
//! about one entry per stream. Past a cap of that order the peer is opening
//! and ending streams (or sending DATA) faster than it reads our answers:
//! the link is closed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::frame::{Frame, FrameType, HEADER_LEN};

#[derive(Debug)]
pub(crate) struct ControlQueue {
    inner: Mutex<Inner>,
    ready: Notify,
    /// Most entries (ends plus streams owed credit) held at once.
    cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// RESET, REFUSE and GOAWAY, in order.
    ends: VecDeque<Frame>,
    /// Credit owed per stream, merged.
    credit: HashMap<u32, u32>,
    /// Streams owed credit, in the order it became due.
    credit_order: VecDeque<u32>,
    ping: Option<Bytes>,
    pong: Option<Bytes>,
}

/// The queue is over its cap: the peer does not read what it causes.
#[derive(Debug)]
pub(crate) struct Overflow;

impl ControlQueue {
    pub fn new(cap: usize) -> Self {
        ControlQueue {
            inner: Mutex::default(),
            ready: Notify::new(),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a control frame built by this side.
    pub fn push(&self, frame: Frame) -> Result<(), Overflow> {
        {
            let mut inner = self.lock();
            let entries = inner.ends.len() + inner.credit.len();
            match frame.kind {
                FrameType::Ping => inner.ping = Some(frame.payload),
                FrameType::Pong => inner.pong = Some(frame.payload),
                FrameType::Window => {
                    let increment = frame.window_increment().unwrap_or(0);
                    if let Some(owed) = inner.credit.get_mut(&frame.stream) {
                        // Credit never exceeds a window (≤ 64 MiB), so the
                        // sum of two grants fits a u32.
                        *owed = owed.saturating_add(increment);
                    } else {
                        if entries >= self.cap {
                            return Err(Overflow);
                        }
                        inner.credit.insert(frame.stream, increment);
                        inner.credit_order.push_back(frame.stream);
                    }
                }
                _ => {
                    // Credit owed to a stream that ends is moot (the peer
                    // drops a WINDOW for a stream it no longer knows): the
                    // end replaces it, so a stream holds one entry at most.
                    // Its id may stay in `credit_order`; `take` skips it.
                    if frame.stream != 0 {
                        inner.credit.remove(&frame.stream);
                    }
                    if inner.ends.len() + inner.credit.len() >= self.cap {
                        return Err(Overflow);
                    }
                    inner.ends.push_back(frame);
                }
            }
        }
        self.ready.notify_one();
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.ends.is_empty()
            && inner.credit.is_empty()
            && inner.ping.is_none()
            && inner.pong.is_none()
    }

    /// Resolves once something may have been queued since the last `take`.
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// Moves up to `max` frames into `out`: PONG and PING first (they
    /// measure the link), then ends, then credit. Returns the bytes added.
    pub fn take(&self, out: &mut Vec<Frame>, max: usize) -> usize {
        let mut inner = self.lock();
        let mut bytes = 0;
        let mut add = |frame: Frame, out: &mut Vec<Frame>| {
            bytes += HEADER_LEN + frame.payload.len();
            out.push(frame);
        };
        if let Some(stamp) = inner.pong.take() {
            add(Frame::new(FrameType::Pong, 0, stamp), out);
        }
        if let Some(stamp) = inner.ping.take() {
            add(Frame::new(FrameType::Ping, 0, stamp), out);
        }
        let limit = out.len() + max;
        while out.len() < limit {
            let Some(frame) = inner.ends.pop_front() else {
                break;
            };
            add(frame, out);
        }
        while out.len() < limit {
            let Some(id) = inner.credit_order.pop_front() else {
                break;
            };
            if let Some(increment) = inner.credit.remove(&id) {
                add(Frame::window(id, increment), out);
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_for_one_stream_is_merged_and_pings_keep_the_latest() {
        let q = ControlQueue::new(8);
        q.push(Frame::window(3, 100)).unwrap();
        q.push(Frame::window(5, 7)).unwrap();
        q.push(Frame::window(3, 50)).unwrap();
        q.push(Frame::new(FrameType::Pong, 0, Bytes::from_static(&[1; 8])))
            .unwrap();
        q.push(Frame::new(FrameType::Pong, 0, Bytes::from_static(&[2; 8])))
            .unwrap();
        q.push(Frame::with_reason(FrameType::Reset, 9, "gone"))
            .unwrap();
        let mut out = Vec::new();
        q.take(&mut out, 64);
        let got: Vec<(FrameType, u32, Vec<u8>)> = out
            .iter()
            .map(|f| (f.kind, f.stream, f.payload.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (FrameType::Pong, 0, vec![2; 8]),
                (FrameType::Reset, 9, b"gone".to_vec()),
                (FrameType::Window, 3, 150u32.to_be_bytes().to_vec()),
                (FrameType::Window, 5, 7u32.to_be_bytes().to_vec()),
            ]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn past_the_cap_new_entries_overflow_but_merges_do_not() {
        let q = ControlQueue::new(2);
        q.push(Frame::window(1, 1)).unwrap();
        q.push(Frame::with_reason(FrameType::Reset, 2, "x"))
            .unwrap();
        assert!(q
            .push(Frame::with_reason(FrameType::Reset, 3, "x"))
            .is_err());
        assert!(q.push(Frame::window(4, 1)).is_err());
        q.push(Frame::window(1, 1)).unwrap();
        q.push(Frame::new(FrameType::Ping, 0, Bytes::from_static(&[0; 8])))
            .unwrap();
        let mut out = Vec::new();
        q.take(&mut out, 1);
        assert_eq!(out.len(), 2, "a PING and one more");
        q.take(&mut out, 64);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn an_end_replaces_the_credit_its_stream_was_owed() {
        let q = ControlQueue::new(2);
        q.push(Frame::window(1, 10)).unwrap();
        q.push(Frame::window(3, 10)).unwrap();
        // Both streams end: two entries still, not four.
        q.push(Frame::with_reason(FrameType::Reset, 1, "x"))
            .unwrap();
        q.push(Frame::with_reason(FrameType::Reset, 3, "x"))
            .unwrap();
        let mut out = Vec::new();
        q.take(&mut out, 64);
        let kinds: Vec<(FrameType, u32)> = out.iter().map(|f| (f.kind, f.stream)).collect();
        assert_eq!(kinds, vec![(FrameType::Reset, 1), (FrameType::Reset, 3)]);
        assert!(q.is_empty());
    }
}
