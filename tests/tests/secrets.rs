//! Who may do what, and what is never shown: clients need a token of their
//! own, and no token reaches a log line.

use uptun_e2e::procs::{spawn_server, Proc, Server};
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
