//! The upgrade handshake, both ways and in both forms (`Upgrade: tcp` and
//! WebSocket). The server side parses a request head (`parse_request_head`,
//! `link_kind`, `LinkRequest::from_head`, `websocket::check_request`); the
//! dialer reads the server's answer (`read_answer`, and the WebSocket
//! form's, which also checks `Sec-WebSocket-Accept`) in arbitrary reads. Neither may
//! panic; a head must parse the same from any prefix that holds it; an
//! accepted request must survive the dialer writing it out again; the
//! answer must not depend on how its bytes were cut, and must leave every
//! byte after the head for the link.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use uptun_fuzz::{paused_runtime, Peer, Script};
use uptun_protocol::handshake::{
    parse_request_head, read_answer, websocket, LinkAnswer, LinkRequest, PeerKind, MAX_HEAD,
    MAX_WINDOW, MIN_WINDOW,
};

/// A fixed key for the WebSocket dialer: the fuzzer finds its accept value
/// in the seeds (`s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`, RFC 6455's example).
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn server_side(data: &[u8]) {
    let Ok(Some(head)) = parse_request_head(data) else {
        return;
    };
    assert!(head.len <= data.len() && head.len <= MAX_HEAD);
    // The head alone parses to the same head: nothing after it mattered.
    let alone = parse_request_head(&data[..head.len])
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert_eq!(
        (&alone.method, &alone.path, &alone.headers, alone.len),
        (&head.method, &head.path, &head.headers, head.len)
    );
    if head.is_websocket() {
        // A WebSocket request is checked before anything else; an accepted
        // one yields the 28-character accept value.
        if let Ok(accept) = websocket::check_request(&head) {
            assert_eq!(head.method, "GET");
            assert_eq!(accept.len(), 28);
        }
    }
    let detected = head.link_kind();
    for kind in [PeerKind::Agent, PeerKind::Client] {
        let Ok(req) = LinkRequest::from_head(&head, kind) else {
            continue;
        };
        assert!((MIN_WINDOW..=MAX_WINDOW).contains(&req.window));
        if detected != Some(kind) {
            continue;
        }
        // What the server accepted, written out by the dialer, reads back
        // the same (the dialer's own requests are made this way).
        let wire = req.to_http();
        let again = parse_request_head(wire.as_bytes())
            .expect("a request we write parses")
            .expect("a request we write is complete");
        assert_eq!(again.link_kind(), Some(kind));
        let mut back = LinkRequest::from_head(&again, kind).expect("and is accepted");
        // Only `Host` may differ: an absent one is written as empty.
        back.host.clone_from(&req.host);
        assert_eq!(back, req);
    }
}

/// `capacity`: of the dialer's buffer, which bounds each read; `ws`: read
/// the answer as the WebSocket form's.
fn dialer_side(
    script: &Script,
    capacity: usize,
    ws: bool,
) -> Result<(LinkAnswer, BytesMut), std::io::ErrorKind> {
    let mut peer = Peer::new(script);
    let mut buf = BytesMut::with_capacity(capacity);
    let answer = paused_runtime()
        .block_on(async {
            match ws {
                true => websocket::read_answer(&mut peer, &mut buf, WS_KEY).await,
                false => read_answer(&mut peer, &mut buf).await,
            }
        })
        .map_err(|e| e.kind())?;
    // Bytes after the head stay for the link: what is left is a suffix of
    // what was delivered.
    let read = &script.data[..peer.delivered];
    assert!(read.ends_with(&buf), "read_answer lost or invented bytes");
    match &answer {
        LinkAnswer::Accepted { window } => assert!((MIN_WINDOW..=MAX_WINDOW).contains(window)),
        LinkAnswer::Refused(r) => assert_ne!(r.status, 101),
    }
    Ok((answer, buf))
}

fuzz_target!(|input: &[u8]| {
    let mut script = Script::parse(input);
    server_side(script.data);

    // The dialer has no deadline of its own (its caller has): a peer that
    // stays open would hang it, so every script ends in EOF here.
    script.keep_open = false;
    let data = script.data;
    let one_read_input = [&[0][..], data].concat();
    let in_one_read = Script::parse(&one_read_input);
    for ws in [false, true] {
        let cut = dialer_side(&script, 0, ws);
        let whole = dialer_side(&in_one_read, data.len(), ws);
        match (&cut, &whole) {
            (Ok((a, _)), Ok((b, _))) => assert_eq!(a, b, "the answer depends on how it was cut"),
            (Err(a), Err(b)) => assert_eq!(a, b, "the error depends on how the answer was cut"),
            _ => panic!("ws {ws}: cut: {cut:?}; in one read: {whole:?}"),
        }
    }
});
