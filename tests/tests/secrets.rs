//! Who may do what, and what is never shown: clients need a token of their
//! own, status needs the admin token, and no token reaches a log line.

use uptun_e2e::procs::{http_get, http_get_with, spawn_server, Proc, Server};
use uptun_e2e::targets;

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
    assert!(log.contains("401") && log.contains("wrong token"), "{log}");
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
        body.contains("status is off") && body.contains("--admin-token"),
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
