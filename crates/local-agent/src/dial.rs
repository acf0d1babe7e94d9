//! Dialing the public server: the transport's connect (TCP, TLS), the
//! upgrade request, and the server's answer.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use uptun_protocol::handshake::{read_answer, LinkAnswer, LinkRequest, PeerKind, Refusal};
use uptun_protocol::{Secret, PROTOCOL_VERSION};

pub use crate::transport::ServerUrl;
use crate::transport::{self, LinkRead, LinkWrite, TransportOptions};

/// Why a link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The server answered and said no; retrying will not help for 4xx.
    #[error("the server refused the link ({}): {}", .0.status, .0.reason)]
    Refused(Refusal),
    #[error("could not reach the server at {url}: {err}")]
    Unreachable { url: String, err: std::io::Error },
    /// The server's TLS certificate cannot be trusted; the message says
    /// why and what to pass (`--ca`, the right name, `--insecure`).
    #[error("{url}: {why}")]
    Certificate { url: String, why: String },
}

impl DialError {
    /// Mistakes a person must fix, which a retry would only repeat: a
    /// refusal (token, version, bad request) or an untrusted certificate.
    pub fn is_fatal(&self) -> bool {
        match self {
            DialError::Refused(r) => {
                (400..500).contains(&r.status) && r.status != 408 && r.status != 429
            }
            DialError::Certificate { .. } => true,
            DialError::Unreachable { .. } => false,
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
        let mut socket = transport::connect(p.url, p.transport)
            .await
            .map_err(|err| match transport::is_certificate_problem(&err) {
                true => DialError::Certificate {
                    url: p.url.to_string(),
                    why: err.to_string(),
                },
                false => unreachable(err),
            })?;
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
