//! The binaries under test, run as real processes with their stderr kept in
//! a file the test can search.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{wait_for, WAIT};

// Kept here too, so tests name them as before.
pub use crate::server::{connect_with_stdin, listening_addr, spawn_server, Server};

/// The workspace binaries the tests run.
const BINARIES: [&str; 3] = ["public-server", "local-agent", "uptun-demo"];

/// Path of a workspace binary (`public-server`, `local-agent`,
/// `uptun-demo`). `cargo test --workspace` has built them already (their
/// packages have tests of their own), so they are used as they are while
/// fresh; when one is missing or older than a source it was built from
/// (`cargo test -p uptun-e2e` alone after an edit), the first call builds
/// them, saying so on the terminal. Building here is not free even when
/// cargo built them for the workspace's tests a moment ago: `-p` resolves
/// other features (tokio's `test-util`), so it compiles tokio and everything
/// above it again (~40 s).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    BUILT.get_or_init(|| {
        if let Some(stale) = BINARIES.iter().find(|b| !fresh(&dir.join(b))) {
            build_binaries(stale);
        }
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// Whether `binary` is newer than every workspace file cargo built it from
/// (listed in the dep-info file cargo keeps beside it). Cargo.lock is left
/// out: it changes for unrelated reasons (a test's new dev-dependency), and
/// `cargo test --workspace` rebuilds the binaries when their dependencies do.
fn fresh(binary: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(binary) else {
        return false;
    };
    let Ok(dep_info) = std::fs::read_to_string(binary.with_extension("d")) else {
        return false;
    };
    let sources = dep_info.split_once(": ").map_or("", |(_, s)| s);
    // A file that is gone (or a path with a space, split apart) counts as
    // changed: building once too often is the safe mistake.
    sources
        .split_whitespace()
        .all(|source| modified(Path::new(source)).is_some_and(|m| m <= built))
}

/// Builds every binary in [`BINARIES`], with a line before and after on the
/// terminal: cargo test captures `eprintln!`, not a direct write to stderr,
/// and a silent minute looks like a hang.
fn build_binaries(stale: &str) {
    use std::io::Write;
    let say = |line: String| {
        let _ = std::io::stderr().write_all(line.as_bytes());
    };
    say(format!(
        "uptun-e2e: building {} for the end-to-end tests ({stale} is missing or older than \
         a source); the first build takes a minute or two\n",
        BINARIES.join(", ")
    ));
    let started = std::time::Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet"]);
    for b in BINARIES {
        build.args(["-p", b]);
    }
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build of the binaries failed");
    say(format!(
        "uptun-e2e: built in {:.0} s\n",
        started.elapsed().as_secs_f64()
    ));
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
        let child = without_proxy_env(&mut Command::new(bin(name)))
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

/// The proxy settings `local-agent` reads, as curl does.
pub const PROXY_VARS: [&str; 9] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "UPTUN_PROXY",
];

/// `cmd` without the proxy settings of whoever runs the tests: they would
/// send the tests' links to their proxy. A test that wants one sets it.
pub fn without_proxy_env(cmd: &mut Command) -> &mut Command {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
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
