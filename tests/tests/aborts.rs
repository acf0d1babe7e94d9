//! Abnormal ends reach both sockets as a TCP reset, never as a clean FIN: a
//! download cut short by a dead agent must not look complete to
//! `nc host port > file`, nor an upload cut short to the target.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use uptun_e2e::data::pattern;
use uptun_e2e::procs::Server;
use uptun_e2e::targets::{self, Ending};
use uptun_e2e::{bounded, wait_for, WAIT};

/// How a user's download ended, and when.
#[derive(Debug)]
struct Cut {
    ending: Result<(), std::io::ErrorKind>,
    at: Instant,
}

/// A raw user that reads an endless transfer: it says when 1 MiB has come
/// through, then reads on until the connection ends.
async fn downloader(addr: std::net::SocketAddr, started: mpsc::Sender<()>) -> Cut {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    // Not an HTTP method nor SSH-: the tcp channel, without the sniff wait.
    socket.write_all(b"\x00go").await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    let mut announced = false;
    let ending = loop {
        match socket.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => total += n,
            Err(e) => break Err(e.kind()),
        }
        if !announced && total >= 1 << 20 {
            announced = true;
            started.send(()).await.unwrap();
        }
    };
    Cut {
        ending,
        at: Instant::now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_agent_resets_every_user_and_a_restarted_agent_serves() {
    let source = targets::endless(3).await;
    let server = Server::start(&[]).await;
    let mut agent = server.agent(&[format!("tcp={source}")]).await;

    let (started_tx, mut started) = mpsc::channel(8);
    let users: Vec<_> = (0..8)
        .map(|_| tokio::spawn(downloader(server.addr, started_tx.clone())))
        .collect();
    for _ in 0..8 {
        bounded("8 transfers under way", started.recv()).await;
    }

    agent.child.kill().unwrap();
    let killed = Instant::now();
    for user in users {
        let cut = bounded("a cut transfer", user).await.unwrap();
        assert_eq!(
            cut.ending,
            Err(std::io::ErrorKind::ConnectionReset),
            "a transfer cut by a dead agent must end in a reset, not a clean EOF"
        );
        let after = cut.at.duration_since(killed);
        assert!(
            after < Duration::from_secs(1),
            "reset came {after:?} after the kill"
        );
    }

    // A new agent serves at once: the first byte arrives within 2 s of its start.
    let restarted = Instant::now();
    let _agent = server.agent(&[format!("tcp={source}")]).await;
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(b"\x00again").await.unwrap();
    let mut first = vec![0u8; 1024];
    bounded("data from the restarted agent", user.read_exact(&mut first))
        .await
        .unwrap();
    assert_eq!(first, pattern(3, 1024));
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "restarted agent served after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_server_resets_the_agents_targets() {
    let (sink, sunk) = targets::sink().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={sink}")]).await;

    // 4 uploads in progress: the target has taken 1 MiB of each before the kill.
    for i in 0..4u64 {
        let addr = server.addr;
        tokio::spawn(async move {
            let mut socket = TcpStream::connect(addr).await.unwrap();
            let mut chunk = pattern(i, 64 * 1024);
            chunk[0] = 0;
            while socket.write_all(&chunk).await.is_ok() {}
        });
    }
    wait_for("4 uploads under way at the target", WAIT, || async {
        (sunk.busy.load(std::sync::atomic::Ordering::SeqCst) == 4).then_some(())
    })
    .await;
    let mut server = server;
    server.proc.child.kill().unwrap();

    let ended = wait_for("the 4 target connections to end", WAIT, || async {
        let endings = sunk.endings.lock().unwrap().clone();
        (endings.len() == 4).then_some(endings)
    })
    .await;
    assert_eq!(
        ended,
        vec![Ending::Reset; 4],
        "targets must see a reset when the link dies, not a clean end"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_the_target_finished_survives_the_agent_dying_before_the_user_read_it() {
    // The target answers 200 KiB and closes; the user reads slowly (a 4 KiB
    // receive buffer), so most of the reply still sits in the server's socket
    // when the agent dies. The reply was complete: the user must get all of
    // it and then a clean end, not a reset that throws the rest away.
    // The target reads the user's 3 bytes first: closing with them unread
    // would make its kernel reset the connection, a real abort.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 3];
        socket.read_exact(&mut request).await.unwrap();
        socket.write_all(&pattern(5, 200 * 1024)).await.unwrap();
        socket.shutdown().await.unwrap();
        let _ = socket.read_to_end(&mut Vec::new()).await;
    });
    let server = Server::start(&[]).await;
    let mut agent = server.agent(&[format!("tcp={source}")]).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut user = socket.connect(server.addr).await.unwrap();
    user.write_all(b"\x00go").await.unwrap();
    let port = user.local_addr().unwrap().port();
    let mut first = [0u8; 1];
    bounded("the first byte", user.read_exact(&mut first))
        .await
        .unwrap();
    // The server has written the whole reply and queued the FIN behind it
    // (its socket toward the user is in FIN_WAIT1), while most of the reply
    // is still unsent: the slow user has read only its first byte.
    wait_for(
        "the whole reply and its FIN queued toward the user",
        WAIT,
        || async { uptun_e2e::hostile::fin_queued_toward(port).then_some(()) },
    )
    .await;
    assert!(uptun_e2e::hostile::unsent_to(port) >= 4 * 1024);
    agent.child.kill().unwrap();
    server.proc.wait_log("agent link down").await;

    let mut got = first.to_vec();
    bounded("the rest of the reply", user.read_to_end(&mut got))
        .await
        .expect("a clean end after the whole reply");
    assert_eq!(got.len(), 200 * 1024);
    assert_eq!(got, pattern(5, 200 * 1024));
}
