//! rhost's legacy links, driven in-process against the server library with
//! a legacy peer made of the protocol crate's packet codec (the end-to-end
//! tests in tests/tests/legacy*.rs use an independent node.js peer).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use public_server::{run, Config, LegacyPath, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use uptun_protocol::legacy::{Event, Packet, PacketCodec};

const WAIT: Duration = Duration::from_secs(30);

type Legacy = Framed<TcpStream, PacketCodec>;

async fn server(keys: &[(&str, &str)]) -> (SocketAddr, CancellationToken) {
    server_with(keys, Duration::from_secs(30)).await
}

async fn server_with(keys: &[(&str, &str)], linger: Duration) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::new("native-agent");
    config.legacy.keys = keys
        .iter()
        .map(|(path, key)| {
            let path = match path.strip_prefix('/').unwrap() {
                "" => LegacyPath::Root,
                name => LegacyPath::Named(name.into()),
            };
            (path, Secret::from(*key))
        })
        .collect();
    config.legacy.linger = linger;
    let stop = CancellationToken::new();
    tokio::spawn(run(listener, config, stop.clone()));
    (addr, stop)
}

/// Sends rhost's request; `Ok` with the link once the 101 came, `Err` if
/// the server closed the socket instead.
async fn dial(addr: SocketAddr, path: &str, user_agent: &str) -> Result<Legacy, ()> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "HEAD {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nUser-Agent: {user_agent}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let want = uptun_protocol::legacy::LEGACY_ACCEPT.as_bytes();
    let mut got = vec![0u8; want.len()];
    let read = tokio::time::timeout(WAIT, socket.read_exact(&mut got)).await;
    match read.expect("an answer or a close") {
        Ok(_) => {
            assert_eq!(got, want);
            Ok(Framed::new(socket, PacketCodec))
        }
        Err(_) => Err(()),
    }
}

/// The next packet that is not the server's own `pi`.
async fn next(peer: &mut Legacy) -> Packet {
    loop {
        let packet = tokio::time::timeout(WAIT, peer.next()).await;
        let packet = packet.expect("a packet in time").expect("open").unwrap();
        if packet.event != Event::Ping {
            return packet;
        }
    }
}

#[tokio::test]
async fn legacy_links_are_refused_while_no_key_is_configured() {
    let (addr, _stop) = server(&[]).await;
    assert!(dial(addr, "/", "tunnel/server k t").await.is_err());
    assert!(dial(addr, "/", "tunnel/client t").await.is_err());
}

#[tokio::test]
async fn a_raw_user_reaches_the_legacy_agent_of_the_root() {
    let (addr, _stop) = server(&[("/", "rootkey")]).await;
    assert!(dial(addr, "/", "tunnel/server wrong t").await.is_err());
    let mut agent = dial(addr, "/", "tunnel/server rootkey tok").await.unwrap();
    // A second agent, even with the right key, does not take the channel.
    assert!(dial(addr, "/", "tunnel/server rootkey tok2").await.is_err());
    let mut user = TcpStream::connect(addr).await.unwrap();
    user.write_all(b"\x00raw hello").await.unwrap();
    let opened = next(&mut agent).await;
    assert_eq!(opened.event, Event::Open);
    let mut first = Vec::new();
    while first.len() < 10 {
        let data = next(&mut agent).await;
        assert_eq!((data.event, data.tag), (Event::Data, opened.tag));
        first.extend_from_slice(&data.body);
    }
    assert_eq!(first, b"\x00raw hello");
    let reply = Bytes::from(vec![5u8; 200_000]);
    agent
        .send(Packet::data(opened.tag, reply.clone()))
        .await
        .unwrap();
    agent
        .send(Packet::new(Event::Close, opened.tag))
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, user.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, reply, "the whole reply, then a clean end");
}

#[tokio::test]
async fn a_legacy_client_reaches_the_legacy_agent_with_its_token() {
    // A legacy client's close is a FIN to the agent's side, held there
    // until the agent closes or sends nothing for the linger.
    let (addr, _stop) = server_with(&[("/ssh", "admin")], Duration::from_millis(300)).await;
    let mut agent = dial(addr, "/ssh", "tunnel/server admin s%20cret")
        .await
        .unwrap();
    assert!(dial(addr, "/ssh", "tunnel/client wrong").await.is_err());
    let mut client = dial(addr, "/ssh", "tunnel/client s%20cret").await.unwrap();
    client.send(Packet::new(Event::Open, 77)).await.unwrap();
    client
        .send(Packet::data(77, Bytes::from_static(b"SSH-2.0-legacy\r\n")))
        .await
        .unwrap();
    let opened = next(&mut agent).await;
    assert_eq!(opened.event, Event::Open);
    let data = next(&mut agent).await;
    assert_eq!(&data.body[..], b"SSH-2.0-legacy\r\n");
    agent
        .send(Packet::data(
            opened.tag,
            Bytes::from_static(b"SSH-2.0-target\r\n"),
        ))
        .await
        .unwrap();
    let back = next(&mut client).await;
    assert_eq!(
        (back.event, back.tag, &back.body[..]),
        (Event::Data, 77, &b"SSH-2.0-target\r\n"[..])
    );
    // The client's close reaches the agent once the linger is over.
    client.send(Packet::new(Event::Close, 77)).await.unwrap();
    let closed = next(&mut agent).await;
    assert_eq!((closed.event, closed.tag), (Event::Close, opened.tag));
}
