//! A channel's idle timeout resets users on whom nothing moved for that
//! long, and only them.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::procs::Server;
use uptun_e2e::{bounded, targets};

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_user_is_reset_after_the_channel_idle_timeout_and_a_talking_one_is_not() {
    let echo = targets::echo().await;
    let server = Server::start(&["--idle-timeout", "tcp=1s"]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;

    let mut user = TcpStream::connect(server.addr).await.unwrap();
    // Talking every 400 ms for 2 s: well past the timeout, never idle.
    let mut back = [0u8; 2];
    for i in 0..5u8 {
        user.write_all(&[0, i]).await.unwrap();
        bounded("an echo", user.read_exact(&mut back))
            .await
            .unwrap();
        assert_eq!(back, [0, i]);
        // The pauses are the traffic pattern under test, not a wait.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let quiet_since = Instant::now();
    let end = bounded("the idle cut", user.read(&mut back)).await;
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "an idle cut is an abort"
    );
    let quiet = quiet_since.elapsed();
    assert!(
        quiet >= Duration::from_millis(500) && quiet < Duration::from_secs(5),
        "cut after {quiet:?} of quiet"
    );
}

/// A silent user (nothing within the sniff timeout) whose target says
/// nothing either is as idle as any other: the channel's idle timeout
/// resets it too, rather than leaving the user and the target's
/// connection held until one of them speaks.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_user_with_a_silent_target_is_reset_after_the_idle_timeout() {
    let (quiet, seen) = targets::recorder(None).await;
    let server = Server::start(&["--idle-timeout", "tcp=1s"]).await;
    let _agent = server.agent(&[format!("tcp={quiet}")]).await;

    let started = Instant::now();
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let end = bounded("the idle cut", user.read(&mut buf)).await;
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "an idle cut is an abort"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
    assert_eq!(
        seen.connections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}
