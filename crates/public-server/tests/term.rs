//! A client's terminal type (the `term` item of its OPEN, protocol.md §4.4)
//! reaches the agent through the server, and one that is not a terminal
//! type does not. The client speaks raw bytes, so a mistake shared by the
//! crate's encoder and decoder cannot hide; the agent is an in-process link
//! that reports what its OPENs carried.

use std::time::Duration;

use bytes::BytesMut;
use public_server::{run, Config, Grant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uptun_protocol::handshake::{read_answer, LinkAnswer, LinkRequest, PeerKind};
use uptun_protocol::{spawn_link, Incoming, LinkHandle, Role, PROTOCOL_VERSION};

const WAIT: Duration = Duration::from_secs(20);

/// Sends a link request of `kind` and returns the socket once accepted,
/// with any bytes read past the answer.
async fn link(addr: std::net::SocketAddr, kind: PeerKind, token: &str) -> (TcpStream, BytesMut) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = LinkRequest {
        kind,
        host: "localhost".into(),
        token: Some(token.into()),
        version: PROTOCOL_VERSION,
        channels: if kind == PeerKind::Agent {
            vec!["console".into()]
        } else {
            Vec::new()
        },
        window: 256 * 1024,
        name: Some("term-test".into()),
    };
    socket
        .write_all(request.to_http().as_bytes())
        .await
        .unwrap();
    let mut leftover = BytesMut::new();
    let answer = read_answer(&mut socket, &mut leftover).await.unwrap();
    assert!(matches!(answer, LinkAnswer::Accepted { .. }), "{answer:?}");
    (socket, leftover)
}

async fn agent(addr: std::net::SocketAddr) -> (LinkHandle, Incoming) {
    let (socket, leftover) = link(addr, PeerKind::Agent, "agent-t0ken").await;
    let (read, write) = socket.into_split();
    let config = uptun_protocol::Config::default();
    spawn_link(read, write, leftover, Role::Dialer, config, 256 * 1024)
}

/// An OPEN frame for `console` on stream `id`, written out by hand:
/// length, type 1, id, then the payload of §4.4.
fn raw_open(id: u32, tail: &[u8]) -> Vec<u8> {
    let mut payload = b"\x07consolestdio".to_vec();
    payload.extend_from_slice(tail);
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.push(1);
    frame.extend_from_slice(&id.to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

#[tokio::test]
async fn the_server_passes_a_client_s_term_on_and_drops_a_bad_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::new("agent-t0ken");
    config.tokens.clients.push(Grant::any("c1ient"));
    let stop = CancellationToken::new();
    tokio::spawn(run(listener, config, stop.clone()));
    let (_agent, mut opened) = agent(addr).await;

    let (mut client, _) = link(addr, PeerKind::Client, "c1ient").await;
    let sent: [&[u8]; 4] = [
        b"\0term=xterm-256color",
        b"",
        b"\0term=xterm\x1b]0;owned\x07",
        b"\0lang=C\0term=screen.xterm-256color",
    ];
    for (i, tail) in sent.iter().enumerate() {
        client
            .write_all(&raw_open(2 + 2 * i as u32, tail))
            .await
            .unwrap();
    }
    let mut terms = Vec::new();
    for _ in sent {
        let stream = tokio::time::timeout(WAIT, opened.next())
            .await
            .expect("the server opened no stream on the agent in time")
            .expect("the agent link closed");
        // The server's own address text, never the client's.
        assert!(stream.peer.ends_with(" via client"), "{}", stream.peer);
        assert_eq!(stream.channel, "console");
        terms.push(stream.term.clone());
        drop(stream.accept().await);
    }
    // Streams are opened on the agent in the order the client opened them.
    let want = [
        Some("xterm-256color"),
        None,
        None,
        Some("screen.xterm-256color"),
    ];
    assert_eq!(terms, want.map(|t| t.map(String::from)));
    // The link is still up: a bad term cost nothing but itself.
    client.write_all(&raw_open(10, b"")).await.unwrap();
    let after = tokio::time::timeout(WAIT, opened.next()).await;
    assert!(matches!(after, Ok(Some(_))), "no stream after the bad term");
    stop.cancel();
}
