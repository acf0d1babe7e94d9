//! Dialing the public server: TCP connect, the upgrade request, and the
//! server's answer.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use uptun_protocol::handshake::{read_answer, LinkAnswer, LinkRequest, PeerKind, Refusal};
use uptun_protocol::{Secret, PROTOCOL_VERSION};

/// Where the public server is: `http://host:port` (or just `host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `host:port` to connect to.
    pub addr: String,
    /// Value of the `Host` header: what a router in front expects.
    pub host: String,
}

impl std::str::FromStr for ServerUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = if let Some(rest) = s.strip_prefix("http://") {
            rest
        } else if s.starts_with("https://") || s.starts_with("wss://") {
            return Err(format!("{s}: TLS links are not supported yet; use http:// (or put the server behind a router that terminates TLS and dial its plain port)"));
        } else if s.contains("://") {
            return Err(format!("{s}: only http:// server URLs are supported"));
        } else {
            s
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(format!(
                "{s:?} has no host; write it like http://tunnel.example.com:8080"
            ));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']');
        let addr = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(ServerUrl {
            addr,
            host: authority.to_string(),
        })
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.host)
    }
}

/// Why a link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The server answered and said no; retrying will not help for 4xx.
    #[error("the server refused the link ({}): {}", .0.status, .0.reason)]
    Refused(Refusal),
    #[error("could not reach the server at {url}: {err}")]
    Unreachable { url: String, err: std::io::Error },
}

impl DialError {
    /// Refusals a person must fix (token, version, bad request): no retry.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DialError::Refused(r) if (400..500).contains(&r.status) && r.status != 408 && r.status != 429)
    }
}

/// An accepted link, ready for `uptun_protocol::spawn_link`.
pub(crate) struct Dialed {
    pub read: OwnedReadHalf,
    pub write: OwnedWriteHalf,
    pub leftover: BytesMut,
    pub peer_window: u32,
}

/// Parameters of one link request.
pub(crate) struct LinkParams<'a> {
    pub url: &'a ServerUrl,
    pub token: &'a Secret,
    pub kind: PeerKind,
    pub channels: Vec<String>,
    pub window: u32,
    pub name: Option<String>,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) async fn dial(p: LinkParams<'_>) -> Result<Dialed, DialError> {
    let unreachable = |err| DialError::Unreachable {
        url: p.url.to_string(),
        err,
    };
    let attempt = async {
        let mut socket = TcpStream::connect(&p.url.addr).await.map_err(unreachable)?;
        let _ = socket.set_nodelay(true);
        let request = LinkRequest {
            kind: p.kind,
            host: p.url.host.clone(),
            token: Some(p.token.clone()),
            version: PROTOCOL_VERSION,
            channels: p.channels,
            window: p.window,
            name: p.name,
        };
        // Debug shows the token as ***.
        tracing::trace!(?request, "sending the link request");
        socket
            .write_all(request.to_http().as_bytes())
            .await
            .map_err(unreachable)?;
        let mut leftover = BytesMut::with_capacity(4096);
        match read_answer(&mut socket, &mut leftover)
            .await
            .map_err(unreachable)?
        {
            LinkAnswer::Accepted { window } => {
                let (read, write) = socket.into_split();
                Ok(Dialed {
                    read,
                    write,
                    leftover,
                    peer_window: window,
                })
            }
            LinkAnswer::Refused(refusal) => Err(DialError::Refused(refusal)),
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer to the link request within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let u: ServerUrl = "http://tunnel.example.com:8080/".parse().unwrap();
        assert_eq!(
            (u.addr.as_str(), u.host.as_str()),
            ("tunnel.example.com:8080", "tunnel.example.com:8080")
        );
        let u: ServerUrl = "http://app.herokuapp.com".parse().unwrap();
        assert_eq!(
            (u.addr.as_str(), u.host.as_str()),
            ("app.herokuapp.com:80", "app.herokuapp.com")
        );
        let u: ServerUrl = "127.0.0.1:9".parse().unwrap();
        assert_eq!(u.addr, "127.0.0.1:9");
        assert!("https://x"
            .parse::<ServerUrl>()
            .unwrap_err()
            .contains("TLS"));
        assert!("ftp://x".parse::<ServerUrl>().is_err());
        assert!("http://".parse::<ServerUrl>().is_err());
    }
}
