//! Frame header layout (`length u32 | type u8 | stream id u32`), frame types,
//! and the small payload formats that ride in control frames.

use bytes::Bytes;

use crate::error::ProtocolError;

/// Bytes in a frame header: length (4), type (1), stream id (4).
pub const HEADER_LEN: usize = 9;

/// The largest payload any frame may carry. Checked before a single byte of
/// the payload is buffered, so a hostile length cannot make us allocate.
pub const MAX_PAYLOAD: u32 = 1 << 20;

/// Channel names are short ASCII words (`web`, `ssh`, `db-1`).
pub const MAX_CHANNEL_LEN: usize = 64;

/// What a frame means. The numbers are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    Open = 1,
    Accept = 2,
    Refuse = 3,
    Data = 4,
    Window = 5,
    Fin = 6,
    Reset = 7,
    Ping = 8,
    Pong = 9,
    GoAway = 10,
    Resize = 11,
}

impl FrameType {
    pub fn from_u8(value: u8) -> Option<Self> {
        use FrameType::*;
        Some(match value {
            1 => Open,
            2 => Accept,
            3 => Refuse,
            4 => Data,
            5 => Window,
            6 => Fin,
            7 => Reset,
            8 => Ping,
            9 => Pong,
            10 => GoAway,
            11 => Resize,
            _ => return None,
        })
    }

    /// Frames that concern the link as a whole travel on stream 0.
    pub fn is_link_level(self) -> bool {
        matches!(self, FrameType::Ping | FrameType::Pong | FrameType::GoAway)
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            FrameType::Open => "OPEN",
            FrameType::Accept => "ACCEPT",
            FrameType::Refuse => "REFUSE",
            FrameType::Data => "DATA",
            FrameType::Window => "WINDOW",
            FrameType::Fin => "FIN",
            FrameType::Reset => "RESET",
            FrameType::Ping => "PING",
            FrameType::Pong => "PONG",
            FrameType::GoAway => "GOAWAY",
            FrameType::Resize => "RESIZE",
        };
        f.write_str(name)
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: FrameType,
    pub stream: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&self.len.to_be_bytes());
        out[4] = self.kind as u8;
        out[5..].copy_from_slice(&self.stream.to_be_bytes());
        out
    }

    /// Parses and validates a header: the length is checked against
    /// [`MAX_PAYLOAD`] here, before anyone reserves memory for the payload.
    pub fn decode(raw: &[u8; HEADER_LEN]) -> Result<Header, ProtocolError> {
        let len = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let kind = FrameType::from_u8(raw[4]).ok_or(ProtocolError::UnknownType(raw[4]))?;
        let stream = u32::from_be_bytes([raw[5], raw[6], raw[7], raw[8]]);
        if len > MAX_PAYLOAD {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max: MAX_PAYLOAD,
            });
        }
        Ok(Header { len, kind, stream })
    }
}

/// A whole frame: its type, stream and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameType,
    pub stream: u32,
    pub payload: Bytes,
}

impl Frame {
    pub fn new(kind: FrameType, stream: u32, payload: Bytes) -> Frame {
        Frame {
            kind,
            stream,
            payload,
        }
    }

    pub fn empty(kind: FrameType, stream: u32) -> Frame {
        Frame::new(kind, stream, Bytes::new())
    }

    /// A frame whose payload is a human-readable reason (REFUSE, RESET, GOAWAY).
    pub fn with_reason(kind: FrameType, stream: u32, reason: &str) -> Frame {
        // Reasons are for logs; cap them so they never dominate a link.
        let mut end = reason.len().min(512);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Frame::new(
            kind,
            stream,
            Bytes::copy_from_slice(&reason.as_bytes()[..end]),
        )
    }

    pub fn window(stream: u32, increment: u32) -> Frame {
        Frame::new(
            FrameType::Window,
            stream,
            Bytes::copy_from_slice(&increment.to_be_bytes()),
        )
    }

    pub fn header(&self) -> Header {
        Header {
            len: self.payload.len() as u32,
            kind: self.kind,
            stream: self.stream,
        }
    }

    /// The payload of a reason-carrying frame, as text fit for a log line
    /// (the peer wrote it: control characters escaped, length capped).
    pub fn reason(&self) -> String {
        crate::text::sanitize(&String::from_utf8_lossy(&self.payload))
    }

    /// The increment of a WINDOW frame.
    pub fn window_increment(&self) -> Result<u32, ProtocolError> {
        let raw: [u8; 4] = self.payload[..]
            .try_into()
            .map_err(|_| ProtocolError::malformed(self.kind, "payload must be 4 bytes"))?;
        Ok(u32::from_be_bytes(raw))
    }
}

/// True for names made of ASCII letters, digits, `-`, `_` and `.`, 1 to 64 long.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            len: 77,
            kind: FrameType::Window,
            stream: 0xdead_beef,
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn header_rejects_unknown_type_and_huge_length() {
        let mut raw = Header {
            len: 1,
            kind: FrameType::Data,
            stream: 3,
        }
        .encode();
        raw[4] = 0xee;
        assert!(matches!(
            Header::decode(&raw),
            Err(ProtocolError::UnknownType(0xee))
        ));
        let raw = [0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 1];
        assert!(matches!(
            Header::decode(&raw),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn channel_names() {
        assert!(valid_channel_name("web"));
        assert!(valid_channel_name("db-1.internal_x"));
        assert!(!valid_channel_name(""));
        assert!(!valid_channel_name("a b"));
        assert!(!valid_channel_name(&"x".repeat(65)));
    }

    #[test]
    fn peer_text_in_frames_is_one_line() {
        let f = Frame::new(
            FrameType::GoAway,
            0,
            Bytes::from_static(b"bye\nFORGED line"),
        );
        assert_eq!(f.reason(), "bye\\nFORGED line");
    }

    #[test]
    fn reasons_are_capped_on_a_char_boundary() {
        let long = "é".repeat(400);
        let f = Frame::with_reason(FrameType::Reset, 1, &long);
        assert!(f.payload.len() <= 512);
        assert!(std::str::from_utf8(&f.payload).is_ok());
    }
}
