//! Real OpenSSH through the tunnel: `sshd` behind the agent, `ssh` in front,
//! once with `local-agent connect` as ProxyCommand and once straight at the
//! public port (routed by its `SSH-` banner).

use uptun_e2e::procs::{bin, Server};
use uptun_e2e::sshd;

#[tokio::test(flavor = "multi_thread")]
async fn ssh_echo_ok_through_proxycommand_and_directly() {
    let Some(sshd) = sshd::start().await else {
        return;
    };
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("ssh={}", sshd.addr)]).await;

    let proxy = format!(
        "{} connect --server {} --token {} ssh",
        bin("local-agent").display(),
        server.url(),
        server.client_token
    );
    let proxied = sshd.ssh(&[
        "-o",
        &format!("ProxyCommand={proxy}"),
        &format!("{}@uptun-ssh", sshd.user),
        "echo",
        "ok",
    ]);
    let port = server.addr.port().to_string();
    let direct = sshd.ssh(&[
        "-p",
        &port,
        &format!("{}@127.0.0.1", sshd.user),
        "echo",
        "ok",
    ]);
    sshd.assert_echoes_ok(vec![("ProxyCommand", proxied), ("direct", direct)])
        .await;
}
