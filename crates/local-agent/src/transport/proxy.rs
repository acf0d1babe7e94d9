//! HTTP CONNECT proxies between an agent or client and the server: which
//! proxy to use (`--proxy`, else `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and
//! `NO_PROXY`, read as curl reads them), and the CONNECT that opens the
//! tunnel. The proxy only carries TCP: the tunnelled `TcpStream` is handed
//! on as it is, so TLS or WebSocket wraps it exactly as a direct connection.
//!
//! Credentials live in a [`Secret`] and leave only inside the
//! `Proxy-Authorization` header; every message shows the proxy URL with its
//! user and password as `***`.

use std::time::Duration;

use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uptun_protocol::Secret;

use super::url::{Scheme, ServerUrl};

mod answer;
mod no_proxy;
mod parse;

pub use answer::ProxyRefused;

/// How long a proxy may take to answer CONNECT once connected: it has to
/// reach the server first, which a direct dial would also have had to do.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP proxy that links go through with CONNECT. `{:?}` and `{}` never
/// show the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// `host:port` of the proxy.
    addr: String,
    credentials: Option<Credentials>,
    /// Where it was given (`--proxy`, `HTTPS_PROXY`, …), for the messages
    /// that say where to fix it.
    source: &'static str,
}

/// A proxy user and password, URL-decoded. `{:?}` prints `***`.
#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: String,
    password: Secret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Proxy {
    /// Where the proxy was given: `--proxy` or the environment variable.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The CONNECT request for `target` (`host:port`). It holds the
    /// credentials: written to the socket, never logged.
    fn request(&self, target: &str) -> Vec<u8> {
        let mut head = format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: uptun-local-agent/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(c) = &self.credentials {
            let pair = format!("{}:{}", c.user, c.password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            head.push_str(&format!("Proxy-Authorization: Basic {encoded}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.addr)
    }
}

impl std::str::FromStr for Proxy {
    type Err = String;
    /// Parses a `--proxy` value: `http://[USER:PASS@]HOST[:PORT]`.
    fn from_str(s: &str) -> Result<Proxy, String> {
        parse::proxy(s, "--proxy")
    }
}

/// The proxy that links to `server` go through, if any. `flag` is
/// `--proxy` (or `UPTUN_PROXY`): `none` or empty turns proxies off, even
/// those of the environment. Without it the environment decides, as in
/// curl: `https_proxy`/`HTTPS_PROXY` for https:// and wss:// servers,
/// `http_proxy`/`HTTP_PROXY` for http:// and ws://, else
/// `all_proxy`/`ALL_PROXY`, the lowercase name first. `no_proxy`/`NO_PROXY`
/// exempts servers from any of them, `--proxy` included, as curl does.
/// `env` looks a variable up (`std::env::var` outside tests).
pub fn choose(
    flag: Option<&str>,
    server: &ServerUrl,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, String> {
    // An empty variable counts as unset, as in curl.
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let exempt = ["no_proxy", "NO_PROXY"]
        .into_iter()
        .find_map(&env)
        .is_some_and(|list| no_proxy::matches(&list, &server.addr));
    if let Some(flag) = flag {
        let flag = flag.trim();
        if flag.is_empty() || flag.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        // Checked even when NO_PROXY exempts the server: a typo in a flag
        // should not wait for the day it is used.
        let proxy = parse::proxy(flag, "--proxy")?;
        return Ok((!exempt).then_some(proxy));
    }
    if exempt {
        return Ok(None);
    }
    let names: [&'static str; 4] = match server.scheme {
        Scheme::Https | Scheme::Wss => ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        Scheme::Http | Scheme::Ws => ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"],
    };
    names
        .into_iter()
        .find_map(|name| env(name).map(|value| parse::proxy(&value, name)))
        .transpose()
}

/// Opens a tunnel to `target` (`host:port`) through `proxy`: TCP to the
/// proxy, CONNECT, and its answer, read up to the blank line and not a byte
/// further, so the stream is left exactly where the tunnel starts.
pub(crate) async fn connect(proxy: &Proxy, target: &str) -> std::io::Result<TcpStream> {
    let mut socket = super::tcp::connect(&proxy.addr).await.map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!(
                "could not reach the proxy {proxy} (from {}): {err}",
                proxy.source
            ),
        )
    })?;
    socket.write_all(&proxy.request(target)).await?;
    let head = tokio::time::timeout(ANSWER_TIMEOUT, answer::read_head(&mut socket, proxy))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the proxy {proxy} did not answer CONNECT {target} within {} s",
                    ANSWER_TIMEOUT.as_secs()
                ),
            )
        })??;
    answer::judge(&head, proxy, target)?;
    Ok(socket)
}

#[cfg(test)]
mod tests;
