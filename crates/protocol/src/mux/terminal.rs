//! What terminal streams add to a stream's handle: sizes (RESIZE) both
//! ways, and events that carry them between the data and the end.

use std::future::poll_fn;

use super::link::Outgoing;
use super::stream::{MuxStream, StreamEvent};
use crate::error::StreamError;
use crate::frame::{Frame, FrameType};
use crate::terminal::TermSize;

impl MuxStream {
    /// The next thing from the peer: a chunk, a new terminal size (the
    /// latest one, ahead of queued data), or the end with the exit status
    /// its FIN carried. Like [`MuxStream::recv`], calling it again tells
    /// the stream the previous chunk was consumed.
    pub async fn recv_event(&self) -> Result<StreamEvent, StreamError> {
        poll_fn(|cx| self.poll_event(cx, true)).await
    }

    /// Tells the peer the terminal's size (RESIZE), in order with the data
    /// sent before it.
    pub async fn send_resize(&self, size: TermSize) -> Result<(), StreamError> {
        let frame = Frame::new(FrameType::Resize, self.id(), size.encode());
        self.link.send_data(Outgoing::Frame(frame)).await
    }
}
