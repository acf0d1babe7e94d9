//! Dialing the public server: the transport's connect (TCP, TLS), the
//! upgrade request (in the `Upgrade: tcp` or the WebSocket form), and the
//! server's answer.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use uptun_protocol::handshake::{
    read_answer, websocket, LinkAnswer, LinkRequest, PeerKind, Refusal,
};
use uptun_protocol::{Secret, PROTOCOL_VERSION};

pub use crate::transport::ServerUrl;
use crate::transport::{self, LinkRead, LinkWrite, Proxy, ProxyRefused, TransportOptions, Upgrade};

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
    /// Connected, but the link request got no proper answer: the server
    /// (or a router in front) closed, timed out or answered nonsense.
    #[error("the link request to {url} got no answer: {err}")]
    NoAnswer { url: String, err: std::io::Error },
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
            DialError::Unreachable { .. } | DialError::NoAnswer { .. } => false,
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

    /// Whether something in front of the server stopped the link request
    /// rather than the server refusing it: an answer without
    /// `Uptun-Reason`, or none at all. The other form may get through.
    pub(crate) fn router_in_the_way(&self) -> bool {
        match self {
            DialError::Refused(r) => !r.from_uptun,
            DialError::NoAnswer { .. } => true,
            DialError::Unreachable { .. } | DialError::Proxy(_) | DialError::Certificate { .. } => {
                false
            }
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

/// Dials once, sending the link request in the form `upgrade`. Connecting
/// and the handshake share one deadline.
pub(crate) async fn dial(p: &LinkParams<'_>, upgrade: Upgrade) -> Result<Dialed, DialError> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let timed_out = || {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer to the link request within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
        )
    };
    let connect = transport::connect(p.url, p.proxy, p.transport);
    let socket = match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => return Err(DialError::from_connect(p.url, err)),
        Err(_) => return Err(p.unreachable(timed_out())),
    };
    match tokio::time::timeout_at(deadline, handshake(p, socket, upgrade)).await {
        Ok(dialed) => dialed,
        Err(_) => Err(p.no_answer(timed_out())),
    }
}

impl LinkParams<'_> {
    fn unreachable(&self, err: std::io::Error) -> DialError {
        DialError::Unreachable {
            url: self.url.to_string(),
            err,
        }
    }

    fn no_answer(&self, err: std::io::Error) -> DialError {
        DialError::NoAnswer {
            url: self.url.to_string(),
            err,
        }
    }
}

/// Sends the link request on a connected `socket` and reads the answer.
async fn handshake(
    p: &LinkParams<'_>,
    mut socket: transport::Stream,
    upgrade: Upgrade,
) -> Result<Dialed, DialError> {
    let request = LinkRequest {
        kind: p.kind,
        host: p.url.host.clone(),
        token: Some(p.token.clone()),
        version: PROTOCOL_VERSION,
        channels: p.channels.clone(),
        window: p.window,
        name: p.name.clone(),
    };
    // Debug shows the token as ***.
    tracing::trace!(?request, %upgrade, "sending the link request");
    let key = websocket::new_key();
    let head = match upgrade {
        Upgrade::Tcp => request.to_http(),
        Upgrade::WebSocket => request.to_websocket_http(&key),
    };
    let no_answer = |err| p.no_answer(err);
    socket.write_all(head.as_bytes()).await.map_err(no_answer)?;
    let mut leftover = BytesMut::with_capacity(4096);
    let answer = match upgrade {
        Upgrade::Tcp => read_answer(&mut socket, &mut leftover).await,
        Upgrade::WebSocket => websocket::read_answer(&mut socket, &mut leftover, &key).await,
    };
    let window = match answer.map_err(no_answer)? {
        LinkAnswer::Accepted { window } => window,
        LinkAnswer::Refused(refusal) => return Err(DialError::Refused(refusal)),
    };
    if upgrade == Upgrade::WebSocket {
        // The server's first frames are inside its first messages.
        socket = transport::websocket::wrap(socket, leftover.split()).await;
    }
    let (read, write) = transport::into_halves(socket);
    Ok(Dialed {
        read,
        write,
        leftover,
        peer_window: window,
    })
}
