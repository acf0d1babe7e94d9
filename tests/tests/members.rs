//! Several agents on one channel: the least-loaded gets new users, a member
//! that is dead, refuses or never answers costs a retry on another instead of
//! the user, and a member that dies takes only its own streams with it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::hostile::{frame, writer_blocked_toward, Agent, ACCEPT, OPEN};
use uptun_e2e::procs::{http_get, Server};
use uptun_e2e::{bounded, targets, wait_for, WAIT};

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_never_accepts_gives_a_504_and_raw_users_a_reset() {
    let server = Server::start(&["--connect-timeout", "300ms"]).await;
    let mut mute = Agent::connect(server.addr, &server.token, "web, tcp").await;
    server.wait_channels(&["web", "tcp"]).await;

    let (status, body) = bounded("a web user", http_get(server.addr, "/"))
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("channel \"web\""), "{body}");
    mute.next_frame_of(OPEN).await;

    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(b"\x00hello").await.unwrap();
    let mut buf = [0u8; 16];
    let end = bounded("the raw user's end", raw.read(&mut buf)).await;
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a raw user turned away is reset, not closed cleanly"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_or_mute_member_costs_a_retry_not_the_user() {
    let web = targets::http().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // One good member beside one whose target is down, then beside one that
    // never answers an OPEN: each failure is retried once on the other.
    for bad in ["refusing", "mute"] {
        let server = Server::start(&["--connect-timeout", "300ms"]).await;
        let _good = server.agent(&[format!("web={web}")]).await;
        let _refusing;
        let _mute;
        if bad == "refusing" {
            _refusing = server.agent(&[format!("web={dead}")]).await;
        } else {
            _mute = Agent::connect(server.addr, &server.token, "web").await;
        }
        server.wait_agents(2).await;
        for i in 0..10 {
            let (status, body) = bounded("a request", http_get(server.addr, "/hello"))
                .await
                .unwrap();
            assert_eq!(
                (status, body.as_slice()),
                (200, &b"hello from the target\n"[..]),
                "request {i} beside a {bad} member"
            );
        }
    }
}

/// Sends `data` on an open echo stream and checks it comes back intact.
async fn echo_once(user: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    user.write_all(data).await?;
    let mut back = vec![0u8; data.len()];
    user.read_exact(&mut back).await?;
    assert_eq!(sha256_hex(&back), sha256_hex(data), "echo corrupted");
    Ok(())
}

/// The connect timeout bounds the whole wait for a member, not only the
/// wait for its ACCEPT: on a member that reads nothing, the server's writer
/// blocks, its stream queue fills, and queueing the OPEN itself waits. That
/// wait must end at the connect timeout too, not at the link's write
/// timeout (30 s), or users of a dead member are neither answered nor
/// moved in time.
#[tokio::test(flavor = "multi_thread")]
async fn users_of_a_member_that_reads_nothing_are_turned_away_within_the_connect_timeout() {
    let server = Server::start(&["--connect-timeout", "3s"]).await;
    let mut stuck = Agent::connect_with_rcvbuf(server.addr, &server.token, "tcp", Some(4096)).await;
    server.wait_channels(&["tcp"]).await;

    // 40 users, ACCEPTed blind (the server's stream ids are odd and taken
    // in order), each sending its 256 KiB window: 10 MiB that the agent
    // never reads, more than the socket buffers and the stream queue hold.
    let mut fillers = Vec::new();
    for i in 0..40u64 {
        let mut user = TcpStream::connect(server.addr).await.unwrap();
        let mut data = pattern(i, 256 * 1024);
        data[0] = 0;
        fillers.push(tokio::spawn(async move {
            let _ = user.write_all(&data).await;
            user
        }));
    }
    wait_for("40 streams on the stuck member", WAIT, || async {
        (server.streams_per_agent().await == [40]).then_some(())
    })
    .await;
    for i in 0..40u32 {
        stuck.send(&frame(ACCEPT, 2 * i + 1, &[])).await;
    }
    // The server's writer to the agent blocks once the server's socket has
    // a few MiB queued (4 MiB of send buffer at most); the data still to
    // come fills the stream queue behind it.
    let agent_port = stuck.socket.local_addr().unwrap().port();
    wait_for(
        "the server's writer to the agent to fill its socket",
        WAIT,
        || async { writer_blocked_toward(agent_port).then_some(()) },
    )
    .await;
    let _fillers = fillers;

    let probes: Vec<_> = (0..50u64)
        .map(|i| {
            let addr = server.addr;
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let mut user = TcpStream::connect(addr).await.unwrap();
                let mut hello = pattern(100 + i, 1024);
                hello[0] = 0;
                user.write_all(&hello).await.unwrap();
                let mut buf = [0u8; 16];
                let end = user.read(&mut buf).await.map_err(|e| e.kind());
                (end, started.elapsed())
            })
        })
        .collect();
    for (i, probe) in probes.into_iter().enumerate() {
        let (end, took) = bounded("a user of a stuck member", probe).await.unwrap();
        assert_eq!(
            end,
            Err(std::io::ErrorKind::ConnectionReset),
            "user {i} must be reset"
        );
        assert!(
            took < std::time::Duration::from_secs(8),
            "user {i} was turned away after {took:?}, with a 3 s connect timeout"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_one_of_two_members_keeps_the_channel_and_the_survivors_streams() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let mut first = server.agent(&[format!("tcp={echo}")]).await;
    let _second = server.agent(&[format!("tcp={echo}")]).await;
    server.wait_agents(2).await;

    let mut users = Vec::new();
    for i in 0..100u64 {
        let mut user = TcpStream::connect(server.addr).await.unwrap();
        let mut hello = pattern(i, 1024);
        hello[0] = 0;
        bounded("an echo", echo_once(&mut user, &hello))
            .await
            .unwrap();
        users.push(user);
    }
    let counts = server.streams_per_agent().await;
    assert_eq!(counts.iter().sum::<usize>(), 100, "{counts:?}");
    assert!(
        counts.iter().all(|&n| (40..=60).contains(&n)),
        "spread {counts:?}"
    );

    first.child.kill().unwrap();
    server.wait_agents(1).await;
    let survivors = server.streams_per_agent().await[0];

    // The next 20 users all get through the surviving member.
    for i in 0..20u64 {
        let mut user = TcpStream::connect(server.addr).await.unwrap();
        let mut data = pattern(1000 + i, 64 * 1024);
        data[0] = 0;
        bounded("a user after the kill", echo_once(&mut user, &data))
            .await
            .unwrap();
    }
    // The survivor's streams carry on intact; the dead member's are reset.
    let (mut intact, mut reset) = (0, 0);
    for (i, mut user) in users.into_iter().enumerate() {
        let data = pattern(2000 + i as u64, 1 << 20);
        match bounded("an old stream", echo_once(&mut user, &data)).await {
            Ok(()) => intact += 1,
            // A reset seen by the read, or by a write after it (EPIPE).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                reset += 1
            }
            Err(e) => panic!("old stream {i} ended with {e}, not a reset"),
        }
    }
    assert_eq!((intact, reset), (survivors, 100 - survivors));
}
