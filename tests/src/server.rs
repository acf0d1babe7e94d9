//! The public server under test and the clients run against it: a real
//! `public-server` process on port 0 with fresh tokens, the agents and
//! clients it is given, and `local-agent connect` with data on stdin.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::procs::{bin, http_get_with, Proc};
use crate::{wait_for, WAIT};

/// A running public server on 127.0.0.1, port chosen by the OS.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// `--agent-token`: what agents present.
    pub token: String,
    /// `--client-token`: what `forward` and `connect` present.
    pub client_token: String,
    /// `--admin-token`: the bearer `/_uptun/status` wants.
    pub admin_token: String,
    /// `RUST_LOG` of the server and of the agents and clients started here.
    pub rust_log: String,
}

impl Server {
    /// Starts `public-server --listen 127.0.0.1:0` with fresh tokens and `extra` flags.
    pub async fn start(extra: &[&str]) -> Server {
        Self::start_on("127.0.0.1:0", extra).await
    }

    /// Starts a server on a given address (to restart one on the port it had).
    pub async fn start_on(listen: &str, extra: &[&str]) -> Server {
        Self::start_logged(listen, "info", extra).await
    }

    /// Like `start_on`, with `RUST_LOG` for the server and for every agent
    /// and client started through it.
    pub async fn start_logged(listen: &str, rust_log: &str, extra: &[&str]) -> Server {
        Self::start_env_logged(listen, rust_log, &[], extra).await
    }

    /// Like `start`, with environment variables for the server (`KEYS_SSH=…`).
    pub async fn start_env(env: &[(&str, &str)], extra: &[&str]) -> Server {
        Self::start_env_logged("127.0.0.1:0", "info", env, extra).await
    }

    async fn start_env_logged(
        listen: &str,
        rust_log: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Server {
        let id = std::process::id();
        let token = format!("test-token-{id}");
        let client_token = format!("test-client-token-{id}");
        let admin_token = format!("test-admin-token-{id}");
        let mut args = vec!["--listen", listen, "--agent-token", &token];
        args.extend(["--client-token", &client_token]);
        args.extend(["--admin-token", &admin_token]);
        args.extend_from_slice(extra);
        let mut all_env = vec![("RUST_LOG", rust_log)];
        all_env.extend_from_slice(env);
        let proc = Proc::spawn_env("public-server", &args, &all_env);
        let addr = listening_addr(&proc).await;
        Server {
            proc,
            addr,
            token,
            client_token,
            admin_token,
            rust_log: rust_log.to_string(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts an agent serving `channels` (`name=target`) and waits until the
    /// server lists every one of them.
    pub async fn agent(&self, channels: &[String]) -> Proc {
        self.agent_with(channels, &[]).await
    }

    /// Like `agent`, with more flags for the agent.
    pub async fn agent_with(&self, channels: &[String], extra: &[&str]) -> Proc {
        self.agent_at(&self.url(), channels, extra).await
    }

    /// Like `agent_with`, dialing `url` (a router in front, another name).
    pub async fn agent_at(&self, url: &str, channels: &[String], extra: &[&str]) -> Proc {
        let mut args = vec!["--server", url, "--token", self.token.as_str()];
        for c in channels {
            args.extend(["--channel", c.as_str()]);
        }
        args.extend_from_slice(extra);
        let agent = Proc::spawn_logged("local-agent", &args, &self.rust_log);
        let names: Vec<&str> = channels
            .iter()
            .map(|c| c.split('=').next().unwrap())
            .collect();
        self.wait_channels(&names).await;
        agent
    }

    /// Starts an agent for `url` with `extra` flags, expecting it to give
    /// up (a certificate or token it cannot get past), and waits for it to
    /// exit; returns its exit code and log.
    pub async fn agent_exit(&self, url: &str, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["--server", url, "--token", &self.token];
        args.extend(["--channel", "web=127.0.0.1:9"]);
        args.extend_from_slice(extra);
        let mut agent = Proc::spawn("local-agent", &args);
        let code = agent.wait_exit().await;
        (code, agent.log())
    }

    /// Waits until the status endpoint counts exactly `n` agent links.
    pub async fn wait_agents(&self, n: usize) {
        wait_for(&format!("{n} agent links"), WAIT, || async {
            let status = self.status_json().await?;
            (status["links"]["agents"] == n).then_some(())
        })
        .await
    }

    /// `GET /_uptun/status` with the admin token: (status, body).
    pub async fn status(&self) -> std::io::Result<(u16, Vec<u8>)> {
        let auth = format!("Authorization: Bearer {}\r\n", self.admin_token);
        http_get_with(self.addr, "/_uptun/status", &auth).await
    }

    /// The status document, if the server answered 200 with JSON.
    pub async fn status_json(&self) -> Option<serde_json::Value> {
        match self.status().await.ok()? {
            (200, body) => serde_json::from_slice(&body).ok(),
            _ => None,
        }
    }

    /// Streams open on each agent link, oldest link first.
    pub async fn streams_per_agent(&self) -> Vec<usize> {
        let status = self.status_json().await.expect("a status document");
        status["agents"]
            .as_array()
            .expect("an agents list")
            .iter()
            .map(|a| a["streams"].as_u64().expect("a stream count") as usize)
            .collect()
    }

    /// Waits until the status endpoint lists an agent for each channel.
    pub async fn wait_channels(&self, names: &[&str]) {
        wait_for(&format!("channels {names:?} registered"), WAIT, || async {
            let status = self.status_json().await?;
            let served: Vec<&str> = status["agents"]
                .as_array()?
                .iter()
                .flat_map(|a| a["channels"].as_array().into_iter().flatten())
                .filter_map(|c| c.as_str())
                .collect();
            names.iter().all(|n| served.contains(n)).then_some(())
        })
        .await
    }

    /// Runs `local-agent SUBCOMMAND --server … --token CLIENT_TOKEN` with more arguments.
    pub fn client(&self, subcommand: &str, more: &[&str]) -> Proc {
        let url = self.url();
        let mut args = vec![
            subcommand,
            "--server",
            url.as_str(),
            "--token",
            self.client_token.as_str(),
        ];
        args.extend_from_slice(more);
        Proc::spawn_logged("local-agent", &args, &self.rust_log)
    }
}

/// Starts `public-server ARGS` and waits for its `listening` line; returns
/// the process and the address it bound. For servers `Server::start` cannot
/// describe (no client token, say).
pub async fn spawn_server(args: &[&str], rust_log: &str) -> (Proc, SocketAddr) {
    let proc = Proc::spawn_logged("public-server", args, rust_log);
    let addr = listening_addr(&proc).await;
    (proc, addr)
}

/// Waits for a server's `listening` line; returns the address it bound.
pub async fn listening_addr(proc: &Proc) -> SocketAddr {
    let log = proc.wait_log("listening addr=").await;
    log.split("listening addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("listening address in the server log")
}

/// Runs `local-agent connect --server URL --token TOKEN CHANNEL` with `input`
/// on stdin (closed after it: the half-close) and returns its output.
pub async fn connect_with_stdin(
    url: &str,
    token: &str,
    channel: &str,
    input: Vec<u8>,
) -> std::process::Output {
    connect_with_stdin_and(url, token, channel, &[], input).await
}

/// [`connect_with_stdin`] with more flags (`--ca FILE`, …).
pub async fn connect_with_stdin_and(
    url: &str,
    token: &str,
    channel: &str,
    extra: &[&str],
    input: Vec<u8>,
) -> std::process::Output {
    let mut args: Vec<String> = ["connect", "--server", url, "--token", token]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(channel.to_string());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = crate::procs::without_proxy_env(&mut Command::new(bin("local-agent")))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        out
    });
    crate::bounded("local-agent connect", run).await.unwrap()
}
