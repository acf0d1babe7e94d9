//! Agent and client links: checks the upgrade request and token, answers
//! 101, then registers an agent's channels or serves a client's streams.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{info, warn};
use uptun_protocol::handshake::{accept_response, LinkRequest, PeerKind, Refusal, RequestHead};
use uptun_protocol::{bridge, spawn_link, Incoming, IncomingStream, LinkHandle, Role, StreamError};

use crate::registry::AgentInfo;
use crate::server::{State, DRAIN};

pub(crate) async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    kind: PeerKind,
    head: RequestHead,
    mut buf: BytesMut,
    state: Arc<State>,
) {
    // For debugging routers that rewrite heads; Debug shows the token as ***.
    tracing::trace!(?head, "link request");
    let req = match LinkRequest::from_head(&head, kind).and_then(|req| authorize(req, &state)) {
        Ok(req) => req,
        Err(refusal) => {
            warn!(status = refusal.status, reason = %refusal.reason, ?kind, "refused link");
            let _ = socket.write_all(refusal.to_http().as_bytes()).await;
            let _ = socket.shutdown().await;
            return;
        }
    };
    if let Err(err) = socket
        .write_all(accept_response(state.config.mux.window).as_bytes())
        .await
    {
        warn!(%err, "link lost during the handshake");
        return;
    }
    // Bytes past the request head are the peer's first frames.
    let _ = buf.split_to(head.len);
    let (read, write) = socket.into_split();
    let mut mux = state.config.mux.clone();
    mux.accept_incoming = kind == PeerKind::Client;
    let (link, incoming) = spawn_link(read, write, buf, Role::Acceptor, mux, req.window);
    let name = req.name.clone().unwrap_or_else(|| peer.to_string());
    match kind {
        PeerKind::Agent => serve_agent(link, req, name, peer, &state).await,
        PeerKind::Client => serve_client(link, incoming, name, peer, state).await,
    }
}

/// Checks the token (`Secret::matches`: constant time over SHA-256
/// digests); secrets never reach a log line or a refusal.
fn authorize(req: LinkRequest, state: &State) -> Result<LinkRequest, Refusal> {
    let (flag, env) = match req.kind {
        PeerKind::Agent => ("--agent-token", "UPTUN_AGENT_TOKEN"),
        PeerKind::Client => ("--client-token", "UPTUN_CLIENT_TOKEN"),
    };
    // Clients get no token by default: one that could serve a channel is not
    // thereby one that may open every channel.
    let Some(expected) = state.config.token_for(req.kind) else {
        return Err(Refusal::new(
            403,
            format!("this server accepts no clients (forward, connect): it was started without {flag} ({env})"),
        ));
    };
    match &req.token {
        None => Err(Refusal::new(
            401,
            "missing token: pass --token or set UPTUN_TOKEN",
        )),
        Some(token) if !expected.matches(token.expose()) => Err(Refusal::new(
            401,
            format!("wrong token: use the token the server was started with ({flag} / {env})"),
        )),
        Some(_) => Ok(req),
    }
}

async fn serve_agent(
    link: LinkHandle,
    req: LinkRequest,
    name: String,
    peer: SocketAddr,
    state: &State,
) {
    let channels = req.channels.clone();
    let id = state.registry.add(
        AgentInfo {
            name: name.clone(),
            addr: peer,
            channels: channels.clone(),
            streams: 0,
        },
        link.clone(),
    );
    info!(agent = %name, channels = %channels.join(","), "agent link up");
    tokio::select! {
        _ = link.closed() => {}
        _ = state.shutdown.cancelled() => link.drain("the server is shutting down", DRAIN).await,
    }
    state.registry.remove(id);
    let reason = link.close_reason().unwrap_or_default();
    info!(agent = %name, %reason, "agent link down");
}

async fn serve_client(
    link: LinkHandle,
    mut incoming: Incoming,
    name: String,
    peer: SocketAddr,
    state: Arc<State>,
) {
    info!(client = %name, "client link up");
    loop {
        let next = tokio::select! {
            next = incoming.next() => next,
            _ = state.shutdown.cancelled() => None,
        };
        let Some(stream) = next else { break };
        tokio::spawn(client_stream(stream, peer, state.clone()));
    }
    // Streams that arrive while draining are refused, not left waiting.
    drop(incoming);
    link.drain("the server is shutting down", DRAIN).await;
    info!(client = %name, reason = %link.close_reason().unwrap_or_default(), "client link down");
}

/// Connects a client's stream to an agent serving its channel.
async fn client_stream(incoming: IncomingStream, client: SocketAddr, state: Arc<State>) {
    let channel = incoming.channel.clone();
    let user = format!("{client} via client");
    let outbound = match crate::open::open_to_agent(&channel, &user, Bytes::new(), &state).await {
        Ok(s) => s,
        Err(why) => {
            warn!(%user, %channel, %why, detail = %why.detail(), "client stream refused");
            incoming.refuse(&why.to_string());
            return;
        }
    };
    let inbound = match incoming.accept().await {
        Ok(s) => s,
        Err(_) => return,
    };
    if let Err(err) = bridge(inbound, outbound).await {
        tracing::debug!(%user, %channel, %err, "client stream ended early");
    }
}

/// The reason inside a stream error, without its prefix.
pub(crate) fn reason(err: &StreamError) -> String {
    match err {
        StreamError::Refused(r) | StreamError::Reset(r) | StreamError::LinkClosed(r) => r.clone(),
    }
}
