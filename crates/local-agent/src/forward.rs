//! A forward: local listening ports, each carrying its connections to a
//! channel through the public server (`local-agent forward`). [`Forward`]
//! starts one and returns its [`ForwardHandle`], whose `Ready` says which
//! ports it bound; the binary and [`forward`] start it that way.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::client::{ClientConfig, ForwardSpec};
use crate::dial::DialError;
use crate::events::{CloseReason, Events, Listener, State};
use crate::report::Reporter;
use crate::running::{check_runtime, Running};

mod builder;
mod serve;

pub use builder::ForwardBuilder;
use serve::SharedLink;

/// Starts forwards: [`Forward::builder`]. A program that runs a client
/// of its own points it at the port the forward bound:
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # let mut config = public_server::Config::new("agent-s3cret");
/// # config.tokens.clients = vec![public_server::Grant::any("c1ient")];
/// # tokio::spawn(public_server::run(listener, config, public_server::Shutdown::new()));
/// use local_agent::{Event, Forward};
///
/// let forward = Forward::builder()
///     .server(url.parse()?)
///     .token("c1ient")
///     .listen("127.0.0.1:0", "db")
///     .start()
///     .await?;
/// let Some(Event::Ready { listening, .. }) = forward.events().next().await else {
///     panic!("a forward's first event is Ready");
/// };
/// // The port the system chose: where the program's own client connects.
/// assert_ne!(listening[0].addr.port(), 0);
/// assert_eq!(listening[0].channel, "db");
/// forward.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Forward(());

impl Forward {
    /// A forward to configure: at least [`server`](ForwardBuilder::server),
    /// [`token`](ForwardBuilder::token) (one of the server's client
    /// tokens) and one [`listen`](ForwardBuilder::listen), then
    /// [`start`](ForwardBuilder::start).
    pub fn builder() -> ForwardBuilder {
        ForwardBuilder::default()
    }
}

/// Why a forward could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The settings contradict themselves; the message says what to change.
    #[error("{0}")]
    Config(String),
    /// The server could not be reached, or refused the token.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// A local address could not be bound.
    #[error("could not listen on {addr} (is the port in use?): {err}")]
    Listen { addr: String, err: std::io::Error },
}

/// A running forward. Dropping it stops the forward as
/// [`shutdown`](ForwardHandle::shutdown) would, without waiting.
#[derive(Debug)]
pub struct ForwardHandle {
    running: Running<std::convert::Infallible>,
    listening: Vec<Listener>,
}

/// Dials the server (so a wrong token or URL shows at once), binds every
/// spec's address, and spawns the accept loops.
pub(crate) async fn start(
    config: ClientConfig,
    specs: Vec<ForwardSpec>,
) -> Result<ForwardHandle, ForwardError> {
    check_runtime("a forward").map_err(ForwardError::Config)?;
    if specs.is_empty() {
        return Err(ForwardError::Config(
            "nothing to forward: name a LISTEN=CHANNEL, as in 127.0.0.1:2222=ssh".into(),
        ));
    }
    let choice = config
        .choice()
        .map_err(|e| ForwardError::Config(e.to_string()))?;
    let grace = config.grace;
    let reporter = Arc::new(Reporter::new(1));
    let shared = Arc::new(SharedLink::new(config, choice, reporter.clone()));
    shared.get().await?;
    let mut listeners = Vec::new();
    for spec in specs {
        let listen = |err| ForwardError::Listen {
            addr: spec.listen.clone(),
            err,
        };
        let listener = TcpListener::bind(&spec.listen).await.map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        info!(listen = %addr, channel = %spec.channel, "forwarding");
        listeners.push((listener, spec.channel));
    }
    let listening: Vec<Listener> = listeners
        .iter()
        .map(|(l, channel)| Listener {
            addr: l.local_addr().expect("bound just now"),
            channel: channel.clone(),
        })
        .collect();
    let _ = shared.listening.set(listening.clone());
    shared.ready(&listening);
    let run = move |stop| serve(shared, listeners, grace, stop);
    let running = Running::spawn(reporter, run, |never| match *never {});
    Ok(ForwardHandle { running, listening })
}

/// Runs the accept loops until `stop`, then drains.
async fn serve(
    shared: Arc<SharedLink>,
    listeners: Vec<(TcpListener, String)>,
    grace: Duration,
    stop: CancellationToken,
) -> Result<CloseReason, std::convert::Infallible> {
    let connections = TaskTracker::new();
    let mut loops = tokio::task::JoinSet::new();
    for (listener, channel) in listeners {
        let accepting = serve::accept_loop(listener, channel, shared.clone(), connections.clone());
        loops.spawn(accepting);
    }
    stop.cancelled().await;
    shared.stop.cancel();
    // Each loop ends (and its port closes) now.
    while loops.join_next().await.is_some() {}
    serve::drain(&shared, &connections, grace).await;
    Ok(CloseReason::Shutdown)
}

impl ForwardHandle {
    /// The ports it listens on, as bound (a port 0 is the one chosen), each
    /// with its channel; the same as its first `Ready` says.
    pub fn listening(&self) -> &[Listener] {
        &self.listening
    }

    /// The forward's events from now on; the first call also gets those
    /// since it started, its first `Ready` among them.
    pub fn events(&self) -> Events {
        self.running.events()
    }

    /// Where the forward stands now.
    pub fn state(&self) -> State {
        self.running.state()
    }

    /// The state, to await its changes.
    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.running.watch_state()
    }

    /// Stops the forward: its ports close at once, the link gets GOAWAY,
    /// open connections get the grace to finish; then `Closed`.
    pub async fn shutdown(mut self) {
        let _ = self.running.shutdown().await;
    }
}

/// Listens on every spec's address and carries each accepted connection to
/// its channel until `shutdown`: [`Forward`] with `config`'s settings,
/// shut down once `shutdown` is cancelled. Fails at once if the server
/// cannot be reached or an address cannot be bound.
pub async fn forward(
    config: ClientConfig,
    specs: Vec<ForwardSpec>,
    shutdown: CancellationToken,
) -> Result<(), ForwardError> {
    let handle = Forward::builder()
        .client(config)
        .specs(specs)
        .start()
        .await?;
    shutdown.cancelled().await;
    handle.shutdown().await;
    Ok(())
}
