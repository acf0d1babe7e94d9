//! The session's recent output: a fixed-size byte ring, so a stream that
//! attaches late (or fell behind) sees the screen at once. Its memory is
//! its capacity, allocated once, whatever the process prints.

use bytes::Bytes;

/// The last `capacity` bytes the process wrote.
#[derive(Debug)]
pub(super) struct Ring {
    buf: Box<[u8]>,
    /// Index of the oldest byte kept.
    start: usize,
    len: usize,
    /// Whether older bytes were overwritten, so the first one kept may sit
    /// in the middle of a line, a character or an escape sequence.
    cut: bool,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            len: 0,
            cut: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        let cap = self.buf.len();
        if cap == 0 || data.is_empty() {
            return;
        }
        if data.len() >= cap {
            self.buf.copy_from_slice(&data[data.len() - cap..]);
            self.start = 0;
            self.cut |= self.len > 0 || data.len() > cap;
            self.len = cap;
            return;
        }
        let end = (self.start + self.len) % cap;
        let first = data.len().min(cap - end);
        self.buf[end..end + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        let len = self.len + data.len();
        if len > cap {
            self.start = (self.start + len - cap) % cap;
            self.len = cap;
            self.cut = true;
        } else {
            self.len = len;
        }
    }

    /// Forgets everything: a restarted process starts a new screen.
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
        self.cut = false;
    }

    /// How many bytes are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// A copy of the last `n` bytes kept (all of them if fewer), exactly:
    /// for a stream that missed only these, nothing is lost or repeated.
    pub fn tail(&self, n: usize) -> Bytes {
        let n = n.min(self.len);
        let mut out = Vec::with_capacity(n);
        let cap = self.buf.len();
        let from = (self.start + self.len - n) % cap.max(1);
        let head = (cap - from).min(n);
        out.extend_from_slice(&self.buf[from..from + head]);
        out.extend_from_slice(&self.buf[..n - head]);
        Bytes::from(out)
    }

    /// A copy of what is kept, oldest first. When older output was cut
    /// off, it starts at a line (a newline within the first quarter) or at
    /// least at a character, so a terminal does not begin inside one.
    pub fn snapshot(&self) -> Bytes {
        let cap = self.buf.len();
        let head = (cap - self.start).min(self.len);
        let mut out = Vec::with_capacity(self.len);
        out.extend_from_slice(&self.buf[self.start..self.start + head]);
        out.extend_from_slice(&self.buf[..self.len - head]);
        let skip = if self.cut { clean_start(&out) } else { 0 };
        Bytes::from(out).slice(skip..)
    }
}

/// Where a cut-off snapshot should begin.
fn clean_start(data: &[u8]) -> usize {
    let quarter = &data[..data.len() / 4];
    if let Some(newline) = quarter.iter().position(|&b| b == b'\n') {
        return newline + 1;
    }
    // UTF-8 continuation bytes (10xxxxxx) cannot start a character; at
    // most three follow a lead byte.
    data.iter()
        .take(3)
        .take_while(|&&b| b & 0xc0 == 0x80)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_until_full() {
        let mut ring = Ring::new(8);
        assert_eq!(&ring.snapshot()[..], b"");
        ring.push(b"abc");
        ring.push(b"");
        ring.push(b"de");
        assert_eq!(&ring.snapshot()[..], b"abcde");
    }

    #[test]
    fn keeps_the_last_bytes_across_every_wrap_point() {
        // Every split of a stream into two pushes, and pushes of every size
        // up to past the capacity, leave the stream's last 8 bytes.
        let stream: Vec<u8> = (b'a'..=b'z').collect();
        for size in 1..=12 {
            for offset in 0..stream.len() {
                let mut ring = Ring::new(8);
                ring.push(&stream[..offset]);
                for chunk in stream[offset..].chunks(size) {
                    ring.push(chunk);
                }
                assert_eq!(&ring.snapshot()[..], b"stuvwxyz", "size {size}");
            }
        }
    }

    #[test]
    fn a_push_larger_than_the_ring_keeps_its_tail() {
        let mut ring = Ring::new(4);
        ring.push(b"xy");
        ring.push(b"0123456789");
        assert_eq!(&ring.snapshot()[..], b"6789");
        ring.push(b"ab");
        assert_eq!(&ring.snapshot()[..], b"89ab");
    }

    #[test]
    fn a_cut_snapshot_starts_at_a_line_or_a_character() {
        let mut ring = Ring::new(22);
        ring.push(b"old line\r\nprompt$ ls\r\nfile\r\n");
        // Cut: the kept part starts inside "old line"; a newline sits in
        // its first quarter, so it begins after it.
        assert_eq!(&ring.snapshot()[..], b"prompt$ ls\r\nfile\r\n");
        let mut ring = Ring::new(7);
        ring.push("abcdé€xyz".as_bytes());
        // The kept 7 bytes start with the second byte of "é".
        let snapshot = ring.snapshot();
        assert!(std::str::from_utf8(&snapshot).is_ok(), "{snapshot:?}");
        assert!(snapshot.ends_with(b"xyz"));
    }

    #[test]
    fn a_tail_is_exactly_the_last_bytes() {
        let stream: Vec<u8> = (b'a'..=b'z').collect();
        for offset in 0..stream.len() {
            let mut ring = Ring::new(8);
            ring.push(&stream[..offset]);
            ring.push(&stream[offset..]);
            for n in 0..=8 {
                assert_eq!(&ring.tail(n)[..], &stream[26 - n..], "n {n}");
            }
            assert_eq!(&ring.tail(100)[..], b"stuvwxyz");
        }
        let mut ring = Ring::new(8);
        ring.push(b"abc");
        assert_eq!(&ring.tail(2)[..], b"bc");
        assert_eq!(ring.len(), 3);
        assert_eq!(&Ring::new(0).tail(5)[..], b"");
    }

    #[test]
    fn clear_forgets_and_an_empty_ring_keeps_nothing() {
        let mut ring = Ring::new(8);
        ring.push(b"0123456789");
        ring.clear();
        ring.push(b"new");
        assert_eq!(&ring.snapshot()[..], b"new");
        let mut none = Ring::new(0);
        none.push(b"abc");
        assert_eq!(&none.snapshot()[..], b"");
    }
}
