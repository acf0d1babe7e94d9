//! Tokens limited to channels: an agent may serve only its token's
//! channels (403 naming the channel), a client may open only its token's
//! channels (REFUSE naming the channel, the link stays up). Several tokens
//! coexist, given as repeated flags or `;`-separated in the environment.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uptun_e2e::procs::{connect_with_stdin, listening_addr, spawn_server, Proc};
use uptun_e2e::{bounded, targets};

/// Runs an agent with `token` serving `channels` (`name=target`).
fn agent(url: &str, token: &str, channels: &[String]) -> Proc {
    let mut args = vec!["--server", url, "--token", token];
    for c in channels {
        args.extend(["--channel", c.as_str()]);
    }
    Proc::spawn("local-agent", &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_may_serve_only_the_channels_of_its_token() {
    let echo = targets::echo().await;
    let (full, limited) = ("full-agent-token-e2e", "limited-agent-token-e2e");
    let limited_spec = format!("{limited}:web,dev-*");
    let args = ["--listen", "127.0.0.1:0", "--agent-token", full];
    let args = [&args[..], &["--agent-token", &limited_spec]].concat();
    let (server, addr) = spawn_server(&args, "info").await;
    let url = format!("http://{addr}");

    let mut refused = agent(
        &url,
        limited,
        &[format!("web={echo}"), format!("db={echo}")],
    );
    assert_eq!(refused.wait_exit().await, Some(2), "{}", refused.log());
    let log = refused.log();
    assert!(
        log.contains("403") && log.contains("may not serve channel \"db\""),
        "{log}"
    );
    assert!(
        !log.contains("\"web\""),
        "only the forbidden channel is named: {log}"
    );

    // The same token for its own channels, and the full token for any.
    let allowed = agent(
        &url,
        limited,
        &[format!("web={echo}"), format!("dev-1={echo}")],
    );
    allowed.wait_log("link up: serving channels").await;
    let any = agent(&url, full, &[format!("db={echo}")]);
    any.wait_log("link up: serving channels").await;

    let log = server.wait_log("may not serve channel").await;
    for token in [full, limited] {
        assert!(!log.contains(token), "the server log holds a token:\n{log}");
    }
}

/// The addresses a `forward` listens on, by channel.
async fn forwarding(forward: &Proc, channels: &[&str]) -> Vec<SocketAddr> {
    let log = forward.wait_log_count("forwarding", channels.len()).await;
    channels
        .iter()
        .map(|channel| {
            let line = log
                .lines()
                .find(|l| l.contains("forwarding") && l.ends_with(&format!("channel={channel}")))
                .unwrap_or_else(|| panic!("no forwarding line for {channel}:\n{log}"));
            let addr = line
                .split("listen=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next();
            addr.unwrap().parse().unwrap()
        })
        .collect()
}

/// Sends `data`, half-closes, reads until the end: what came back, or the error.
async fn round_trip(addr: SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(data).await?;
    s.shutdown().await?;
    let mut back = Vec::new();
    bounded("the answer", s.read_to_end(&mut back)).await?;
    Ok(back)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_opens_only_its_channels_and_keeps_its_link() {
    let echo = targets::echo().await;
    // Several tokens in one variable, `;` between them, as a PaaS sets it.
    let env = [
        ("RUST_LOG", "info"),
        ("UPTUN_AGENT_TOKEN", "scoped-agent-e2e"),
        ("UPTUN_CLIENT_TOKEN", "tcp-only-e2e:tcp;any-client-e2e"),
    ];
    let server = Proc::spawn_env("public-server", &["--listen", "127.0.0.1:0"], &env);
    let url = format!("http://{}", listening_addr(&server).await);
    let _agent = agent(
        &url,
        "scoped-agent-e2e",
        &[format!("tcp={echo}"), format!("ssh={echo}")],
    );
    server.wait_log("agent link up").await;

    let args = ["forward", "--server", &url, "--token", "tcp-only-e2e"];
    let specs = ["127.0.0.1:0=ssh", "127.0.0.1:0=tcp"];
    let forward = Proc::spawn("local-agent", &[&args[..], &specs].concat());
    let [ssh, tcp] = forwarding(&forward, &["ssh", "tcp"]).await[..] else {
        unreachable!()
    };

    let data = b"only through channels this token may open".to_vec();
    let refused = round_trip(ssh, &data).await;
    assert!(
        refused.as_ref().map_or(true, |b| b.is_empty()),
        "{refused:?}"
    );
    let log = forward.wait_log("may not open channel \"ssh\"").await;
    assert!(!log.contains("tcp-only-e2e"), "{log}");
    // The link that was refused a stream still carries the allowed channel.
    assert_eq!(round_trip(tcp, &data).await.unwrap(), data);
    let log = server.wait_log("its token may not open the channel").await;
    assert_eq!(log.matches("client link up").count(), 1, "{log}");
    // `connect` says why and fails.
    let out = connect_with_stdin(&url, "tcp-only-e2e", "ssh", Vec::new()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(stderr.contains("may not open channel \"ssh\""), "{stderr}");

    // The other client token in the variable opens any channel.
    let args = [
        "forward",
        "--server",
        &url,
        "--token",
        "any-client-e2e",
        specs[0],
    ];
    let other = Proc::spawn("local-agent", &args);
    let [ssh] = forwarding(&other, &["ssh"]).await[..] else {
        unreachable!()
    };
    assert_eq!(round_trip(ssh, &data).await.unwrap(), data);
    for token in ["scoped-agent-e2e", "tcp-only-e2e", "any-client-e2e"] {
        assert!(!server.log().contains(token), "{}", server.log());
    }
}
