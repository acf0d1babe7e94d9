//! The WebSocket form of the link handshake, for routers and CDNs that pass
//! no upgrade but WebSocket: the same request as the `Upgrade: tcp` form,
//! sent as a `GET` with the headers of RFC 6455 section 4.1, and a 101 that
//! proves the server read them (`Sec-WebSocket-Accept`, section 4.2.2).
//! After it, link frames travel in binary messages (`crate::WsIo`).

use bytes::BytesMut;
use tokio::io::AsyncRead;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

use super::answer::read_answer_expecting;
use super::{accept_with, LinkAnswer, LinkRequest, Refusal, RequestHead};

/// The one WebSocket version there is (RFC 6455 section 4.1).
pub const VERSION: &str = "13";

/// Why a 101 without the right `Sec-WebSocket-Accept` is refused.
pub(super) const BAD_ACCEPT: &str = "the 101 answer to the WebSocket link request lacks the \
    matching Sec-WebSocket-Accept: something in between answered instead of the server";

impl RequestHead {
    /// Whether the request asks for the WebSocket form (`Upgrade:
    /// websocket` and not `tcp`).
    pub fn is_websocket(&self) -> bool {
        self.has_token("upgrade", "websocket") && !self.has_token("upgrade", "tcp")
    }
}

impl LinkRequest {
    /// The request head the dialer sends for a WebSocket link; `key` comes
    /// from [`new_key`] and is kept to check the answer.
    pub fn to_websocket_http(&self, key: &str) -> String {
        self.head(
            "GET",
            &format!("Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {VERSION}\r\n"),
        )
    }
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
pub fn new_key() -> String {
    generate_key()
}

/// The `Sec-WebSocket-Accept` that answers `key`.
pub fn accept_key(key: &str) -> String {
    derive_accept_key(key.trim().as_bytes())
}

/// Checks the WebSocket headers of a link request (one that
/// [`RequestHead::is_websocket`]); returns the `Sec-WebSocket-Accept` to
/// answer with.
pub fn check_request(head: &RequestHead) -> Result<String, Refusal> {
    if head.method != "GET" {
        return Err(Refusal::new(400, "a WebSocket link request must be a GET"));
    }
    match head.header("sec-websocket-version").map(str::trim) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(Refusal::new(
                426,
                format!("Sec-WebSocket-Version {other:?} is not supported: send {VERSION}"),
            ))
        }
        None => {
            return Err(Refusal::new(
                426,
                format!("missing Sec-WebSocket-Version header: send {VERSION}"),
            ))
        }
    }
    let key = head.header("sec-websocket-key").unwrap_or_default().trim();
    // 16 bytes in base64 are 24 characters; anything else was not made by
    // a WebSocket client (RFC 6455 section 4.2.1, item 5).
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if key.len() != 24 || !key.chars().all(base64) {
        return Err(Refusal::new(
            400,
            "a WebSocket link request needs a Sec-WebSocket-Key of 16 bytes in base64",
        ));
    }
    Ok(accept_key(key))
}

/// The server's yes to a WebSocket link request; `accept` is what
/// [`check_request`] returned.
pub fn accept_response(window: u32, accept: &str) -> String {
    accept_with(
        &format!("Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n"),
        window,
    )
}

/// Reads the answer to a WebSocket link request sent with `key`: like
/// [`super::read_answer`], and a 101 must carry the matching
/// `Sec-WebSocket-Accept` (or the read fails as `InvalidData`). Bytes past
/// the head are the server's first WebSocket frames, left in `buf`.
pub async fn read_answer<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    key: &str,
) -> std::io::Result<LinkAnswer> {
    read_answer_expecting(io, buf, Some(&accept_key(key))).await
}

#[cfg(test)]
mod tests {
    use super::super::{parse_request_head, PeerKind, DEFAULT_WINDOW};
    use super::*;
    use crate::{Secret, PROTOCOL_VERSION};

    fn request() -> LinkRequest {
        LinkRequest {
            kind: PeerKind::Agent,
            host: "tunnel.example.com".into(),
            token: Some(Secret::new("s3cret")),
            version: PROTOCOL_VERSION,
            channels: vec!["web".into()],
            window: DEFAULT_WINDOW,
            name: None,
        }
    }

    #[test]
    fn the_websocket_request_round_trips_and_is_answered() {
        let key = new_key();
        let wire = request().to_websocket_http(&key);
        assert!(wire.starts_with("GET /_uptun/link HTTP/1.1\r\n"), "{wire}");
        let head = parse_request_head(wire.as_bytes()).unwrap().unwrap();
        assert!(head.is_websocket());
        assert_eq!(head.link_kind(), Some(PeerKind::Agent));
        assert_eq!(
            LinkRequest::from_head(&head, PeerKind::Agent).unwrap(),
            request()
        );
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(check_request(&head).unwrap(), accept_key(&key));
    }

    #[test]
    fn a_browser_websocket_is_not_a_link_and_bad_link_requests_say_why() {
        let browser = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nUser-Agent: Mozilla/5.0\r\n\r\n";
        let head = parse_request_head(browser.as_bytes()).unwrap().unwrap();
        assert_eq!(head.link_kind(), None);

        let key = new_key();
        let good = request().to_websocket_http(&key);
        let refused = |wire: String| {
            let head = parse_request_head(wire.as_bytes()).unwrap().unwrap();
            LinkRequest::from_head(&head, PeerKind::Agent).unwrap_err()
        };
        let r = refused(good.replace(&key, "short"));
        assert!(
            r.status == 400 && r.reason.contains("Sec-WebSocket-Key"),
            "{r:?}"
        );
        let r = refused(good.replace("Version: 13", "Version: 8"));
        assert!(r.status == 426 && r.reason.contains("13"), "{r:?}");
        // A HEAD with Upgrade: websocket is no WebSocket request at all.
        let head_form = good.replacen("GET", "HEAD", 1);
        let head = parse_request_head(head_form.as_bytes()).unwrap().unwrap();
        assert_eq!(head.link_kind(), None);
    }

    #[tokio::test]
    async fn an_answer_without_the_matching_accept_is_refused() {
        let key = new_key();
        let good = accept_response(65536, &accept_key(&key));
        let mut buf = BytesMut::new();
        let answer = read_answer(&mut good.as_bytes(), &mut buf, &key).await;
        assert_eq!(answer.unwrap(), LinkAnswer::Accepted { window: 65536 });
        for wrong in [
            accept_response(65536, &accept_key(&new_key())),
            super::super::accept_response(65536),
        ] {
            let mut buf = BytesMut::new();
            let err = read_answer(&mut wrong.as_bytes(), &mut buf, &key)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("Sec-WebSocket-Accept"), "{err}");
        }
        // A refusal is still a refusal, with the server's reason.
        let refusal = Refusal::new(401, "wrong token").to_http();
        let mut buf = BytesMut::new();
        let answer = read_answer(&mut refusal.as_bytes(), &mut buf, &key).await;
        assert_eq!(
            answer.unwrap(),
            LinkAnswer::Refused(Refusal::new(401, "wrong token"))
        );
    }
}
