//! Tests of the upgrade handshake: round trips, rewritten headers,
//! refusals, hidden tokens, and answers read in tiny pieces.

use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use super::*;

fn agent_request() -> LinkRequest {
    LinkRequest {
        kind: PeerKind::Agent,
        host: "tunnel.example.com".into(),
        token: Some(Secret::new("s3cret")),
        version: PROTOCOL_VERSION,
        channels: vec!["ssh".into(), "web".into()],
        window: DEFAULT_WINDOW,
        name: Some("laptop".into()),
    }
}

#[test]
fn request_round_trip() {
    let req = agent_request();
    let head = parse_request_head(req.to_http().as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(head.link_kind(), Some(PeerKind::Agent));
    assert_eq!(LinkRequest::from_head(&head, PeerKind::Agent).unwrap(), req);
}

#[test]
fn debug_output_never_shows_the_token() {
    let req = agent_request();
    let wire = req.to_http();
    assert!(wire.contains("Authorization: Bearer s3cret\r\n"));
    let head = parse_request_head(wire.as_bytes()).unwrap().unwrap();
    for shown in [
        format!("{req:?}"),
        format!("{head:?}"),
        format!("{head:#?}"),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
    assert_eq!(head.bearer_token(), Some("s3cret"));
}

#[test]
fn the_agent_name_is_made_one_line() {
    // httparse lets bytes >= 0x80 through; U+0085 (NEL) ends a line in
    // some log viewers.
    let raw = "HEAD / HTTP/1.1\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/1\r\nUptun-Version: 1\r\nUptun-Channels: web\r\nUptun-Name: lap\u{85}top\r\n\r\n";
    let head = parse_request_head(raw.as_bytes()).unwrap().unwrap();
    let req = LinkRequest::from_head(&head, PeerKind::Agent).unwrap();
    assert_eq!(req.name.as_deref(), Some("lap\\u{85}top"));
}

#[test]
fn rewritten_headers_still_match() {
    let raw = "GET /x HTTP/1.1\r\nuser-agent: UPTUN-CLIENT/9\r\nconnection: keep-alive, upgrade\r\nHOST: h\r\nupgrade: TCP\r\nuptun-version: 1\r\n\r\n";
    let head = parse_request_head(raw.as_bytes()).unwrap().unwrap();
    assert_eq!(head.link_kind(), Some(PeerKind::Client));
    let req = LinkRequest::from_head(&head, PeerKind::Client).unwrap();
    assert_eq!(req.token, None);
}

#[test]
fn ordinary_head_request_is_not_a_link() {
    let raw = "HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n\r\n";
    let head = parse_request_head(raw.as_bytes()).unwrap().unwrap();
    assert_eq!(head.link_kind(), None);
    let raw = "HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: uptun-agent/1\r\n\r\n";
    assert_eq!(
        parse_request_head(raw.as_bytes())
            .unwrap()
            .unwrap()
            .link_kind(),
        None
    );
}

#[test]
fn refusals_for_bad_requests() {
    let check = |extra: &str, status: u16| {
        let raw =
            format!("HEAD / HTTP/1.1\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/1\r\n{extra}\r\n");
        let head = parse_request_head(raw.as_bytes()).unwrap().unwrap();
        let err = LinkRequest::from_head(&head, PeerKind::Agent).unwrap_err();
        assert_eq!(err.status, status, "{extra:?}: {}", err.reason);
    };
    check("Uptun-Channels: web\r\n", 400);
    check("Uptun-Version: 2\r\nUptun-Channels: web\r\n", 426);
    check("Uptun-Version: 1\r\n", 400);
    check("Uptun-Version: 1\r\nUptun-Channels: we b\r\n", 400);
    check(
        "Uptun-Version: 1\r\nUptun-Channels: web\r\nUptun-Window: 5\r\n",
        400,
    );
}

/// Found by `fuzz/` (handshake target): a long name whose 64th character
/// was a blank kept it, and came back without it once the dialer wrote the
/// request again. Escaping control characters after the cut would likewise
/// have made a name longer than 64 that the next reading cuts again.
#[test]
fn a_cut_name_reads_back_the_same() {
    for name in [
        format!("{} tail", "n".repeat(63)),
        format!("{}\tx", "t".repeat(62)),
    ] {
        let raw = format!(
            "HEAD / HTTP/1.1\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/1\r\nUptun-Version: 1\r\nUptun-Channels: web\r\nUptun-Name: {name}\r\n\r\n"
        );
        let head = parse_request_head(raw.as_bytes()).unwrap().unwrap();
        let req = LinkRequest::from_head(&head, PeerKind::Agent).unwrap();
        let got = req.name.clone().unwrap();
        assert!(got.chars().count() <= 64 && !got.ends_with(' '), "{got:?}");
        let again = parse_request_head(req.to_http().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            LinkRequest::from_head(&again, PeerKind::Agent).unwrap(),
            req
        );
    }
}

#[test]
fn oversized_and_garbage_heads() {
    let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
    raw.resize(MAX_HEAD + 10, b'a');
    assert_eq!(parse_request_head(&raw).unwrap_err(), HeadError::TooLarge);
    assert!(matches!(
        parse_request_head(b"\x00\x01\x02 garbage\r\n\r\n"),
        Err(HeadError::Malformed(_))
    ));
    assert!(parse_request_head(b"GET / HT").unwrap().is_none());
}

/// Found while fuzzing (handshake target, by reading what its
/// cut-independence check implied): an answer head over 16 KiB was refused
/// when it came in pieces but accepted in one read.
#[tokio::test]
async fn an_answer_over_the_limit_is_refused_however_it_arrives() {
    let wire = format!(
        "HTTP/1.1 101 Switching Protocols\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(MAX_HEAD)
    );
    for pipe in [64, wire.len()] {
        let (mut a, mut b) = tokio::io::duplex(pipe);
        let w = wire.clone();
        tokio::spawn(
            async move { tokio::io::AsyncWriteExt::write_all(&mut a, w.as_bytes()).await },
        );
        let mut buf = BytesMut::with_capacity(wire.len());
        let err = read_answer(&mut b, &mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "pipe {pipe}");
    }
}

#[tokio::test]
async fn answers_are_read_in_tiny_pieces() {
    let (mut a, mut b) = tokio::io::duplex(7);
    let refusal = Refusal::new(401, "wrong token");
    let wire = refusal.to_http();
    tokio::spawn(async move { tokio::io::AsyncWriteExt::write_all(&mut a, wire.as_bytes()).await });
    let mut buf = BytesMut::new();
    assert_eq!(
        read_answer(&mut b, &mut buf).await.unwrap(),
        LinkAnswer::Refused(refusal)
    );

    let (mut a, mut b) = tokio::io::duplex(5);
    let wire = format!("{}FRAMES", accept_response(65536));
    tokio::spawn(async move { tokio::io::AsyncWriteExt::write_all(&mut a, wire.as_bytes()).await });
    let mut buf = BytesMut::new();
    assert_eq!(
        read_answer(&mut b, &mut buf).await.unwrap(),
        LinkAnswer::Accepted { window: 65536 }
    );
    while buf.len() < 6 {
        b.read_buf(&mut buf).await.unwrap();
    }
    assert_eq!(&buf[..], b"FRAMES");
}

#[tokio::test]
async fn a_routers_answer_is_told_from_the_servers() {
    let nginx = "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n";
    let mut buf = BytesMut::new();
    let LinkAnswer::Refused(r) = read_answer(&mut nginx.as_bytes(), &mut buf).await.unwrap() else {
        panic!("a 400 is a refusal")
    };
    assert_eq!((r.status, r.from_uptun), (400, false));
    assert!(r.reason.contains("is it an uptun public-server?"), "{r:?}");
    let ours = Refusal::new(400, "missing Uptun-Version header").to_http();
    let mut buf = BytesMut::new();
    let LinkAnswer::Refused(r) = read_answer(&mut ours.as_bytes(), &mut buf).await.unwrap() else {
        panic!("a 400 is a refusal")
    };
    assert_eq!((r.status, r.from_uptun), (400, true));
}
