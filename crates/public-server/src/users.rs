//! Web and raw TCP users: find an agent for the channel, open a stream with
//! the bytes already read, and relay. A web user that cannot be served gets a
//! page that says why (503, 502 or 504); a raw user is reset.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};
use uptun_protocol::handshake::status_text;
use uptun_protocol::{relay_ending, MuxStream, RelayError, RelayStats};

use crate::idle::{bounded_by_idle, Activity};
use crate::meter::{MeteredStream, StreamMeter, Way};
use crate::open::{open_to_agent, TurnedAway};
use crate::route::Destination;
use crate::socket::{self, Socket, SocketExt};
use crate::state::State;

/// How a user that cannot be served learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserKind {
    /// An HTTP user: a page that says why.
    Web,
    /// Any other protocol: a reset.
    Raw,
}

/// Opens a stream to an agent of `channel` with the bytes already read and
/// relays; a user that cannot be served gets a page (web) or a reset (raw).
pub(crate) async fn serve_user(
    socket: Socket,
    peer: SocketAddr,
    to: &Destination,
    first: BytesMut,
    kind: UserKind,
    state: &State,
) {
    let user = peer.to_string();
    let channel = &to.channel;
    match Box::pin(open_to_agent(to, &user, None, first.freeze(), state)).await {
        Ok(stream) => relay_socket(stream, socket, to.idle_timeout).await,
        Err(turned) if kind == UserKind::Web => {
            Box::pin(show_page(socket, peer, channel, turned)).await
        }
        Err(turned) => {
            warn!(%peer, %channel, %turned, detail = %turned.detail(), "raw user turned away: reset");
            socket.abort();
        }
    }
}

/// Tells a web user that could not be served why, in a page that names the
/// channel and never the target (boxed by the caller: rare, and its state
/// need not be part of every web user's task).
async fn show_page(mut socket: Socket, peer: SocketAddr, channel: &str, turned: TurnedAway) {
    let status = turned.status();
    warn!(%peer, %channel, status, detail = %turned.detail(), "web user turned away");
    let page = plain_page(
        status,
        &format!("uptun: {turned}\n"),
        "Cache-Control: no-store\r\n",
    );
    let _ = socket.write_all(page.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// A short `text/plain` answer that closes the connection; `extra` holds
/// more header lines, each ending in CRLF.
pub(crate) fn plain_page(status: u16, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        status_text(status),
        body.len()
    )
}

/// Relays a user's socket until both directions end; an abnormal end (or
/// the channel's idle timeout) resets the socket.
pub(crate) async fn relay_socket(stream: MeteredStream, socket: Socket, idle: Option<Duration>) {
    let (stream, meter) = stream.into_parts();
    let id = stream.id();
    // The idle-timeout relay is boxed: its larger state would otherwise be
    // part of every user's task, timeout or not (10,000 idle users measured
    // 17 MiB more with it inline).
    let outcome = match idle {
        None => relay_counted(stream, socket, &meter).await,
        Some(limit) => Box::pin(relay_with_idle(stream, socket, limit, &meter)).await,
    };
    match outcome {
        Ok(stats) => debug!(
            stream = id,
            sent = stats.sent,
            received = stats.received,
            "user done"
        ),
        Err(err) => debug!(stream = id, %err, "user stream ended early"),
    }
}

/// `relay_tcp` with the socket's bytes counted on the stream's channel.
async fn relay_counted(
    stream: MuxStream,
    socket: Socket,
    meter: &StreamMeter,
) -> Result<RelayStats, RelayError> {
    let (read, write) = socket.into_split();
    let mut read = meter.count(Way::ToAgent, read);
    let mut write = meter.count(Way::FromAgent, write);
    let (outcome, fin_delivered) = relay_ending(stream, &mut read, &mut write).await;
    socket::end(
        read.into_inner(),
        write.into_inner(),
        &outcome,
        fin_delivered,
    )
    .await;
    outcome
}

async fn relay_with_idle(
    stream: MuxStream,
    socket: Socket,
    limit: Duration,
    meter: &StreamMeter,
) -> Result<RelayStats, RelayError> {
    let activity = Activity::new();
    let (read, write) = socket.into_split();
    let mut read = activity.watch(meter.count(Way::ToAgent, read));
    let mut write = activity.watch(meter.count(Way::FromAgent, write));
    let relay = relay_ending(stream, &mut read, &mut write);
    let (outcome, fin_delivered) = bounded_by_idle(relay, &activity, limit).await;
    socket::end(
        read.into_inner().into_inner(),
        write.into_inner().into_inner(),
        &outcome,
        fin_delivered,
    )
    .await;
    outcome
}
