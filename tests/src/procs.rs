//! The binaries under test, run as real processes with their stderr kept in
//! a file the test can search.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{wait_for, WAIT};

/// Path of a workspace binary (`public-server`, `local-agent`). The first
/// call builds them (a no-op when fresh), so `cargo test -p uptun-e2e` alone
/// never runs stale binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "public-server",
                "-p",
                "local-agent",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
    });
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join(name);
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// A running process, killed when dropped. Its stderr goes to a file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    _dir: tempdir::Dir,
}

impl Proc {
    /// Starts `name` with `RUST_LOG=info`.
    pub fn spawn(name: &str, args: &[&str]) -> Proc {
        Self::spawn_logged(name, args, "info")
    }

    /// Starts `name` with `RUST_LOG` set to `rust_log` (`trace`, `debug`, …).
    pub fn spawn_logged(name: &str, args: &[&str], rust_log: &str) -> Proc {
        Self::spawn_env(name, args, &[("RUST_LOG", rust_log)])
    }

    /// Starts `name` with these environment variables (`RUST_LOG` too).
    pub fn spawn_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let dir = tempdir::Dir::new();
        let log = dir.path().join(format!("{name}.log"));
        let child = Command::new(bin(name))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        Proc {
            child,
            log,
            _dir: dir,
        }
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; returns the log.
    pub async fn wait_log(&self, needle: &str) -> String {
        wait_for(
            &format!("{needle:?} in {}", self.log.display()),
            WAIT,
            || async {
                let log = self.log();
                log.contains(needle).then_some(log)
            },
        )
        .await
    }

    /// Waits until the log contains `needle` at least `n` times.
    pub async fn wait_log_count(&self, needle: &str, n: usize) -> String {
        wait_for(
            &format!("{n} × {needle:?} in {}", self.log.display()),
            WAIT,
            || async {
                let log = self.log();
                (log.matches(needle).count() >= n).then_some(log)
            },
        )
        .await
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn wait_exit(&mut self) -> Option<i32> {
        wait_for("process exit", WAIT, || {
            let status = self.child.try_wait().unwrap();
            async move { status.map(|s| s.code()) }
        })
        .await
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.log());
        }
    }
}

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
        let id = std::process::id();
        let token = format!("test-token-{id}");
        let client_token = format!("test-client-token-{id}");
        let admin_token = format!("test-admin-token-{id}");
        let mut args = vec!["--listen", listen, "--agent-token", &token];
        args.extend(["--client-token", &client_token]);
        args.extend(["--admin-token", &admin_token]);
        args.extend_from_slice(extra);
        let (proc, addr) = spawn_server(&args, rust_log).await;
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
        let url = self.url();
        let mut args = vec!["--server", url.as_str(), "--token", self.token.as_str()];
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

    /// Waits until the status endpoint counts exactly `n` agent links.
    pub async fn wait_agents(&self, n: usize) {
        let want = format!("agents: {n}\n");
        wait_for(&format!("{n} agent links"), WAIT, || async {
            let (_, body) = self.status().await.ok()?;
            String::from_utf8_lossy(&body).contains(&want).then_some(())
        })
        .await
    }

    /// `GET /_uptun/status` with the admin token: (status, body).
    pub async fn status(&self) -> std::io::Result<(u16, Vec<u8>)> {
        let auth = format!("Authorization: Bearer {}\r\n", self.admin_token);
        http_get_with(self.addr, "/_uptun/status", &auth).await
    }

    /// Waits until the status endpoint lists each channel.
    pub async fn wait_channels(&self, names: &[&str]) {
        wait_for(&format!("channels {names:?} registered"), WAIT, || async {
            let (_, body) = self.status().await.ok()?;
            let body = String::from_utf8_lossy(&body).into_owned();
            names
                .iter()
                .all(|n| body.split([' ', ',', '\n']).any(|w| w == *n))
                .then_some(())
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
    let args: Vec<String> = ["connect", "--server", url, "--token", token, channel]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(bin("local-agent"))
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

/// A minimal HTTP/1.1 GET with `Connection: close`: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    http_get_with(addr, path, "").await
}

/// `http_get` with more header lines (each ending in `\r\n`).
pub async fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    Ok((status, raw[split + 4..].to_vec()))
}

/// Runs a command to completion with a bound; returns its output.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    let out = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(limit).is_err() {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("{cmd:?} did not finish within {limit:?}");
    }
    out.join().unwrap().expect("wait for command")
}

/// Says why a test cannot run here. Under `CI=true` a missing program is a
/// failure, not a skip: CI installs everything the tests need.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: .ci/run must install it)");
    }
    eprintln!("SKIP: {why}");
}

/// True if a program is on PATH (or is an existing path).
pub fn have(program: &str) -> bool {
    Path::new(program).exists()
        || std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
            .unwrap_or(false)
}

/// A temporary directory, removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        #[allow(clippy::new_without_default)]
        pub fn new() -> Dir {
            static N: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "uptun-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
