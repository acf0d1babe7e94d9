//! Reads the first bytes of a connection (bounded in size and time) and
//! tells what kind of visitor it is: a link, an endpoint request, a user.
//! Which channel a user goes to is not decided here: the facts seen go to
//! `route.rs`, which may ask for more bytes. Every byte read here is handed
//! on: it is the first data of whatever the connection becomes (a TLS
//! ClientHello too: `sni.rs` only looks at it for its server name).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};
use uptun_protocol::handshake::{parse_request_head, HeadError, PeerKind, Refusal, RequestHead};

use crate::config::Config;
use crate::route::{self, Action, Decision, Facts, HttpFacts, TlsFacts};
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
    /// A request for a built-in endpoint (`/_uptun/health`).
    Endpoint { head: RequestHead },
    /// Any other HTTP request, routed to a channel.
    Web { channel: String, buf: BytesMut },
    /// Not HTTP: routed by content to a channel.
    Raw { channel: String, buf: BytesMut },
    /// Raw bytes no route matches: the connection is reset.
    Unrouted,
    /// HTTP that cannot be served; answer and close.
    Reject(Refusal),
    /// Nothing within the sniff timeout: a protocol where the server speaks
    /// first, or a slow start (`silent.rs` tells them apart).
    Silent,
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
    let mut buf = BytesMut::with_capacity(4096);
    match timeout_at(Instant::now() + config.sniff_timeout, io.read_buf(&mut buf)).await {
        Err(_) => return Ok(Visitor::Silent),
        Ok(Ok(0)) => return Ok(Visitor::Gone),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
    }
    decide(io, buf, config).await
}

/// Decides what a connection is from its first bytes (at least one, in
/// `buf`), reading more as needed. Used for on-time bytes and for bytes that
/// came after the silence timer, so a slow start is judged like a fast one.
pub async fn decide<R: AsyncRead + Unpin>(
    io: &mut R,
    mut buf: BytesMut,
    config: &Config,
) -> std::io::Result<Visitor> {
    // Bytes that may still become an HTTP method, or that a route could
    // still match, wait for more (within the header deadline and 16 KiB):
    // a start split across packets is never judged on its first part.
    let deadline = Instant::now() + config.header_timeout;
    let mut hello = HelloReader::default();
    while !looks_like_http(&buf) {
        let http_ruled_out = buf.len() >= 4 || !could_be_http_start(&buf);
        let complete = buf.len() >= MAX_FIRST_BYTES;
        let decision = route_raw(&buf, hello.read(&buf), complete, config);
        if complete || (http_ruled_out && decision != Decision::ReadMore) {
            return Ok(raw(decision, buf));
        }
        match timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_) | Ok(Ok(0)) => {
                let decision = route_raw(&buf, hello.read(&buf), true, config);
                return Ok(raw(decision, buf));
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
    if is_endpoint(&head, &config.endpoint_prefix) {
        return Ok(Visitor::Endpoint { head });
    }
    let facts = Facts {
        bytes: &buf,
        http: Some(HttpFacts {
            path: &head.path,
            host: head.header("host"),
        }),
        silent: false,
        complete: true,
        tls: None,
    };
    Ok(match route::decide(&config.routes, &facts) {
        Decision::Act(Action::Channel(channel)) => Visitor::Web { channel, buf },
        Decision::ReadMore | Decision::NoRoute => {
            Visitor::Reject(Refusal::new(404, "no route matches this request"))
        }
    })
}

/// The first bytes the server reads before it must route on them.
const MAX_FIRST_BYTES: usize = 16 * 1024;

fn route_raw(bytes: &[u8], tls: Option<TlsFacts>, complete: bool, config: &Config) -> Decision {
    let facts = Facts {
        bytes,
        complete,
        tls,
        ..Facts::default()
    };
    route::decide(&config.routes, &facts)
}

fn raw(decision: Decision, buf: BytesMut) -> Visitor {
    match decision {
        Decision::Act(Action::Channel(channel)) => Visitor::Raw { channel, buf },
        // `ReadMore` only comes back for incomplete bytes; these are complete.
        Decision::ReadMore | Decision::NoRoute => Visitor::Unrouted,
    }
}

/// The channel a silent connection is routed to, if a route takes silence.
pub(crate) fn route_silent(config: &Config) -> Option<String> {
    let facts = Facts {
        silent: true,
        complete: true,
        ..Facts::default()
    };
    match route::decide(&config.routes, &facts) {
        Decision::Act(Action::Channel(channel)) => Some(channel),
        Decision::ReadMore | Decision::NoRoute => None,
    }
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
mod tests {
    use super::*;

    async fn run(input: &'static [u8]) -> Visitor {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            tokio::io::AsyncWriteExt::write_all(&mut client, input)
                .await
                .unwrap();
            // Keep the write side open so silence, not EOF, ends short inputs.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let mut config = Config::new("t");
        config.sniff_timeout = Duration::from_millis(50);
        config.header_timeout = Duration::from_millis(200);
        classify(&mut server, &config).await.unwrap()
    }

    #[tokio::test]
    async fn ssh_banner_goes_to_ssh() {
        match run(b"SSH-2.0-OpenSSH_9.2\r\n").await {
            Visitor::Raw { channel, buf } => {
                assert_eq!(channel, "ssh");
                assert!(buf.starts_with(b"SSH-2.0"));
            }
            v => panic!("{v:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_and_silence_go_to_tcp_with_their_bytes() {
        match run(b"\x16\x03\x01\x02\x00garbage").await {
            Visitor::Raw { channel, buf } => assert_eq!(
                (channel.as_str(), &buf[..4]),
                ("tcp", &b"\x16\x03\x01\x02"[..])
            ),
            v => panic!("{v:?}"),
        }
        assert!(matches!(run(b"").await, Visitor::Silent));
        // Under four bytes that cannot become a method or a banner: decided.
        match run(b"\x00").await {
            Visitor::Raw { channel, buf } => {
                assert_eq!((channel.as_str(), &buf[..]), ("tcp", &b"\x00"[..]))
            }
            v => panic!("{v:?}"),
        }
    }

    #[tokio::test]
    async fn http_kinds() {
        let web = b"HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\nrest";
        match run(web).await {
            Visitor::Web { buf, .. } => assert_eq!(&buf[..], &web[..]),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            run(b"GET /_uptun/health HTTP/1.1\r\n\r\n").await,
            Visitor::Endpoint { .. }
        ));
        let link =
            b"HEAD /_uptun/link HTTP/1.1\r\nupgrade: tcp\r\nuser-agent: uptun-agent/0.1\r\n\r\n";
        assert!(matches!(
            run(link).await,
            Visitor::Link {
                kind: PeerKind::Agent,
                ..
            }
        ));
        assert!(matches!(
            run(b"GET / HTTP/1.1\r\nHost: slow").await,
            Visitor::Reject(Refusal { status: 408, .. })
        ));
        assert!(matches!(
            run(b"GET \x01\x02 HTTP/1.1\r\n\r\n").await,
            Visitor::Reject(Refusal { status: 400, .. })
        ));
    }

    /// Found by `fuzz/` (classify target): the header deadline started
    /// again once the fourth byte came, so a start trickled over almost the
    /// whole deadline bought a second one for the rest of the head.
    #[tokio::test(start_paused = true)]
    async fn one_header_deadline_covers_the_start_and_the_head() {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            client.write_all(b"GE").await.unwrap();
            tokio::time::sleep(Duration::from_secs(9)).await;
            client
                .write_all(b"T / HTTP/1.1\r\nHost: slow")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let config = Config::new("t");
        let start = Instant::now();
        let visitor = classify(&mut server, &config).await.unwrap();
        assert!(
            matches!(visitor, Visitor::Reject(Refusal { status: 408, .. })),
            "{visitor:?}"
        );
        assert!(
            start.elapsed() <= config.header_timeout,
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_split_start_waits_for_its_fourth_byte() {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            client.write_all(b"HE").await.unwrap();
            // Far past the sniff timeout: the start alone must not decide.
            tokio::time::sleep(Duration::from_secs(2)).await;
            client
                .write_all(b"AD / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let config = Config::new("t");
        match classify(&mut server, &config).await.unwrap() {
            Visitor::Web { buf, .. } => assert!(buf.starts_with(b"HEAD / HTTP/1.1")),
            v => panic!("{v:?}"),
        }
    }
}
