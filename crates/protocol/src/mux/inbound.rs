//! A stream's queue of received DATA, bounded in bytes by its credit window
//! and in entries by construction: small payloads are copied into one
//! growing tail buffer instead of taking an entry each, so 200,000 one-byte
//! frames cost 200,000 bytes, not 200,000 allocations.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Payloads shorter than this are copied into the tail, not kept as slices
/// of the link's read buffer (a few bytes must not pin 256 KiB).
const COPY_BELOW: usize = 16 * 1024;
/// At most this many queued payloads are still slices of read buffers; later
/// large ones are copied, so a stalled stream pins at most this many read
/// buffers beyond its window, while a busy one (a short queue) passes bulk
/// data on without a copy.
const MAX_SLICES_QUEUED: usize = 4;
/// The tail is handed on as its own chunk once it holds this much.
const TAIL_LIMIT: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// Whole chunks in arrival order, each at least `COPY_BELOW` long or a
    /// tail that a large payload closed. With the credit window bounding the
    /// bytes, this holds at most about `2 × window / COPY_BELOW` entries.
    chunks: VecDeque<Bytes>,
    /// Small payloads that arrived after the last chunk, coalesced.
    tail: BytesMut,
}

impl Inbound {
    /// Queues a payload that arrived, copying it where keeping the slice
    /// would pin memory.
    pub fn push(&mut self, payload: Bytes) {
        if payload.len() < COPY_BELOW {
            if self.tail.len() + payload.len() > TAIL_LIMIT {
                self.close_tail();
            }
            self.tail.extend_from_slice(&payload);
            return;
        }
        self.close_tail();
        // A slice only joins a short queue, so at most MAX_SLICES_QUEUED
        // entries can be slices.
        if self.chunks.len() < MAX_SLICES_QUEUED {
            self.chunks.push_back(payload);
        } else {
            self.chunks.push_back(Bytes::copy_from_slice(&payload));
        }
    }

    /// The oldest queued bytes, as one chunk.
    pub fn pop(&mut self) -> Option<Bytes> {
        match self.chunks.pop_front() {
            Some(chunk) => Some(chunk),
            // Taken whole, not split: a split would leave the empty tail
            // holding a reference to the handed-out buffer.
            None if !self.tail.is_empty() => Some(std::mem::take(&mut self.tail).freeze()),
            None => None,
        }
    }

    /// Bytes queued.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum::<usize>() + self.tail.len()
    }

    /// Entries queued (the tail counts as one).
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.chunks.len() + usize::from(!self.tail.is_empty())
    }

    fn close_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks
                .push_back(std::mem::take(&mut self.tail).freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_payloads_share_one_entry_and_keep_their_order() {
        let mut q = Inbound::default();
        for i in 0..50_000u32 {
            q.push(Bytes::copy_from_slice(&[(i % 251) as u8]));
        }
        assert_eq!(q.len(), 50_000);
        assert!(
            q.entries() <= 50_000 / TAIL_LIMIT + 1,
            "{} entries",
            q.entries()
        );
        let mut all = Vec::new();
        while let Some(chunk) = q.pop() {
            all.extend_from_slice(&chunk);
        }
        let want: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn large_payloads_interleaved_with_small_ones_stay_in_order_and_few() {
        let mut q = Inbound::default();
        let mut want = Vec::new();
        for i in 0..16u8 {
            let big = Bytes::from(vec![i; COPY_BELOW]);
            want.extend_from_slice(&big);
            q.push(big);
            q.push(Bytes::from_static(b"x"));
            want.push(b'x');
        }
        // 16 large entries and 16 one-byte tails: two entries per large
        // payload at most, however the peer interleaves them.
        assert!(q.entries() <= 32);
        let mut all = Vec::new();
        while let Some(chunk) = q.pop() {
            all.extend_from_slice(&chunk);
        }
        assert_eq!(all, want);
    }

    #[test]
    fn only_a_few_large_payloads_stay_slices() {
        let mut q = Inbound::default();
        let buffer = Bytes::from(vec![7u8; 8 * COPY_BELOW]);
        for i in 0..8 {
            q.push(buffer.slice(i * COPY_BELOW..(i + 1) * COPY_BELOW));
        }
        let shared: usize = q
            .chunks
            .iter()
            .filter(|c| buffer.as_ptr_range().contains(&c.as_ptr()))
            .count();
        assert_eq!(shared, MAX_SLICES_QUEUED);
    }
}
