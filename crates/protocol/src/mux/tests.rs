//! Mux behaviour over in-memory pipes with small buffers.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::*;
use crate::error::StreamError;
use crate::frame::{Frame, FrameType};
use crate::FrameCodec;
use tokio_util::codec::Encoder;

const T: Duration = Duration::from_secs(10);

pub(super) fn small() -> Config {
    Config {
        window: 16 * 1024,
        max_data: 4 * 1024,
        ..Config::default()
    }
}

pub(super) fn pair(config: Config) -> ((LinkHandle, Incoming), (LinkHandle, Incoming)) {
    let (a, b) = tokio::io::duplex(1024);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let window = config.window;
    let dialer = spawn(
        ar,
        aw,
        BytesMut::new(),
        Role::Dialer,
        config.clone(),
        window,
    );
    let acceptor = spawn(br, bw, BytesMut::new(), Role::Acceptor, config, window);
    (dialer, acceptor)
}

pub(super) async fn read_all(s: &MuxStream) -> Result<Vec<u8>, StreamError> {
    let mut out = Vec::new();
    while let Some(chunk) = s.recv().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[tokio::test]
async fn data_both_ways_with_half_close() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    let s = dialer.open("web", "1.2.3.4:5").await.unwrap();
    // Data may follow OPEN before ACCEPT.
    let sender = async {
        s.send(Bytes::from(payload.clone())).await.unwrap();
        s.finish().await.unwrap();
        read_all(&s).await.unwrap()
    };
    let server = async {
        let inc = timeout(T, incoming.next()).await.unwrap().unwrap();
        assert_eq!(
            (inc.channel.as_str(), inc.peer.as_str()),
            ("web", "1.2.3.4:5")
        );
        let s = inc.accept().await.unwrap();
        let got = read_all(&s).await.unwrap();
        // The reply goes out after the request's FIN arrived: half-close.
        s.send(Bytes::from(got.iter().rev().copied().collect::<Vec<_>>()))
            .await
            .unwrap();
        s.finish().await.unwrap();
        got
    };
    let (reply, got) = timeout(T, async { tokio::join!(sender, server) })
        .await
        .unwrap();
    assert_eq!(got, payload);
    assert_eq!(reply, payload.iter().rev().copied().collect::<Vec<_>>());
}

#[tokio::test]
async fn refuse_reaches_the_opener() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let s = dialer.open("nope", "x").await.unwrap();
    incoming.next().await.unwrap().refuse("no such channel");
    assert_eq!(
        timeout(T, s.accepted()).await.unwrap(),
        Err(StreamError::Refused("no such channel".into()))
    );
    assert!(matches!(s.recv().await, Err(StreamError::Refused(_))));
}

#[tokio::test]
async fn a_stalled_stream_does_not_hold_back_another() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let stalled = dialer.open("a", "").await.unwrap();
    let busy = dialer.open("b", "").await.unwrap();
    let inc_a = incoming.next().await.unwrap().accept().await.unwrap();
    let inc_b = incoming.next().await.unwrap().accept().await.unwrap();
    // Fill the stalled stream's window; nobody reads it.
    let fill = tokio::spawn(async move {
        let _ = inc_a.send(Bytes::from(vec![1u8; 1 << 20])).await;
        inc_a
    });
    let data = vec![9u8; 4 << 20];
    let d = data.clone();
    let writer = tokio::spawn(async move {
        inc_b.send(Bytes::from(d)).await.unwrap();
        inc_b.finish().await.unwrap();
        inc_b
    });
    let got = timeout(T, read_all(&busy))
        .await
        .expect("busy stream starved")
        .unwrap();
    assert_eq!(got.len(), data.len());
    // The stalled stream holds at most one window.
    let queued: usize = {
        let streams = stalled.link.streams();
        let st = streams.get(&stalled.id()).unwrap().lock();
        st.inbound.len()
    };
    assert!(queued <= 16 * 1024, "{queued} bytes queued");
    drop(writer);
    fill.abort();
}

#[tokio::test]
async fn data_beyond_credit_closes_the_link() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (br, bw) = tokio::io::split(b);
    let (link, mut incoming) = spawn(br, bw, BytesMut::new(), Role::Acceptor, small(), 16 * 1024);
    let (mut raw_r, mut raw_w) = tokio::io::split(a);
    let mut wire = BytesMut::new();
    FrameCodec
        .encode(
            Frame::new(FrameType::Open, 2, crate::encode_open("x", "", None)),
            &mut wire,
        )
        .unwrap();
    FrameCodec
        .encode(
            Frame::new(FrameType::Data, 2, Bytes::from(vec![0u8; 16 * 1024 + 1])),
            &mut wire,
        )
        .unwrap();
    raw_w.write_all(&wire).await.unwrap();
    let inc = incoming.next().await.unwrap();
    timeout(T, link.closed()).await.unwrap();
    assert!(
        link.close_reason().unwrap().contains("exceed"),
        "{:?}",
        link.close_reason()
    );
    assert!(matches!(
        inc.stream.recv().await,
        Err(StreamError::LinkClosed(_))
    ));
    let mut rest = Vec::new();
    let _ = timeout(T, raw_r.read_to_end(&mut rest)).await;
}

#[tokio::test]
async fn a_silent_peer_closes_the_link_and_a_chatty_one_keeps_it() {
    let config = Config {
        idle_timeout: Duration::from_millis(300),
        ping_interval: Duration::from_secs(3600),
        ..small()
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let (br, bw) = tokio::io::split(b);
    let (link, _incoming) = spawn(br, bw, BytesMut::new(), Role::Acceptor, config, 16 * 1024);
    let (_raw_r, mut raw_w) = tokio::io::split(a);
    // A PING every 100 ms for 1 s: three idle timeouts pass, the link stays.
    let mut ping = BytesMut::new();
    FrameCodec
        .encode(
            Frame::new(FrameType::Ping, 0, Bytes::from_static(&[0; 8])),
            &mut ping,
        )
        .unwrap();
    for _ in 0..10 {
        raw_w.write_all(&ping).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !link.is_closed(),
            "closed while the peer talked: {:?}",
            link.close_reason()
        );
    }
    // Then silence: the link closes, saying why.
    timeout(T, link.closed()).await.unwrap();
    let reason = link.close_reason().unwrap();
    assert!(reason.contains("no frame for 0.3 s"), "{reason}");
}

#[tokio::test]
async fn closing_the_link_fails_open_streams() {
    let ((dialer, _), (acceptor, mut incoming)) = pair(small());
    let s = dialer.open("web", "").await.unwrap();
    let _inc = incoming.next().await.unwrap();
    acceptor.close("shutting down");
    let err = timeout(T, s.recv()).await.unwrap().unwrap_err();
    assert!(matches!(err, StreamError::LinkClosed(_)), "{err}");
    assert!(dialer.open("web", "").await.is_err() || timeout(T, dialer.closed()).await.is_ok());
}

#[tokio::test]
async fn ping_measures_rtt() {
    let config = Config {
        ping_interval: Duration::from_millis(20),
        ..small()
    };
    let ((dialer, _), _acceptor) = pair(config);
    timeout(T, async {
        while dialer.rtt().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn ping_now_needs_no_timer_and_waits_for_an_answer() {
    // The periodic PING is 10 s away; `ping` does not wait for it.
    let ((dialer, _), _acceptor) = pair(small());
    let rtt = timeout(Duration::from_millis(100), dialer.ping()).await;
    assert!(rtt.unwrap().is_ok());

    // A peer that reads nothing answers nothing.
    let (a, _silent) = tokio::io::duplex(64 * 1024);
    let (ar, aw) = tokio::io::split(a);
    let config = small();
    let (link, _) = spawn(ar, aw, BytesMut::new(), Role::Dialer, config, 16 * 1024);
    assert!(timeout(Duration::from_secs(5), link.ping()).await.is_err());
    let waiting = tokio::spawn({
        let link = link.clone();
        async move { link.ping().await }
    });
    tokio::task::yield_now().await;
    link.close("test");
    assert!(matches!(
        waiting.await.unwrap(),
        Err(StreamError::LinkClosed(_))
    ));
}

#[tokio::test]
async fn dropping_a_stream_resets_it_on_the_peer() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let s = dialer.open("web", "").await.unwrap();
    let inc = incoming.next().await.unwrap().accept().await.unwrap();
    drop(s);
    assert!(matches!(
        timeout(T, inc.recv()).await.unwrap(),
        Err(StreamError::Reset(_))
    ));
    timeout(T, async {
        while dialer.stream_count() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn frames_that_came_with_the_handshake_are_served_without_another_read() {
    // The peer wrote 101 + OPEN + DATA in one go; the dialer read them all
    // with the answer. Nothing more arrives, yet the stream must appear.
    let (quiet, b) = tokio::io::duplex(1024);
    let (br, bw) = tokio::io::split(b);
    let mut initial = BytesMut::new();
    FrameCodec
        .encode(
            Frame::new(FrameType::Open, 1, crate::encode_open("web", "u", None)),
            &mut initial,
        )
        .unwrap();
    FrameCodec
        .encode(
            Frame::new(FrameType::Data, 1, Bytes::from_static(b"GET /")),
            &mut initial,
        )
        .unwrap();
    let (_link, mut incoming) = spawn(br, bw, initial, Role::Dialer, small(), 16 * 1024);
    let stream = timeout(T, incoming.next())
        .await
        .expect("OPEN left undecoded")
        .unwrap();
    let stream = stream.accept().await.unwrap();
    assert_eq!(
        &timeout(T, stream.recv()).await.unwrap().unwrap().unwrap()[..],
        b"GET /"
    );
    drop(quiet);
}

/// A reply that is already waiting in the local socket leaves in one frame,
/// not in pieces that each cost a frame, a read and a write on both sides.
#[tokio::test]
async fn a_waiting_reply_crosses_in_one_chunk() {
    let ((dialer, _), (_, mut incoming)) = pair(Config {
        max_data: 64 * 1024,
        ..Config::default()
    });
    let opened = dialer.open("web", "").await.unwrap();
    let served = incoming.next().await.unwrap().accept().await.unwrap();
    let (local, mut far) = tokio::io::duplex(64 * 1024);
    let reply: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    far.write_all(&reply).await.unwrap();
    let (read, write) = tokio::io::split(local);
    let relaying = tokio::spawn(crate::relay(served, read, write));
    let first = timeout(T, opened.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.len(), reply.len(), "the reply was cut into pieces");
    assert_eq!(&first[..], &reply[..]);
    drop(far);
    opened.finish().await.unwrap();
    assert!(timeout(T, opened.recv()).await.unwrap().unwrap().is_none());
    timeout(T, relaying).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn a_burst_of_ten_thousand_resets_to_a_reading_peer_keeps_the_link() {
    let ((dialer, _), (acceptor, mut incoming)) = pair(Config::default());
    // The peer reads everything: it takes each stream as it arrives.
    let taker = tokio::spawn(async move {
        let mut taken = Vec::new();
        for _ in 0..10_000 {
            taken.push(incoming.next().await.unwrap());
        }
        (taken, incoming)
    });
    let mut opened = Vec::new();
    for _ in 0..10_000 {
        opened.push(dialer.open("web", "user").await.unwrap());
    }
    let (taken, mut incoming) = timeout(T, taker).await.unwrap().unwrap();
    // All dropped at once, from code that cannot wait: 10,000 RESETs.
    drop(opened);
    for t in &taken {
        let why = timeout(T, t.stream.failed()).await.expect("a RESET");
        assert_eq!(why, StreamError::Reset("stream closed".into()));
    }
    drop(taken);
    timeout(T, async {
        while acceptor.stream_count() > 0 || dialer.stream_count() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every stream is gone on both sides");
    assert!(!dialer.is_closed(), "{:?}", dialer.close_reason());
    // And the link still carries a new stream.
    let s = dialer.open("web", "user").await.unwrap();
    let t = timeout(T, incoming.next()).await.unwrap().unwrap();
    s.send(Bytes::from_static(b"still here")).await.unwrap();
    let t = t.accept().await.unwrap();
    assert_eq!(
        &timeout(T, t.recv()).await.unwrap().unwrap().unwrap()[..],
        b"still here"
    );
}

/// A bridge counts every chunk it passes, each way, as it passes: also on a
/// bridge that ends in a reset, whose stats never come back.
#[tokio::test]
async fn a_counted_bridge_tells_each_chunk_both_ways() {
    let ((client, _), (_, mut at_server)) = pair(small());
    let ((server, _), (_, mut at_agent)) = pair(small());
    let request: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
    let (replied_tx, replied_rx) = tokio::sync::oneshot::channel();
    let from_client = client.open("tcp", "user").await.unwrap();
    let bridged = async {
        let inbound = at_server.next().await.unwrap().accept().await.unwrap();
        let outbound = server.open("tcp", "user via client").await.unwrap();
        let (mut up, mut down) = (0usize, 0usize);
        let stats =
            crate::relay::bridge_counted(inbound, outbound, |n| up += n, |n| down += n).await;
        (stats, up, down)
    };
    let agent = async {
        let s = at_agent.next().await.unwrap().accept().await.unwrap();
        let got = read_all(&s).await.unwrap();
        s.send(Bytes::from_static(b"partial reply")).await.unwrap();
        // Once the user has it, the agent gives up: the bridge fails, the
        // counts stand.
        replied_rx.await.unwrap();
        s.reset("target went away");
        got
    };
    let user = async {
        from_client
            .send(Bytes::from(request.clone()))
            .await
            .unwrap();
        from_client.finish().await.unwrap();
        let first = from_client.recv().await.unwrap().unwrap();
        assert_eq!(&first[..], b"partial reply");
        replied_tx.send(()).unwrap();
        read_all(&from_client).await
    };
    let ((stats, up, down), got, rest) = timeout(T, async { tokio::join!(bridged, agent, user) })
        .await
        .unwrap();
    assert_eq!(got, request);
    assert!(rest.is_err(), "the user sees the reset: {rest:?}");
    assert!(stats.is_err(), "{stats:?}");
    assert_eq!(up, request.len());
    assert_eq!(down, b"partial reply".len());
}
