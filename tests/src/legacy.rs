//! rhost's legacy peers (`tests/legacy/etunnel.js`, run by node as the
//! original `etunnel` was): an agent (`etunnel server`) and a client
//! (`etunnel client`) that speak issue 12's legacy protocol to the public
//! server. Each is killed when dropped.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::procs::{have, tempdir};
use crate::{wait_for, WAIT};

/// The legacy peer's script.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("legacy/etunnel.js")
}

/// Whether node is here to run the legacy peer; says `SKIP` (a failure
/// under `CI=true`) when it is not.
pub fn have_node() -> bool {
    if have("node") {
        return true;
    }
    crate::procs::skip("node is not installed (Debian: nodejs); .ci/run installs it");
    false
}

/// A running `node etunnel.js …`: its stdout lines are collected as they
/// come (a thread drains the pipe, so the peer never blocks on it), its
/// stderr goes to a file.
pub struct LegacyPeer {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    log: PathBuf,
    _dir: tempdir::Dir,
}

impl LegacyPeer {
    /// Starts `node etunnel.js ARGS` without waiting for anything.
    pub fn spawn(args: &[&str]) -> LegacyPeer {
        let dir = tempdir::Dir::new();
        let log = dir.path().join("etunnel.log");
        let mut child = Command::new("node")
            .arg(script())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start node (the legacy peer): {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        LegacyPeer {
            child,
            lines,
            reader: Some(reader),
            log,
            _dir: dir,
        }
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// What the peer wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a line starting with `prefix` and returns it; panics at
    /// once, with the peer's output, if the peer exits without one.
    pub async fn wait_line(&mut self, prefix: &str) -> String {
        wait_for(&format!("{prefix:?} from the legacy peer"), WAIT, || {
            let exited = self.child.try_wait().unwrap().is_some();
            if exited {
                // Its stdout is at EOF: once the reader has taken the
                // last lines, what is there is all there will be.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
            }
            let found = self.lines().into_iter().find(|l| l.starts_with(prefix));
            if exited && found.is_none() {
                panic!(
                    "the legacy peer exited before printing {prefix:?}; stdout {:?}, stderr:\n{}",
                    self.lines(),
                    self.log()
                );
            }
            std::future::ready(found)
        })
        .await
    }

    /// Waits for the peer to be refused: the server closed its socket
    /// without an answer (the line is exactly `refused`) and it exited 1.
    pub async fn refused(&mut self) {
        let line = self.wait_line("refused").await;
        assert_eq!(
            line, "refused",
            "the server answered instead of closing the socket"
        );
        let code = wait_for("the refused legacy peer to exit", WAIT, || {
            std::future::ready(self.child.try_wait().unwrap().map(|s| s.code()))
        })
        .await;
        assert_eq!(code, Some(1), "exit code of a refused legacy peer");
    }
}

impl Drop for LegacyPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- legacy peer: stdout {:?}, stderr ----\n{}",
                self.lines(),
                self.log()
            );
        }
    }
}

/// A legacy agent (`etunnel server`), upgraded and serving its channel.
pub struct LegacyAgent {
    pub peer: LegacyPeer,
}

/// `server --tunnel … --channel … --key … --token … --target …` and `extra`.
pub fn agent_args(
    server: SocketAddr,
    channel: &str,
    key: &str,
    token: &str,
    target: SocketAddr,
) -> Vec<String> {
    let mut args = vec!["server".to_string()];
    for (flag, value) in [
        ("--tunnel", server.to_string()),
        ("--channel", channel.to_string()),
        ("--key", key.to_string()),
        ("--token", token.to_string()),
        ("--target", target.to_string()),
    ] {
        args.extend([flag.to_string(), value]);
    }
    args
}

impl LegacyAgent {
    /// Starts a legacy agent serving `channel` (`/`, `/ssh`) with `key`,
    /// registering `token` for its clients, dialing `target`; waits until
    /// the server upgraded it.
    pub async fn start(
        server: SocketAddr,
        channel: &str,
        key: &str,
        token: &str,
        target: SocketAddr,
    ) -> LegacyAgent {
        Self::start_with(server, channel, key, token, target, &[]).await
    }

    /// Like `start`, with `--read-rate`, `--send-ping` and the like.
    pub async fn start_with(
        server: SocketAddr,
        channel: &str,
        key: &str,
        token: &str,
        target: SocketAddr,
        extra: &[&str],
    ) -> LegacyAgent {
        let mut args = agent_args(server, channel, key, token, target);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut peer = LegacyPeer::spawn(&args);
        peer.wait_line("ready").await;
        LegacyAgent { peer }
    }
}

/// A legacy client (`etunnel client`), upgraded and listening.
pub struct LegacyClient {
    pub peer: LegacyPeer,
    /// Where local users connect.
    pub addr: SocketAddr,
}

impl LegacyClient {
    /// Starts a legacy client of `channel` presenting `token`, listening
    /// on a free port of 127.0.0.1; waits until it is upgraded and bound.
    pub async fn start(server: SocketAddr, channel: &str, token: &str) -> LegacyClient {
        Self::start_with(server, channel, token, &[]).await
    }

    /// Like `start`, with more flags.
    pub async fn start_with(
        server: SocketAddr,
        channel: &str,
        token: &str,
        extra: &[&str],
    ) -> LegacyClient {
        let tunnel = server.to_string();
        let mut args = vec!["client", "--tunnel", &tunnel, "--channel", channel];
        args.extend(["--token", token, "--listen", "127.0.0.1:0"]);
        args.extend_from_slice(extra);
        let mut peer = LegacyPeer::spawn(&args);
        let line = peer.wait_line("listening ").await;
        let port: u16 = line["listening ".len()..]
            .parse()
            .unwrap_or_else(|_| panic!("a port in {line:?}"));
        LegacyClient {
            peer,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

/// Sends `data` to `addr` while reading as many bytes back (an echo behind
/// it), then closes; returns what came back. No half-close: through a
/// legacy client that would close both ways.
pub async fn round_trip(addr: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = socket.into_split();
    let mut back = vec![0u8; data.len()];
    let writer = tokio::spawn(async move { w.write_all(&data).await.map(|_| w) });
    let read = r.read_exact(&mut back).await;
    read.unwrap_or_else(|e| panic!("the echo through {addr} ended early: {e}"));
    drop(writer.await.unwrap().unwrap());
    back
}
