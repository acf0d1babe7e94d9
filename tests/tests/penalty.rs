//! Failed link handshakes slow their source down: after five wrong tokens
//! the answers come later and later, while a right token from another
//! connection on the same address is answered at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uptun_e2e::bounded;
use uptun_e2e::hostile::Agent;
use uptun_e2e::procs::Server;

const WRONG: &str = "wrong-token-for-the-penalty-test";

/// One agent handshake with a wrong token, written by hand; returns the
/// whole answer and how long it took to come.
async fn wrong_handshake(addr: SocketAddr) -> (String, Duration) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "HEAD /_uptun/link HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nAuthorization: Bearer {WRONG}\r\nUptun-Version: 1\r\nUptun-Channels: web\r\n\r\n"
    );
    let started = Instant::now();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    bounded("the refusal", socket.read_to_end(&mut answer))
        .await
        .unwrap();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_wrong_tokens_are_slowed_and_a_right_one_is_not() {
    let server = Server::start(&[]).await;
    let mut took = Vec::new();
    for _ in 0..8 {
        let (answer, elapsed) = wrong_handshake(server.addr).await;
        assert!(
            answer.starts_with("HTTP/1.1 401") && answer.contains("wrong token"),
            "{answer}"
        );
        took.push(elapsed);
    }
    // Five free failures, then 250 ms doubling: the 8th waits 1 s.
    for (i, t) in took[..5].iter().enumerate() {
        assert!(*t < Duration::from_secs(1), "failure {} took {t:?}", i + 1);
    }
    assert!(took[5] >= Duration::from_millis(250), "{took:?}");
    assert!(took[7] >= Duration::from_secs(1), "{took:?}");

    // The 9th wrong one waits 2 s; meanwhile a right token from the same
    // address, on another connection, gets its 101 at once.
    let ninth = tokio::spawn(wrong_handshake(server.addr));
    server.proc.wait_log("failures=9").await;
    let started = Instant::now();
    let _agent = Agent::connect(server.addr, &server.token, "web").await;
    let right = started.elapsed();
    assert!(
        !ninth.is_finished(),
        "the right token waited for the wrong one's penalty"
    );
    let (answer, wrong) = bounded("the 9th refusal", ninth).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        wrong >= Duration::from_secs(2) && right < wrong,
        "right {right:?}, wrong {wrong:?}"
    );

    // Each failure is logged with the peer's address, never with the token.
    let log = server.proc.log();
    let line = log.lines().find(|l| l.contains("failures=9")).unwrap();
    assert!(
        line.contains("peer=127.0.0.1:") && line.contains("delay_ms=2000"),
        "{line}"
    );
    assert_eq!(log.matches("refused link").count(), 9, "{log}");
    assert!(!log.contains(WRONG), "{log}");
}
