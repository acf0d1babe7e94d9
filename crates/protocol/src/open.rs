//! The OPEN payload (§4.4): the channel, the user's address, and optional
//! `key=value` items after a NUL byte. The one item defined is `term`, the
//! client's terminal type, which a server passes on to the agent so a
//! terminal target can set `TERM` to what the user's terminal is.

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::frame::{valid_channel_name, FrameType};

/// The longest `term` item an OPEN may carry; terminfo names are short
/// (`xterm-256color`, `screen.xterm-256color`).
pub const MAX_TERM_LEN: usize = 64;

/// What an OPEN frame says besides its stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPayload {
    pub channel: String,
    /// The user's address, as the opener reported it (sanitized: one line
    /// of plain text).
    pub peer: String,
    /// The client's terminal type, when it sent a valid one.
    pub term: Option<String>,
}

/// Separates the address from the items, and the items from each other. A
/// NUL is no part of any address, and old peers read it as part of the
/// address text, which they sanitize: the items cost them nothing.
const SEPARATOR: u8 = 0;

/// True for a terminal type fit to become a process's `TERM`: 1 to 64
/// bytes of ASCII letters, digits, `-`, `_`, `.` and `+`. Nothing that a
/// shell, a log line or a terminal could read as more than a name.
pub fn valid_term(term: &str) -> bool {
    !term.is_empty()
        && term.len() <= MAX_TERM_LEN
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
}

/// OPEN payload: channel length (u8), channel name, the user's address,
/// and, with a `term`, a NUL and `term=<term>`. A `term` that is not
/// [`valid_term`] is left out, since the receiver would drop it anyway.
pub fn encode_open(channel: &str, peer: &str, term: Option<&str>) -> Bytes {
    let term = term.filter(|t| valid_term(t));
    let items = term.map_or(0, |t| 6 + t.len());
    let mut out = Vec::with_capacity(1 + channel.len() + peer.len() + items);
    out.push(channel.len() as u8);
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(peer.as_bytes());
    if let Some(term) = term {
        out.push(SEPARATOR);
        out.extend_from_slice(b"term=");
        out.extend_from_slice(term.as_bytes());
    }
    Bytes::from(out)
}

/// Splits an OPEN payload. A malformed channel is an error (the stream is
/// refused); items the receiver does not know, or cannot read, are ignored,
/// so later versions may add some; a `term` that is not [`valid_term`] is
/// dropped, with a debug line, and the stream goes on without it.
pub fn decode_open(payload: &[u8]) -> Result<OpenPayload, ProtocolError> {
    let bad = |reason| ProtocolError::malformed(FrameType::Open, reason);
    let (&len, rest) = payload.split_first().ok_or(bad("empty payload"))?;
    let len = len as usize;
    if rest.len() < len {
        return Err(bad("channel name runs past the payload"));
    }
    let channel = std::str::from_utf8(&rest[..len]).map_err(|_| bad("channel is not UTF-8"))?;
    if !valid_channel_name(channel) {
        return Err(bad("invalid channel name"));
    }
    let rest = &rest[len..];
    let (peer, items) = match rest.iter().position(|&b| b == SEPARATOR) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    // The address is the peer's word, and it is logged.
    let peer = crate::text::sanitize(&String::from_utf8_lossy(peer));
    Ok(OpenPayload {
        channel: channel.to_string(),
        peer,
        term: term_item(items),
    })
}

/// The first `term=` item among NUL-separated `items`, if it is valid.
fn term_item(items: &[u8]) -> Option<String> {
    let value = items
        .split(|&b| b == SEPARATOR)
        .find_map(|item| item.strip_prefix(b"term="))?;
    match std::str::from_utf8(value) {
        Ok(term) if valid_term(term) => Some(term.to_string()),
        _ => {
            // Only the length is logged: the value is whatever the peer
            // chose, and a log line is no place for it.
            tracing::debug!(
                len = value.len(),
                "OPEN carried a term that is not a terminal type (1-64 of A-Z a-z 0-9 - _ . +); ignored"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(channel: &str, peer: &str, term: Option<&str>) -> OpenPayload {
        OpenPayload {
            channel: channel.into(),
            peer: peer.into(),
            term: term.map(Into::into),
        }
    }

    #[test]
    fn round_trips_with_and_without_a_term() {
        let p = encode_open("ssh", "203.0.113.9:5555", None);
        assert_eq!(&p[..], b"\x03ssh203.0.113.9:5555");
        assert_eq!(
            decode_open(&p).unwrap(),
            open("ssh", "203.0.113.9:5555", None)
        );
        let p = encode_open("console", "stdio", Some("xterm-256color"));
        assert_eq!(&p[..], b"\x07consolestdio\0term=xterm-256color");
        assert_eq!(
            decode_open(&p).unwrap(),
            open("console", "stdio", Some("xterm-256color"))
        );
        // An empty address still leaves room for the items.
        let p = encode_open("console", "", Some("vt100"));
        assert_eq!(decode_open(&p).unwrap(), open("console", "", Some("vt100")));
    }

    #[test]
    fn a_malformed_channel_is_an_error() {
        assert!(decode_open(&[]).is_err());
        assert!(decode_open(&[9, b'a']).is_err());
        assert!(decode_open(&[2, b'a', b' ']).is_err());
        assert!(decode_open(b"\x02\xff\xfe").is_err());
    }

    /// Raw bytes, not the encoder: what another implementation may send.
    #[test]
    fn unknown_and_unreadable_items_are_ignored() {
        let got =
            decode_open(b"\x03webu\0color=yes\0\xff\xfe\0term=screen.xterm-256color\0x").unwrap();
        assert_eq!(got, open("web", "u", Some("screen.xterm-256color")));
        // The first term counts.
        let got = decode_open(b"\x03webu\0term=vt100\0term=xterm").unwrap();
        assert_eq!(got.term.as_deref(), Some("vt100"));
        // A NUL with nothing after it, or items without a term.
        assert_eq!(decode_open(b"\x03webu\0").unwrap(), open("web", "u", None));
        assert_eq!(
            decode_open(b"\x03webu\0\0\0=").unwrap(),
            open("web", "u", None)
        );
        assert_eq!(decode_open(b"\x03webu\0TERM=x").unwrap().term, None);
    }

    #[test]
    fn a_term_that_is_not_a_terminal_type_is_dropped() {
        let long = format!("\x03webu\0term={}", "x".repeat(MAX_TERM_LEN + 1));
        let hostile: [&[u8]; 6] = [
            long.as_bytes(),
            b"\x03webu\0term=",
            b"\x03webu\0term=xterm\x1b[2J",
            b"\x03webu\0term=xterm; rm -rf /",
            b"\x03webu\0term=../../etc/passwd",
            b"\x03webu\0term=xterm\xff",
        ];
        for payload in hostile {
            let got = decode_open(payload).unwrap();
            assert_eq!(got, open("web", "u", None), "{payload:?}");
        }
        let longest = "x".repeat(MAX_TERM_LEN);
        let p = encode_open("web", "u", Some(&longest));
        assert_eq!(decode_open(&p).unwrap().term.as_deref(), Some(&longest[..]));
        // The encoder leaves an invalid term out rather than send it.
        assert_eq!(
            encode_open("web", "u", Some("a b")),
            encode_open("web", "u", None)
        );
    }

    #[test]
    fn terminal_types() {
        for ok in [
            "xterm-256color",
            "tmux-256color",
            "xterm+256color",
            "vt100",
            "st_x.y",
        ] {
            assert!(valid_term(ok), "{ok}");
        }
        for bad in ["", "a b", "x\ny", "é", "a/b", "$TERM", "a=b"] {
            assert!(!valid_term(bad), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Any channel, plain address and terminal name come back as sent;
        /// any bytes at all after a NUL never make a term that is not one.
        #[test]
        fn round_trips_and_garbage_items_never_make_a_bad_term(
            channel in "[a-z0-9._-]{1,64}",
            peer in "[ -~]{0,80}",
            term in proptest::option::of("[A-Za-z0-9._+-]{1,64}"),
            items in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let p = encode_open(&channel, &peer, term.as_deref());
            proptest::prop_assert_eq!(decode_open(&p).unwrap(), open(&channel, &peer, term.as_deref()));
            let mut raw = encode_open(&channel, &peer, None).to_vec();
            raw.push(0);
            raw.extend_from_slice(&items);
            let got = decode_open(&raw).unwrap();
            proptest::prop_assert_eq!(&got.peer, &peer);
            proptest::prop_assert!(got.term.as_deref().is_none_or(valid_term));
        }
    }

    /// The address is logged, so it comes out as one line; a NUL ends it.
    #[test]
    fn the_address_is_one_line_of_text() {
        let got = decode_open(&encode_open("web", "1.2.3.4:5\r\nFORGED", None)).unwrap();
        assert_eq!(got.peer, "1.2.3.4:5\\r\\nFORGED");
        let got = decode_open(b"\x03web1.2.3.4:5\0\x1b[2J").unwrap();
        assert_eq!(got.peer, "1.2.3.4:5");
    }
}
