//! Raw TCP users, half-close, slow readers and reconnects.

use std::process::Command;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{connect_with_stdin, http_get, Server};
use uptun_e2e::{bounded, half_closed_exchange, targets, wait_for, WAIT};

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_streams_of_eight_mib_echo_intact() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    echo_streams_intact(server.addr, 64, 8 << 20, 100).await;
}

/// `count` users at once each send `size` bytes through an echo channel,
/// half-close, and must get back exactly what they sent.
async fn echo_streams_intact(addr: std::net::SocketAddr, count: u64, size: usize, seed: u64) {
    let streams: Vec<_> = (0..count)
        .map(|i| {
            tokio::spawn(async move {
                let mut data = pattern(seed + i, size);
                data[0] = 0; // not an HTTP method nor SSH-: a raw user
                let want = sha256_hex(&data);
                let got = half_closed_exchange(addr, data).await;
                assert_eq!(got.len(), size, "stream {i} length");
                assert_eq!(sha256_hex(&got), want, "stream {i} checksum");
            })
        })
        .collect();
    bounded(&format!("{count} echo streams"), async {
        for s in streams {
            s.await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn half_closed_users_get_the_whole_reply() {
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={digest}")]).await;
    let mut data = pattern(9, 3 << 20);
    data[0] = 0;
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));

    // Directly on the public port.
    let got = bounded(
        "raw half-close",
        half_closed_exchange(server.addr, data.clone()),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&got), want);

    // Through `local-agent forward`: a client link, bridged to the agent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let forward = server.client("forward", &[&format!("127.0.0.1:{port}=tcp")]);
    forward.wait_log("forwarding").await;
    let local = format!("127.0.0.1:{port}").parse().unwrap();
    let got = bounded(
        "forward half-close",
        half_closed_exchange(local, data.clone()),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&got), want);

    // Through `local-agent connect`: stdin EOF is the half-close.
    let out = connect_with_stdin(&server.url(), &server.client_token, "tcp", data).await;
    assert!(
        out.status.success(),
        "connect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_that_stops_reading_holds_back_nobody_and_memory_stays_bounded() {
    let (flood, written) = targets::flood(5, 1 << 30).await;
    let web = targets::http().await;
    let server = Server::start(&[]).await;
    let agent = server
        .agent(&[format!("tcp={flood}"), format!("web={web}")])
        .await;

    // The stalled user: opens a stream the target floods, and never reads.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(b"\0stalled").await.unwrap();
    wait_for("the flood to start", WAIT, || async {
        (written.load(Ordering::Relaxed) > 1 << 20).then_some(())
    })
    .await;

    // Another user on the same link moves 64 MiB meanwhile.
    let (status, body) = bounded(
        "a transfer beside the stalled stream",
        http_get(server.addr, "/bytes/67108864/4"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(4, 64 << 20)));

    // Nothing buffered the flood without bound: it is stuck at what the
    // socket buffers and one stream window hold, and so are the processes.
    let flooded = written.load(Ordering::Relaxed);
    assert!(
        flooded < 64 << 20,
        "{flooded} bytes left the flood target: something buffers without bound"
    );
    let (server_rss, agent_rss) = (server.proc.rss_kib(), agent.rss_kib());
    assert!(
        server_rss > 0 && server_rss < 64 * 1024,
        "server RSS {server_rss} KiB"
    );
    assert!(
        agent_rss > 0 && agent_rss < 64 * 1024,
        "agent RSS {agent_rss} KiB"
    );

    // The stalled user can still read its data when it resumes.
    let mut first = vec![0u8; 1 << 20];
    bounded("the stalled user resumes", stalled.read_exact(&mut first))
        .await
        .unwrap();
    assert_eq!(first, pattern(5, 1 << 20));
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_reconnect_and_users_ride_out_a_restart() {
    let web = targets::http().await;
    let server = Server::start(&[]).await;
    let agent = server.agent(&[format!("web={web}")]).await;
    let addr = server.addr;
    drop(server);
    agent.wait_log("link lost").await;

    // Same port again: the agent's backoff finds it.
    let server = Server::start_on(&addr.to_string(), &[]).await;
    server.wait_channels(&["web"]).await;
    let (status, body) = http_get(server.addr, "/hello").await.unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello from the target\n"[..])
    );

    // A user that arrives before any agent waits for one (connect timeout).
    let server2 = Server::start(&["--connect-timeout", "60s"]).await;
    let early = tokio::spawn(http_get(server2.addr, "/hello"));
    server2.proc.wait_log("waiting up to").await;
    let _agent2 = server2.agent(&[format!("web={web}")]).await;
    let (status, body) = bounded("the early user", early).await.unwrap().unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello from the target\n"[..])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_asked_to_stop_finishes_its_streams_first() {
    let web = targets::http().await;
    let server = Server::start(&[]).await;
    let mut agent = server.agent(&[format!("web={web}")]).await;

    // A download in flight: the user has read only the start of 64 MiB.
    let len = 64 << 20;
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(
        format!("GET /bytes/{len}/21 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut start = vec![0u8; 1 << 20];
    bounded("the start of the download", user.read_exact(&mut start))
        .await
        .unwrap();

    let term = Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    server.proc.wait_log("the agent is shutting down").await;

    // The download still completes, intact, and then the agent exits cleanly.
    let mut rest = Vec::new();
    bounded("the rest of the download", user.read_to_end(&mut rest))
        .await
        .unwrap();
    drop(user);
    start.extend_from_slice(&rest);
    let body_at = start.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(sha256_hex(&start[body_at..]), sha256_hex(&pattern(21, len)));
    assert_eq!(agent.wait_exit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_with_two_links_gets_streams_on_both_and_data_intact() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server
        .agent_with(&[format!("tcp={echo}")], &["--links", "2"])
        .await;
    server.wait_agents(2).await;

    // Eight users held open at once: the server takes turns between links.
    let mut users = Vec::new();
    for i in 0..8u8 {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        socket.write_all(&[0, i]).await.unwrap();
        let mut back = [0u8; 2];
        bounded("an echo", socket.read_exact(&mut back))
            .await
            .unwrap();
        assert_eq!(back, [0, i]);
        users.push(socket);
    }
    assert_eq!(server.streams_per_agent().await, [4, 4], "streams per link");

    // And bulk data crosses both links intact.
    echo_streams_intact(server.addr, 4, 2 << 20, 300).await;
    drop(users);
}
