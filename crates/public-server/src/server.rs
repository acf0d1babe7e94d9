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
use crate::limits::{Admission, Admitted, LinkCounts};
use crate::penalty::Penalties;
use crate::registry::Registry;
use crate::{endpoints, links, silent, users};

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct State {
    pub config: Config,
    pub admission: Admission,
    pub link_counts: LinkCounts,
    pub registry: Registry,
    /// Failed handshakes per source address.
    pub penalties: Penalties,
    pub shutdown: CancellationToken,
}

/// How long open connections get to finish once shutdown is asked for.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` is cancelled, then gives open
/// connections up to ten seconds to finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = Arc::new(State {
        admission: Admission::new(config.limits),
        link_counts: LinkCounts::new(config.limits.links_per_token),
        config,
        registry: Registry::new(),
        penalties: Penalties::default(),
        shutdown: shutdown.clone(),
    });
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
            tracing::debug!(%peer, %err, "connection failed before it was classified");
            return;
        }
    };
    drop(admitted);
    serve(socket, peer, visitor, state).await
}

/// Refuses a connection over an admission limit without a task: the short
/// answer fits an empty socket buffer, so it is written without waiting
/// (what does not fit is not worth waiting for).
pub(crate) fn turn_away(socket: TcpStream, peer: SocketAddr, why: &str, state: &State) {
    if let Some(refused) = state.admission.refused() {
        warn!(%peer, refused, why, "connections refused over the admission limits");
    }
    let body = format!("uptun: {why}; try again shortly\n");
    let page = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
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
        Visitor::Web { buf } => users::serve_web(socket, peer, buf, &state).await,
        Visitor::Raw { channel, buf } => {
            users::serve_raw(socket, peer, &channel, buf, &state).await
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
