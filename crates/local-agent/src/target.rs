//! What a channel leads to on the agent's side, and how it is dialed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};
use uptun_protocol::{relay, relay_tcp, MuxStream, RelayError, RelayStats};

/// A channel's target: `host:port` or `unix:/path/to.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp(String),
    Unix(std::path::PathBuf),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, as in unix:/run/app.sock".into());
            }
            return Ok(Target::Unix(path.into()));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Target::Tcp(s.to_string()))
            }
            _ => Err(format!("target {s:?} is not HOST:PORT or unix:/PATH")),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(addr) => f.write_str(addr),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A target, connected: the local end of one stream.
#[derive(Debug)]
pub(crate) enum Connected {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Connected {
    /// The target's address as this agent reached it; `None` for a Unix
    /// socket (or a TCP target that is already gone).
    pub fn target_addr(&self) -> Option<SocketAddr> {
        match self {
            Connected::Tcp(socket) => socket.peer_addr().ok(),
            Connected::Unix(_) => None,
        }
    }

    /// Writes `bytes` (a PROXY header) before the relay starts, so they
    /// reach the target ahead of any byte from the user.
    pub async fn write_first(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connected::Tcp(socket) => socket.write_all(bytes).await,
            Connected::Unix(socket) => socket.write_all(bytes).await,
        }
    }

    /// Relays `stream` to the target until both directions finish. An
    /// abnormal end resets a TCP target; a Unix socket has no reset, so
    /// there the target sees the connection close.
    pub async fn relay(self, stream: MuxStream) -> Result<RelayStats, RelayError> {
        match self {
            Connected::Tcp(socket) => relay_tcp(stream, socket).await,
            Connected::Unix(socket) => {
                let (read, write) = socket.into_split();
                relay(stream, read, write).await
            }
        }
    }
}

impl Target {
    /// Dials the target; the error reads "could not reach HOST:PORT: …".
    pub(crate) async fn dial(&self, timeout: Duration) -> Result<Connected, String> {
        let attempt = async {
            match self {
                Target::Tcp(addr) => {
                    let socket = TcpStream::connect(addr).await?;
                    let _ = socket.set_nodelay(true);
                    Ok::<_, std::io::Error>(Connected::Tcp(socket))
                }
                Target::Unix(path) => Ok(Connected::Unix(UnixStream::connect(path).await?)),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(connected)) => Ok(connected),
            Ok(Err(err)) => Err(format!("could not reach {self}: {err}")),
            Err(_) => Err(format!(
                "could not reach {self}: no answer within {} s",
                timeout.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!("10.0.0.5:22".parse(), Ok(Target::Tcp("10.0.0.5:22".into())));
        assert_eq!(
            "localhost:8080".parse(),
            Ok(Target::Tcp("localhost:8080".into()))
        );
        assert_eq!(
            "unix:/run/a.sock".parse(),
            Ok(Target::Unix("/run/a.sock".into()))
        );
        assert!("localhost".parse::<Target>().is_err());
        assert!("host:99999".parse::<Target>().is_err());
        assert!("unix:".parse::<Target>().is_err());
    }
}
