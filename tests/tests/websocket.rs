//! WebSocket links: agents and clients on `ws://` and `wss://` (through a
//! TLS nginx, and to a server holding its own certificate), the automatic
//! fallback from `Upgrade: tcp` behind a router that passes only WebSocket
//! upgrades (a real nginx, plain and TLS) or that answers 101 and then holds
//! the link, and browser WebSockets, which stay ordinary web users.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{http_get, Server};
use uptun_e2e::server::connect_with_stdin_and;
use uptun_e2e::{bounded, nginx, targets, wait_for, WAIT};

/// Fetches 1 MiB from the web channel at `addr` and checks every byte.
async fn one_mib_intact(addr: SocketAddr, seed: u64) {
    let (status, body) = bounded(
        "1 MiB GET",
        http_get(addr, &format!("/bytes/1048576/{seed}")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(seed, 1 << 20)));
}

/// Pipes 3 MiB through `local-agent connect` (with `extra` flags) to a
/// digest target and checks the digest it answers; returns its stderr.
async fn connect_pipe_intact(url: &str, token: &str, extra: &[&str]) -> String {
    let data = pattern(21, 3 << 20);
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));
    let out = connect_with_stdin_and(url, token, "tcp", extra, data).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_and_clients_on_ws_urls_carry_everything() {
    let web = targets::http().await;
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let ws = format!("ws://{}", server.addr);
    let channels = [format!("web={web}"), format!("tcp={digest}")];
    let agent = server.agent_at(&ws, &channels, &[]).await;
    let log = agent.wait_log("link up").await;
    assert!(log.contains("transport=websocket"), "{log}");
    assert!(
        !log.contains("falling back"),
        "ws:// tries nothing else: {log}"
    );
    let status = server.status_json().await.unwrap();
    assert_eq!(status["agents"][0]["transport"], "websocket", "{status}");
    assert_eq!(status["agents"][0]["tls"], false, "{status}");

    one_mib_intact(server.addr, 3).await;
    connect_pipe_intact(&ws, &server.client_token, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_websocket_only_nginx_the_default_transport_falls_back_and_remembers() {
    let web = targets::http().await;
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let Some(router) = nginx::start_websocket_only(server.addr).await else {
        return;
    };
    // http://, no --transport: the default is auto.
    let channels = [format!("web={web}"), format!("tcp={digest}")];
    let agent = server.agent_at(&router.url(), &channels, &[]).await;
    let log = agent.wait_log("link up").await;
    assert!(
        log.contains("Upgrade: tcp did not get through; falling back to WebSocket")
            && log.contains("400"),
        "{log}"
    );
    assert!(log.contains("transport=websocket"), "{log}");

    // Users and a client through the router too; the client falls back
    // by itself as well, and says so.
    one_mib_intact(router.addr, 5).await;
    let stderr = connect_pipe_intact(&router.url(), &server.client_token, &[]).await;
    assert!(stderr.contains("falling back to WebSocket"), "{stderr}");

    // nginx refused the tcp form itself and passed the WebSocket form.
    let logs = wait_for("nginx access log", WAIT, || async {
        let logs = router.logs();
        logs.contains("GET /_uptun/link").then_some(logs)
    })
    .await;
    assert!(
        logs.contains("\"HEAD /_uptun/link HTTP/1.1\" 400"),
        "{logs}"
    );
    assert!(logs.contains("\"GET /_uptun/link HTTP/1.1\" 101"), "{logs}");

    // The server restarts on its port: the agent's next link goes
    // straight to WebSocket, without trying tcp first.
    let addr = server.addr.to_string();
    drop(server);
    let server = Server::start_on(&addr, &[]).await;
    server.wait_channels(&["web", "tcp"]).await;
    let log = agent.wait_log_count("link up", 2).await;
    assert_eq!(log.matches("transport=websocket").count(), 2, "{log}");
    assert_eq!(log.matches("falling back").count(), 1, "{log}");
    one_mib_intact(router.addr, 6).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_wss_goes_straight_to_websocket_and_https_falls_back() {
    let web = targets::http().await;
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let Some(router) = nginx::start_tls_websocket_only(server.addr, nginx::Issuer::Ca).await else {
        return;
    };
    let https = router.https_url();
    let wss = https.replacen("https://", "wss://", 1);
    let ca = router.trust();
    let ca = ["--ca", ca.to_str().unwrap()];
    let channels = [format!("web={web}"), format!("tcp={digest}")];

    let direct = server.agent_at(&wss, &channels, &ca).await;
    let log = direct.wait_log("link up").await;
    assert!(
        log.contains("transport=websocket") && !log.contains("falling back"),
        "{log}"
    );

    let fallen_back = server.agent_at(&https, &channels, &ca).await;
    server.wait_agents(2).await;
    let log = fallen_back.wait_log("link up").await;
    assert!(log.contains("falling back to WebSocket"), "{log}");
    assert!(log.contains("transport=websocket"), "{log}");

    one_mib_intact(server.addr, 11).await;
    let stderr = connect_pipe_intact(&https, &server.client_token, &ca).await;
    assert!(stderr.contains("falling back to WebSocket"), "{stderr}");
    connect_pipe_intact(&wss, &server.client_token, &ca).await;
    let logs = router.logs();
    assert!(
        logs.contains("\"HEAD /_uptun/link HTTP/1.1\" 400"),
        "{logs}"
    );
    assert!(logs.contains("\"GET /_uptun/link HTTP/1.1\" 101"), "{logs}");
}

/// A router stand-in that answers `Upgrade: tcp` with 101 and then holds
/// the connection (passes nothing either way), and passes any other
/// connection (the WebSocket form among them) to `upstream` as it is.
async fn stalling_router(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut first = [0u8; 4];
                if socket.read_exact(&mut first).await.is_err() {
                    return;
                }
                if &first == b"HEAD" {
                    let ok = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
                    let _ = socket.write_all(ok).await;
                    let _ = tokio::io::copy(&mut socket, &mut tokio::io::sink()).await;
                    return;
                }
                let mut up = TcpStream::connect(upstream).await.unwrap();
                up.write_all(&first).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_that_stalls_before_its_first_pong_falls_back_to_websocket() {
    let web = targets::http().await;
    let server = Server::start(&[]).await;
    let router = stalling_router(server.addr).await;
    let url = format!("http://{router}");
    let agent = server
        .agent_at(&url, &[format!("web={web}")], &["--ping-interval", "200ms"])
        .await;
    let log = agent.wait_log("link up").await;
    assert!(log.contains("carried no PONG back within 0.4 s"), "{log}");
    assert!(log.contains("falling back to WebSocket"), "{log}");
    assert!(log.contains("transport=websocket"), "{log}");
    one_mib_intact(server.addr, 7).await;
}

/// A WebSocket echo server: every text or binary message comes back.
async fn websocket_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let echoed = message.is_text() || message.is_binary();
                    if echoed && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_websocket_is_a_web_user_of_its_channel() {
    let echo = websocket_echo().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("web={echo}")]).await;
    let socket = TcpStream::connect(server.addr).await.unwrap();
    let url = format!("ws://{}/chat", server.addr);
    let (mut ws, answer) = bounded(
        "WebSocket handshake",
        tokio_tungstenite::client_async(url, socket),
    )
    .await
    .expect("the echo target answers the handshake through the tunnel");
    assert_eq!(answer.status(), 101);
    let big = pattern(9, 300 * 1024);
    bounded("WebSocket echo", async {
        ws.send(Message::text("hello through the tunnel"))
            .await
            .unwrap();
        ws.send(Message::binary(big.clone())).await.unwrap();
        let text = ws.next().await.unwrap().unwrap();
        assert_eq!(
            text.into_text().unwrap().as_str(),
            "hello through the tunnel"
        );
        let data = ws.next().await.unwrap().unwrap().into_data();
        assert_eq!(sha256_hex(&data), sha256_hex(&big));
        ws.close(None).await.unwrap();
    })
    .await;
}

/// Sends a hand-written WebSocket link request; returns the answer's head.
async fn raw_websocket_request(addr: SocketAddr, token: &str, version: &str) -> String {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /_uptun/link HTTP/1.1\r\nHost: tunnel\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\
         User-Agent: uptun-agent/9.9\r\nAuthorization: Bearer {token}\r\nUptun-Version: 1\r\n\
         Uptun-Channels: web\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    bounded("the answer's head", async {
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if socket.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await;
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_answers_a_hand_written_websocket_link_request_by_the_rfc() {
    let server = Server::start(&[]).await;
    // The key and its accept value are the example of RFC 6455 section 1.3.
    let head = raw_websocket_request(server.addr, &server.token, "13").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    for line in [
        "Upgrade: websocket",
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        "Uptun-Window: ",
    ] {
        assert!(head.contains(line), "{line:?} missing: {head}");
    }
    let head = raw_websocket_request(server.addr, &server.token, "8").await;
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert!(
        head.contains("Uptun-Reason: Sec-WebSocket-Version"),
        "{head}"
    );
    let head = raw_websocket_request(server.addr, "wrong", "13").await;
    assert!(head.starts_with("HTTP/1.1 401 "), "{head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wss_to_a_server_that_holds_its_own_certificate() {
    let dir = uptun_e2e::tempdir_path();
    let ca = uptun_e2e::pki::Ca::new(dir.path(), "ws");
    let (cert, key) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
    ca.issue(&["localhost"], &cert, &key);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = Server::start(&["--tls-cert", cert, "--tls-key", key]).await;
    let (web, digest) = (targets::http().await, targets::digest().await);
    let wss = format!("wss://localhost:{}", server.addr.port());
    let trust = ["--ca", ca.cert.to_str().unwrap()];
    let channels = [format!("web={web}"), format!("tcp={digest}")];
    let agent = server.agent_at(&wss, &channels, &trust).await;
    assert!(agent
        .wait_log("link up")
        .await
        .contains("transport=websocket"));
    // Plain users on the same port still reach the channel the agent serves.
    one_mib_intact(server.addr, 13).await;
    connect_pipe_intact(&wss, &server.client_token, &trust).await;
}
