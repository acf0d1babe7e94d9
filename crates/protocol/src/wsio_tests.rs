//! Tests of the WebSocket adapter against a plain tungstenite peer:
//! message boundaries both ways, pings answered, and each way it ends.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// A `WsIo` (client role) and the raw WebSocket of its peer (server role).
async fn pair() -> (WsIo<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let io = WsIo::new(a, Vec::new(), Role::Client).await;
    // The peer has no limits of its own, so it can send what WsIo refuses.
    let config = WebSocketConfig::default().max_message_size(None);
    let peer = WebSocketStream::from_raw_socket(b, Role::Server, Some(config)).await;
    (io, peer)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn read_to_end(io: &mut WsIo<DuplexStream>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io.read_to_end(&mut out).await.map(|_| out)
}

#[tokio::test]
async fn writes_become_binary_messages_of_at_most_64_kib() {
    let (mut io, mut peer) = pair().await;
    let data = pattern(150 * 1024);
    io.write_all(&data).await.unwrap();
    io.write_all(b"tail").await.unwrap();
    io.flush().await.unwrap();
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while got.len() < data.len() + 4 {
        match peer.next().await.unwrap().unwrap() {
            Message::Binary(b) => {
                sizes.push(b.len());
                got.extend_from_slice(&b);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sizes, [MAX_WRITE, MAX_WRITE, 150 * 1024 - 2 * MAX_WRITE, 4]);
    assert_eq!(&got[..data.len()], &data[..]);
    assert_eq!(&got[data.len()..], b"tail");
}

#[tokio::test]
async fn message_boundaries_mean_nothing_and_close_is_eof() {
    let (mut io, mut peer) = pair().await;
    let data = pattern(200 * 1024);
    // Uneven pieces, an empty message and a pong in between.
    let mut sent = 0;
    for (i, size) in [1usize, 0, 9, 70_000, 3, 100_000]
        .iter()
        .cycle()
        .enumerate()
    {
        let end = (sent + size).min(data.len());
        let piece = Bytes::copy_from_slice(&data[sent..end]);
        peer.feed(Message::Binary(piece)).await.unwrap();
        if i == 2 {
            peer.feed(Message::Pong(Bytes::from_static(b"p")))
                .await
                .unwrap();
        }
        sent = end;
        if sent == data.len() {
            break;
        }
    }
    peer.close(None).await.unwrap();
    // Every byte, then a clean end: `read_to_end` stops at Ok(0).
    assert_eq!(read_to_end(&mut io).await.unwrap(), data);
    let mut more = [0u8; 8];
    assert_eq!(io.read(&mut more).await.unwrap(), 0, "EOF stays EOF");
}

#[tokio::test]
async fn pings_are_answered_while_the_link_reads() {
    let (mut io, mut peer) = pair().await;
    let reader = tokio::spawn(async move { read_to_end(&mut io).await });
    peer.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    match peer.next().await.unwrap().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    peer.send(Message::Binary(Bytes::from_static(b"after")))
        .await
        .unwrap();
    peer.close(None).await.unwrap();
    assert_eq!(reader.await.unwrap().unwrap(), b"after");
}

#[tokio::test]
async fn an_oversized_message_is_refused_not_buffered() {
    let (mut io, mut peer) = pair().await;
    let fits = Bytes::from(pattern(MAX_MESSAGE));
    let too_big = Bytes::from(pattern(MAX_MESSAGE + 1));
    let sender = tokio::spawn(async move {
        peer.send(Message::Binary(fits)).await?;
        peer.send(Message::Binary(too_big)).await
    });
    let mut got = vec![0u8; MAX_MESSAGE];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(got, pattern(MAX_MESSAGE), "the largest message fits");
    let err = io.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    // The refusal is no clean end either, read again.
    drop(io);
    let _ = sender.await;
}

#[tokio::test]
async fn a_dropped_connection_and_a_text_message_are_aborts_not_ends() {
    let (mut io, mut peer) = pair().await;
    peer.send(Message::Binary(Bytes::from_static(b"partial")))
        .await
        .unwrap();
    drop(peer);
    let mut got = [0u8; 7];
    io.read_exact(&mut got).await.unwrap();
    let err = io.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");

    let (mut io, mut peer) = pair().await;
    peer.send(Message::Text("hello".into())).await.unwrap();
    let err = io.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn shutdown_sends_a_close_the_peer_reads_as_the_end() {
    let (mut io, mut peer) = pair().await;
    io.write_all(b"last words").await.unwrap();
    io.shutdown().await.unwrap();
    assert_eq!(
        peer.next().await.unwrap().unwrap(),
        Message::Binary(Bytes::from_static(b"last words"))
    );
    assert!(matches!(
        peer.next().await.unwrap().unwrap(),
        Message::Close(_)
    ));
}

/// A dialer's and an acceptor's end of one mux link, carried in WebSocket
/// messages over an in-memory pipe.
async fn ws_link_pair() -> (
    (crate::LinkHandle, crate::Incoming),
    (crate::LinkHandle, crate::Incoming),
) {
    use crate::mux::{spawn, Config, Role as MuxRole};
    let (a, b) = tokio::io::duplex(64 * 1024);
    let client = WsIo::new(a, Vec::new(), Role::Client).await;
    let server = WsIo::new(b, Vec::new(), Role::Server).await;
    let config = Config::default();
    let window = config.window;
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    let dialer = spawn(
        cr,
        cw,
        BytesMut::new(),
        MuxRole::Dialer,
        config.clone(),
        window,
    );
    let acceptor = spawn(sr, sw, BytesMut::new(), MuxRole::Acceptor, config, window);
    (dialer, acceptor)
}

#[tokio::test]
async fn a_link_runs_over_websockets_with_every_byte_in_order() {
    let ((dialer, _), (_acceptor, mut incoming)) = ws_link_pair().await;
    let up = pattern(3 << 20);
    let stream = std::sync::Arc::new(dialer.open("web", "test").await.unwrap());
    let echo = tokio::spawn(async move {
        // Echo everything back, then end.
        let s = incoming.next().await.unwrap().accept().await.unwrap();
        while let Some(chunk) = s.recv().await.unwrap() {
            s.send(chunk).await.unwrap();
        }
        s.finish().await.unwrap();
    });
    let sender = {
        let up = up.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            for chunk in up.chunks(100_000) {
                stream.send(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            stream.finish().await.unwrap();
        })
    };
    let mut down = Vec::new();
    while let Some(chunk) = stream.recv().await.unwrap() {
        down.extend_from_slice(&chunk);
    }
    sender.await.unwrap();
    echo.await.unwrap();
    assert_eq!(down.len(), up.len());
    assert!(down == up, "the echo differs from what was sent");
    assert!(dialer.ping().await.is_ok());
}

#[tokio::test]
async fn a_link_closed_on_one_side_ends_cleanly_on_the_other() {
    let ((dialer, _), (acceptor, _)) = ws_link_pair().await;
    assert!(dialer.ping().await.is_ok());
    dialer.close("the agent is shutting down");
    tokio::time::timeout(std::time::Duration::from_secs(5), acceptor.closed())
        .await
        .expect("the other side notices");
    // A Close message, read as the end of the stream: not an abort.
    assert_eq!(
        acceptor.close_reason().as_deref(),
        Some("link closed: the peer closed the link")
    );
}
