//! A connection whose first bytes come after the sniff timeout is first
//! taken for a server-speaks-first protocol; its late bytes must still be
//! judged as if they had come on time, and a link handshake (with its
//! token) must never reach the silent channel's target.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::procs::Server;
use uptun_e2e::targets::{self, Recorded};
use uptun_e2e::{bounded, wait_for, WAIT};

fn handshake(token: &str) -> String {
    format!(
        "HEAD /_uptun/link HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nAuthorization: Bearer {token}\r\nUptun-Version: 1\r\nUptun-Channels: late\r\n\r\n"
    )
}

/// Connects and says nothing until the silence timer has put the connection
/// on the tcp channel: the target has its speculative connection.
async fn silent_user(server: &Server, target: &Recorded) -> TcpStream {
    let before = target.connections.load(Ordering::SeqCst);
    let user = TcpStream::connect(server.addr).await.unwrap();
    wait_for(
        "the speculative stream to reach the target",
        WAIT,
        || async { (target.connections.load(Ordering::SeqCst) > before).then_some(()) },
    )
    .await;
    user
}

async fn read_some(user: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = bounded("an answer", user.read(&mut buf)).await?;
    Ok(buf[..n].to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_handshake_becomes_a_link_and_never_reaches_the_tcp_target() {
    let (tcp, seen) = targets::recorder(None).await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={tcp}")]).await;

    let mut late = silent_user(&server, &seen).await;
    late.write_all(handshake(&server.token).as_bytes())
        .await
        .unwrap();
    let answer = String::from_utf8(read_some(&mut late).await.unwrap()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    server.wait_channels(&["late"]).await;

    wait_for("the speculative stream to end", WAIT, || async {
        (seen.ended.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    assert!(
        seen.bytes.lock().unwrap().is_empty(),
        "the tcp target got bytes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_handshake_after_a_banner_is_reset_not_forwarded() {
    let (tcp, seen) = targets::recorder(Some(b"220 speak after me\r\n")).await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={tcp}")]).await;

    let mut late = silent_user(&server, &seen).await;
    assert_eq!(
        read_some(&mut late).await.unwrap(),
        b"220 speak after me\r\n"
    );
    late.write_all(handshake(&server.token).as_bytes())
        .await
        .unwrap();
    let end = read_some(&mut late).await.map_err(|e| e.kind());
    assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));
    wait_for("the target connection to end", WAIT, || async {
        (seen.ended.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let got = seen.bytes.lock().unwrap().clone();
    assert!(
        !String::from_utf8_lossy(&got).contains(&server.token) && got.is_empty(),
        "the tcp target got {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_request_is_answered_by_web_and_raw_bytes_still_reach_tcp() {
    let web = targets::http().await;
    let (tcp, seen) = targets::recorder(None).await;
    let server = Server::start(&[]).await;
    let _agent = server
        .agent(&[format!("web={web}"), format!("tcp={tcp}")])
        .await;

    let mut late = silent_user(&server, &seen).await;
    late.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    bounded("the web answer", late.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello from the target\n"), "{answer}");

    // A silent raw user whose late bytes are not HTTP stays on tcp, intact.
    let mut raw = silent_user(&server, &seen).await;
    raw.write_all(b"\x00late raw bytes").await.unwrap();
    raw.shutdown().await.unwrap();
    wait_for("the raw bytes at the tcp target", WAIT, || async {
        (seen.bytes.lock().unwrap().as_slice() == b"\x00late raw bytes").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_user_that_half_closes_still_gets_the_targets_answer() {
    // `nc -N host port </dev/null` against a service that answers once the
    // client has finished: the user sends nothing, half-closes after the
    // silence timer put it on tcp, and must still get the answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut all = Vec::new();
                if socket.read_to_end(&mut all).await.is_ok() {
                    let reply = format!("answered after {} bytes and EOF\n", all.len());
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={target}")]).await;

    let mut user = TcpStream::connect(server.addr).await.unwrap();
    wait_for(
        "the speculative stream to reach the target",
        WAIT,
        || async { (accepted.load(Ordering::SeqCst) == 1).then_some(()) },
    )
    .await;
    user.shutdown().await.unwrap();
    let mut answer = Vec::new();
    bounded("the answer and a clean end", user.read_to_end(&mut answer))
        .await
        .unwrap();
    assert_eq!(answer, b"answered after 0 bytes and EOF\n");
}
