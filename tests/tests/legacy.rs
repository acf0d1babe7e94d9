//! rhost compatibility (issue 12), whole processes: legacy agents and
//! clients (`tests/legacy/etunnel.js`) through a real public server, next to
//! curl, raw users and native `local-agent` processes. Keys come from
//! `KEYS_*` as in the original, or from the config file's `[legacy]`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::legacy::{agent_args, have_node, round_trip, LegacyAgent, LegacyClient, LegacyPeer};
use uptun_e2e::procs::{connect_with_stdin, have, http_get, run_bounded, skip, Server};
use uptun_e2e::{bounded, half_closed_exchange, targets, tempdir_path, WAIT};

/// `len` bytes from `seed` that the server's sniffing takes for a raw user
/// (not an HTTP method, not `SSH-`).
fn raw_data(seed: u64, len: usize) -> Vec<u8> {
    let mut data = pattern(seed, len);
    data[0] = 0;
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn http_users_and_a_legacy_client_reach_a_legacy_agents_root() {
    if !have_node() {
        return;
    }
    if !have("curl") {
        return skip("curl is not installed; .ci/run installs it");
    }
    let web = targets::http().await;
    let server = Server::start_env(&[("KEYS_", "rootkey")], &[]).await;
    let _agent = LegacyAgent::start(server.addr, "/", "rootkey", "root-token", web).await;

    let len = 3 << 20;
    let url = format!("{}/bytes/{len}/7", server.url());
    let out = run_bounded(
        std::process::Command::new("curl").args(["-sS", "--max-time", "60", &url]),
        WAIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&pattern(7, len)));

    // A legacy client on `/` opens on `web`: it reaches the same agent,
    // whose packets now carry the client link's set rather than 0.
    let client = LegacyClient::start(server.addr, "/", "root-token").await;
    let get = http_get(client.addr, "/bytes/65536/8");
    let (status, body) = bounded("GET through a legacy client", get).await.unwrap();
    assert_eq!(
        (status, sha256_hex(&body)),
        (200, sha256_hex(&pattern(8, 65536)))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_users_and_native_clients_that_half_close_get_the_whole_echo() {
    if !have_node() {
        return;
    }
    let echo = targets::echo().await;
    // A user's half-close reaches the legacy agent as `c-` (which closes
    // both ways) only once the agent has sent nothing for the linger: the
    // echo gets back whole, and the user's EOF follows the linger.
    let dir = tempdir_path();
    let config = dir.path().join("uptun.toml");
    let table = "[legacy]\nkeys = { \"/\" = \"rootkey\" }\nlinger = \"1s\"\n";
    std::fs::write(&config, table).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]).await;
    let _agent = LegacyAgent::start(server.addr, "/", "rootkey", "root-token", echo).await;
    let data = raw_data(1, 3 << 20);

    // A raw user on the public port: the default routes send it to `tcp`,
    // which the legacy root serves.
    let got = bounded(
        "a raw user",
        half_closed_exchange(server.addr, data.clone()),
    )
    .await;
    assert_eq!(sha256_hex(&got), sha256_hex(&data), "raw user's echo");

    // `local-agent connect`, fed from a pipe: stdin's EOF is the half-close.
    let out = connect_with_stdin(&server.url(), &server.client_token, "tcp", data.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "connect failed: {stderr}");
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&data), "connect's echo");

    // `local-agent forward`: a native client link bridged to the legacy one.
    let port = uptun_e2e::pebble::free_port();
    let forward = server.client("forward", &[&format!("127.0.0.1:{port}=tcp")]);
    forward.wait_log("forwarding").await;
    let local = format!("127.0.0.1:{port}").parse().unwrap();
    let got = bounded(
        "a forwarded user",
        half_closed_exchange(local, data.clone()),
    )
    .await;
    assert_eq!(sha256_hex(&got), sha256_hex(&data), "forward's echo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_client_reaches_ssh_with_its_agents_token_and_pings_are_answered() {
    if !have_node() {
        return;
    }
    let echo = targets::echo().await;
    let server = Server::start_env(&[("KEYS_SSH", "admin")], &[]).await;
    let ping = ["--send-ping", "100"];
    let mut agent =
        LegacyAgent::start_with(server.addr, "/ssh", "admin", "ssh-users", echo, &ping).await;
    let mut client = LegacyClient::start_with(server.addr, "/ssh", "ssh-users", &ping).await;

    let data = pattern(2, 1 << 20);
    let got = bounded(
        "an echo through /ssh",
        round_trip(client.addr, data.clone()),
    )
    .await;
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
    agent.peer.wait_line("pong").await;
    client.peer.wait_line("pong").await;

    // Another token is not the one the agent registered.
    let tunnel = server.addr.to_string();
    let mut stranger = LegacyPeer::spawn(&[
        "client",
        "--tunnel",
        &tunnel,
        "--channel",
        "/ssh",
        "--token",
        "guess",
    ]);
    stranger.refused().await;
}

/// How soon a close must cross: far below the default linger (30 s).
const PROMPTLY: std::time::Duration = std::time::Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn closes_propagate_both_ways() {
    if !have_node() {
        return;
    }
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start_env(&[("KEYS_SSH", "admin")], &[]).await;
    let target_addr = target.local_addr().unwrap();
    let _agent = LegacyAgent::start(server.addr, "/ssh", "admin", "t", target_addr).await;
    let client = LegacyClient::start(server.addr, "/ssh", "t").await;

    // A stream, proven open end to end by one byte each way.
    let (target, local) = (&target, client.addr);
    let open = || async move {
        let mut user = TcpStream::connect(local).await.unwrap();
        user.write_all(b"u").await.unwrap();
        let (mut far, _) = bounded("the agent's dial", target.accept()).await.unwrap();
        let mut byte = [0u8; 1];
        bounded("the user's byte", far.read_exact(&mut byte))
            .await
            .unwrap();
        far.write_all(b"t").await.unwrap();
        bounded("the target's byte", user.read_exact(&mut byte))
            .await
            .unwrap();
        (user, far)
    };
    // Promptly: well inside the 30 s linger a half-close may be held for,
    // since a legacy `c-` is a whole close, never a half-close.
    let eof = |mut socket: TcpStream, what: &'static str| async move {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PROMPTLY, socket.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("no {what} within {PROMPTLY:?}"));
        assert!(
            read.is_ok() && rest.is_empty(),
            "{what}: {read:?}, {rest:?}"
        );
    };

    let (user, far) = open().await;
    drop(far);
    eof(user, "EOF at the user after the target closed").await;

    let (user, far) = open().await;
    drop(user);
    eof(far, "EOF at the target after the user closed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_refused_and_the_owner_keeps_its_channel() {
    if !have_node() {
        return;
    }
    let echo = targets::echo().await;
    let server = Server::start_env(&[("KEYS_SSH", "admin")], &[]).await;
    let _owner = LegacyAgent::start(server.addr, "/ssh", "admin", "owners-token", echo).await;

    let spawn = |channel: &str, key: &str, token: &str| {
        let args = agent_args(server.addr, channel, key, token, echo);
        LegacyPeer::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    spawn("/ssh", "wrong-key-4a1f", "thief-token-9c2e")
        .refused()
        .await;
    server.proc.wait_log("refused legacy link").await;
    // The right key does not take a channel that has an agent.
    spawn("/ssh", "admin", "second-token-77b0").refused().await;
    server.proc.wait_log_count("refused legacy link", 2).await;
    // rhost's default: `/` with an empty key and token. No key is set for
    // `/`, so this agent must not capture the users `/` stands for.
    spawn("/", "", "").refused().await;
    server.proc.wait_log_count("refused legacy link", 3).await;

    let client = LegacyClient::start(server.addr, "/ssh", "owners-token").await;
    let data = pattern(3, 256 << 10);
    let got = bounded(
        "an echo through the owner",
        round_trip(client.addr, data.clone()),
    )
    .await;
    assert_eq!(sha256_hex(&got), sha256_hex(&data));

    let log = server.proc.log();
    for secret in [
        "wrong-key-4a1f",
        "thief-token-9c2e",
        "second-token-77b0",
        "owners-token",
    ] {
        assert!(
            !log.contains(secret),
            "the server logged {secret:?}:\n{log}"
        );
    }
    assert!(!log.contains("admin"), "the server logged the key:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_keys_legacy_links_are_refused() {
    if !have_node() {
        return;
    }
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let args = agent_args(server.addr, "/", "any-key", "any-token", echo);
    LegacyPeer::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .refused()
        .await;
    server.proc.wait_log("legacy (rhost) links are off").await;
    let tunnel = server.addr.to_string();
    LegacyPeer::spawn(&[
        "client",
        "--tunnel",
        &tunnel,
        "--channel",
        "/",
        "--token",
        "t",
    ])
    .refused()
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_client_reaches_a_native_agent_with_the_client_token() {
    if !have_node() {
        return;
    }
    let echo = targets::echo().await;
    // Keys from the config file this time; any key turns legacy links on.
    let dir = tempdir_path();
    let config = dir.path().join("uptun.toml");
    std::fs::write(&config, "[legacy]\nkeys = { \"/ssh\" = \"admin\" }\n").unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]).await;
    let _agent = server.agent(&[format!("ssh={echo}")]).await;

    let client = LegacyClient::start(server.addr, "/ssh", &server.client_token).await;
    let data = pattern(4, 2 << 20);
    let got = bounded(
        "an echo through the native agent",
        round_trip(client.addr, data.clone()),
    )
    .await;
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
}
