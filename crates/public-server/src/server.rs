//! The accept loop: accepts and spawns, nothing else. Classification and
//! handshakes happen in each connection's own task, under deadlines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;
use tokio_util::task::TaskTracker;
use tracing::{info, info_span, warn, Instrument};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;

use crate::classify::{classify, classify_more, looks_like_http, Visitor};
use crate::config::{Config, LiveConfig};
use crate::limits::Admitted;
use crate::route::Destination;
use crate::shutdown::Shutdown;
use crate::socket::{Socket, SocketExt};
use crate::state::State;
use crate::tls::{self, Opened};
use crate::users::UserKind;
use crate::{endpoints, legacy, links, silent, users};

/// Serves `listener` until `shutdown` asks it to stop (a [`Shutdown`], or a
/// `CancellationToken` that acts as `stop(DEFAULT_GRACE)`); then closes the
/// port, drains every link and returns once the open connections have
/// finished or the grace has run out.
pub async fn run(
    listener: TcpListener,
    config: impl Into<LiveConfig>,
    shutdown: impl Into<Shutdown>,
) -> anyhow::Result<()> {
    let shutdown = shutdown.into();
    let state = Arc::new(State::new(config.into(), shutdown.token().clone()));
    let tracker = TaskTracker::new();
    info!(addr = %listener.local_addr()?, "listening");
    loop {
        tokio::select! {
            _ = shutdown.token().cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match state.admission.admit(peer.ip()) {
                    Ok(admitted) => {
                        tracker.spawn(handle(socket, peer, admitted, state.clone()));
                    }
                    Err(why) => turn_away(Either::Left(socket), peer, why, &state),
                },
                Err(err) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    // The port closes now: the kernel refuses new connections (and resets
    // any not yet accepted) instead of leaving them to wait for nobody.
    drop(listener);
    tracker.close();
    info!(
        connections = tracker.len(),
        "stopped accepting; links get GOAWAY"
    );
    if !shutdown.within(tracker.wait()).await {
        warn!(
            connections = tracker.len(),
            "grace period over: closing every connection still open"
        );
        // Links close, so their users' relays fail and reset the sockets.
        state.cut.cancel();
        if tokio::time::timeout(AFTER_CUT, tracker.wait())
            .await
            .is_err()
        {
            warn!(
                connections = tracker.len(),
                "connections still open after the cut; leaving them"
            );
        }
    }
    info!("stopped");
    Ok(())
}

/// How long connections get to end once cut: each only has to notice.
const AFTER_CUT: Duration = Duration::from_secs(1);

/// Classifies one connection and serves it. Every user connection's task
/// lives as long as the connection, so the big, short or rare steps
/// (TLS handshakes, classifying, agent links, endpoints) are boxed: the
/// task keeps only the relay's state while it waits (10,000 idle users must
/// stay cheap).
async fn handle(socket: TcpStream, peer: SocketAddr, admitted: Admitted, state: Arc<State>) {
    let _ = socket.set_nodelay(true);
    let config = state.config();
    let (mut socket, silent) = match &config.tls {
        None => (Either::Left(socket), false),
        Some(tls) => match Box::pin(tls::open(socket, tls, &config, peer, &state.cut)).await {
            Opened::Socket(socket) => (socket, false),
            Opened::Silent(socket) => (Either::Left(socket), true),
            Opened::Done => return,
            Opened::Failed => return state.metrics.classify_failed(),
        },
    };
    let classified = match silent {
        // The TLS check waited out the sniff timeout already.
        true => Some(Ok(Visitor::Silent { first: 0 })),
        false => Box::pin(classify_until_cut(&mut socket, &config, &state)).await,
    };
    let visitor = match classified {
        Some(Ok(v)) => v,
        Some(Err(err)) => {
            state.metrics.classify_failed();
            tracing::debug!(%peer, %err, "connection failed before it was classified");
            return;
        }
        None => return socket.abort(),
    };
    drop((admitted, config));
    state.metrics.classified(&visitor);
    // Users are most connections and live longest: their relay runs inline,
    // the rest (links, endpoints, refusals, silence) boxed, so a waiting
    // user's task holds only the relay's state (10,000 idle users must stay
    // cheap; measured with uptun-bench memory).
    match visitor {
        Visitor::Raw { to, buf } => {
            users::serve_user(socket, peer, &to, buf, UserKind::Raw, &state).await
        }
        Visitor::Web { to, buf } => {
            users::serve_user(socket, peer, &to, buf, UserKind::Web, &state).await
        }
        other => Box::pin(serve(socket, peer, other, state)).await,
    }
}

/// Classifies a connection; `None` if the server's grace ran out first.
async fn classify_until_cut(
    socket: &mut Socket,
    config: &Config,
    state: &State,
) -> Option<std::io::Result<Visitor>> {
    tokio::select! {
        visitor = classify(socket, config) => Some(visitor),
        _ = state.cut.cancelled() => None,
    }
}

/// Refuses a connection over an admission limit without a task: the short
/// answer fits an empty socket buffer, so it is written without waiting
/// (what does not fit is not worth waiting for).
pub(crate) fn turn_away(mut socket: Socket, peer: SocketAddr, why: &str, state: &State) {
    state.metrics.over_limit();
    if let Some(refused) = state.admission.refused() {
        warn!(%peer, refused, why, "connections refused over the admission limits");
    }
    let body = format!("uptun: {why}; try again shortly\n");
    // `Uptun-Reason` tells a dialer that the server itself answered, so it
    // backs off instead of retrying in the WebSocket form (which would be
    // turned away the same way).
    let headers = format!("Retry-After: 1\r\nUptun-Reason: {why}; try again shortly\r\n");
    let page = users::plain_page(503, &body, &headers);
    // One poll: a write that would wait is given up, as `try_write` would.
    let _ = socket.write_all(page.as_bytes()).now_or_never();
}

/// Serves a classified connection.
pub(crate) async fn serve(
    mut socket: Socket,
    peer: SocketAddr,
    visitor: Visitor,
    state: Arc<State>,
) {
    match visitor {
        Visitor::Link { kind, head, buf } => {
            // Links are few and long-lived: their log lines carry the peer
            // in a span. User connections name it in each line instead, as
            // a span per connection costs ~340 bytes while it lasts.
            let span = info_span!("conn", %peer);
            Box::pin(links::serve(socket, peer, kind, head, buf, state))
                .instrument(span)
                .await
        }
        Visitor::Legacy { head, buf } => {
            let span = info_span!("conn", %peer);
            Box::pin(legacy::serve(socket, peer, head, buf, state))
                .instrument(span)
                .await
        }
        Visitor::Endpoint { head } => Box::pin(endpoints::serve(socket, &head, &state)).await,
        Visitor::Web { to, buf } => {
            users::serve_user(socket, peer, &to, buf, UserKind::Web, &state).await
        }
        Visitor::Reply {
            bytes,
            then,
            resume,
            buf,
        } => Box::pin(replied(socket, peer, bytes, then, resume, buf, state)).await,
        Visitor::Close { bytes } => {
            tracing::debug!(%peer, "a route closes this connection");
            let _ = socket.write_all(&bytes).await;
            let _ = socket.shutdown().await;
        }
        Visitor::Unrouted => {
            tracing::debug!(%peer, "no route takes this connection's first bytes: reset");
            socket.abort();
        }
        Visitor::Raw { to, buf } => {
            users::serve_user(socket, peer, &to, buf, UserKind::Raw, &state).await
        }
        Visitor::Reject(refusal) => {
            warn!(%peer, status = refusal.status, reason = %refusal.reason, "rejected request");
            let _ = socket.write_all(refusal.to_http().as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Visitor::Silent { first } => Box::pin(silent::serve(socket, peer, first, state)).await,
        Visitor::Gone => {}
    }
}

/// A route answered first: send its bytes, then carry the user to the
/// route's channel, or classify what the user sends next with the rules
/// after that route. Each reply moves past its rule, so this ends.
async fn replied(
    mut socket: Socket,
    peer: SocketAddr,
    bytes: Bytes,
    then: Option<Destination>,
    resume: usize,
    buf: BytesMut,
    state: Arc<State>,
) {
    if socket.write_all(&bytes).await.is_err() {
        return;
    }
    if let Some(to) = then {
        let kind = match looks_like_http(&buf) {
            true => UserKind::Web,
            false => UserKind::Raw,
        };
        return users::serve_user(socket, peer, &to, buf, kind, &state).await;
    }
    let config = state.config();
    match classify_more(&mut socket, buf, &config, resume).await {
        Ok(visitor) => serve(socket, peer, visitor, state).await,
        Err(err) => tracing::debug!(%peer, %err, "connection failed after a route's reply"),
    }
}
