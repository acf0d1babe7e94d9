//! `local-agent --proxy-protocol`: a real nginx behind the tunnel, listening
//! with `proxy_protocol`, logs the user's own address and port; the header
//! comes before every user byte; channels without the flag get nothing extra.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{connect_with_stdin, Server};
use uptun_e2e::{bounded, nginx, targets, wait_for, WAIT};

/// A user socket bound to 127.0.0.1 on a port the test knows, connected to
/// the public server.
async fn user(server: SocketAddr) -> (TcpStream, SocketAddr) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let local = socket.local_addr().unwrap();
    (socket.connect(server).await.unwrap(), local)
}

/// Writes `data`, half-closes, and returns everything the other side sent.
async fn exchange(mut socket: TcpStream, data: &[u8]) -> Vec<u8> {
    socket.write_all(data).await.unwrap();
    socket.shutdown().await.unwrap();
    let mut reply = Vec::new();
    socket.read_to_end(&mut reply).await.unwrap();
    reply
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

/// The body of an HTTP reply whose status is 200.
fn body_of_200(reply: &[u8]) -> &[u8] {
    let text = String::from_utf8_lossy(reply);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &reply[split + 4..]
}

/// The line of nginx's `proxy.log` for `request_line`, once it is written.
async fn logged(web: &nginx::Nginx, request_line: &str) -> String {
    let needle = format!("\"{request_line}\"");
    wait_for(&format!("{needle} in nginx's log"), WAIT, || async {
        let log = web.file("proxy.log");
        log.lines()
            .find(|l| l.contains(&needle))
            .map(str::to_string)
    })
    .await
}

async fn nginx_logs_the_users_address(version: &str) {
    let server = Server::start(&[]).await;
    let Some(web) = nginx::start_proxy_protocol().await else {
        return;
    };
    let proxy = format!("web={version}");
    let _agent = server
        .agent_with(
            &[format!("web={}", web.addr)],
            &["--proxy-protocol", &proxy],
        )
        .await;

    // A public user, from a port the test chose.
    let path = format!("/{version}/public");
    let (socket, from) = user(server.addr).await;
    let reply = bounded(
        "GET through the tunnel",
        exchange(socket, request(&path).as_bytes()),
    )
    .await;
    assert_eq!(
        sha256_hex(body_of_200(&reply)),
        sha256_hex(nginx::PROXY_BODY.as_bytes()),
        "{}",
        web.logs()
    );
    // Source: the user as the public server saw it. Destination: nginx as
    // the agent reached it.
    let line = logged(&web, &format!("GET {path} HTTP/1.1")).await;
    assert_eq!(
        line,
        format!("{from} {} \"GET {path} HTTP/1.1\" 200", web.addr)
    );

    // A `connect` client has no socket address to give: v1 UNKNOWN / v2
    // LOCAL, which nginx accepts and logs as no address (`-`).
    let path = format!("/{version}/client");
    let out = connect_with_stdin(
        &server.url(),
        &server.client_token,
        "web",
        request(&path).into_bytes(),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(body_of_200(&out.stdout), nginx::PROXY_BODY.as_bytes());
    let line = logged(&web, &format!("GET {path} HTTP/1.1")).await;
    assert_eq!(line, format!("-:- -:- \"GET {path} HTTP/1.1\" 200"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_logs_the_users_address_from_a_v1_header() {
    nginx_logs_the_users_address("v1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_logs_the_users_address_from_a_v2_header() {
    nginx_logs_the_users_address("v2").await;
}

/// The v2 header for `user` → `target`, from the spec's byte layout (not
/// from the agent's code, so a shared mistake cannot hide).
fn v2_header(user: SocketAddr, target: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(u), SocketAddr::V4(t)) = (user, target) else {
        panic!("IPv4 only here");
    };
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend([0x21, 0x11, 0, 12]);
    out.extend(u.ip().octets());
    out.extend(t.ip().octets());
    out.extend(u.port().to_be_bytes());
    out.extend(t.port().to_be_bytes());
    out
}

/// Two channels on one agent, each to a target that answers the length and
/// SHA-256 of all it read: with the flag the target read exactly the header
/// and then the user's bytes (sent at once, so they race the header); without
/// it, exactly the user's bytes.
#[tokio::test(flavor = "multi_thread")]
async fn the_header_precedes_every_user_byte_and_only_where_asked() {
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let channels = [format!("tcp={digest}"), format!("ssh={digest}")];
    let _agent = server
        .agent_with(&channels, &["--proxy-protocol", "tcp=v2"])
        .await;

    // Not `GET `/`SSH-`: the server routes it to the tcp channel.
    let mut data = pattern(21, 2 << 20);
    data[..4].copy_from_slice(b"RAW ");
    let (socket, from) = user(server.addr).await;
    let got = bounded("raw user with a header", exchange(socket, &data)).await;
    let mut want = v2_header(from, digest);
    want.extend_from_slice(&data);
    let want = format!("{} {}\n", want.len(), sha256_hex(&want));
    assert_eq!(String::from_utf8_lossy(&got), want);

    // `SSH-` goes to the ssh channel, which has no --proxy-protocol.
    data[..4].copy_from_slice(b"SSH-");
    let (socket, _) = user(server.addr).await;
    let got = bounded("raw user without a header", exchange(socket, &data)).await;
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));
    assert_eq!(String::from_utf8_lossy(&got), want);
}
