//! A forward at work: one client link, dialed on first use and again after
//! it drops; accept loops that carry each local connection to its channel;
//! and the drain once asked to stop. Where the link goes up or down, or a
//! connection cannot be carried, it tells the [`Reporter`].

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};
use uptun_protocol::{abort_tcp, relay_tcp, LinkHandle};

use crate::client::{open_link, ClientConfig};
use crate::dial::DialError;
use crate::events::Listener;
use crate::report::Reporter;
use crate::transport::Choice;

/// One client link, dialed on first use and again after it drops.
pub(super) struct SharedLink {
    pub config: ClientConfig,
    pub choice: Choice,
    pub reporter: Arc<Reporter>,
    /// Set once the ports are bound; a link that comes up after that
    /// reports them with its `Ready`.
    pub listening: OnceLock<Vec<Listener>>,
    pub stop: CancellationToken,
    current: Mutex<Option<LinkHandle>>,
    /// How the latest link travels (`tcp`, `websocket`), for `Ready`.
    transport: std::sync::Mutex<String>,
}

impl SharedLink {
    pub fn new(config: ClientConfig, choice: Choice, reporter: Arc<Reporter>) -> SharedLink {
        SharedLink {
            config,
            choice,
            reporter,
            listening: OnceLock::new(),
            stop: CancellationToken::new(),
            current: Mutex::new(None),
            transport: std::sync::Mutex::default(),
        }
    }

    /// The link, dialed now if there is none or it closed.
    pub async fn get(&self) -> Result<LinkHandle, DialError> {
        let mut current = self.current.lock().await;
        if let Some(link) = current.as_ref().filter(|l| !l.is_closed()) {
            return Ok(link.clone());
        }
        let opened = open_link(&self.config, &self.choice).await?;
        // `forward` runs for long, like an agent: say how its links travel.
        info!(server = %self.config.server, transport = %opened.upgrade, "link up");
        let link = opened.link;
        *self.transport.lock().unwrap_or_else(|e| e.into_inner()) = opened.upgrade.to_string();
        if let Some(listening) = self.listening.get() {
            self.ready(listening);
        }
        self.watch(link.clone());
        *current = Some(link.clone());
        Ok(link)
    }

    /// Reports the link up, carrying to the channels of `listening`.
    pub fn ready(&self, listening: &[Listener]) {
        let channels: Vec<String> = listening.iter().map(|l| l.channel.clone()).collect();
        let transport = self
            .transport
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.reporter.up(0, transport, &channels, listening);
    }

    /// Reports the link's loss, unless the forward is stopping.
    fn watch(&self, link: LinkHandle) {
        let (reporter, stop) = (self.reporter.clone(), self.stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = link.closed() => {}
                _ = stop.cancelled() => return,
            }
            let reason = link.close_reason().unwrap_or_default();
            let why = format!("link lost: {reason}; the next connection dials again");
            reporter.down(0, why);
        });
    }

    pub async fn current(&self) -> Option<LinkHandle> {
        self.current.lock().await.clone()
    }
}

/// Accepts on `listener` until `stop`, carrying each connection to `channel`.
pub(super) async fn accept_loop(
    listener: TcpListener,
    channel: String,
    shared: Arc<SharedLink>,
    connections: TaskTracker,
) {
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shared.stop.cancelled() => return,
        };
        let _ = socket.set_nodelay(true);
        let span = tracing::info_span!("forward", %channel, %peer);
        let carried = carry(socket, peer, channel.clone(), shared.clone());
        connections.spawn(carried.instrument(span));
    }
}

/// Carries one accepted connection to `channel`.
async fn carry(socket: TcpStream, peer: SocketAddr, channel: String, shared: Arc<SharedLink>) {
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        warn!(%err, "connection reset: {what}");
        let message = format!("a connection from {peer} was reset: {what}: {err}");
        shared.reporter.error(Some(&channel), message);
    };
    let link = match shared.get().await {
        Ok(link) => link,
        Err(err) => {
            failed("no link to the server", &err);
            return abort_tcp(socket);
        }
    };
    let stream = match link.open(&channel, &peer.to_string()).await {
        Ok(s) => s,
        Err(err) => {
            failed("the channel cannot be opened", &err);
            return abort_tcp(socket);
        }
    };
    if let Err(err) = relay_tcp(stream, socket).await {
        warn!(%err, "connection ended early");
    }
}

/// GOAWAY, then wait up to `grace` for the connections to finish and their
/// last frames to be written; then close the link, which resets whatever is
/// still open. Without open connections it returns at once.
pub(super) async fn drain(shared: &SharedLink, connections: &TaskTracker, grace: Duration) {
    const WHY: &str = "the client is shutting down";
    connections.close();
    let link = shared.current().await;
    if let Some(link) = &link {
        let _ = link.go_away(WHY).await;
    }
    let finished = async {
        connections.wait().await;
        if let Some(link) = &link {
            let _ = link.flush().await;
        }
    };
    if tokio::time::timeout(grace, finished).await.is_err() {
        warn!(
            connections = connections.len(),
            "grace period over: resetting the connections still open"
        );
    }
    if let Some(link) = &link {
        link.close(WHY);
    }
    // Each one resets its socket once its stream fails; give them the moment.
    let _ = tokio::time::timeout(Duration::from_secs(1), connections.wait()).await;
}
