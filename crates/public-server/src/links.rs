//! Agent and client links: checks the upgrade request and token, answers
//! 101, then registers an agent's channels or serves a client's streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio_util::either::Either;
use tracing::{info, warn};
use uptun_protocol::handshake::{accept_response, LinkRequest, PeerKind, Refusal, RequestHead};
use uptun_protocol::legacy::VIA_LEGACY_CLIENT;
use uptun_protocol::{
    bridge_counted, spawn_link, Config, Incoming, IncomingStream, LinkHandle, Role, StreamError,
};

use crate::auth::{self, Channels};
use crate::meter::Way;
use crate::registry::{AgentInfo, LinkTransport};
use crate::route::Destination;
use crate::socket::{Socket, SocketExt};
use crate::state::State;

pub(crate) async fn serve(
    socket: Socket,
    peer: SocketAddr,
    kind: PeerKind,
    head: RequestHead,
    mut buf: BytesMut,
    state: Arc<State>,
) {
    // For debugging routers that rewrite heads; Debug shows the token as ***.
    tracing::trace!(?head, "link request");
    let checked = LinkRequest::from_head(&head, kind).and_then(|req| {
        state
            .config()
            .tokens
            .authorize(&req)
            .map(|scope| (req, scope))
    });
    let (req, scope) = match checked {
        Ok(ok) => ok,
        Err(refusal) => return refuse(socket, peer, kind, refusal, &state).await,
    };
    let token = req
        .token
        .as_ref()
        .expect("an authorized request has a token");
    // Held for as long as this task serves the link.
    let _slot = match state.link_counts.take(token, kind == PeerKind::Agent) {
        Ok(slot) => slot,
        Err(why) => {
            let refusal = Refusal::new(429, why);
            return refuse(socket, peer, kind, refusal, &state).await;
        }
    };
    // Bytes past the request head are the peer's first frames.
    let _ = buf.split_to(head.len);
    let mut mux = state.config().mux.clone();
    mux.accept_incoming = kind == PeerKind::Client;
    let transport = LinkTransport {
        websocket: head.is_websocket(),
        tls: matches!(socket, Either::Right(_)),
        legacy: false,
    };
    let started = match head.is_websocket() {
        true => crate::ws_link::start(socket, &head, buf, mux, req.window).await,
        false => start(socket, buf, mux, req.window).await,
    };
    let (link, incoming) = match started {
        Ok(started) => started,
        Err(err) => {
            warn!(%err, "link lost during the handshake");
            return;
        }
    };
    state.metrics.link_up(kind);
    let name = req.name.clone().unwrap_or_else(|| peer.to_string());
    match kind {
        PeerKind::Agent => serve_agent(link, req.channels, (name, peer, transport), &state).await,
        PeerKind::Client => {
            let who = (name, peer, transport);
            serve_client(link, incoming, who, scope, state).await
        }
    }
}

/// Answers 101 and starts the link in the `Upgrade: tcp` form.
async fn start(
    mut socket: Socket,
    leftover: BytesMut,
    mux: Config,
    peer_window: u32,
) -> std::io::Result<(LinkHandle, Incoming)> {
    socket
        .write_all(accept_response(mux.window).as_bytes())
        .await?;
    let (read, write) = socket.into_split();
    Ok(spawn_link(
        read,
        write,
        leftover,
        Role::Acceptor,
        mux,
        peer_window,
    ))
}

/// Answers a refused handshake. Token failures (401, 403) are counted per
/// source address, and a source that keeps failing waits before it hears
/// the answer (`penalty.rs`). The log names the peer, never a token.
async fn refuse(
    mut socket: Socket,
    peer: SocketAddr,
    kind: PeerKind,
    refusal: Refusal,
    state: &State,
) {
    let reason = &refusal.reason;
    state.metrics.handshake_failed(refusal.status);
    if matches!(refusal.status, 401 | 403) {
        let (failures, delay) = state.penalties.fail(peer.ip());
        let delay_ms = delay.as_millis() as u64;
        warn!(status = refusal.status, %reason, ?kind, failures, delay_ms, "refused link");
        crate::penalty::sit_out(delay, &state.shutdown).await;
    } else {
        warn!(status = refusal.status, %reason, ?kind, "refused link");
    }
    let _ = socket.write_all(refusal.to_http().as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Who is at the other end of a link: its name, address and transport.
pub(crate) type Peer = (String, SocketAddr, LinkTransport);

/// Lists an agent link's channels in the registry while it lives.
pub(crate) async fn serve_agent(link: LinkHandle, channels: Vec<String>, who: Peer, state: &State) {
    let (name, peer, transport) = who;
    let id = state.registry.add(
        AgentInfo {
            name: name.clone(),
            addr: peer,
            channels: channels.clone(),
            streams: 0,
            transport,
        },
        link.clone(),
    );
    info!(agent = %name, channels = %channels.join(","), transport = transport.form(), tls = transport.tls, "agent link up");
    tokio::select! {
        _ = link.closed() => {}
        _ = state.shutdown.cancelled() => drain(&link, state).await,
    }
    state.registry.remove(id);
    let reason = link.close_reason().unwrap_or_default();
    info!(agent = %name, %reason, "agent link down");
}

pub(crate) async fn serve_client(
    link: LinkHandle,
    mut incoming: Incoming,
    who: Peer,
    scope: Channels,
    state: Arc<State>,
) {
    let (name, peer, transport) = who;
    info!(client = %name, transport = transport.form(), tls = transport.tls, "client link up");
    let _listed = state.clients.add(&name, peer, transport, &link);
    loop {
        let next = tokio::select! {
            next = incoming.next() => next,
            _ = state.shutdown.cancelled() => None,
        };
        let Some(stream) = next else { break };
        if !scope.allows(&stream.channel) {
            warn!(client = %name, channel = %stream.channel, "client stream refused: its token may not open the channel");
            state.metrics.forbidden(&stream.channel);
            let why = auth::may_not_open(&stream.channel);
            stream.refuse(&why);
            continue;
        }
        // A legacy client's streams say so in their address text: a legacy
        // agent then takes their FIN as rhost's whole close.
        let user = match transport.legacy {
            true => format!("{peer}{VIA_LEGACY_CLIENT}"),
            false => format!("{peer} via client"),
        };
        tokio::spawn(client_stream(stream, user, state.clone()));
    }
    // Streams that arrive while draining are refused, not left waiting.
    drop(incoming);
    drain(&link, &state).await;
    info!(client = %name, reason = %link.close_reason().unwrap_or_default(), "client link down");
}

/// Once the server stops: GOAWAY, then wait for the link's streams as long
/// as the shutdown allows (`QUIT`: as long as they live; `TERM`: the grace),
/// and close it. An idle link closes at once.
async fn drain(link: &LinkHandle, state: &State) {
    tokio::select! {
        // No limit of its own: the cut below is the only deadline.
        _ = link.drain("the server is shutting down", Duration::MAX) => {}
        _ = state.cut.cancelled() => link.close("the server's shutdown grace is over"),
    }
}

/// Connects a client's stream to an agent serving its channel.
async fn client_stream(incoming: IncomingStream, user: String, state: Arc<State>) {
    let to = Destination::plain(&incoming.channel);
    let channel = &to.channel;
    // The client's terminal type, already checked when its OPEN was read,
    // goes on to the agent: only the agent's terminal targets use it.
    let term = incoming.term.as_deref();
    let opened = crate::open::open_to_agent(&to, &user, term, Bytes::new(), &state);
    let outbound = match opened.await {
        Ok(s) => s,
        Err(why) => {
            warn!(%user, %channel, %why, detail = %why.detail(), "client stream refused");
            incoming.refuse(&why.for_client(state.config().connect_timeout));
            return;
        }
    };
    let inbound = match incoming.accept().await {
        Ok(s) => s,
        Err(_) => return,
    };
    let (outbound, meter) = outbound.into_parts();
    let (mut up, mut down) = (meter.tally(Way::ToAgent), meter.tally(Way::FromAgent));
    let bridged = bridge_counted(inbound, outbound, |n| up.add(n), |n| down.add(n));
    if let Err(err) = bridged.await {
        tracing::debug!(%user, %channel, %err, "client stream ended early");
    }
}

/// The reason inside a stream error, without its prefix.
pub(crate) fn reason(err: &StreamError) -> String {
    match err {
        StreamError::Refused(r) | StreamError::Reset(r) | StreamError::LinkClosed(r) => r.clone(),
    }
}
