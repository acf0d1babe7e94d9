//! Serving a legacy link: check the key or token, answer rhost's bare 101,
//! start the translator (`uptun_protocol::legacy`), then serve the link as
//! any agent's or client's (links.rs). A refusal closes the socket, as
//! rhost does, and the log says why; it never names a key or a token.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio_util::either::Either;
use tracing::warn;
use uptun_protocol::handshake::{PeerKind, RequestHead};
use uptun_protocol::legacy::{spawn_legacy, LegacyPeer, LegacyRequest, LegacyRole, LEGACY_ACCEPT};
use uptun_protocol::{Incoming, LinkHandle, Secret};

use super::settings::parse_path;
use super::{LegacyConfig, LegacyPath};
use crate::auth::Channels;
use crate::links::{self, Peer};
use crate::registry::LinkTransport;
use crate::socket::{Socket, SocketExt};
use crate::state::State;

/// Why a legacy request was refused, for the log, and the HTTP status a
/// native request would have had, for the metrics (rhost gets no answer).
/// A wrong secret (401) counts against the address.
struct Refused {
    reason: String,
    status: u16,
}

impl Refused {
    fn new(reason: impl Into<String>) -> Refused {
        Refused {
            reason: reason.into(),
            status: 403,
        }
    }

    fn wrong_secret(reason: impl Into<String>) -> Refused {
        Refused {
            reason: reason.into(),
            status: 401,
        }
    }

    fn too_many(reason: impl Into<String>) -> Refused {
        Refused {
            reason: reason.into(),
            status: 429,
        }
    }
}

pub(crate) async fn serve(
    socket: Socket,
    peer: SocketAddr,
    head: RequestHead,
    mut buf: BytesMut,
    state: Arc<State>,
) {
    let config = state.config();
    let checked = check(&head, &config.legacy);
    let (req, path) = match checked {
        Ok(ok) => ok,
        Err(refused) => return refuse(socket, peer, refused, &state).await,
    };
    // Bytes past the request head are the peer's first packets.
    let _ = buf.split_to(head.len);
    let transport = LinkTransport {
        websocket: false,
        tls: matches!(socket, Either::Right(_)),
        legacy: true,
    };
    let who = (format!("rhost {peer}"), peer, transport);
    match req.peer {
        LegacyPeer::Agent { key, token } => {
            let agent = Agent { path, key, token };
            serve_agent(socket, who, agent, buf, &config.legacy, state).await
        }
        LegacyPeer::Client { token } => {
            serve_client(socket, who, path, token, buf, &config.legacy, state).await
        }
    }
}

/// The request and its channel, if legacy links are on and both read.
fn check(
    head: &RequestHead,
    legacy: &LegacyConfig,
) -> Result<(LegacyRequest, LegacyPath), Refused> {
    if !legacy.enabled() {
        return Err(Refused::new(
            "legacy (rhost) links are off: the server has no legacy keys (KEYS_* or [legacy] keys)",
        ));
    }
    let req = LegacyRequest::from_head(head).map_err(Refused::new)?;
    let path = parse_path(&req.path).map_err(Refused::new)?;
    Ok((req, path))
}

/// A legacy agent's request.
struct Agent {
    path: LegacyPath,
    key: Secret,
    token: Secret,
}

async fn serve_agent(
    socket: Socket,
    who: Peer,
    agent: Agent,
    leftover: BytesMut,
    legacy: &LegacyConfig,
    state: Arc<State>,
) {
    let path = &agent.path;
    let peer = who.1;
    let refused = match legacy.key(path) {
        None => Some(Refused::new(format!(
            "no legacy key is configured for channel {path}, so no legacy agent may serve it"
        ))),
        Some(key) if !key.matches(agent.key.expose()) => Some(Refused::wrong_secret(format!(
            "wrong key for legacy channel {path}"
        ))),
        Some(_) if agent.token.is_empty() => Some(Refused::new(format!(
            "an empty token for legacy channel {path} would let anyone open it: give etunnel a token"
        ))),
        Some(_) => None,
    };
    if let Some(refused) = refused {
        return refuse(socket, peer, refused, &state).await;
    }
    let _owned = match state.legacy_owners.take(path, agent.token, peer) {
        Ok(owned) => owned,
        Err(holder) => {
            let why = format!("legacy channel {path} already has an agent ({holder})");
            return refuse(socket, peer, Refused::new(why), &state).await;
        }
    };
    let role = LegacyRole::Agent {
        linger: legacy.linger,
    };
    let Some((link, _)) = start(socket, leftover, role, false, &state).await else {
        return;
    };
    state.metrics.link_up(PeerKind::Agent);
    links::serve_agent(link, legacy.channels(path), who, &state).await
}

async fn serve_client(
    socket: Socket,
    who: Peer,
    path: LegacyPath,
    token: Secret,
    leftover: BytesMut,
    legacy: &LegacyConfig,
    state: Arc<State>,
) {
    let peer = who.1;
    // `root_channels` is never empty from the settings; a library caller
    // may still leave it so.
    let Some(channel) = legacy.channels(&path).into_iter().next() else {
        let why = "legacy channel / stands for no channels: root_channels is empty";
        return refuse(socket, peer, Refused::new(why), &state).await;
    };
    // The token its legacy agent set, or a native client token that may
    // open the channel (a legacy client reaching a native agent).
    let scope = match state.legacy_owners.admits(&path, token.expose()) {
        true => Some(Channels::Only(vec![channel.clone()])),
        false => state
            .config()
            .tokens
            .scope(PeerKind::Client, token.expose())
            .filter(|scope| scope.allows(&channel)),
    };
    let Some(scope) = scope else {
        let why = format!(
            "wrong token for legacy channel {path}: present the token its legacy agent set, or one of the server's --client-token that may open \"{channel}\""
        );
        return refuse(socket, peer, Refused::wrong_secret(why), &state).await;
    };
    let _slot = match state.link_counts.take(&token, false) {
        Ok(slot) => slot,
        Err(why) => return refuse(socket, peer, Refused::too_many(why), &state).await,
    };
    let role = LegacyRole::Client {
        channel,
        peer: format!("{peer} via legacy client"),
    };
    let Some((link, incoming)) = start(socket, leftover, role, true, &state).await else {
        return;
    };
    state.metrics.link_up(PeerKind::Client);
    links::serve_client(link, incoming, who, scope, state).await
}

/// Answers 101 and starts the translator with the server's link tunables.
async fn start(
    mut socket: Socket,
    leftover: BytesMut,
    role: LegacyRole,
    accept_incoming: bool,
    state: &State,
) -> Option<(LinkHandle, Incoming)> {
    if let Err(err) = socket.write_all(LEGACY_ACCEPT.as_bytes()).await {
        warn!(%err, "legacy link lost during the handshake");
        return None;
    }
    let mut mux = state.config().mux.clone();
    mux.accept_incoming = accept_incoming;
    let (read, write) = socket.into_split();
    Some(spawn_legacy(read, write, leftover, role, mux))
}

/// Closes the socket, as rhost does; a wrong key or token counts against
/// the address and waits out its penalty first (penalty.rs).
async fn refuse(socket: Socket, peer: SocketAddr, refused: Refused, state: &State) {
    let reason = &refused.reason;
    state.metrics.handshake_failed(refused.status);
    if refused.status == 401 {
        let (failures, delay) = state.penalties.fail(peer.ip());
        let delay_ms = delay.as_millis() as u64;
        warn!(%reason, failures, delay_ms, "refused legacy link");
        crate::penalty::sit_out(delay, &state.shutdown).await;
    } else {
        warn!(%reason, "refused legacy link");
    }
    drop(socket);
}
