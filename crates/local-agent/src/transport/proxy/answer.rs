//! The proxy's answer to CONNECT: read without taking a byte of the tunnel,
//! and judged: 2xx opens the tunnel, anything else becomes one line saying
//! what to fix.

use std::io::{Error, ErrorKind};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::Proxy;

/// The most an answer head may take: proxies send a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

/// A proxy said no to CONNECT. `401`, `403` and `407` are mistakes a person
/// must fix (credentials, a port the proxy forbids): retrying cannot help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProxyRefused {
    pub status: u16,
    message: String,
}

impl ProxyRefused {
    /// Whether retrying is pointless: the proxy wants credentials it was
    /// not given (or refused those it was), or forbids the destination.
    pub fn is_fatal(&self) -> bool {
        matches!(self.status, 401 | 403 | 407)
    }
}

/// Reads the answer head, up to and including its blank line, and nothing
/// after it: the tunnel's first bytes (none are due before we speak, but a
/// stream is handed on exactly at its start) stay in the socket. `peek`
/// shows what has arrived; only the part before the head's end is consumed.
pub(super) async fn read_head(socket: &mut TcpStream, proxy: &Proxy) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut window = vec![0u8; 2048];
    loop {
        let room = (MAX_HEAD - head.len()).min(window.len());
        if room == 0 {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!(
                    "the proxy {proxy} sent an answer head over {} KiB to CONNECT",
                    MAX_HEAD / 1024
                ),
            ));
        }
        let seen = socket.peek(&mut window[..room]).await?;
        if seen == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                format!("the proxy {proxy} closed the connection without answering CONNECT"),
            ));
        }
        let before = head.len();
        head.extend_from_slice(&window[..seen]);
        let end = head_end(&head, before);
        let consume = match end {
            Some(end) => {
                head.truncate(end);
                end - before
            }
            None => seen,
        };
        socket.read_exact(&mut window[..consume]).await?;
        if end.is_some() {
            return Ok(head);
        }
    }
}

/// Where the head in `head` ends (just past its blank line), if it does;
/// the first `searched` bytes were searched before, and the blank line may
/// straddle them and the new ones.
pub(super) fn head_end(head: &[u8], searched: usize) -> Option<usize> {
    let from = searched.saturating_sub(3);
    head[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// `Ok` for a 2xx answer (the tunnel is open); otherwise the error to show:
/// a [`ProxyRefused`] inside an `io::Error` for a refusal, `InvalidData`
/// for an answer that is not HTTP.
pub(super) fn judge(head: &[u8], proxy: &Proxy, target: &str) -> std::io::Result<()> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut answer = httparse::Response::new(&mut headers);
    let parsed = answer.parse(head);
    let (Ok(httparse::Status::Complete(_)), Some(status)) = (parsed, answer.code) else {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("the proxy {proxy} did not answer CONNECT in HTTP: is it an HTTP proxy?"),
        ));
    };
    if (200..300).contains(&status) {
        return Ok(());
    }
    let said = format!("{status} {}", sanitize(answer.reason.unwrap_or_default()));
    let message = match status {
        // 407 is the proxy's status for credentials; tinyproxy answers
        // wrong ones with 401, which to CONNECT can mean nothing else.
        401 | 407 => wants_credentials(proxy, &said, answer.headers),
        403 => forbidden(proxy, &said, target),
        _ => format!("the proxy {proxy} answered {said} to CONNECT {target}"),
    };
    Err(Error::other(ProxyRefused { status, message }))
}

/// The line for a 407 (or 401): no credentials given, the wrong ones, or a scheme
/// (NTLM, Negotiate) that Basic cannot satisfy.
fn wants_credentials(proxy: &Proxy, said: &str, headers: &[httparse::Header]) -> String {
    let schemes: Vec<String> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("proxy-authenticate"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .filter_map(|v| v.split_whitespace().next())
        .map(sanitize)
        .collect();
    if !schemes.is_empty() && !schemes.iter().any(|s| s.eq_ignore_ascii_case("basic")) {
        return format!(
            "the proxy {proxy} wants {} authentication ({said}), and local-agent speaks only \
             Basic: run a local helper that speaks it (cntlm, px) and point --proxy at the helper",
            schemes.join(", ")
        );
    }
    let example = format!("http://USER:PASS@{}", proxy.addr);
    let fix = match proxy.source {
        "--proxy" => format!("--proxy {example} (or UPTUN_PROXY)"),
        var => format!("{var}={example} (or --proxy)"),
    };
    match proxy.credentials {
        None => format!("the proxy {proxy} wants credentials ({said}): give them in {fix}"),
        Some(_) => format!(
            "the proxy {proxy} refused the credentials given in {} ({said}): check the user \
             name and password (write : @ / % in them as %3A %40 %2F %25)",
            proxy.source
        ),
    }
}

/// The line for a 403: the proxy will not tunnel to this destination.
fn forbidden(proxy: &Proxy, said: &str, target: &str) -> String {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    match target.ends_with(":443") {
        false => format!(
            "the proxy {proxy} forbids CONNECT to {target} ({said}): many proxies allow \
             CONNECT only to port 443, so serve the public server on port 443, or ask for \
             {target} to be allowed"
        ),
        true => format!(
            "the proxy {proxy} forbids CONNECT to {target} ({said}): ask for it to be allowed, \
             or reach the server directly with NO_PROXY={host}"
        ),
    }
}

/// A reason phrase or scheme name fit for one log line: printable ASCII,
/// at most 64 characters.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(64)
        .collect::<String>()
        .trim()
        .to_string()
}
