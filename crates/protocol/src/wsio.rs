//! A WebSocket connection as the byte stream a link runs on: link frames
//! travel in binary messages, and message boundaries mean nothing (a frame
//! may span messages, a message may hold many frames). The mux sees an
//! `AsyncRead + AsyncWrite`, like a TCP socket.
//!
//! Endings keep their meaning: a Close message is the end of the stream
//! (EOF); a protocol error, a text message, an oversized message or a
//! connection dropped without Close is an abort (an error), never a clean
//! end. Pings are answered by tungstenite while the link reads.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::frame::{HEADER_LEN, MAX_PAYLOAD};

/// The largest message accepted: one frame of the largest size fits in
/// one, for implementations that send a frame per message. Larger is an
/// abort (`tungstenite` stops reading it at this size).
pub const MAX_MESSAGE: usize = MAX_PAYLOAD as usize + HEADER_LEN;

/// The largest message this side writes: the link writer's chunk, so
/// each chunk it copies together is one message.
pub const MAX_WRITE: usize = 64 * 1024;

/// Bytes gathered before they go to the socket (a flush sends them at
/// once): a little more than two messages.
const WRITE_BUFFER: usize = 128 * 1024;

/// Limits for a link's WebSocket: what one side buffers is one incoming
/// message, the read buffer and the write buffer, each bounded.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WRITE_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // Reached only when the socket will not take bytes and writes
        // are retried; `poll_write` waits before that (poll_ready).
        .max_write_buffer_size(WRITE_BUFFER + MAX_WRITE + 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// A WebSocket as a byte stream. Not vectored: the link writer copies
/// frames together into chunks of at most [`MAX_WRITE`].
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// The rest of the message being read.
    unread: Bytes,
    /// A Close came: every read from now on is EOF.
    closed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    /// Wraps a socket whose WebSocket handshake is done. `leftover` is
    /// what was read past the handshake: the peer's first WebSocket bytes.
    pub async fn new(socket: S, leftover: Vec<u8>, role: Role) -> Self {
        let ws =
            WebSocketStream::from_partially_read(socket, leftover, role, Some(ws_config())).await;
        WsIo {
            ws,
            unread: Bytes::new(),
            closed: false,
        }
    }
}

impl<S> std::fmt::Debug for WsIo<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsIo")
            .field("unread", &self.unread.len())
            .field("closed", &self.closed)
            .finish()
    }
}

/// A WebSocket failure as the I/O error the link reports: a dropped
/// connection is a reset, anything else in the stream is invalid data.
fn io_error(err: WsError) -> std::io::Error {
    use std::io::{Error, ErrorKind};
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match err {
        WsError::Io(err) => err,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Error::new(
            ErrorKind::ConnectionReset,
            "the WebSocket connection dropped without a Close",
        ),
        WsError::Capacity(why) => Error::new(
            ErrorKind::InvalidData,
            format!("WebSocket message too large ({why}); at most {MAX_MESSAGE} bytes"),
        ),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Error::new(ErrorKind::BrokenPipe, "the WebSocket connection is closed")
        }
        other => Error::new(ErrorKind::InvalidData, format!("WebSocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.unread.is_empty() {
                let n = this.unread.len().min(buf.remaining());
                buf.put_slice(&this.unread.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(bytes))) => this.unread = bytes,
                // Pings were answered inside tungstenite; pongs and bare
                // frames carry nothing for the link.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.closed = true,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a text WebSocket message on a link: links carry binary messages only",
                    )))
                }
                Some(Err(err)) => return Poll::Ready(Err(io_error(err))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let ws = &mut self.get_mut().ws;
        // Waits while the write buffer is over its size: the bound.
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(io_error)?;
        let n = data.len().min(MAX_WRITE);
        let message = Message::Binary(Bytes::copy_from_slice(&data[..n]));
        Pin::new(ws).start_send(message).map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(io_error)
    }

    /// Sends a Close, so the peer reads a clean end.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_close(cx)
            .map_err(io_error)
    }
}

#[cfg(test)]
#[path = "wsio_tests.rs"]
mod tests;
