//! Who may do what, and what is never shown: clients need a token of their
//! own, status needs the admin token, and no token reaches a log line.

use uptun_e2e::procs::{http_get, http_get_with, spawn_server, Proc, Server};
use uptun_e2e::{bounded, targets};

/// Runs `local-agent connect` against `url` with `token`; returns the exit
/// code and its log.
async fn connect_once(url: &str, token: &str) -> (Option<i32>, String) {
    let mut client = Proc::spawn(
        "local-agent",
        &["connect", "--server", url, "--token", token, "tcp"],
    );
    let code = client.wait_exit().await;
    (code, client.log())
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_client_token_clients_are_refused_with_the_reason() {
    let args = ["--listen", "127.0.0.1:0", "--agent-token", "agent-only"];
    let (server, addr) = spawn_server(&args, "info").await;
    let url = format!("http://{addr}");
    // Not even the agent token opens a client link: it no longer doubles as one.
    let (code, log) = connect_once(&url, "agent-only").await;
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("403") && log.contains("accepts no clients") && log.contains("--client-token"),
        "{log}"
    );
    // A wrong token hears the same: the server has no client token to match.
    let (code, wrong) = connect_once(&url, "guessed-token").await;
    assert_eq!(code, Some(2), "{wrong}");
    assert!(
        wrong.contains("403") && wrong.contains("accepts no clients"),
        "{wrong}"
    );
    assert!(
        !wrong.contains("wrong token") && !wrong.contains("guessed-token"),
        "{wrong}"
    );
    assert!(
        server
            .log()
            .contains("no --client-token: clients (forward, connect) are refused"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_token_is_not_a_client_token() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    let (code, log) = connect_once(&server.url(), &server.token).await;
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("401")
            && log.contains("this is an agent token")
            && log.contains("--client-token"),
        "{log}"
    );
    // Any other wrong token hears which token clients present, and neither
    // message repeats a token.
    let (code, wrong) = connect_once(&server.url(), "guessed-token").await;
    assert_eq!(code, Some(2), "{wrong}");
    assert!(
        wrong.contains("401")
            && wrong.contains("wrong token: clients")
            && wrong.contains("--client-token"),
        "{wrong}"
    );
    for said in [&log, &wrong, &server.proc.log()] {
        for token in [&server.token, &server.client_token, "guessed-token"] {
            assert!(!said.contains(token), "{token} in {said}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_off_without_an_admin_token_and_health_stays_open() {
    let echo = targets::echo().await;
    let args = ["--listen", "127.0.0.1:0", "--agent-token", "a"];
    let (_server, addr) = spawn_server(&args, "info").await;
    let url = format!("http://{addr}");
    let target = format!("tcp={echo}");
    let args = ["--server", &url, "--token", "a", "--channel", &target];
    let agent = Proc::spawn(
        "local-agent",
        &[&args[..], &["--name", "secret-laptop"]].concat(),
    );
    agent.wait_log("link up: serving channels").await;
    let (status, body) = http_get(addr, "/_uptun/status").await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("status and metrics are off") && body.contains("--admin-token"),
        "{body}"
    );
    assert!(!body.contains("secret-laptop"), "{body}");
    let (status, body) = http_get(addr, "/_uptun/health").await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_wants_the_admin_token_as_a_bearer() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server
        .agent_with(&[format!("tcp={echo}")], &["--name", "secret-laptop"])
        .await;
    for (headers, why) in [
        (String::new(), "status needs the admin token"),
        (
            "Authorization: Bearer nope\r\n".to_string(),
            "wrong admin token",
        ),
        (
            format!("Authorization: Bearer {}\r\n", server.token),
            "wrong admin token",
        ),
        (
            format!("Authorization: Basic {}\r\n", server.admin_token),
            "status needs the admin token",
        ),
    ] {
        let (status, body) = http_get_with(server.addr, "/_uptun/status", &headers)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert!(body.contains(why), "{headers:?}: {body}");
        assert!(!body.contains("secret-laptop") && !body.contains(&server.admin_token));
    }
    let (status, body) = server.status().await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("secret-laptop") && body.contains("tcp"),
        "{body}"
    );
}

/// A frame from raw bytes, not through the crate's encoder.
fn raw_frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_newline_in_a_goaway_reason_stays_on_one_log_line() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&[]).await;
    let mut link = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "HEAD /_uptun/link HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nAuthorization: Bearer {}\r\nUptun-Version: 1\r\nUptun-Channels: evil\r\n\r\n",
        server.token
    );
    link.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = bounded("the 101", link.read(&mut byte)).await.unwrap();
        assert_eq!(n, 1, "closed before answering");
        answer.push(byte[0]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 101"));
    const GOAWAY: u8 = 10;
    let forged = b"bye\n2030-01-01T00:00:00Z  INFO FORGED-LINE agent link up\x1b[2J";
    link.write_all(&raw_frame(GOAWAY, 0, forged)).await.unwrap();

    let log = server.proc.wait_log("peer sent GOAWAY").await;
    assert!(
        !log.lines()
            .any(|l| l.contains("FORGED-LINE") && !l.contains("peer sent GOAWAY")),
        "a peer wrote its own log line:\n{log}"
    );
    assert!(log.contains(r"bye\n2030-01-01T00:00:00Z"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "an escape sequence reached the log:\n{log}"
    );
}

/// Sends `data` to `addr`, half-closes, and reads until the peer closes.
async fn echo_through(addr: std::net::SocketAddr, data: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    bounded("the echo", s.read_to_end(&mut back)).await.unwrap();
    back
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_reaches_a_log_line_at_trace_level() {
    let echo = targets::echo().await;
    let server = Server::start_logged("127.0.0.1:0", "trace", &[]).await;
    let agent = server.agent(&[format!("tcp={echo}")]).await;

    // A client through `forward`, on a port the OS picks.
    let forward = server.client("forward", &["127.0.0.1:0=tcp"]);
    let log = forward.wait_log("forwarding").await;
    let listen = log
        .split("listen=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("the forward's listening address in its log");
    let data = b"through forward, client link and agent link".to_vec();
    assert_eq!(echo_through(listen, &data).await, data);
    // And a raw user straight on the public port.
    assert_eq!(echo_through(server.addr, &data).await, data);
    let (status, _) = server.status().await.unwrap();
    assert_eq!(status, 200);

    // Wrong tokens are refused and are not logged either.
    let wrong = "wrong-token-that-must-not-be-logged";
    let url = server.url();
    let mut bad_agent = Proc::spawn_logged(
        "local-agent",
        &[
            "--server",
            &url,
            "--token",
            wrong,
            "--channel",
            "x=127.0.0.1:9",
        ],
        "trace",
    );
    assert_eq!(bad_agent.wait_exit().await, Some(2));
    let mut bad_client = Proc::spawn_logged(
        "local-agent",
        &["connect", "--server", &url, "--token", wrong, "tcp"],
        "trace",
    );
    assert_eq!(bad_client.wait_exit().await, Some(2));
    server.proc.wait_log("wrong token").await;

    let logs = [
        ("server", server.proc.log()),
        ("agent", agent.log()),
        ("forward", forward.log()),
        ("refused agent", bad_agent.log()),
        ("refused client", bad_client.log()),
    ];
    // The level took, and the link requests were logged, token hidden.
    for (who, log) in &logs[..3] {
        assert!(log.contains("TRACE"), "{who}:\n{log}");
        assert!(log.contains("***"), "{who}:\n{log}");
    }
    assert!(logs[0].1.contains("DEBUG") && logs[0].1.contains("(\"Authorization\", \"***\")"));
    for (who, log) in &logs {
        for secret in [
            &server.token,
            &server.client_token,
            &server.admin_token,
            wrong,
        ] {
            assert!(
                !log.contains(secret),
                "the {who} log holds a token ({secret}):\n{log}"
            );
        }
    }
}
