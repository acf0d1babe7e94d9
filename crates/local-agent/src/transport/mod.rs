//! How an agent or client reaches the public server: the byte stream under a
//! link. The link's mux only needs something that reads and writes; which
//! transport carries it (plain TCP, TLS; WebSocket and HTTP proxies each in
//! a file of its own beside these) is decided here, from the server URL and
//! the [`TransportOptions`], and nowhere else.
//!
//! Plain TCP stays a `TcpStream` to the end, split into owned halves, so the
//! fastest path pays for no lock or copy; any other transport is boxed and
//! split with `tokio::io::split`.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::either::Either;

mod choice;
mod proxy;
mod tcp;
mod tls;
mod url;
pub(crate) mod websocket;

pub use choice::{Choice, TransportMode, Upgrade};
pub use proxy::{choose as choose_proxy, Proxy, ProxyRefused};
pub(crate) use tls::is_certificate_problem;
pub use tls::TlsOptions;
pub use url::{Scheme, ServerUrl};

/// How to reach the server beyond its URL: the flags every command shares
/// (`--ca`, `--insecure`, `--transport`).
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// How `https://` checks the server's certificate.
    pub tls: TlsOptions,
    /// Which form of link request to send (`Upgrade: tcp` or WebSocket).
    pub mode: TransportMode,
}

/// Anything a link can run on.
pub(crate) trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

/// The read half of a link's byte stream.
pub(crate) type LinkRead = Box<dyn AsyncRead + Unpin + Send>;
/// The write half of a link's byte stream.
pub(crate) type LinkWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// A connected byte stream to the server: plain TCP (`Left`), split into
/// owned halves with no lock between them, or any other transport boxed
/// (`Right`). `Either` forwards every read and write, vectored ones too.
pub(crate) type Stream = Either<TcpStream, Box<dyn Conn>>;

/// Splits the stream for the link's reader and writer tasks.
pub(crate) fn into_halves(stream: Stream) -> (LinkRead, LinkWrite) {
    match stream {
        Either::Left(socket) => {
            let (read, write) = socket.into_split();
            (Box::new(read), Box::new(write))
        }
        Either::Right(conn) => {
            let (read, write) = tokio::io::split(conn);
            (Box::new(read), Box::new(write))
        }
    }
}

/// Connects to the server `url` names, directly or through `proxy`'s
/// CONNECT tunnel, then with the transport its scheme asks for, ready for
/// the link request. A proxy's refusal is a [`ProxyRefused`] inside the
/// error.
pub(crate) async fn connect(
    url: &ServerUrl,
    proxy: Option<&Proxy>,
    options: &TransportOptions,
) -> std::io::Result<Stream> {
    let socket = match proxy {
        Some(proxy) => proxy::connect(proxy, &url.addr).await?,
        None => tcp::connect(&url.addr).await?,
    };
    match url.scheme {
        // ws:// and wss:// are plain TCP and TLS as well: the WebSocket is
        // the link request's form (dial.rs), on top of what this returns.
        Scheme::Http | Scheme::Ws => Ok(Either::Left(socket)),
        Scheme::Https | Scheme::Wss => Ok(Either::Right(Box::new(
            tls::wrap(socket, url, &options.tls).await?,
        ))),
    }
}
