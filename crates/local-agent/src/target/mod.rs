//! What a channel leads to on the agent's side. Each kind of target lives
//! in a file of its own behind [`Kind`]: it gets ready for one stream (dial,
//! spawn, attach), then relays the accepted stream. A new kind is a new
//! file and one line in [`Target`]'s parser.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use uptun_protocol::{MuxStream, RelayError, RelayStats};

use crate::proxy_header::ProxyProtocol;

mod idle;
mod pty;
mod session;
mod socket;
mod tcp;
mod terminal;
mod unix;

pub use session::{SessionOptions, SessionRestart};

/// A boxed future, as trait objects return them.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One stream's request to a target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenRequest<'a> {
    /// The user's address as the OPEN frame gave it (free text).
    pub user: &'a str,
    /// How long getting ready may take (`--connect-timeout`).
    pub timeout: Duration,
    /// The PROXY header to write first, for kinds that take one.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// The user's terminal type (`TERM`), when the client sent one; for
    /// terminal kinds.
    pub term: Option<&'a str>,
    /// Close the stream when neither side spoke for this long, for kinds
    /// that watch their traffic (`--idle-timeout NAME=DURATION`).
    pub idle_timeout: Option<Duration>,
    /// Where terminal kinds start their command (`--pty-cwd`); the
    /// agent's own directory when `None`.
    pub cwd: Option<&'a std::path::Path>,
}

/// A kind of target: `host:port`, `unix:/path`, and so on.
pub(crate) trait Kind: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Gets ready for one stream. The error is the reason the stream is
    /// refused with ("could not reach …"), for the user and the log.
    fn open<'a>(&'a self, request: OpenRequest<'a>) -> BoxFuture<'a, Result<Opened, String>>;

    /// Whether `--proxy-protocol` means anything for this kind.
    fn takes_proxy_header(&self) -> bool {
        false
    }

    /// Whether `--idle-timeout` means anything for this kind: it watches
    /// its streams' traffic ([`idle::Idle`]).
    fn takes_idle_timeout(&self) -> bool {
        false
    }

    /// Called once when the agent starts, inside its runtime: a kind with
    /// a long-lived process of its own starts it here.
    fn start(&self, _request: StartRequest<'_>) {}
}

/// What a kind with a long-lived process of its own needs to start it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StartRequest<'a> {
    /// `--session-restart` and the ring's size.
    pub session: &'a SessionOptions,
    /// Where the process starts; the agent's directory when `None`.
    pub cwd: Option<&'a std::path::Path>,
    /// Cancelled once the agent is done: the process is hung up.
    pub stop: &'a tokio_util::sync::CancellationToken,
}

/// A target, ready for one stream: relays the accepted stream to it until
/// both directions end. An abnormal end reaches the far side as an abort.
pub(crate) type Opened =
    Box<dyn FnOnce(MuxStream) -> BoxFuture<'static, Result<RelayStats, RelayError>> + Send>;

/// A channel's target, as `--channel NAME=TARGET` names it: `host:port`,
/// `unix:/path/to.sock`, `pty:COMMAND` or `session:COMMAND`. Cheap to clone; clones share one
/// target.
#[derive(Clone)]
pub struct Target(Arc<dyn Kind>);

impl Target {
    pub(crate) fn kind(&self) -> &dyn Kind {
        &*self.0
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(command) = s.strip_prefix("session:") {
            return Ok(Target(Arc::new(session::Session::parse(command)?)));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Target(Arc::new(unix::Unix::parse(path)?)));
        }
        if let Some(command) = s.strip_prefix("pty:") {
            return Ok(Target(Arc::new(pty::Pty::parse(command)?)));
        }
        Ok(Target(Arc::new(tcp::Tcp::parse(s)?)))
    }
}

/// A TCP target at a socket address.
impl From<std::net::SocketAddr> for Target {
    fn from(addr: std::net::SocketAddr) -> Target {
        Target(Arc::new(tcp::Tcp::at(addr)))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Two targets are the same when they are written the same.
impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Target {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_says_what_a_wrong_one_should_be() {
        for ok in [
            "10.0.0.5:22",
            "localhost:8080",
            "[::1]:22",
            "unix:/run/a.sock",
            "pty:bundle exec rails c",
        ] {
            assert_eq!(ok.parse::<Target>().unwrap().to_string(), ok);
        }
        let err = |s: &str| s.parse::<Target>().unwrap_err();
        assert!(err("localhost").contains("is not HOST:PORT"));
        assert!(err("host:99999").contains("is not HOST:PORT"));
        assert!(err("unix:").contains("unix:/run/app.sock"));
        let tcp: Target = "127.0.0.1:1".parse().unwrap();
        assert!(tcp.kind().takes_proxy_header());
        assert!(!tcp.kind().takes_idle_timeout());
        let pty: Target = "pty:sh".parse().unwrap();
        assert!(pty.kind().takes_idle_timeout() && !pty.kind().takes_proxy_header());
        assert!(err("pty:").contains("pty: needs a command"));
    }
}
