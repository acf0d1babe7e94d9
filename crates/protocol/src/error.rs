//! Errors of the protocol crate, worded for the person reading the log.

use crate::frame::FrameType;

/// A peer broke the protocol, or the link's transport failed. Either way the
/// link that produced it is closed; other links are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    FrameTooLarge { len: u32, max: u32 },
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    #[error("malformed {kind} frame: {reason}")]
    Malformed {
        kind: FrameType,
        reason: &'static str,
    },
    #[error("stream {stream}: {len} bytes of DATA exceed the {credit} bytes of credit granted")]
    CreditExceeded {
        stream: u32,
        len: usize,
        credit: u32,
    },
    #[error("stream {0}: WINDOW increment overflows the send credit")]
    WindowOverflow(u32),
    #[error("stream {0} was opened twice")]
    DuplicateStream(u32),
    #[error("stream id {0} is not in the peer's id space")]
    WrongIdSpace(u32),
    #[error("no frame for {:.1} s: link is dead", .0.as_secs_f64())]
    Silent(std::time::Duration),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    pub(crate) fn malformed(kind: FrameType, reason: &'static str) -> Self {
        ProtocolError::Malformed { kind, reason }
    }
}

/// Why a single stream ended abnormally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("reset: {0}")]
    Reset(String),
    #[error("link closed: {0}")]
    LinkClosed(String),
}
