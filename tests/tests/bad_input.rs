//! Hostile and broken input: each is turned away with a clear answer, and
//! afterwards an ordinary user still gets through the same server.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::procs::{http_get, Proc, Server};
use uptun_e2e::{bounded, targets};

/// Sends `request` and reads until the server closes the connection.
async fn ask(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    bounded("the server's answer", s.read_to_end(&mut answer))
        .await
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn agent_request(token: &str) -> String {
    format!(
        "HEAD /_uptun/link HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nAuthorization: Bearer {token}\r\nUptun-Version: 1\r\nUptun-Channels: evil\r\n\r\n"
    )
}

async fn still_serves(server: &Server) {
    let (status, body) = http_get(server.addr, "/hello").await.unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello from the target\n"[..]),
        "after bad input"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_the_server_keeps_serving() {
    let web = targets::http().await;
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server
        .agent(&[format!("web={web}"), format!("tcp={echo}")])
        .await;

    // Garbage: a raw user, relayed (here to the echo target) and nothing more.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    let echoed = {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(&garbage).await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        bounded("garbage echo", s.read_to_end(&mut back))
            .await
            .unwrap();
        back
    };
    assert_eq!(echoed, garbage);
    still_serves(&server).await;

    // A wrong token, and none at all: 401 with the reason.
    let answer = ask(server.addr, agent_request("not-the-token").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("wrong token"), "{answer}");
    assert!(
        !answer.contains(&server.token),
        "the real token leaked: {answer}"
    );
    let no_token = agent_request("x").replace("Authorization: Bearer x\r\n", "");
    let answer = ask(server.addr, no_token.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 401") && answer.contains("missing token"),
        "{answer}"
    );
    server.proc.wait_log("refused link").await;
    still_serves(&server).await;

    // A header larger than 16 KiB: 431.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let answer = ask(server.addr, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    still_serves(&server).await;

    // A wrong protocol version: 426.
    let answer = ask(
        server.addr,
        agent_request(&server.token)
            .replace("Uptun-Version: 1", "Uptun-Version: 7")
            .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");

    // A valid link that then announces a 4 GiB frame: that link is closed
    // and logged with its peer; the real agent's link is untouched.
    let mut link = TcpStream::connect(server.addr).await.unwrap();
    let local = link.local_addr().unwrap();
    link.write_all(agent_request(&server.token).as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 12];
    bounded("101", link.read_exact(&mut head)).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    link.write_all(&[0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 2])
        .await
        .unwrap();
    let mut rest = Vec::new();
    bounded(
        "the server closing the bad link",
        link.read_to_end(&mut rest),
    )
    .await
    .unwrap();
    let log = server
        .proc
        .wait_log("frame length 4294967295 exceeds")
        .await;
    let line = log
        .lines()
        .find(|l| l.contains("frame length 4294967295"))
        .unwrap();
    assert!(
        line.contains(&local.to_string()),
        "the log line names the peer: {line}"
    );
    still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_with_a_wrong_token_says_why_and_exits_2() {
    let server = Server::start(&[]).await;
    let mut agent = Proc::spawn(
        "local-agent",
        &[
            "--server",
            &server.url(),
            "--token",
            "wrong",
            "--channel",
            "web=127.0.0.1:9",
        ],
    );
    assert_eq!(agent.wait_exit().await, Some(2));
    let log = agent.log();
    assert!(log.contains("401") && log.contains("wrong token"), "{log}");

    let mut client = Proc::spawn(
        "local-agent",
        &[
            "connect",
            "--server",
            &server.url(),
            "--token",
            "wrong",
            "web",
        ],
    );
    assert_eq!(client.wait_exit().await, Some(2));
    assert!(client.log().contains("wrong token"), "{}", client.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_retried_with_a_clear_line() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let agent = Proc::spawn(
        "local-agent",
        &[
            "--server",
            &format!("http://{dead}"),
            "--token",
            "t",
            "--channel",
            "web=127.0.0.1:9",
        ],
    );
    let log = agent.wait_log("reconnecting in").await;
    assert!(
        log.contains(&format!("could not reach the server at http://{dead}")),
        "{log}"
    );
}
