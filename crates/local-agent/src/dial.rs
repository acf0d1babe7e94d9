//! Dialing the public server: the transport's connect (TCP, TLS), the
//! upgrade request, and the server's answer.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use uptun_protocol::handshake::{read_answer, LinkAnswer, LinkRequest, PeerKind, Refusal};
use uptun_protocol::{Secret, PROTOCOL_VERSION};

pub use crate::transport::ServerUrl;
use crate::transport::{self, LinkRead, LinkWrite, Proxy, ProxyRefused, TransportOptions};

/// Why a link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The server answered and said no; retrying will not help for 4xx.
    #[error("the server refused the link ({}): {}", .0.status, .0.reason)]
    Refused(Refusal),
    /// The HTTP proxy on the way said no to CONNECT; the message says what
    /// to fix.
    #[error("{0}")]
    Proxy(ProxyRefused),
    #[error("could not reach the server at {url}: {err}")]
    Unreachable { url: String, err: std::io::Error },
    /// The server's TLS certificate cannot be trusted; the message says
    /// why and what to pass (`--ca`, the right name, `--insecure`).
    #[error("{url}: {why}")]
    Certificate { url: String, why: String },
}

impl DialError {
    /// Mistakes a person must fix, which a retry would only repeat: a
    /// refusal (token, version, bad request), an untrusted certificate,
    /// proxy credentials or a port the proxy forbids.
    pub fn is_fatal(&self) -> bool {
        match self {
            DialError::Refused(r) => {
                (400..500).contains(&r.status) && r.status != 408 && r.status != 429
            }
            DialError::Certificate { .. } => true,
            DialError::Proxy(refused) => refused.is_fatal(),
            DialError::Unreachable { .. } => false,
        }
    }

    /// A failed `transport::connect`: the proxy's refusal or a certificate
    /// problem, if that is what it was, or an unreachable server.
    fn from_connect(url: &ServerUrl, err: std::io::Error) -> DialError {
        if let Some(refused) = err.get_ref().and_then(|e| e.downcast_ref::<ProxyRefused>()) {
            return DialError::Proxy(refused.clone());
        }
        if transport::is_certificate_problem(&err) {
            return DialError::Certificate {
                url: url.to_string(),
                why: err.to_string(),
            };
        }
        DialError::Unreachable {
            url: url.to_string(),
            err,
        }
    }
}

/// An accepted link, ready for `uptun_protocol::spawn_link`.
pub(crate) struct Dialed {
    pub read: LinkRead,
    pub write: LinkWrite,
    pub leftover: BytesMut,
    pub peer_window: u32,
}

/// Parameters of one link request.
pub(crate) struct LinkParams<'a> {
    pub url: &'a ServerUrl,
    /// The HTTP proxy to tunnel through, if any.
    pub proxy: Option<&'a Proxy>,
    pub transport: &'a TransportOptions,
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
        let mut socket = transport::connect(p.url, p.proxy, p.transport)
            .await
            .map_err(|err| DialError::from_connect(p.url, err))?;
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
                let (read, write) = socket.into_halves();
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
