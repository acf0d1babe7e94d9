//! Links in the WebSocket form, for agents and clients behind routers and
//! CDNs that pass no upgrade but WebSocket: the 101 with
//! `Sec-WebSocket-Accept`, then the mux over binary messages (`WsIo`).
//! Checked and authorised like any link request before this (links.rs).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use uptun_protocol::handshake::{websocket, RequestHead};
use uptun_protocol::{spawn_link, Config, Incoming, LinkHandle, Role, WsIo, WsRole};

/// Answers a checked WebSocket link request on `socket` and starts the
/// link. `leftover` holds what the peer sent past its request head.
pub(crate) async fn start<S>(
    mut socket: S,
    head: &RequestHead,
    leftover: BytesMut,
    mux: Config,
    peer_window: u32,
) -> std::io::Result<(LinkHandle, Incoming)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // `LinkRequest::from_head` checked the headers already; this only
    // derives the answer again.
    let accept = websocket::check_request(head)
        .map_err(|r| std::io::Error::new(std::io::ErrorKind::InvalidData, r.reason))?;
    let answer = websocket::accept_response(mux.window, &accept);
    socket.write_all(answer.as_bytes()).await?;
    let io = WsIo::new(socket, leftover.to_vec(), WsRole::Server).await;
    let (read, write) = tokio::io::split(io);
    Ok(spawn_link(
        read,
        write,
        BytesMut::new(),
        Role::Acceptor,
        mux,
        peer_window,
    ))
}
