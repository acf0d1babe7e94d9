//! The legacy peer (`tests/legacy/etunnel.js`) against a fake tunnel that
//! speaks issue 12's wire format from raw bytes: the peer the legacy tests
//! trust must itself say exactly what the issue describes, whatever the
//! public server makes of it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uptun_e2e::data::pattern;
use uptun_e2e::legacy::{agent_args, have_node, LegacyPeer};
use uptun_e2e::{bounded, targets};

const SWITCHED: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";

/// `[size u16 BE][event][set u32 BE][tag u32 BE][body]`, size counting all.
fn packet(event: &str, set: u32, tag: u32, body: &[u8]) -> Vec<u8> {
    let mut out = ((12 + body.len()) as u16).to_be_bytes().to_vec();
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(&set.to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The tunnel end of one legacy link.
struct Fake {
    socket: TcpStream,
    pending: Vec<u8>,
}

impl Fake {
    /// Accepts the peer and returns its request head.
    async fn accept(listener: &TcpListener) -> (Fake, String) {
        let (socket, _) = bounded("the peer's connection", listener.accept())
            .await
            .unwrap();
        let mut fake = Fake {
            socket,
            pending: Vec::new(),
        };
        let end = loop {
            if let Some(i) = fake.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            fake.fill().await;
        };
        let head: Vec<u8> = fake.pending.drain(..end).collect();
        (fake, String::from_utf8(head).unwrap())
    }

    async fn fill(&mut self) {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = bounded("bytes from the peer", self.socket.read(&mut chunk))
            .await
            .unwrap();
        assert!(n > 0, "the peer closed the tunnel");
        self.pending.extend_from_slice(&chunk[..n]);
    }

    /// The next packet: (event, set, tag, body).
    async fn next(&mut self) -> (String, u32, u32, Vec<u8>) {
        loop {
            if self.pending.len() >= 2 {
                let size = u16::from_be_bytes([self.pending[0], self.pending[1]]) as usize;
                assert!(size >= 12, "the peer sent a packet of size {size}");
                if self.pending.len() >= size {
                    let p: Vec<u8> = self.pending.drain(..size).collect();
                    let word = |at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
                    let event = String::from_utf8_lossy(&p[2..4]).into_owned();
                    return (event, word(4), word(8), p[12..].to_vec());
                }
            }
            self.fill().await;
        }
    }

    /// The next packet other than the pings `--send-ping` sends.
    async fn next_not_ping(&mut self) -> (String, u32, u32, Vec<u8>) {
        loop {
            let p = self.next().await;
            if p.0 != "pi" {
                return p;
            }
        }
    }

    /// Reads `d+ set tag` packets until `len` bytes came; checks that no
    /// body was above 32,768 bytes.
    async fn data(&mut self, set: u32, tag: u32, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < len {
            let (event, s, t, body) = self.next().await;
            assert_eq!((event.as_str(), s, t), ("d+", set, tag));
            assert!(body.len() <= 32768, "a body of {} bytes", body.len());
            got.extend_from_slice(&body);
        }
        got
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }
}

/// The header `name`'s value in a request head.
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

async fn fake_tunnel() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_upgrades_dials_on_open_relays_and_closes_as_described() {
    if !have_node() {
        return;
    }
    let (tunnel, addr) = fake_tunnel().await;
    let echo = targets::echo().await;
    let (held, held_addr) = fake_tunnel().await;
    let args = agent_args(addr, "/ssh", "k ey", "to/ken", echo);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = LegacyPeer::spawn(&args);

    let (mut fake, head) = Fake::accept(&tunnel).await;
    assert!(head.starts_with("HEAD /ssh HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "Upgrade"), Some("tcp"));
    assert_eq!(header(&head, "Connection"), Some("Upgrade"));
    assert_eq!(header(&head, "Host"), Some(addr.to_string().as_str()));
    assert!(header(&head, "Origin").is_some(), "{head}");
    assert_eq!(
        header(&head, "User-Agent"),
        Some("tunnel/server k%20ey to%2Fken")
    );
    // The 101 and a first packet in one write: the peer must split them.
    let mut answer = SWITCHED.to_vec();
    answer.extend(packet("pi", 0, 0, b""));
    fake.send(&answer).await;
    peer.wait_line("ready").await;
    assert_eq!(fake.next().await, ("po".into(), 0, 0, vec![]));

    // A user: the peer dials the echo target (no answer to c+), and the
    // 40,000 bytes sent in one packet come back in packets of ≤ 32,768.
    let data = pattern(1, 40_000);
    fake.send(&packet("c+", 3, 7, b"")).await;
    fake.send(&packet("d+", 3, 7, &data)).await;
    assert_eq!(fake.data(3, 7, data.len()).await, data);

    // A target that closes: its last bytes, then `c-` with set and tag.
    drop(peer);
    let args = agent_args(addr, "/", "k", "t", held_addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = LegacyPeer::spawn(&args);
    let (mut fake, _) = Fake::accept(&tunnel).await;
    fake.send(SWITCHED).await;
    peer.wait_line("ready").await;
    fake.send(&packet("c+", 0, 9, b"")).await;
    let (mut target, _) = bounded("the dial", held.accept()).await.unwrap();
    target.write_all(b"bye").await.unwrap();
    drop(target);
    assert_eq!(fake.next().await, ("d+".into(), 0, 9, b"bye".to_vec()));
    assert_eq!(fake.next().await, ("c-".into(), 0, 9, vec![]));

    // `c-` from the tunnel ends the target's connection.
    fake.send(&packet("c+", 0, 10, b"")).await;
    let (mut target, _) = bounded("the dial", held.accept()).await.unwrap();
    fake.send(&packet("c-", 0, 10, b"")).await;
    let mut rest = Vec::new();
    bounded("EOF at the target", target.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());

    // A size below the header is garbage: the peer closes the tunnel.
    fake.send(&[0, 5, b'd', b'+', 0]).await;
    let mut rest = Vec::new();
    let _ = bounded("the peer's close", fake.socket.read_to_end(&mut rest)).await;
    uptun_e2e::wait_for("the garbage message", uptun_e2e::WAIT, || {
        std::future::ready(
            peer.log()
                .contains("below the 12-byte header")
                .then_some(()),
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_numbers_local_connections_and_turns_their_end_into_a_close() {
    if !have_node() {
        return;
    }
    let (tunnel, addr) = fake_tunnel().await;
    let tunnel_addr = addr.to_string();
    let args = [
        "client",
        "--tunnel",
        &tunnel_addr,
        "--channel",
        "/",
        "--token",
        "tok",
        "--listen",
        "127.0.0.1:0",
        "--send-ping",
        "50",
    ];
    let mut peer = LegacyPeer::spawn(&args);
    let (mut fake, head) = Fake::accept(&tunnel).await;
    assert!(head.starts_with("HEAD / HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "User-Agent"), Some("tunnel/client tok"));
    fake.send(SWITCHED).await;
    let line = peer.wait_line("listening ").await;
    let local: SocketAddr = format!("127.0.0.1:{}", &line[10..]).parse().unwrap();

    assert_eq!(fake.next().await, ("pi".into(), 0, 0, vec![]));
    fake.send(&packet("po", 0, 0, b"")).await;
    peer.wait_line("pong").await;

    let mut user = TcpStream::connect(local).await.unwrap();
    assert_eq!(fake.next_not_ping().await, ("c+".into(), 0, 1, vec![]));
    let data = pattern(2, 100_000);
    user.write_all(&data).await.unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        let (event, set, tag, body) = fake.next_not_ping().await;
        assert_eq!((event.as_str(), set, tag), ("d+", 0, 1));
        assert!(body.len() <= 32768);
        got.extend(body);
    }
    assert_eq!(got, data);
    fake.send(&packet("d+", 0, 1, b"hello")).await;
    let mut hello = [0u8; 5];
    bounded("d+ to the user", user.read_exact(&mut hello))
        .await
        .unwrap();
    assert_eq!(&hello, b"hello");
    // A half-close is a close.
    user.shutdown().await.unwrap();
    assert_eq!(fake.next_not_ping().await, ("c-".into(), 0, 1, vec![]));

    // The next connection gets the next id; `c-` from the tunnel ends it.
    let mut user = TcpStream::connect(local).await.unwrap();
    assert_eq!(fake.next_not_ping().await, ("c+".into(), 0, 2, vec![]));
    fake.send(&packet("c-", 0, 2, b"")).await;
    let mut rest = Vec::new();
    bounded("EOF at the user", user.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_close_before_the_101_is_a_refusal() {
    if !have_node() {
        return;
    }
    let (tunnel, addr) = fake_tunnel().await;
    let args = agent_args(addr, "/ssh", "k", "t", addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = LegacyPeer::spawn(&args);
    let (fake, _) = Fake::accept(&tunnel).await;
    drop(fake);
    peer.refused().await;

    // An answer other than 101 is reported as such, not as a plain close.
    let mut peer = LegacyPeer::spawn(&args);
    let (mut fake, _) = Fake::accept(&tunnel).await;
    fake.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(
        peer.wait_line("refused").await,
        "refused HTTP/1.1 403 Forbidden"
    );
}
