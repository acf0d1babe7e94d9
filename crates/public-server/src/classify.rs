//! Reads the first bytes of a connection (bounded in size and time) and
//! tells what kind of visitor it is: a link, an endpoint request, a user.
//! Which channel a user goes to is not decided here: the facts seen go to
//! `route.rs`, which may ask for more bytes. Every byte read here is handed
//! on: it is the first data of whatever the connection becomes (a TLS
//! ClientHello too: `sni.rs` only looks at it for its server name).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};
use uptun_protocol::handshake::{parse_request_head, HeadError, PeerKind, Refusal, RequestHead};

use crate::config::Config;
use crate::route::{self, Decision, Destination, Facts, HttpFacts, Routed, TlsFacts};
use crate::sni::HelloReader;

/// What a connection turned out to be.
#[derive(Debug)]
pub enum Visitor {
    /// An agent or client asking for a link.
    Link {
        kind: PeerKind,
        head: RequestHead,
        buf: BytesMut,
    },
    /// rhost's legacy agent or client (`legacy.rs`).
    Legacy { head: RequestHead, buf: BytesMut },
    /// A request for a built-in endpoint (`/_uptun/health`).
    Endpoint { head: RequestHead },
    /// Any other HTTP request, routed to a channel.
    Web { to: Destination, buf: BytesMut },
    /// Not HTTP: routed by content to a channel.
    Raw { to: Destination, buf: BytesMut },
    /// A route answers first: send `bytes`, then carry the user to `then`,
    /// or classify what it sends next with the rules from `resume` on.
    Reply {
        bytes: Bytes,
        then: Option<Destination>,
        resume: usize,
        buf: BytesMut,
    },
    /// A route closes the connection after sending `bytes`.
    Close { bytes: Bytes },
    /// Raw bytes no route matches: the connection is reset.
    Unrouted,
    /// HTTP that cannot be served; answer and close.
    Reject(Refusal),
    /// Nothing within the sniff timeout: a protocol where the server speaks
    /// first, or a slow start (`silent.rs` tells them apart). Silence is
    /// routed with the rules from `first` on.
    Silent { first: usize },
    /// Closed before sending anything.
    Gone,
}

/// Four-byte starts of HTTP/1 request methods. Four bytes decide, so a raw
/// protocol is ruled out as HTTP (and as a link) after one short read.
const HTTP_STARTS: [&[u8; 4]; 9] = [
    b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC",
];

/// Reads a connection's first bytes within the sniff timeout and decides
/// what it is; `Silent` if nothing came.
pub async fn classify<R: AsyncRead + Unpin>(
    io: &mut R,
    config: &Config,
) -> std::io::Result<Visitor> {
    classify_more(io, BytesMut::with_capacity(4096), config, 0).await
}

/// Waits for more bytes on top of `buf` (after a route's reply) and decides
/// with the rules from `first` on; silence is timed by those rules.
pub async fn classify_more<R: AsyncRead + Unpin>(
    io: &mut R,
    mut buf: BytesMut,
    config: &Config,
    first: usize,
) -> std::io::Result<Visitor> {
    let sniff = route::sniff_timeout(&config.routes, first, config.sniff_timeout);
    match timeout_at(Instant::now() + sniff, io.read_buf(&mut buf)).await {
        Err(_) => return Ok(Visitor::Silent { first }),
        Ok(Ok(0)) => return Ok(Visitor::Gone),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
    }
    decide_from(io, buf, config, first).await
}

/// Decides what a connection is from its first bytes (at least one, in
/// `buf`), reading more as needed. Used for on-time bytes and for bytes that
/// came after the silence timer, so a slow start is judged like a fast one.
pub async fn decide<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: BytesMut,
    config: &Config,
) -> std::io::Result<Visitor> {
    decide_from(io, buf, config, 0).await
}

/// `decide` with the rules from number `first` on.
pub(crate) async fn decide_from<R: AsyncRead + Unpin>(
    io: &mut R,
    mut buf: BytesMut,
    config: &Config,
    first: usize,
) -> std::io::Result<Visitor> {
    // Bytes that may still become an HTTP method, or that a route could
    // still match, wait for more (within the header deadline and 16 KiB):
    // a start split across packets is never judged on its first part.
    let deadline = Instant::now() + config.header_timeout;
    let mut hello = HelloReader::default();
    while !looks_like_http(&buf) {
        let http_ruled_out = buf.len() >= 4 || !could_be_http_start(&buf);
        let complete = buf.len() >= MAX_FIRST_BYTES;
        let decision = route_raw(&buf, hello.read(&buf), complete, config, first);
        if complete || (http_ruled_out && decision != Decision::ReadMore) {
            return Ok(raw(decision, buf, config));
        }
        match timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_) | Ok(Ok(0)) => {
                let decision = route_raw(&buf, hello.read(&buf), true, config, first);
                return Ok(raw(decision, buf, config));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
    let head = match read_head(io, &mut buf, deadline, config.header_timeout).await? {
        Ok(head) => head,
        Err(refusal) => return Ok(Visitor::Reject(refusal)),
    };
    if let Some(kind) = head.link_kind() {
        return Ok(Visitor::Link { kind, head, buf });
    }
    if uptun_protocol::legacy::is_legacy(&head) {
        return Ok(Visitor::Legacy { head, buf });
    }
    if is_endpoint(&head, &config.endpoint_prefix) {
        return Ok(Visitor::Endpoint { head });
    }
    Ok(route_http(&head, buf, config, first))
}

/// Routes a whole HTTP request that is neither a link nor an endpoint.
fn route_http(head: &RequestHead, buf: BytesMut, config: &Config, first: usize) -> Visitor {
    // Two Host headers make routing ambiguous (a router may pick one and
    // the target the other); RFC 9112 says to refuse them.
    let hosts = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"));
    if hosts.count() > 1 {
        return Visitor::Reject(Refusal::new(400, "more than one Host header"));
    }
    let facts = Facts {
        bytes: &buf,
        http: Some(HttpFacts {
            method: &head.method,
            path: &head.path,
            host: head.header("host"),
        }),
        silent: false,
        complete: true,
        tls: None,
    };
    let decision = route::decide_from(&config.routes, first, &facts);
    match resolve(decision, config) {
        Some(Routed::Channel(to)) => Visitor::Web { to, buf },
        Some(routed) => act(routed, buf),
        None => Visitor::Reject(Refusal::new(404, "no route matches this request")),
    }
}

/// The first bytes the server reads before it must route on them.
const MAX_FIRST_BYTES: usize = 16 * 1024;

fn route_raw(
    bytes: &[u8],
    tls: Option<TlsFacts>,
    complete: bool,
    config: &Config,
    first: usize,
) -> Decision {
    let facts = Facts {
        bytes,
        complete,
        tls,
        ..Facts::default()
    };
    route::decide_from(&config.routes, first, &facts)
}

fn raw(decision: Decision, buf: BytesMut, config: &Config) -> Visitor {
    match resolve(decision, config) {
        Some(Routed::Channel(to)) => Visitor::Raw { to, buf },
        Some(routed) => act(routed, buf),
        None => Visitor::Unrouted,
    }
}

/// The visitor for a reply or a close (a channel is a web or raw user).
fn act(routed: Routed, buf: BytesMut) -> Visitor {
    match routed {
        Routed::Reply {
            bytes,
            then,
            resume,
        } => Visitor::Reply {
            bytes,
            then,
            resume,
            buf,
        },
        Routed::Close(bytes) => Visitor::Close { bytes },
        Routed::Channel(to) => Visitor::Raw { to, buf },
    }
}

/// What a decision asks for, with the server's timeouts filled in where the
/// rule set none; `None` when nothing routes (`ReadMore` only comes back
/// for bytes that may grow, and the callers pass those only when complete).
fn resolve(decision: Decision, config: &Config) -> Option<Routed> {
    let fill = |mut to: Destination| {
        to.connect_timeout.get_or_insert(config.connect_timeout);
        if to.idle_timeout.is_none() {
            to.idle_timeout = config.idle_timeout(&to.channel);
        }
        to
    };
    match decision {
        Decision::Act(Routed::Channel(to)) => Some(Routed::Channel(fill(to))),
        Decision::Act(Routed::Reply {
            bytes,
            then,
            resume,
        }) => Some(Routed::Reply {
            bytes,
            then: then.map(fill),
            resume,
        }),
        Decision::Act(close) => Some(close),
        Decision::ReadMore | Decision::NoRoute => None,
    }
}

/// What to do with a connection silent past the sniff timeout, routed with
/// the rules from `first` on; `None` if no route takes silence.
pub(crate) fn route_silent(config: &Config, first: usize) -> Option<Routed> {
    let facts = Facts {
        silent: true,
        complete: true,
        ..Facts::default()
    };
    resolve(route::decide_from(&config.routes, first, &facts), config)
}

/// Reads until a whole request head is in `buf` (at most 16 KiB, within the
/// header deadline), or says which refusal to answer with.
async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    // The deadline `decide` set before waiting for the fourth byte: one
    // deadline for the whole head, or a slow start gets two.
    deadline: Instant,
    header_timeout: Duration,
) -> std::io::Result<Result<RequestHead, Refusal>> {
    loop {
        match parse_request_head(buf) {
            Ok(Some(head)) => return Ok(Ok(head)),
            Ok(None) => {}
            Err(HeadError::TooLarge) => {
                return Ok(Err(Refusal::new(431, "request header larger than 16 KiB")))
            }
            Err(HeadError::Malformed(why)) => {
                return Ok(Err(Refusal::new(
                    400,
                    format!("malformed HTTP request: {why}"),
                )))
            }
        }
        match timeout_at(deadline, io.read_buf(buf)).await {
            Err(_) => {
                return Ok(Err(Refusal::new(
                    408,
                    format!(
                        "request header not complete within {} s",
                        header_timeout.as_secs()
                    ),
                )))
            }
            Ok(Ok(0)) => {
                return Ok(Err(Refusal::new(
                    400,
                    "connection closed inside the request header",
                )))
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Whether `start` (under four bytes) could still become an HTTP method.
pub(crate) fn could_be_http_start(start: &[u8]) -> bool {
    HTTP_STARTS.iter().any(|m| m.starts_with(start))
}

/// Whether the first bytes of a connection begin like an HTTP request (a
/// link handshake among them).
pub fn looks_like_http(start: &[u8]) -> bool {
    HTTP_STARTS.iter().any(|m| start.starts_with(&m[..]))
}

fn is_endpoint(head: &RequestHead, prefix: &str) -> bool {
    if head.method != "GET" && head.method != "HEAD" {
        return false;
    }
    let path = head.path.split('?').next().unwrap_or_default();
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
