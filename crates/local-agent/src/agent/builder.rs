//! [`AgentBuilder`]: an agent's settings one call at a time, then `start`.

use std::path::PathBuf;
use std::time::Duration;

use uptun_protocol::Secret;

use super::{Agent, AgentConfig, AgentError, AgentHandle};
use crate::dial::ServerUrl;
use crate::proxy_header::ProxyProtocol;
use crate::retry::RetryPolicy;
use crate::target::{SessionOptions, Target};
use crate::transport::{Proxy, TransportOptions};

/// An agent being configured; from [`Agent::builder`]. Every setting but
/// the server, the token and the channels has the default the
/// `local-agent` binary has.
///
/// An agent that cannot reach its server gives up once its
/// [`RetryPolicy`] says so:
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use local_agent::{Agent, AgentError, RetryPolicy};
///
/// // A port nobody listens on any more: every dial fails.
/// let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let retry = RetryPolicy::new(Duration::from_millis(10), Duration::from_millis(100));
/// let mut agent = Agent::builder()
///     .server(format!("http://{closed}").parse()?)
///     .token("s3cret")
///     .channel("web", "127.0.0.1:3000".parse()?)
///     .channel("ssh", "10.0.0.5:22".parse()?)
///     .name("build-box")
///     .retry(retry.max_attempts(3))
///     .start()?;
/// let err = agent.wait().await.unwrap_err();
/// assert!(matches!(err, AgentError::GaveUp { attempts: 3, .. }), "{err}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AgentBuilder {
    server: Option<ServerUrl>,
    token: Option<Secret>,
    /// Everything else, in `AgentConfig`'s shape: `server` and `token`
    /// are filled in by `start`.
    rest: Option<AgentConfig>,
    channels: Vec<(String, Target)>,
}

impl AgentBuilder {
    /// The public server, as `http://HOST[:PORT]`, `https://…`, `ws://…`
    /// or `wss://…` (parse one from a string).
    pub fn server(mut self, url: ServerUrl) -> Self {
        self.server = Some(url);
        self
    }

    /// The token the server expects of agents (its `--agent-token`).
    pub fn token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Serves channel `name` by dialing `target` (`host:port`,
    /// `unix:/path`, `pty:COMMAND`, `session:COMMAND`; parse one from a
    /// string, or convert a `SocketAddr`). Repeatable.
    pub fn channel(mut self, name: impl Into<String>, target: Target) -> Self {
        self.channels.push((name.into(), target));
        self
    }

    /// Writes a PROXY protocol header naming the user to `channel`'s target.
    pub fn proxy_protocol(self, channel: impl Into<String>, version: ProxyProtocol) -> Self {
        self.with(|c| c.proxy_protocol.push((channel.into(), version)))
    }

    /// Reaches the server through this HTTP proxy (CONNECT).
    pub fn proxy(self, proxy: Proxy) -> Self {
        self.with(|c| c.proxy = Some(proxy))
    }

    /// TLS trust (`--ca`, `--insecure`) and the transport (`--transport`).
    pub fn transport(self, transport: TransportOptions) -> Self {
        self.with(|c| c.transport = transport)
    }

    /// The name the server shows in its logs and status page.
    pub fn name(self, name: impl Into<String>) -> Self {
        self.with(|c| c.name = Some(name.into()))
    }

    /// How long dialing a target may take before the stream is refused.
    pub fn target_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.target_timeout = timeout)
    }

    /// Closes streams on `channel` (pty:, session:) after `limit` idle.
    pub fn idle_timeout(self, channel: impl Into<String>, limit: Duration) -> Self {
        self.with(|c| c.idle_timeouts.push((channel.into(), limit)))
    }

    /// Where pty: and session: commands start.
    pub fn pty_cwd(self, dir: impl Into<PathBuf>) -> Self {
        self.with(|c| c.pty_cwd = Some(dir.into()))
    }

    /// Link tunables (window, ping interval, …).
    pub fn mux(self, mux: uptun_protocol::Config) -> Self {
        self.with(|c| c.mux = mux)
    }

    /// How a link that is down is dialed again.
    pub fn retry(self, retry: RetryPolicy) -> Self {
        self.with(|c| c.retry = retry)
    }

    /// Links to keep open at once (at least 1).
    pub fn links(self, links: usize) -> Self {
        self.with(|c| c.links = links.max(1))
    }

    /// Once asked to stop, how long open streams get to finish.
    pub fn grace(self, grace: Duration) -> Self {
        self.with(|c| c.grace = grace)
    }

    /// Stops by itself once no stream has been open for `limit`.
    pub fn exit_when_idle(self, limit: Duration) -> Self {
        self.with(|c| c.exit_when_idle = Some(limit))
    }

    /// How session: channels run.
    pub fn session(self, session: SessionOptions) -> Self {
        self.with(|c| c.session = session)
    }

    /// Changes the settings kept in `rest`, creating them with their defaults.
    fn with(mut self, change: impl FnOnce(&mut AgentConfig)) -> Self {
        let rest = self
            .rest
            .get_or_insert_with(|| AgentConfig::new(placeholder(), "", Vec::new()));
        change(rest);
        self
    }

    /// The configuration, or which of the required settings is missing.
    pub fn config(self) -> Result<AgentConfig, AgentError> {
        let missing =
            |what: &str| AgentError::Config(format!("no {what} given: {what}(…) is required"));
        let server = self.server.ok_or_else(|| missing("server"))?;
        let token = self.token.ok_or_else(|| missing("token"))?;
        Ok(match self.rest {
            Some(rest) => AgentConfig {
                server,
                token,
                channels: self.channels,
                ..rest
            },
            None => AgentConfig::new(server, token, self.channels),
        })
    }

    /// Checks the settings against each other as [`start`](Self::start)
    /// does, without starting anything: a channel at least, and no PROXY
    /// or idle setting for a channel not served or whose target does not
    /// take it. The server and token may still be missing.
    pub fn check(&self) -> Result<(), AgentError> {
        let mut probe = self.clone();
        probe.server.get_or_insert_with(placeholder);
        probe.token.get_or_insert_with(Secret::default);
        super::Prepared::new(probe.config()?).map(drop)
    }

    /// Starts the agent in the current Tokio runtime and returns at once;
    /// its links come up in the background ([`Event::Ready`]).
    ///
    /// Fails at once, before any dial, for what retrying cannot fix in the
    /// settings themselves: no server, token or channel, a PROXY setting
    /// for a channel it does not serve, no Tokio runtime. Refusals by the
    /// server come later, as [`Event::Closed`] and from
    /// [`AgentHandle::wait`].
    ///
    /// [`Event::Ready`]: crate::Event::Ready
    /// [`Event::Closed`]: crate::Event::Closed
    pub fn start(self) -> Result<AgentHandle, AgentError> {
        Agent::from_config(self.config()?)
    }
}

/// Stands for the server until one is given; `config` never lets it out.
pub(crate) fn placeholder() -> ServerUrl {
    "http://server.invalid".parse().expect("a valid URL")
}
