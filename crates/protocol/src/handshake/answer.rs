//! How the dialer reads the server's answer to a link request: a 101 with
//! the server's window, or a refusal with its one-line reason (and whether
//! an uptun server said it, or a router in front).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{websocket, Refusal, DEFAULT_WINDOW, MAX_HEAD, MAX_HEADERS, MAX_WINDOW, MIN_WINDOW};

/// How the server answered a link request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    /// 101: frames follow; the server's receive window per stream.
    Accepted { window: u32 },
    /// Anything else, with the server's one-line reason.
    Refused(Refusal),
}

/// Reads the server's answer to a link request. Bytes past the head (frames
/// the server sent at once) are left in `buf` for the link to consume.
pub async fn read_answer<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<LinkAnswer> {
    read_answer_expecting(io, buf, None).await
}

/// `read_answer`, where a 101 must also carry `Sec-WebSocket-Accept:
/// accept` when one is given (the WebSocket form).
pub(super) async fn read_answer_expecting<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    accept: Option<&str>,
) -> std::io::Result<LinkAnswer> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf) {
            // The limit holds however the answer arrives: checked on a
            // complete head too, not only while waiting for more.
            Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
                return Err(invalid("the server's answer is larger than 16 KiB".into()))
            }
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                if status == 101
                    && accept.is_some_and(|a| header("sec-websocket-accept").as_deref() != Some(a))
                {
                    return Err(invalid(websocket::BAD_ACCEPT.into()));
                }
                let answer = if status == 101 {
                    let window = header("uptun-window")
                        .and_then(|w| w.parse().ok())
                        .filter(|w| (MIN_WINDOW..=MAX_WINDOW).contains(w))
                        .unwrap_or(DEFAULT_WINDOW);
                    LinkAnswer::Accepted { window }
                } else {
                    // The server's words: printed by the agent, so made one line.
                    let from_uptun = header("uptun-reason").is_some();
                    let reason = header("uptun-reason").map_or_else(
                        || {
                            format!(
                                "the server answered {status} {} (is it an uptun public-server?)",
                                crate::text::sanitize(resp.reason.unwrap_or(""))
                            )
                        },
                        |r| crate::text::sanitize(&r),
                    );
                    LinkAnswer::Refused(Refusal {
                        status,
                        reason,
                        from_uptun,
                    })
                };
                bytes::Buf::advance(buf, len);
                return Ok(answer);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(invalid("the server's answer is larger than 16 KiB".into()))
            }
            Err(e) => {
                return Err(invalid(format!(
                    "the server's answer is not HTTP ({e}): is this an uptun public-server?"
                )))
            }
        }
        if io.read_buf(buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection before answering",
            ));
        }
    }
}
