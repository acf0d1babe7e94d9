//! The HTTP/1.1 upgrade that turns a connection into a link: the request an
//! agent or client sends, how the server reads it, and the two answers (101,
//! or a status with a one-line reason).
//!
//! Header names and values are compared case-insensitively and in any order,
//! because routers in front of the server rewrite them (nginx sends
//! `Connection: upgrade` and reorders headers).

use crate::{Secret, PROTOCOL_VERSION};

mod answer;
pub mod websocket;

pub use answer::{read_answer, LinkAnswer};

/// The longest request or response head we read. Longer is a 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// The path links ask for. The server does not require it (routers may
/// rewrite paths); it is there so logs in between read sensibly.
pub const LINK_PATH: &str = "/_uptun/link";
/// Receive window announced when none is configured.
pub const DEFAULT_WINDOW: u32 = 256 * 1024;
/// Bounds on an announced window.
pub const MIN_WINDOW: u32 = 16 * 1024;
pub const MAX_WINDOW: u32 = 64 * 1024 * 1024;

const MAX_HEADERS: usize = 64;

/// Which kind of peer asked for a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// Serves channels (`User-Agent: uptun-agent/…`).
    Agent,
    /// Opens streams to channels (`User-Agent: uptun-client/…`).
    Client,
}

impl PeerKind {
    pub fn user_agent_prefix(self) -> &'static str {
        match self {
            PeerKind::Agent => "uptun-agent/",
            PeerKind::Client => "uptun-client/",
        }
    }
}

/// A parsed HTTP request head. Its `Debug` hides `Authorization` values.
#[derive(Clone)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Bytes the head took, including the blank line.
    pub len: usize,
}

/// Why a request head could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    Malformed(String),
}

impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                // rhost's legacy peers put their key and token in the
                // User-Agent (legacy/head.rs).
                let secret = n.eq_ignore_ascii_case("authorization")
                    || (n.eq_ignore_ascii_case("user-agent") && crate::legacy::hides_secrets(v));
                (n.as_str(), if secret { "***" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("len", &self.len)
            .finish()
    }
}

impl RequestHead {
    /// The token of an `Authorization: Bearer TOKEN` header, if any.
    pub fn bearer_token(&self) -> Option<&str> {
        let (scheme, rest) = self.header("authorization")?.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }

    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any header of this name lists `token` among its
    /// comma-separated values (`Connection: keep-alive, Upgrade`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// If this request asks to become a link, from which kind of peer.
    /// An ordinary `HEAD` (as `curl -I` sends) is not a link: it lacks the
    /// upgrade and the uptun User-Agent; nor is a browser's WebSocket,
    /// which lacks the User-Agent.
    pub fn link_kind(&self) -> Option<PeerKind> {
        // The WebSocket form is a GET (RFC 6455 section 4.1); a HEAD is
        // only ever the tcp form.
        let upgrade = match self.method.as_str() {
            "HEAD" => self.has_token("upgrade", "tcp"),
            "GET" => self.has_token("upgrade", "tcp") || self.is_websocket(),
            _ => false,
        };
        if !upgrade {
            return None;
        }
        let ua = self.header("user-agent")?.trim().to_ascii_lowercase();
        [PeerKind::Agent, PeerKind::Client]
            .into_iter()
            .find(|k| ua.starts_with(k.user_agent_prefix()))
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: need more bytes.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => Ok(Some(RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            path: req.path.unwrap_or_default().to_string(),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            len,
        })),
        Ok(httparse::Status::Complete(_)) => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// What an agent or client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequest {
    pub kind: PeerKind,
    /// `Host` to send; routers in front of the server need it.
    pub host: String,
    pub token: Option<Secret>,
    pub version: u32,
    /// Channels an agent serves (empty for clients).
    pub channels: Vec<String>,
    /// The sender's receive window per stream.
    pub window: u32,
    /// Free-form name for logs (`--name`, defaults to the hostname).
    pub name: Option<String>,
}

/// A refusal: an HTTP status and a one-line reason for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
    /// Whether an uptun server said it (its answer carries `Uptun-Reason`).
    /// A router in front that will not pass the upgrade answers without:
    /// the dialer may then try the WebSocket form.
    pub from_uptun: bool,
}

impl Refusal {
    /// The server's own refusal.
    pub fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
            from_uptun: true,
        }
    }

    /// The whole HTTP response. The reason is also in `Uptun-Reason`, because
    /// a response to `HEAD` may lose its body on the way through a router.
    pub fn to_http(&self) -> String {
        let body = format!("{}\n", self.reason);
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nUptun-Reason: {}\r\nConnection: close\r\n\r\n{}",
            self.status,
            status_text(self.status),
            body.len(),
            self.reason.replace(['\r', '\n'], " "),
            body
        )
    }
}

/// The standard reason phrase for the statuses uptun sends.
pub fn status_text(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

impl LinkRequest {
    /// The request head the dialer sends for an `Upgrade: tcp` link.
    pub fn to_http(&self) -> String {
        self.head("HEAD", "Upgrade: tcp\r\n")
    }

    /// The head with this method and these upgrade header lines; the rest
    /// is the same for every form of link.
    fn head(&self, method: &str, upgrade: &str) -> String {
        let mut out = format!(
            "{method} {LINK_PATH} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n{upgrade}User-Agent: {}{}\r\nUptun-Version: {}\r\nUptun-Window: {}\r\n",
            self.host,
            self.kind.user_agent_prefix(),
            env!("CARGO_PKG_VERSION"),
            self.version,
            self.window
        );
        if let Some(token) = &self.token {
            out.push_str(&format!("Authorization: Bearer {}\r\n", token.expose()));
        }
        if !self.channels.is_empty() {
            out.push_str(&format!("Uptun-Channels: {}\r\n", self.channels.join(", ")));
        }
        if let Some(name) = &self.name {
            out.push_str(&format!("Uptun-Name: {name}\r\n"));
        }
        out.push_str("\r\n");
        out
    }

    /// Reads a link request out of a head that [`RequestHead::link_kind`]
    /// recognised. Checks everything but the token, which is the server's.
    pub fn from_head(head: &RequestHead, kind: PeerKind) -> Result<LinkRequest, Refusal> {
        if head.is_websocket() {
            websocket::check_request(head)?;
        }
        let version = match head.header("uptun-version") {
            None => return Err(Refusal::new(400, "missing Uptun-Version header")),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| Refusal::new(400, format!("Uptun-Version {v:?} is not a number")))?,
        };
        if version != PROTOCOL_VERSION {
            return Err(Refusal::new(
                426,
                format!("protocol version {version} is not supported; this server speaks version {PROTOCOL_VERSION}: upgrade the older side"),
            ));
        }
        let window = match head.header("uptun-window") {
            None => DEFAULT_WINDOW,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(w) if (MIN_WINDOW..=MAX_WINDOW).contains(&w) => w,
                _ => {
                    return Err(Refusal::new(
                        400,
                        format!(
                            "Uptun-Window {v:?} must be a number from {MIN_WINDOW} to {MAX_WINDOW}"
                        ),
                    ))
                }
            },
        };
        let token = head.bearer_token().map(Secret::from);
        let channels: Vec<String> = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("uptun-channels"))
            .flat_map(|(_, v)| v.split(','))
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(bad) = channels.iter().find(|c| !crate::valid_channel_name(c)) {
            return Err(Refusal::new(
                400,
                format!("channel name {bad:?} is invalid: use letters, digits, '-', '_' or '.' (at most 64)"),
            ));
        }
        if kind == PeerKind::Agent && channels.is_empty() {
            return Err(Refusal::new(
                400,
                "an agent must serve at least one channel (Uptun-Channels)",
            ));
        }
        Ok(LinkRequest {
            kind,
            host: head.header("host").unwrap_or_default().to_string(),
            token,
            version,
            channels,
            window,
            // Made safe for logs, then cut to 64 characters and trimmed, in
            // that order, so the name is canonical: written out again by the
            // dialer, it reads back the same (the handshake fuzz target checks).
            name: head.header("uptun-name").map(|n| {
                let name: String = crate::text::sanitize(n).chars().take(64).collect();
                name.trim_end().to_string()
            }),
        })
    }
}

/// The server's yes: from here on both sides speak frames.
pub fn accept_response(window: u32) -> String {
    accept_with("Upgrade: tcp\r\n", window)
}

/// A 101 with these upgrade header lines.
fn accept_with(upgrade: &str, window: u32) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n{upgrade}Uptun-Version: {PROTOCOL_VERSION}\r\nUptun-Window: {window}\r\n\r\n"
    )
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
