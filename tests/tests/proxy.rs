//! Agents and clients behind a corporate HTTP proxy: Debian's tinyproxy,
//! reached with `--proxy` or `HTTP_PROXY`, skipped for `NO_PROXY`, with and
//! without Basic auth; its refusals are one line and exit code 2.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use base64::Engine;

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{bin, have, run_bounded, without_proxy_env, Proc, Server};
use uptun_e2e::tinyproxy::{self, Tinyproxy};
use uptun_e2e::{bounded, targets, wait_for, WAIT};

/// Exit code of `local-agent` for mistakes a person must fix.
const USAGE: i32 = 2;

/// Runs `local-agent connect --server … --token CLIENT_TOKEN MORE… tcp` with
/// `env`, `input` on stdin (closed after it); returns its output.
async fn connect(server: &Server, more: &[&str], env: &[(&str, &str)], input: Vec<u8>) -> Output {
    let url = server.url();
    let mut cmd = Command::new(bin("local-agent"));
    without_proxy_env(&mut cmd)
        .args(["connect", "--server", &url, "--token", &server.client_token])
        .args(more)
        .arg("tcp")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let out = child.wait_with_output().unwrap();
        let _ = feeder.join().unwrap();
        out
    });
    bounded("local-agent connect", run).await.unwrap()
}

/// 1 MiB through `connect` to the echo channel must come back intact.
async fn echo_through(server: &Server, more: &[&str], env: &[(&str, &str)]) {
    let mut data = pattern(77, 1 << 20);
    data[0] = 0;
    let out = connect(server, more, env, data.clone()).await;
    assert!(
        out.status.success(),
        "connect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len(), "echoed length");
    assert_eq!(
        sha256_hex(&out.stdout),
        sha256_hex(&data),
        "echoed checksum"
    );
}

/// An agent serving `web` (HTTP) and `tcp` (echo) with `args` and `env`,
/// once the server lists both.
async fn agent(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let (web, echo) = (targets::http().await, targets::echo().await);
    let agent = spawn_agent(
        server,
        &[&format!("web={web}"), &format!("tcp={echo}")],
        args,
        env,
    );
    server.wait_channels(&["web", "tcp"]).await;
    agent
}

fn spawn_agent(server: &Server, channels: &[&str], args: &[&str], env: &[(&str, &str)]) -> Proc {
    let url = server.url();
    let mut all = vec!["--server", &url, "--token", &server.token];
    for c in channels {
        all.extend(["--channel", c]);
    }
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "trace"));
    Proc::spawn_env("local-agent", &all, &env)
}

/// 1 MiB from the web channel by curl, straight to the public server.
async fn curl_one_mib(server: &Server) {
    if !have("curl") {
        return uptun_e2e::procs::skip("curl is not installed; .ci/run installs it");
    }
    let url = format!("{}/bytes/1048576/5", server.url());
    let out = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new("curl").args(["-sS", "--noproxy", "*", &url]),
            WAIT,
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&pattern(5, 1 << 20)));
}

async fn wait_connects(proxy: &Tinyproxy, target: SocketAddr, n: usize) {
    wait_for(
        &format!("{n} CONNECT to {target} in tinyproxy's log"),
        WAIT,
        || async { (proxy.connects_to(target) == n).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_and_a_client_reach_the_server_through_tinyproxy() {
    let server = Server::start(&[]).await;
    let Some(proxy) = tinyproxy::start(&[server.addr.port()], None).await else {
        return;
    };
    let agent = agent(&server, &["--proxy", &proxy.url(None)], &[]).await;
    wait_connects(&proxy, server.addr, 1).await;
    let log = agent.log();
    assert!(
        log.contains("reaching the server through an HTTP proxy"),
        "{log}"
    );
    curl_one_mib(&server).await;
    echo_through(&server, &["--proxy", &proxy.url(None)], &[]).await;
    assert_eq!(
        proxy.connects_to(server.addr),
        2,
        "the client went through it too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_sent_decoded_and_a_407_is_one_line_and_exit_2() {
    let server = Server::start(&[]).await;
    let (user, password) = ("uptun", "pr0xy-pass");
    let Some(proxy) = tinyproxy::start(&[server.addr.port()], Some((user, password))).await else {
        return;
    };
    // %2D is `-`: what tinyproxy receives must be the decoded password.
    let with_auth = proxy.url(Some("uptun:pr0xy%2Dpass"));
    let good = agent(&server, &["--proxy", &with_auth], &[]).await;
    echo_through(&server, &["--proxy", &with_auth], &[]).await;
    let log = good.log();
    let header = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    assert!(
        !log.contains("pr0xy") && !log.contains(&header),
        "the password leaked: {log}"
    );

    let mut bare = spawn_agent(
        &server,
        &["web=127.0.0.1:1"],
        &["--proxy", &proxy.url(None)],
        &[],
    );
    assert_eq!(bare.wait_exit().await, Some(USAGE), "{}", bare.log());
    let want = format!(
        "local-agent: the proxy {} wants credentials (407 Proxy Authentication Required): \
         give them in --proxy http://USER:PASS@{} (or UPTUN_PROXY)",
        proxy.url(None),
        proxy.addr
    );
    assert!(bare.log().contains(&want), "{}", bare.log());

    let wrong = proxy.url(Some("uptun:wr0ng-guess"));
    let mut refused = spawn_agent(&server, &["web=127.0.0.1:1"], &["--proxy", &wrong], &[]);
    assert_eq!(refused.wait_exit().await, Some(USAGE), "{}", refused.log());
    let log = refused.log();
    assert!(
        // tinyproxy answers wrong credentials with 401, not 407.
        log.contains("refused the credentials given in --proxy (401 Unauthorized)"),
        "{log}"
    );
    assert!(!log.contains("wr0ng"), "the password leaked: {log}");

    // A client told by the environment gets the line naming the variable.
    let out = connect(
        &server,
        &[],
        &[("HTTP_PROXY", &proxy.url(None))],
        b"x".to_vec(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(USAGE), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "give them in HTTP_PROXY=http://USER:PASS@{}",
            proxy.addr
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("local-agent:"))
            .count(),
        1,
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_is_picked_up_and_no_proxy_goes_around_it() {
    let server = Server::start(&[]).await;
    let Some(proxy) = tinyproxy::start(&[server.addr.port()], None).await else {
        return;
    };
    let agent = agent(&server, &[], &[("HTTP_PROXY", &proxy.url(None))]).await;
    wait_connects(&proxy, server.addr, 1).await;
    assert!(
        agent.log().contains("from=\"HTTP_PROXY\""),
        "{}",
        agent.log()
    );
    let seen = proxy.connections();
    assert!(seen >= 1);

    // The same environment with NO_PROXY naming the server: the data gets
    // through, and the proxy saw no connection at all.
    let env = [
        ("HTTP_PROXY", proxy.url(None)),
        ("NO_PROXY", "127.0.0.1".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    echo_through(&server, &[], &env).await;
    // `--proxy none` turns the environment's proxy off too.
    echo_through(&server, &["--proxy", "none"], &env[..1]).await;
    assert_eq!(proxy.connections(), seen, "{}", proxy.log());
    assert_eq!(proxy.connects_to(server.addr), 1, "{}", proxy.log());

    // A proxy variable this build cannot use is a mistake named before dialing.
    let socks = [("HTTP_PROXY", "socks5://me:pw-XYZ@127.0.0.1:1")];
    let out = connect(&server, &[], &socks, b"x".to_vec()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(USAGE), "{stderr}");
    assert!(
        stderr.contains("HTTP_PROXY socks5://***@127.0.0.1:1: SOCKS proxies are not supported"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-XYZ"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_allows_only_port_443_says_so_and_the_agent_stops() {
    let server = Server::start(&[]).await;
    let Some(proxy) = tinyproxy::start(&[443], None).await else {
        return;
    };
    let mut agent = spawn_agent(
        &server,
        &["web=127.0.0.1:1"],
        &["--proxy", &proxy.url(None)],
        &[],
    );
    assert_eq!(agent.wait_exit().await, Some(USAGE), "{}", agent.log());
    let want = format!(
        "local-agent: the proxy {} forbids CONNECT to {} (403 Access violation): many proxies \
         allow CONNECT only to port 443",
        proxy.url(None),
        server.addr
    );
    assert!(agent.log().contains(&want), "{}", agent.log());
    assert_eq!(proxy.connects_to(server.addr), 1, "{}", proxy.log());
}
