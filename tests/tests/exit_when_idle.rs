//! `local-agent --exit-when-idle`: an ephemeral agent exits (0) once no
//! stream has been open for the limit, and when nobody came at all.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::procs::Server;
use uptun_e2e::targets;

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_nobody_uses_exits_after_the_limit() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let started = Instant::now();
    let mut agent = server
        .agent_with(&[format!("tcp={echo}")], &["--exit-when-idle", "2s"])
        .await;
    assert_eq!(agent.wait_exit().await, Some(0), "{}", agent.log());
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        agent.log().contains("exiting (--exit-when-idle)"),
        "{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_exits_two_seconds_after_its_last_stream_ends() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let mut agent = server
        .agent_with(&[format!("tcp={echo}")], &["--exit-when-idle", "2s"])
        .await;
    // A raw user holds a stream open for longer than the limit; it is
    // served all along.
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    let held_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < held_until {
        user.write_all(b"\x00ping").await.unwrap();
        let mut back = [0u8; 5];
        user.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"\x00ping");
        assert!(agent.child.try_wait().unwrap().is_none(), "{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(user);
    let ended = Instant::now();
    assert_eq!(agent.wait_exit().await, Some(0), "{}", agent.log());
    let waited = ended.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "exited {waited:?} after the last stream"
    );
}
