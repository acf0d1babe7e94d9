//! The accept loop: accepts and spawns, nothing else. Classification and
//! handshakes happen in each connection's own task, under deadlines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, info_span, warn, Instrument};

use crate::classify::{classify, Visitor};
use crate::config::Config;
use crate::limits::Admitted;
use crate::state::{State, DRAIN};
use crate::users::UserKind;
use crate::{endpoints, links, silent, users};

/// Serves `listener` until `shutdown` is cancelled, then gives open
/// connections up to ten seconds to finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = Arc::new(State::new(config, shutdown.clone()));
    let tracker = TaskTracker::new();
    info!(addr = %listener.local_addr()?, "listening");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match state.admission.admit(peer.ip()) {
                    Ok(admitted) => {
                        tracker.spawn(handle(socket, peer, admitted, state.clone()));
                    }
                    Err(why) => turn_away(socket, peer, why, &state),
                },
                Err(err) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        warn!(
            connections = tracker.len(),
            "closing connections still open after {} s",
            DRAIN.as_secs()
        );
    }
    Ok(())
}

/// Classifies one connection and serves it. Every user connection's task
/// lives as long as the connection, so the big, short or rare steps
/// (classifying, agent links, endpoints) are boxed: the task keeps only the
/// relay's state while it waits (10,000 idle users must stay cheap).
async fn handle(mut socket: TcpStream, peer: SocketAddr, admitted: Admitted, state: Arc<State>) {
    let _ = socket.set_nodelay(true);
    let visitor = match Box::pin(classify(&mut socket, &state.config)).await {
        Ok(v) => v,
        Err(err) => {
            state.metrics.classify_failed();
            tracing::debug!(%peer, %err, "connection failed before it was classified");
            return;
        }
    };
    drop(admitted);
    state.metrics.classified(&visitor);
    // Users are most connections and live longest: their relay runs inline,
    // the rest (links, endpoints, refusals, silence) boxed, so a waiting
    // user's task holds only the relay's state (10,000 idle users must stay
    // cheap; measured with uptun-bench memory).
    match visitor {
        Visitor::Raw { channel, buf } => {
            users::serve_user(socket, peer, &channel, buf, UserKind::Raw, &state).await
        }
        Visitor::Web { channel, buf } => {
            users::serve_user(socket, peer, &channel, buf, UserKind::Web, &state).await
        }
        other => Box::pin(serve(socket, peer, other, state)).await,
    }
}

/// Refuses a connection over an admission limit without a task: the short
/// answer fits an empty socket buffer, so it is written without waiting
/// (what does not fit is not worth waiting for).
pub(crate) fn turn_away(socket: TcpStream, peer: SocketAddr, why: &str, state: &State) {
    state.metrics.over_limit();
    if let Some(refused) = state.admission.refused() {
        warn!(%peer, refused, why, "connections refused over the admission limits");
    }
    let body = format!("uptun: {why}; try again shortly\n");
    let page = users::plain_page(503, &body, "Retry-After: 1\r\n");
    let _ = socket.try_write(page.as_bytes());
}

/// Serves a classified connection.
pub(crate) async fn serve(
    mut socket: TcpStream,
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
        Visitor::Endpoint { head } => Box::pin(endpoints::serve(socket, &head, &state)).await,
        Visitor::Web { channel, buf } => {
            users::serve_user(socket, peer, &channel, buf, UserKind::Web, &state).await
        }
        Visitor::Unrouted => {
            tracing::debug!(%peer, "no route takes this connection's first bytes: reset");
            uptun_protocol::abort_tcp(socket);
        }
        Visitor::Raw { channel, buf } => {
            users::serve_user(socket, peer, &channel, buf, UserKind::Raw, &state).await
        }
        Visitor::Reject(refusal) => {
            warn!(%peer, status = refusal.status, reason = %refusal.reason, "rejected request");
            let _ = socket.write_all(refusal.to_http().as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Visitor::Silent => Box::pin(silent::serve(socket, peer, state)).await,
        Visitor::Gone => {}
    }
}
