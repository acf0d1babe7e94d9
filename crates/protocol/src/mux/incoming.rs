//! A stream the peer opened, before this side answers it.

use super::stream::MuxStream;
use crate::error::StreamError;

/// A stream the peer opened, waiting for this side to accept or refuse it.
/// Data the peer sent right after OPEN is already queued on it.
#[derive(Debug)]
pub struct IncomingStream {
    pub channel: String,
    /// The original user's address, as the opener reported it.
    pub peer: String,
    /// The user's terminal type (`TERM`), when the opener sent a valid one
    /// (§4.4): a client's, or the one a server passes on from its client.
    pub term: Option<String>,
    pub(crate) stream: MuxStream,
}

impl IncomingStream {
    pub fn id(&self) -> u32 {
        self.stream.id()
    }

    /// Tells the peer the target is reached; data may flow both ways.
    pub async fn accept(self) -> Result<MuxStream, StreamError> {
        self.stream.send_accept().await?;
        Ok(self.stream)
    }

    /// Tells the peer this stream cannot be served, and why.
    pub fn refuse(self, reason: &str) {
        self.stream.send_refuse(reason);
    }
}
