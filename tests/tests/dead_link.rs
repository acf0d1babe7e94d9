//! A link whose network path dies without closing is found dead by its
//! PINGs: the server resets that link's users, and the agent reconnects.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::procs::{Proc, Server};
use uptun_e2e::{bounded, targets};

#[tokio::test(flavor = "multi_thread")]
async fn a_silently_dead_link_resets_its_users_and_the_agent_comes_back() {
    let echo = targets::echo().await;
    let server = Server::start(&["--ping-interval", "2s"]).await;
    let (relay, freeze) = targets::freezable_relay(server.addr).await;
    let url = format!("http://{relay}");
    let channel = format!("tcp={echo}");
    let agent = Proc::spawn(
        "local-agent",
        &[
            "--server",
            &url,
            "--token",
            &server.token,
            "--channel",
            &channel,
            "--ping-interval",
            "2s",
        ],
    );
    server.wait_channels(&["tcp"]).await;

    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(b"\x00ping").await.unwrap();
    let mut back = [0u8; 5];
    bounded("an echo", user.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(&back, b"\x00ping");

    freeze.send(true).unwrap();
    let frozen = Instant::now();
    let mut buf = [0u8; 16];
    let end = bounded("the user's end", user.read(&mut buf)).await;
    let after = frozen.elapsed();
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "users of a dead link are reset"
    );
    assert!(
        after < Duration::from_secs(8),
        "dead link found after {after:?}"
    );

    // The agent notices too, reconnects through the (working) relay, and serves.
    agent.wait_log("link lost").await;
    agent.wait_log_count("link up", 2).await;
    server.wait_channels(&["tcp"]).await;
    let mut again = TcpStream::connect(server.addr).await.unwrap();
    again.write_all(b"\x00back").await.unwrap();
    bounded("an echo after the reconnect", again.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(&back, b"\x00back");
}
