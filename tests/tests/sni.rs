//! HTTPS routed by the server name in the TLS ClientHello (SNI), without the
//! server terminating TLS: real `openssl s_server` targets with their own
//! certificates behind one agent, real curl as the browser, and plain HTTP
//! and ssh-style users on the same port.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use public_server::{Action, Matcher, Rule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::inproc::InProcess;
use uptun_e2e::procs::{have, http_get, run_bounded, skip};
use uptun_e2e::{bounded, targets, tls, WAIT};

const LEN: usize = 256 * 1024;

/// `curl https://NAME:PORT/data` through `server`, trusting `cert` only:
/// (body, curl's verbose log). The certificate check fails unless the
/// target that answered holds the certificate for NAME.
async fn curl_https(server: SocketAddr, name: &str, cert: &std::path::Path) -> (Vec<u8>, String) {
    let port = server.port();
    let resolve = format!("{name}:{port}:127.0.0.1");
    let url = format!("https://{name}:{port}/data");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-v", "--max-time", "30", "--resolve", &resolve])
        .arg("--cacert")
        .arg(cert)
        .arg(&url);
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, WAIT))
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {url}: {log}");
    (out.stdout, log)
}

/// The first TLS record `openssl s_client -servername NAME` sends (its
/// ClientHello), captured on a local socket.
async fn real_hello(name: &str) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let connect = listener.local_addr().unwrap().to_string();
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-servername", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_client");
    let (mut socket, _) = bounded("s_client to connect", listener.accept())
        .await
        .unwrap();
    let mut header = [0u8; 5];
    bounded("the hello", socket.read_exact(&mut header))
        .await
        .unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
    bounded("the hello", socket.read_exact(&mut body))
        .await
        .unwrap();
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(header[0], 0x16, "a handshake record");
    [&header[..], &body].concat()
}

fn host(name: &str, channel: &str) -> Rule {
    Rule::new(Matcher::Host(name.into()), Action::Channel(channel.into()))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_reaches_the_target_its_server_name_routes_to() {
    if !have("curl") {
        return skip("curl is not installed; .ci/run installs it");
    }
    let (Some(a), Some(b)) = (
        tls::start("a.example.test").await,
        tls::start("*.b.example.test").await,
    ) else {
        return;
    };
    a.put("data", &pattern(1, LEN));
    b.put("data", &pattern(2, LEN));
    let web = targets::http().await;
    let ssh = targets::echo().await;
    let tcp = targets::digest().await;
    let server = InProcess::start(|config| {
        // Before the defaults, which would send any TLS to the tcp channel.
        let hosts = [host("a.example.test", "a"), host("*.b.example.test", "b")];
        config.routes.splice(0..0, hosts);
    })
    .await;
    let _agent = server
        .agent(&[
            format!("a={}", a.addr),
            format!("b={}", b.addr),
            format!("web={web}"),
            format!("ssh={ssh}"),
            format!("tcp={tcp}"),
        ])
        .await;

    for (name, target, seed, subject) in [
        ("a.example.test", &a, 1, "subject: CN=a.example.test"),
        ("x.b.example.test", &b, 2, "subject: CN=*.b.example.test"),
        ("y.B.example.test", &b, 2, "subject: CN=*.b.example.test"),
    ] {
        let (body, log) = curl_https(server.addr, name, &target.cert).await;
        assert!(log.contains(subject), "{name}: {log}");
        assert_eq!(body.len(), LEN, "{name}");
        assert_eq!(sha256_hex(&body), sha256_hex(&pattern(seed, LEN)), "{name}");
    }

    // A name no rule takes goes where the defaults send TLS: the tcp
    // channel, whose digest target sees the client's hello byte for byte.
    let hello = real_hello("c.example.test").await;
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(&hello).await.unwrap();
    user.shutdown().await.unwrap();
    let mut digest = String::new();
    bounded("the digest", user.read_to_string(&mut digest))
        .await
        .unwrap();
    assert_eq!(digest, format!("{} {}\n", hello.len(), sha256_hex(&hello)));

    // Plain HTTP and ssh users on the same port are routed as before.
    let (status, body) = bounded("GET", http_get(server.addr, "/bytes/100000/3"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(3, 100_000)));
    let sent = [&b"SSH-2.0-OpenSSH_9.2\r\n"[..], &pattern(4, 64 * 1024)].concat();
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(&sent).await.unwrap();
    user.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    bounded("the echo", user.read_to_end(&mut echoed))
        .await
        .unwrap();
    assert_eq!(sha256_hex(&echoed), sha256_hex(&sent), "ssh-style user");
}
