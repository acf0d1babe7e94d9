//! The whole tunnel behind nginx, the way a single-port PaaS runs it: the
//! agent, web users and an ssh-style `connect` client all pass through an
//! HTTP router that rewrites and reorders headers.

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{connect_with_stdin, http_get, Proc, Server};
use uptun_e2e::{bounded, nginx, targets, wait_for, WAIT};

#[tokio::test(flavor = "multi_thread")]
async fn agent_users_and_clients_all_pass_through_nginx() {
    let web = targets::http().await;
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let Some(router) = nginx::start(server.addr).await else {
        return;
    };

    // The agent dials the router, not the server.
    let _agent = Proc::spawn(
        "local-agent",
        &[
            "--server",
            &router.url(),
            "--token",
            &server.token,
            "--channel",
            &format!("web={web}"),
            "--channel",
            &format!("tcp={digest}"),
        ],
    );
    server.wait_channels(&["web", "tcp"]).await;

    // Web users through the router.
    let (status, body) = bounded(
        "GET through nginx",
        http_get(router.addr, "/bytes/1048576/8"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", router.logs());
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(8, 1 << 20)));

    // A `connect` client through the router, half-closing stdin.
    let data = pattern(12, 2 << 20);
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));
    let out = connect_with_stdin(&router.url(), &server.client_token, "tcp", data).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    // nginx really was in the path, with its own header spelling.
    let logs = wait_for("nginx access log", WAIT, || async {
        let logs = router.logs();
        logs.contains("HEAD /_uptun/link").then_some(logs)
    })
    .await;
    assert!(logs.contains(" 101 "), "nginx passed the upgrade: {logs}");
}
