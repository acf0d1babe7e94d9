//! The two payloads terminal streams add to the frames of §4.4: a terminal
//! size (RESIZE) and a process's exit status (the optional payload of FIN).

use bytes::{BufMut, Bytes, BytesMut};

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
}

impl TermSize {
    /// What a terminal target assumes before any RESIZE: the VT100's 80×24.
    pub const DEFAULT: TermSize = TermSize { cols: 80, rows: 24 };

    /// The RESIZE payload: cols then rows, both u16 big-endian.
    pub fn encode(self) -> Bytes {
        let mut out = BytesMut::with_capacity(4);
        out.put_u16(self.cols);
        out.put_u16(self.rows);
        out.freeze()
    }

    /// Reads a RESIZE payload; `None` unless it is exactly 4 bytes.
    pub fn decode(payload: &[u8]) -> Option<TermSize> {
        let bytes: [u8; 4] = payload.try_into().ok()?;
        Some(TermSize {
            cols: u16::from_be_bytes([bytes[0], bytes[1]]),
            rows: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }
}

impl std::fmt::Display for TermSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

/// How the process behind a terminal stream ended, carried in the payload
/// of the stream's FIN (§4.4): a FIN without payload says nothing about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code (0–255 on Unix).
    Code(u32),
    /// A signal ended it (the signal's number).
    Signal(u32),
}

const KIND_CODE: u8 = 1;
const KIND_SIGNAL: u8 = 2;

impl ExitStatus {
    /// FIN's payload: a kind byte (1 exit code, 2 signal), then the value
    /// as u32 big-endian.
    pub fn encode(self) -> Bytes {
        let (kind, value) = match self {
            ExitStatus::Code(code) => (KIND_CODE, code),
            ExitStatus::Signal(signal) => (KIND_SIGNAL, signal),
        };
        let mut out = BytesMut::with_capacity(5);
        out.put_u8(kind);
        out.put_u32(value);
        out.freeze()
    }

    /// Reads a FIN payload. Anything but the 5-byte form with a known kind
    /// is `None`: the FIN still ends the stream, with no status.
    pub fn decode(payload: &[u8]) -> Option<ExitStatus> {
        let [kind, a, b, c, d]: [u8; 5] = payload.try_into().ok()?;
        let value = u32::from_be_bytes([a, b, c, d]);
        match kind {
            KIND_CODE => Some(ExitStatus::Code(value)),
            KIND_SIGNAL => Some(ExitStatus::Signal(value)),
            _ => None,
        }
    }

    /// The status a shell would report for it: the code, or 128 plus the
    /// signal's number, kept within 0–255 for a process's own exit.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code.min(255) as i32,
            ExitStatus::Signal(signal) => (128 + signal.min(127)) as i32,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_statuses_round_trip_and_odd_payloads_are_none() {
        let size = TermSize {
            cols: 132,
            rows: 43,
        };
        assert_eq!(&size.encode()[..], &[0, 132, 0, 43]);
        assert_eq!(TermSize::decode(&size.encode()), Some(size));
        assert_eq!(TermSize::decode(&[0, 1, 2]), None);
        for status in [ExitStatus::Code(3), ExitStatus::Signal(9)] {
            assert_eq!(ExitStatus::decode(&status.encode()), Some(status));
        }
        assert_eq!(&ExitStatus::Code(3).encode()[..], &[1, 0, 0, 0, 3]);
        assert_eq!(ExitStatus::decode(&[]), None);
        assert_eq!(ExitStatus::decode(&[7, 0, 0, 0, 1]), None);
        assert_eq!(ExitStatus::decode(&[1, 0, 0, 0, 1, 0]), None);
    }

    #[test]
    fn shell_codes_are_what_a_shell_reports() {
        assert_eq!(ExitStatus::Code(3).shell_code(), 3);
        assert_eq!(ExitStatus::Code(70000).shell_code(), 255);
        assert_eq!(ExitStatus::Signal(9).shell_code(), 137);
    }
}
