//! rhost's legacy protocol (docs/rhost-compat.md), the two parsers that
//! read a legacy peer's bytes. `PacketCodec` must never panic, decode the
//! same packets (and the same error) however the bytes are cut, hold no
//! more memory than one largest packet whatever a size claims, and every
//! packet it decodes must re-encode to the bytes it came from (one whose
//! body is over the 32 KiB this side sends goes out as several packets that
//! carry the same body). The upgrade request (`is_legacy`,
//! `LegacyRequest::from_head`) must never panic, and neither its error nor
//! the head's `Debug` may carry the key or token the peer presented: the
//! server logs both.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use tokio_util::codec::{Decoder, Encoder};
use uptun_fuzz::{Largest, Script};
use uptun_protocol::handshake::{parse_request_head, RequestHead, MAX_HEAD};
use uptun_protocol::legacy::{
    is_legacy, LegacyPeer, LegacyRequest, Packet, PacketCodec, PacketError, MAX_SEND_BODY,
    PACKET_HEADER,
};

#[global_allocator]
static ALLOC: Largest = Largest;

/// The largest packet a u16 size can claim.
const MAX_PACKET: usize = u16::MAX as usize;
/// One largest packet, with room for a growing buffer to double twice: no
/// claimed size may cost more.
const ALLOC_LIMIT: usize = 4 * MAX_PACKET;

/// Decodes `reads` one after another as the translator's reader does;
/// returns the packets, the error that ended the link (if any) and the
/// bytes consumed.
fn decode_all(reads: &[&[u8]]) -> (Vec<Packet>, Option<PacketError>, usize) {
    let mut codec = PacketCodec;
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    let mut fed = 0;
    for read in reads {
        buf.extend_from_slice(read);
        fed += read.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(e) => return (packets, Some(e), fed - buf.len()),
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(Some(packet)) => panic!("decode_eof found a packet decode missed: {packet:?}"),
        Ok(None) => assert!(buf.is_empty()),
        Err(e) => {
            assert_eq!(e, PacketError::Truncated, "only a cut packet errs at EOF");
            return (packets, Some(e), fed - buf.len());
        }
    }
    (packets, None, fed)
}

/// What an error may say: nothing read from memory, no peer text that
/// could forge a log line.
fn check_error(error: &PacketError) {
    match error {
        PacketError::TooShort(size) => assert!(*size < PACKET_HEADER),
        PacketError::UnknownEvent(shown) => {
            assert!(!shown.chars().any(char::is_control), "{shown:?}")
        }
        PacketError::Truncated => {}
        PacketError::Io(e) => panic!("decoding bytes in memory gave an I/O error: {e}"),
    }
}

/// A packet re-encodes to exactly `wire` when its body fits one packet of
/// ours; a longer one goes as several that carry the same body.
fn check_reencodes(packet: &Packet, wire: &[u8]) {
    let mut again = BytesMut::new();
    PacketCodec
        .encode(packet.clone(), &mut again)
        .expect("a decoded packet encodes");
    if packet.body.len() <= MAX_SEND_BODY {
        assert_eq!(
            &again[..],
            wire,
            "{packet:?} did not re-encode to its bytes"
        );
        return;
    }
    let mut body = Vec::new();
    while let Some(piece) = PacketCodec.decode(&mut again).expect("ours decode") {
        assert!(piece.body.len() <= MAX_SEND_BODY);
        assert_eq!(
            (piece.event, piece.set, piece.tag),
            (packet.event, packet.set, packet.tag)
        );
        body.extend_from_slice(&piece.body);
    }
    assert!(again.is_empty());
    assert_eq!(body, packet.body, "the pieces do not carry the body");
}

fn packets(script: &Script<'_>) {
    let reads: Vec<&[u8]> = script.reads.iter().map(|r| r.bytes).collect();
    let ((packets, error, consumed), largest) = Largest::measure(|| decode_all(&reads));
    // The packets' own list grows with the input; a claimed size may not.
    let bound = ALLOC_LIMIT.max(16 * script.data.len());
    assert!(largest <= bound, "one allocation of {largest} bytes");

    let whole = decode_all(&[script.data]);
    assert_eq!(whole.0, packets, "packets depend on how the bytes were cut");
    assert_eq!(
        whole.1, error,
        "the error depends on how the bytes were cut"
    );

    let mut at = 0;
    for packet in &packets {
        let size = PACKET_HEADER + packet.body.len();
        assert!(size <= MAX_PACKET);
        check_reencodes(packet, &script.data[at..at + size]);
        at += size;
    }
    assert_eq!(at, consumed, "consumed bytes that are in no packet");
    match &error {
        Some(error) => check_error(error),
        None => assert_eq!(at, script.data.len(), "bytes left over without an error"),
    }
}

/// Every reason `from_head` gives. None is built from what the peer sent,
/// which is what keeps a key or token out of the log: a new reason belongs
/// here once it is checked to be the same.
const REASONS: [&str; 5] = [
    "not a legacy User-Agent",
    "a legacy agent's User-Agent must be \"tunnel/server KEY TOKEN\"",
    "a legacy client's User-Agent must be \"tunnel/client TOKEN\"",
    "the legacy key is not URI-encoded UTF-8",
    "the legacy token is not URI-encoded UTF-8",
];

/// The secrets as presented (URI-encoded words) and as decoded, and how
/// `Debug` writes each (escaped).
fn secret_texts(ua: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for word in ua.split_whitespace().skip(1) {
        let decoded = percent_decode_str(word).decode_utf8_lossy().into_owned();
        for text in [word.to_string(), decoded] {
            let escaped = format!("{text:?}");
            texts.push(escaped[1..escaped.len() - 1].to_string());
            texts.push(text);
        }
    }
    texts
}

/// `Debug` of the head may show nothing of the User-Agent's secrets that
/// is not also elsewhere in the head (in the path, or another header).
fn check_debug_hides(head: &RequestHead, ua: &str) {
    let shown = format!("{head:?}");
    // Only the User-Agent the server reads (the first) is blanked: any
    // other one may show, and whatever it shows is "elsewhere".
    let mut blank = head.clone();
    if let Some((_, value)) = blank
        .headers
        .iter_mut()
        .find(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
    {
        *value = "***".into();
    }
    let elsewhere = format!("{blank:?}");
    for secret in secret_texts(ua) {
        if !secret.is_empty() && !elsewhere.contains(&secret) {
            assert!(!shown.contains(&secret), "Debug shows {secret:?}: {shown}");
        }
    }
}

/// The secrets re-encoded as etunnel would send them read back the same.
fn check_round_trip(peer: &LegacyPeer) {
    let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let ua = match peer {
        LegacyPeer::Agent { key, token } => {
            format!(
                "tunnel/server {} {}",
                encode(key.expose()),
                encode(token.expose())
            )
        }
        LegacyPeer::Client { token } => format!("tunnel/client {}", encode(token.expose())),
    };
    let text = format!("HEAD / HTTP/1.1\r\nUpgrade: tcp\r\nUser-Agent: {ua}\r\n\r\n");
    if text.len() > MAX_HEAD {
        // Encoding can triple a secret past the head limit; the server
        // would refuse that head before reading it.
        return;
    }
    let head = parse_request_head(text.as_bytes())
        .expect("a request we write parses")
        .expect("a request we write is complete");
    assert!(is_legacy(&head));
    let again = LegacyRequest::from_head(&head).expect("and reads back");
    assert_eq!(&again.peer, peer);
}

fn request(head: &RequestHead) {
    let legacy = is_legacy(head);
    let read = LegacyRequest::from_head(head);
    let ua = head.header("user-agent").unwrap_or_default().trim();
    let lower = ua.to_ascii_lowercase();
    match &read {
        Err(reason) => {
            assert!(
                REASONS.contains(&reason.as_str()),
                "a reason made of input: {reason}"
            );
            if legacy {
                assert_ne!(reason, REASONS[0], "is_legacy and from_head disagree");
            }
        }
        Ok(req) => {
            assert_eq!(req.path, head.path);
            // The role is the first word, alone too: rhost's empty
            // secrets arrive trimmed to the bare role.
            let role = lower.split(' ').next().unwrap_or_default();
            let agent = matches!(req.peer, LegacyPeer::Agent { .. });
            assert_eq!(agent, role == "tunnel/server", "{ua:?}");
            assert!(agent || role == "tunnel/client", "{ua:?}");
            check_round_trip(&req.peer);
        }
    }
    if read.is_ok() || legacy {
        check_debug_hides(head, ua);
    }
}

fuzz_target!(|input: &[u8]| {
    let script = Script::parse(input);
    packets(&script);

    // As the server reads it: a whole head, then packets.
    if let Ok(Some(head)) = parse_request_head(script.data) {
        request(&head);
        let after = [&[0][..], &script.data[head.len..]].concat();
        packets(&Script::parse(&after));
    }
    // Any text at all as the User-Agent of rhost's HEAD, which the
    // parser would not let through (line breaks, NULs).
    let ua = String::from_utf8_lossy(script.data).into_owned();
    request(&RequestHead {
        method: "HEAD".into(),
        path: "/".into(),
        headers: vec![("Upgrade".into(), "tcp".into()), ("User-Agent".into(), ua)],
        len: 0,
    });
});
