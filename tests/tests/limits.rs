//! Limits: slow and silent connections cannot crowd out users who speak
//! (they are cut at the header deadline, and each source may hold only so
//! many connections that have not yet said what they are), and a link
//! carries at most `--max-streams` streams, the newcomer refused while the
//! established ones go on.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::procs::{http_get, Server};
use uptun_e2e::{bounded, targets};

const SLOW_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ";

/// Opens a connection that starts a request head and never finishes it.
async fn slow(server: &Server) -> TcpStream {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(SLOW_HEAD).await.unwrap();
    socket
}

async fn answer(mut socket: TcpStream) -> String {
    let mut got = Vec::new();
    let _ = bounded("an answer", socket.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_slowloris_connections_do_not_delay_health_or_users() {
    let web = targets::http().await;
    let server = Server::start(&["--header-timeout", "3s"]).await;
    let _agent = server.agent(&[format!("web={web}")]).await;

    let started = Instant::now();
    let mut slow_ones = Vec::new();
    for _ in 0..1000 {
        slow_ones.push(slow(&server).await);
    }

    let asked = Instant::now();
    let (status, body) = http_get(server.addr, "/_uptun/health").await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, body) = http_get(server.addr, "/hello").await.unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello from the target\n"[..])
    );
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "health and a request took {took:?}"
    );

    let answers = slow_ones.into_iter().map(|s| tokio::spawn(answer(s)));
    for a in answers {
        let got = a.await.unwrap();
        assert!(got.starts_with("HTTP/1.1 408"), "a slow one got {got:?}");
    }
    let cut = started.elapsed();
    assert!(
        cut >= Duration::from_secs(3),
        "cut before the deadline: {cut:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_source_may_hold_only_so_many_unclassified_connections() {
    let server = Server::start(&[
        "--max-unclassified-per-source",
        "20",
        "--header-timeout",
        "2s",
    ])
    .await;
    let mut slow_ones = Vec::new();
    for _ in 0..20 {
        slow_ones.push(slow(&server).await);
    }
    // The 21st is turned away at once, with a reason.
    let refused = answer(TcpStream::connect(server.addr).await.unwrap()).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains("too many unclassified connections from your address"),
        "{refused}"
    );
    // Said as the server's own refusal, so a dialer backs off rather than
    // trying the WebSocket form.
    assert!(
        refused.contains("\r\nUptun-Reason: too many unclassified connections"),
        "{refused}"
    );
    // Once the slow ones are cut at the header deadline, room is back.
    for s in slow_ones {
        assert!(answer(s).await.starts_with("HTTP/1.1 408"));
    }
    let (status, _) = http_get(server.addr, "/_uptun/health").await.unwrap();
    assert_eq!(status, 200);
}

/// A connection that is silent past the sniff timeout and then starts a
/// slow head is as unclassified as one that starts on time: it must count
/// against its source's limit, or waiting out the sniff timeout is a way
/// around the slowloris guard.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_head_after_the_sniff_timeout_counts_against_its_source() {
    // No agent serves tcp: the silent connection waits for one (the connect
    // timeout) while it watches for late bytes.
    let server = Server::start(&[
        "--max-unclassified-per-source",
        "5",
        "--header-timeout",
        "5s",
        "--connect-timeout",
        "60s",
    ])
    .await;
    let mut late = TcpStream::connect(server.addr).await.unwrap();
    server
        .proc
        .wait_log("no agent serves the channel yet")
        .await;
    let mut slow_ones = Vec::new();
    for _ in 0..5 {
        slow_ones.push(slow(&server).await);
    }
    // The source holds its five: one more on-time connection is turned away.
    let refused = answer(TcpStream::connect(server.addr).await.unwrap()).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // So is a slow head that starts after the silence.
    late.write_all(SLOW_HEAD).await.unwrap();
    let got = answer(late).await;
    assert!(
        got.starts_with("HTTP/1.1 503") && got.contains("from your address"),
        "a late slow head got {got:?}"
    );
    drop(slow_ones);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_at_its_stream_limit_refuses_the_newcomer_and_keeps_the_rest() {
    let echo = targets::echo().await;
    let server = Server::start(&["--max-streams", "2"]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    let mut held = Vec::new();
    for i in 0..2u8 {
        let mut user = TcpStream::connect(server.addr).await.unwrap();
        user.write_all(&[0, i]).await.unwrap();
        let mut back = [0u8; 2];
        bounded("an echo", user.read_exact(&mut back))
            .await
            .unwrap();
        held.push(user);
    }
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(b"\x00three").await.unwrap();
    let mut buf = [0u8; 8];
    let end = bounded("the third user's end", third.read(&mut buf)).await;
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    server.proc.wait_log("too many streams on this link").await;
    // The two established streams are untouched.
    for (i, user) in held.iter_mut().enumerate() {
        let data = uptun_e2e::data::pattern(i as u64, 256 * 1024);
        let mut data = data;
        data[0] = 0;
        user.write_all(&data).await.unwrap();
        let mut back = vec![0u8; data.len()];
        bounded("an echo after the refusal", user.read_exact(&mut back))
            .await
            .unwrap();
        assert_eq!(back, data);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_holds_at_most_its_links_and_the_extra_one_retries() {
    let echo = targets::echo().await;
    let server = Server::start(&["--max-links-per-token", "1"]).await;
    // Two links asked for, one allowed: the second is refused with 429 and
    // keeps retrying (the limit may free up), while the first serves.
    let agent = server
        .agent_with(&[format!("tcp={echo}")], &["--links", "2"])
        .await;
    agent.wait_log("already holds 1 links").await;
    server.wait_agents(1).await;
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(b"\x00one link").await.unwrap();
    let mut back = [0u8; 9];
    bounded("an echo", user.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(&back, b"\x00one link");
    assert!(
        server.proc.log().contains("status=429"),
        "{}",
        server.proc.log()
    );
}
