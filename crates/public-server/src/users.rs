//! Web and raw TCP users: find an agent for the channel, open a stream with
//! the bytes already read, and relay. A web user that cannot be served gets a
//! page that says why (503, 502 or 504); a raw user is reset.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, warn};
use uptun_protocol::handshake::status_text;
use uptun_protocol::{abort_tcp, relay_tcp, MuxStream};

use crate::open::open_to_agent;
use crate::server::State;

pub(crate) async fn serve_web(
    mut socket: TcpStream,
    peer: SocketAddr,
    first: BytesMut,
    state: &State,
) {
    let channel = &state.config.http_channel;
    match open_to_agent(channel, &peer.to_string(), first.freeze(), state).await {
        Ok(stream) => relay_socket(stream, socket).await,
        Err(turned) => {
            let status = turned.status();
            warn!(%peer, %channel, status, detail = %turned.detail(), "web user turned away");
            let body = format!("uptun: {turned}\n");
            let page = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                status_text(status),
                body.len()
            );
            let _ = socket.write_all(page.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

pub(crate) async fn serve_raw(
    socket: TcpStream,
    peer: SocketAddr,
    channel: &str,
    first: BytesMut,
    state: &State,
) {
    match open_to_agent(channel, &peer.to_string(), first.freeze(), state).await {
        Ok(stream) => relay_socket(stream, socket).await,
        Err(turned) => {
            warn!(%peer, %channel, %turned, detail = %turned.detail(), "raw user turned away: reset");
            abort_tcp(socket);
        }
    }
}

pub(crate) async fn relay_socket(stream: MuxStream, socket: TcpStream) {
    let id = stream.id();
    match relay_tcp(stream, socket).await {
        Ok(stats) => debug!(
            stream = id,
            sent = stats.sent,
            received = stats.received,
            "user done"
        ),
        Err(err) => debug!(stream = id, %err, "user stream ended early"),
    }
}
