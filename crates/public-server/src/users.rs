//! Web and raw TCP users: find an agent for the channel, open a stream with
//! the bytes already read, and relay. A web user that cannot be served gets a
//! 502 page that says why; a raw user is closed.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};
use uptun_protocol::{abort_tcp, relay_tcp, MuxStream};

use crate::links::reason;
use crate::server::State;

pub(crate) async fn serve_web(
    mut socket: TcpStream,
    peer: SocketAddr,
    first: BytesMut,
    state: &State,
) {
    let channel = &state.config.http_channel;
    match open_to_agent(channel, &peer.to_string(), first, state).await {
        Ok(stream) => relay_socket(stream, socket).await,
        Err(why) => {
            warn!(%peer, %channel, %why, "web user turned away");
            let body = format!("uptun: cannot reach channel \"{channel}\": {why}\n");
            let page = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
    match open_to_agent(channel, &peer.to_string(), first, state).await {
        Ok(stream) => relay_socket(stream, socket).await,
        Err(why) => {
            warn!(%peer, %channel, %why, "raw user turned away: reset");
            abort_tcp(socket);
        }
    }
}

/// Opens a stream to an agent serving `channel`, sends `first`, and waits for
/// the agent to reach its target. The error is a sentence for the user.
pub(crate) async fn open_to_agent(
    channel: &str,
    user: &str,
    first: BytesMut,
    state: &State,
) -> Result<MuxStream, String> {
    let agent = match state.registry.pick(channel) {
        Some(agent) => agent,
        None => {
            let limit = state.config.connect_timeout;
            info!(%user, %channel, "no agent serves the channel yet; waiting up to {:.1} s", limit.as_secs_f64());
            state
                .registry
                .wait_for(channel, limit)
                .await
                .ok_or_else(|| format!("no agent is serving channel \"{channel}\""))?
        }
    };
    let stream = agent.open(channel, user).await.map_err(|e| reason(&e))?;
    // The request goes out with OPEN, not a round trip later.
    if !first.is_empty() {
        stream.send(first.freeze()).await.map_err(|e| reason(&e))?;
    }
    stream.accepted().await.map_err(|e| reason(&e))?;
    Ok(stream)
}

async fn relay_socket(stream: MuxStream, socket: TcpStream) {
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
