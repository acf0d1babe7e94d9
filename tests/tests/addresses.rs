//! The dialer tries every address the server's name resolves to: a server
//! that listens on `[::1]` only is reached through `http://localhost:PORT`
//! by the agent and by a client, whatever `/etc/hosts` says about
//! localhost (here it may name 127.0.0.1 alone).

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{connect_with_stdin, http_get, skip, Server};
use uptun_e2e::{bounded, targets};

#[tokio::test(flavor = "multi_thread")]
async fn localhost_reaches_a_server_on_ipv6_loopback_only() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return skip("this machine has no IPv6 loopback (::1)");
    }
    let (web, digest) = (targets::http().await, targets::digest().await);
    let server = Server::start_on("[::1]:0", &[]).await;
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    let url = format!("http://localhost:{}", server.addr.port());
    let channels = [format!("web={web}"), format!("tcp={digest}")];
    let _agent = server.agent_at(&url, &channels, &[]).await;

    let (status, body) = bounded("GET over ::1", http_get(server.addr, "/bytes/262144/4"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(4, 262144)));

    let data = pattern(5, 1 << 20);
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));
    let out = connect_with_stdin(&url, &server.client_token, "tcp", data).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
