//! The agent: keeps a link to the public server, reconnecting with backoff,
//! and serves each stream the server opens by dialing the channel's target.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uptun_protocol::handshake::{PeerKind, Refusal};
use uptun_protocol::{Incoming, IncomingStream, LinkHandle, Secret};

use crate::backoff::Backoff;
use crate::channel::ChannelConfig;
use crate::dial::{DialError, LinkParams, ServerUrl};
use crate::idle_exit::Activity;
use crate::opener::{open, Opened};
use crate::proxy_header::ProxyProtocol;
use crate::target::{SessionOptions, StartRequest, Target};
use crate::transport::{Choice, Proxy, ProxyRefused, TransportOptions};

/// Channel name → what serving it means.
type Channels = Arc<HashMap<String, ChannelConfig>>;

/// Everything an agent needs. `{:?}` shows the token as `***`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub server: ServerUrl,
    pub token: Secret,
    /// The HTTP proxy links go through (CONNECT), if any.
    pub proxy: Option<Proxy>,
    /// How to reach the server beyond its URL (`--ca`, `--insecure`).
    pub transport: TransportOptions,
    /// Channel name → target, in the order given.
    pub channels: Vec<(String, Target)>,
    /// Channels whose target gets a PROXY protocol header naming the user;
    /// each must be one of `channels`.
    pub proxy_protocol: Vec<(String, ProxyProtocol)>,
    /// Shown in the server's logs and status page.
    pub name: Option<String>,
    /// How long dialing a target may take before the stream is refused.
    pub target_timeout: Duration,
    /// Channels (pty:, session:) whose streams close after this long with
    /// nothing either way; each must be one of `channels`.
    pub idle_timeouts: Vec<(String, Duration)>,
    /// Where pty: commands start; the agent's own directory when `None`.
    pub pty_cwd: Option<std::path::PathBuf>,
    /// Link tunables (window, ping interval, …).
    pub mux: uptun_protocol::Config,
    /// First and largest reconnect delay.
    pub backoff: (Duration, Duration),
    /// Links kept open at once; the server spreads new streams across them.
    pub links: usize,
    /// Once `shutdown` is cancelled, how long open streams get to finish
    /// before the links close under them.
    pub grace: Duration,
    /// Stop (as if asked to) once no stream has been open for this long,
    /// counting from the start too (`--exit-when-idle`).
    pub exit_when_idle: Option<Duration>,
    /// How `session:` channels run (`--session-restart`, `--session-ring`).
    pub session: SessionOptions,
}

impl AgentConfig {
    pub fn new(
        server: ServerUrl,
        token: impl Into<Secret>,
        channels: Vec<(String, Target)>,
    ) -> Self {
        AgentConfig {
            server,
            token: token.into(),
            proxy: None,
            transport: TransportOptions::default(),
            channels,
            proxy_protocol: Vec::new(),
            name: None,
            target_timeout: Duration::from_secs(10),
            idle_timeouts: Vec::new(),
            pty_cwd: None,
            mux: uptun_protocol::Config::default(),
            backoff: (Duration::from_millis(500), Duration::from_secs(30)),
            links: 1,
            grace: uptun_cli::DEFAULT_GRACE,
            exit_when_idle: None,
            session: SessionOptions::default(),
        }
    }
}

/// Why an agent stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server refused us in a way retrying cannot fix (401, 403, 426, …).
    #[error("{}", .0.reason)]
    Refused(Refusal),
    /// The HTTP proxy refused in a way retrying cannot fix (403, 407); the
    /// message says what to change.
    #[error("{0}")]
    Proxy(ProxyRefused),
    /// The server's TLS certificate cannot be trusted; the message says
    /// what is wrong and what to pass. Retrying would fail the same way.
    #[error("{0}")]
    Certificate(String),
    /// The configuration contradicts itself (a PROXY setting for a channel
    /// it does not serve); the message says what to change.
    #[error("{0}")]
    Config(String),
}

/// Runs the agent until `shutdown` is cancelled or the server refuses it:
/// `config.links` links, each kept up on its own. Once cancelled, each link
/// sends GOAWAY and its open streams get `config.grace` to finish.
pub async fn run_agent(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let mut table = crate::channel::table(&config.channels, &config.proxy_protocol)
        .map_err(AgentError::Config)?;
    crate::channel::set_idle_timeouts(&mut table, &config.idle_timeouts)
        .map_err(AgentError::Config)?;
    if let Some(dir) = &config.pty_cwd {
        crate::channel::set_cwd(&mut table, dir).map_err(AgentError::Config)?;
    }
    let targets: Channels = Arc::new(table);
    // Targets with a process of their own (a session) start with the
    // agent, and are hung up when it returns.
    let stop_sessions = CancellationToken::new();
    let _hang_up_sessions = stop_sessions.clone().drop_guard();
    for channel in targets.values() {
        channel.target.kind().start(StartRequest {
            session: &config.session,
            cwd: channel.cwd.as_deref(),
            stop: &stop_sessions,
        });
    }
    // What one link learns about the router in front, the others use.
    let choice = Arc::new(
        Choice::new(config.transport.mode, config.server.scheme).map_err(AgentError::Config)?,
    );
    let config = Arc::new(config);
    // A refusal ends every link: the next attempt would be refused the same way.
    let stop = shutdown.child_token();
    let activity = config.exit_when_idle.map(|limit| watch_idle(limit, &stop));
    let mut links = tokio::task::JoinSet::new();
    for _ in 0..config.links.max(1) {
        let choice = choice.clone();
        links.spawn(keep_link(
            config.clone(),
            Serving {
                targets: targets.clone(),
                activity: activity.clone(),
            },
            choice,
            stop.clone(),
        ));
    }
    let mut outcome = Ok(());
    while let Some(done) = links.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                stop.cancel();
                outcome = outcome.and(Err(err));
            }
            // A bug in one link's loop is not a clean exit for the agent.
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => {}
        }
    }
    outcome
}

/// Stops the agent through `stop` once no stream has been open for
/// `limit`; returns the count the streams keep.
fn watch_idle(limit: Duration, stop: &CancellationToken) -> Arc<Activity> {
    let activity = Arc::new(Activity::default());
    let (watched, stop) = (activity.clone(), stop.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = watched.idle_for(limit) => {
                info!(
                    idle_secs = limit.as_secs_f64(),
                    "no stream open for that long: exiting (--exit-when-idle)"
                );
                stop.cancel();
            }
            _ = stop.cancelled() => {}
        }
    });
    activity
}

/// What serving a stream needs, shared by every link.
#[derive(Debug, Clone)]
struct Serving {
    targets: Channels,
    /// Counts open streams for `--exit-when-idle`, when it is set.
    activity: Option<Arc<Activity>>,
}

/// Keeps one link to the server up, reconnecting with backoff.
async fn keep_link(
    config: Arc<AgentConfig>,
    serving: Serving,
    choice: Arc<Choice>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let names: Vec<String> = config.channels.iter().map(|(n, _)| n.clone()).collect();
    let mut backoff = Backoff::new(config.backoff.0, config.backoff.1);
    while !shutdown.is_cancelled() {
        let params = LinkParams {
            url: &config.server,
            proxy: config.proxy.as_ref(),
            transport: &config.transport,
            token: &config.token,
            kind: PeerKind::Agent,
            channels: names.clone(),
            window: config.mux.window,
            name: config.name.clone(),
        };
        let attempt = tokio::select! {
            r = open(params, &config.mux, &choice) => r,
            _ = shutdown.cancelled() => break,
        };
        match attempt {
            Ok(opened) => {
                backoff.reset();
                info!(server = %config.server, transport = %opened.upgrade, channels = %names.join(","), "link up: serving channels");
                let reason = serve_link(opened, &config, serving.clone(), &shutdown).await;
                if shutdown.is_cancelled() {
                    break;
                }
                warn!(server = %config.server, %reason, "link lost");
            }
            Err(err) if err.is_fatal() => {
                return Err(match err {
                    DialError::Refused(refusal) => AgentError::Refused(refusal),
                    DialError::Proxy(refused) => AgentError::Proxy(refused),
                    other @ DialError::Certificate { .. } => {
                        AgentError::Certificate(other.to_string())
                    }
                    DialError::Unreachable { .. } | DialError::NoAnswer { .. } => {
                        unreachable!("only refusals are fatal")
                    }
                });
            }
            Err(err) => warn!(%err, "cannot connect"),
        }
        let delay = backoff.next_delay();
        info!("reconnecting in {:.1} s", delay.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    Ok(())
}

/// Serves one link until it closes; returns why it closed.
async fn serve_link(
    opened: Opened,
    config: &AgentConfig,
    serving: Serving,
    shutdown: &CancellationToken,
) -> String {
    let Opened {
        link, mut incoming, ..
    } = opened;
    let asked_to_stop = loop {
        tokio::select! {
            next = incoming.next() => match next {
                Some(stream) => {
                    // No span per stream: 10,000 of them would cost ~3 MiB.
                    // The lines below name the stream themselves.
                    let busy = serving.activity.as_ref().map(Activity::begin);
                    let (targets, timeout) = (serving.targets.clone(), config.target_timeout);
                    tokio::spawn(async move {
                        serve_stream(stream, targets, timeout).await;
                        drop(busy);
                    });
                }
                None => break false,
            },
            _ = shutdown.cancelled() => break true,
        }
    };
    if asked_to_stop {
        drain(&link, incoming, config.grace).await;
    }
    // The reader ends `incoming` just before it records why the link closed.
    link.closed().await;
    link.close_reason().unwrap_or_default()
}

/// GOAWAY, then refuse the streams that crossed it while the open ones get
/// `grace` in all to finish (and their last frames to be written); then
/// close the link, which fails whatever is still open. An idle link closes
/// at once.
async fn drain(link: &LinkHandle, mut incoming: Incoming, grace: Duration) {
    const WHY: &str = "the agent is shutting down";
    let drained = tokio::time::timeout(grace, link.drain(WHY, grace));
    tokio::pin!(drained);
    loop {
        tokio::select! {
            next = incoming.next() => match next {
                Some(stream) => stream.refuse("the agent is going away"),
                None => break,
            },
            finished = &mut drained => {
                if finished.is_err() {
                    warn!(streams = link.stream_count(), "grace period over: closing the streams still open");
                }
                break;
            }
        }
    }
    link.close(WHY);
}

async fn serve_stream(incoming: IncomingStream, targets: Channels, timeout: Duration) {
    let Some(channel) = targets.get(&incoming.channel) else {
        let reason = format!("this agent does not serve channel \"{}\"", incoming.channel);
        warn!(channel = %incoming.channel, user = %incoming.peer, %reason, "stream refused");
        incoming.refuse(&reason);
        return;
    };
    // Boxed: dialing is short, and its state need not stay in the task for
    // as long as the stream lives.
    let term = incoming.term.as_deref();
    let connected = match Box::pin(channel.connect(&incoming.peer, term, timeout)).await {
        Ok(connected) => connected,
        Err(reason) => {
            warn!(channel = %incoming.channel, user = %incoming.peer, %reason, "stream refused");
            incoming.refuse(&reason);
            return;
        }
    };
    let id = incoming.id();
    let Ok(stream) = incoming.accept().await else {
        return;
    };
    match connected(stream).await {
        Ok(stats) => tracing::debug!(
            stream = id,
            sent = stats.sent,
            received = stats.received,
            "stream done"
        ),
        Err(err) => tracing::debug!(stream = id, %err, "stream ended early"),
    }
}
