//! The WebSocket transport: after the WebSocket form of the link request
//! was answered (dial.rs), link frames travel in binary messages over
//! whatever stream carried the request (TCP for `ws://`, TLS for `wss://`).

use bytes::BytesMut;
use tokio_util::either::Either;
use uptun_protocol::{WsIo, WsRole};

use super::Stream;

/// `stream` as the WebSocket's client end; `leftover` holds what the server
/// sent past its 101 (its first WebSocket bytes).
pub(crate) async fn wrap(stream: Stream, leftover: BytesMut) -> Stream {
    let io = WsIo::new(stream, leftover.to_vec(), WsRole::Client).await;
    Either::Right(Box::new(io))
}
