//! What an agent is told ([`AgentConfig`]) and why it may stop for good
//! ([`AgentError`]).

use std::time::Duration;

use uptun_protocol::handshake::Refusal;
use uptun_protocol::Secret;

use crate::dial::ServerUrl;
use crate::proxy_header::ProxyProtocol;
use crate::retry::RetryPolicy;
use crate::target::{SessionOptions, Target};
use crate::transport::{Proxy, ProxyRefused, TransportOptions};

/// Everything an agent needs, for [`Agent::from_config`](crate::Agent::from_config)
/// and [`run_agent`](crate::run_agent); [`Agent::builder`](crate::Agent::builder)
/// sets the same things one call at a time. `{:?}` shows the token as `***`.
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
    /// How a link that is down is dialed again, and whether the agent ever
    /// gives up.
    pub retry: RetryPolicy,
    /// Links kept open at once; the server spreads new streams across them.
    pub links: usize,
    /// Once asked to stop, how long open streams get to finish before the
    /// links close under them.
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
            retry: RetryPolicy::default(),
            links: 1,
            grace: uptun_cli::DEFAULT_GRACE,
            exit_when_idle: None,
            session: SessionOptions::default(),
        }
    }
}

/// Why an agent stopped for good.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The server refused us in a way retrying cannot fix (401, 403, 426, …).
    #[error("the server refused this agent ({}): {}", .0.status, .0.reason)]
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
    /// The [`RetryPolicy`] gave up: `attempts` dials in a row failed, the
    /// last one for `cause`.
    #[error(
        "gave up after {attempts} failed attempts in a row to reach the server; the last: {cause}"
    )]
    GaveUp { attempts: u32, cause: String },
}
