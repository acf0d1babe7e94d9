//! The translator between a real mux and a legacy peer played by the test
//! over an in-memory pipe.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio_util::codec::Framed;

use super::*;
use crate::legacy::{Event, Packet, PacketCodec};
use crate::mux::{Config, Incoming, LinkHandle};

type Peer = Framed<DuplexStream, PacketCodec>;

const LINGER: Duration = Duration::from_secs(30);

fn start(role: LegacyRole) -> (LinkHandle, Incoming, Peer) {
    let (ours, theirs) = tokio::io::duplex(16 * 1024);
    let (read, write) = tokio::io::split(ours);
    let config = Config {
        window: 64 * 1024,
        ..Config::default()
    };
    let (link, incoming) = spawn_legacy(read, write, BytesMut::new(), role, config);
    (link, incoming, Framed::new(theirs, PacketCodec))
}

fn agent() -> (LinkHandle, Incoming, Peer) {
    start(LegacyRole::Agent { linger: LINGER })
}

/// The next packet other than the translator's own `pi` (every 10 s).
async fn next(peer: &mut Peer) -> Packet {
    loop {
        let packet = peer
            .next()
            .await
            .expect("a packet")
            .expect("a well-formed packet");
        if packet.event != Event::Ping {
            return packet;
        }
    }
}

async fn read_all(stream: &crate::MuxStream) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some(chunk) = stream.recv().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    got
}

#[tokio::test]
async fn a_users_stream_crosses_to_a_legacy_agent_and_back() {
    let (link, _incoming, mut peer) = agent();
    let stream = link.open("web", "192.0.2.1:5").await.unwrap();
    stream.send(Bytes::from_static(b"GET /")).await.unwrap();
    let opened = next(&mut peer).await;
    assert_eq!(
        (opened.event, opened.set, opened.tag),
        (Event::Open, 0, stream.id())
    );
    stream.accepted().await.unwrap();
    let data = next(&mut peer).await;
    assert_eq!((data.event, &data.body[..]), (Event::Data, &b"GET /"[..]));
    let reply = Bytes::from(vec![7u8; 100_000]);
    peer.send(Packet::data(stream.id(), reply.clone()))
        .await
        .unwrap();
    peer.send(Packet::new(Event::Close, stream.id()))
        .await
        .unwrap();
    assert_eq!(read_all(&stream).await, reply, "then a clean end");
}

#[tokio::test(start_paused = true)]
async fn a_half_close_is_held_so_the_reply_still_arrives() {
    let (link, _incoming, mut peer) = agent();
    let stream = link.open("web", "u").await.unwrap();
    stream.send(Bytes::from_static(b"ping")).await.unwrap();
    stream.finish().await.unwrap();
    next(&mut peer).await; // c+
    assert_eq!(next(&mut peer).await.body, "ping");
    // Nothing more comes for the FIN: the agent would close the target.
    let quiet = tokio::time::timeout(LINGER / 2, next(&mut peer)).await;
    assert!(quiet.is_err(), "c- came before the linger");
    peer.send(Packet::data(stream.id(), Bytes::from_static(b"pong")))
        .await
        .unwrap();
    assert_eq!(stream.recv().await.unwrap().unwrap(), "pong");
    // The agent never closes: after the linger both sides end cleanly.
    let close = next(&mut peer).await;
    assert_eq!((close.event, close.tag), (Event::Close, stream.id()));
    assert_eq!(stream.recv().await.unwrap(), None);
}

#[tokio::test]
async fn a_reset_closes_the_connection() {
    let (link, _incoming, mut peer) = agent();
    let stream = link.open("web", "u").await.unwrap();
    next(&mut peer).await; // c+
    stream.reset("user went away");
    let close = next(&mut peer).await;
    assert_eq!((close.event, close.tag), (Event::Close, stream.id()));
}

#[tokio::test]
async fn a_legacy_client_opens_streams_on_its_channel() {
    let role = LegacyRole::Client {
        channel: "ssh".into(),
        peer: "legacy client".into(),
    };
    let (_link, mut incoming, mut peer) = start(role);
    peer.send(Packet::new(Event::Open, 41)).await.unwrap();
    peer.send(Packet::data(41, Bytes::from_static(b"SSH-2.0-x\r\n")))
        .await
        .unwrap();
    let opened = incoming.next().await.unwrap();
    assert_eq!(opened.channel, "ssh");
    let stream = opened.accept().await.unwrap();
    assert_eq!(stream.recv().await.unwrap().unwrap(), "SSH-2.0-x\r\n");
    stream.send(Bytes::from_static(b"banner")).await.unwrap();
    let data = next(&mut peer).await;
    assert_eq!((data.tag, &data.body[..]), (41, &b"banner"[..]));
    stream.finish().await.unwrap();
    let close = next(&mut peer).await;
    assert_eq!((close.event, close.tag), (Event::Close, 41));
    assert_eq!(stream.recv().await.unwrap(), None);
}

#[tokio::test]
async fn pings_are_answered_and_a_closed_peer_closes_the_link() {
    let (link, _incoming, mut peer) = agent();
    let stream = link.open("web", "u").await.unwrap();
    next(&mut peer).await; // c+
    peer.send(Packet::new(Event::Ping, 0)).await.unwrap();
    let pong = next(&mut peer).await;
    assert_eq!((pong.event, pong.set, pong.tag), (Event::Pong, 0, 0));
    assert!(link.ping().await.is_ok(), "the mux's PING is answered");
    drop(peer);
    link.closed().await;
    assert!(stream.recv().await.is_err(), "an abort, not a clean end");
    assert!(link.close_reason().unwrap().contains("legacy peer closed"));
}

#[tokio::test]
async fn garbage_from_the_peer_closes_the_link_with_the_reason() {
    let (link, _incoming, peer) = agent();
    let mut raw = peer.into_inner();
    tokio::io::AsyncWriteExt::write_all(&mut raw, b"\x00\x05xx\0\0\0\0\0\0\0\0")
        .await
        .unwrap();
    link.closed().await;
    assert!(link
        .close_reason()
        .unwrap()
        .contains("shorter than its 12-byte header"));
}

/// A user nobody reads: the translator reads the legacy peer only within
/// the mux's credit (64 KiB here), so the peer's writes stop. Paused time
/// advances only once every task waits, so the timeout fires exactly when
/// nothing can move.
#[tokio::test(start_paused = true)]
async fn a_slow_user_stops_the_legacy_reads_instead_of_buffering() {
    let (link, _incoming, mut peer) = agent();
    let stream = link.open("web", "u").await.unwrap();
    next(&mut peer).await; // c+
    let mut pushed = 0usize;
    let chunk = Bytes::from(vec![1u8; 16 * 1024]);
    loop {
        let send = peer.send(Packet::data(stream.id(), chunk.clone()));
        match tokio::time::timeout(Duration::from_secs(1), send).await {
            Ok(sent) => sent.unwrap(),
            Err(_) => break,
        }
        pushed += chunk.len();
        assert!(pushed < 4 << 20, "the translator kept reading");
    }
    // Credit (64 KiB) + the pipe (16 KiB) + one packet in the codec + the
    // packet that waits.
    assert!(pushed <= 160 * 1024, "{pushed} bytes taken in");
    let got = read_all_within(&stream, pushed).await;
    assert_eq!(got, pushed, "everything taken in reaches the user");
}

async fn read_all_within(stream: &crate::MuxStream, want: usize) -> usize {
    let mut got = 0;
    while got < want {
        got += stream.recv().await.unwrap().unwrap().len();
    }
    got
}

/// rhost peers answer `pi`; one that did and then falls silent is dead.
/// One that never answered is not judged by silence (it may predate `po`).
#[tokio::test(start_paused = true)]
async fn silence_is_death_only_for_a_peer_that_answered_a_ping() {
    let (quiet_link, _i, _quiet_peer) = agent();
    let (link, _incoming, mut peer) = agent();
    let ping = peer.next().await.unwrap().unwrap();
    assert_eq!(ping.event, Event::Ping);
    peer.send(Packet::new(Event::Pong, 0)).await.unwrap();
    let started = tokio::time::Instant::now();
    link.closed().await;
    assert!(started.elapsed() >= Duration::from_secs(30));
    let reason = link.close_reason().unwrap();
    assert!(reason.contains("sent nothing for 30.0 s"), "{reason}");
    assert!(!quiet_link.is_closed(), "{:?}", quiet_link.close_reason());
}

/// While one user's window is full the translator reads nothing, so the
/// peer's answers wait unread: that silence is not the peer's death.
#[tokio::test(start_paused = true)]
async fn a_stalled_user_does_not_make_a_ponging_peer_look_dead() {
    let (link, _incoming, mut peer) = agent();
    let ping = peer.next().await.unwrap().unwrap();
    assert_eq!(ping.event, Event::Ping);
    peer.send(Packet::new(Event::Pong, 0)).await.unwrap();
    let stream = link.open("web", "u").await.unwrap();
    next(&mut peer).await; // c+
                           // More than the 64 KiB window: the rest waits for the user.
    let body = Bytes::from(vec![3u8; 100 * 1024]);
    peer.send(Packet::data(stream.id(), body.slice(..32 * 1024)))
        .await
        .unwrap();
    peer.send(Packet::data(stream.id(), body.slice(32 * 1024..64 * 1024)))
        .await
        .unwrap();
    peer.send(Packet::data(stream.id(), body.slice(64 * 1024..)))
        .await
        .unwrap();
    let (mut read, mut write) = tokio::io::split(peer.into_inner());
    // The peer answers every ping it would see; none is read meanwhile.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let mut wire = BytesMut::new();
            tokio_util::codec::Encoder::encode(
                &mut PacketCodec,
                Packet::new(Event::Pong, 0),
                &mut wire,
            )
            .unwrap();
            if tokio::io::AsyncWriteExt::write_all(&mut write, &wire)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut read, &mut sink)
            .await
            .is_ok_and(|n| n > 0)
        {}
    });
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert!(!link.is_closed(), "{:?}", link.close_reason());
    assert_eq!(read_all_within(&stream, body.len()).await, body.len());
}
