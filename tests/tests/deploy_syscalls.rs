//! The systemd units' seccomp filter (`SystemCallFilter=`) kills a process
//! that makes a system call outside it, with SIGSYS and no log line of its
//! own. This test runs the server and an agent under strace along the paths
//! a deployment takes (start, agent link, a web user relayed to a target, a
//! client, status and metrics, HUP, TERM) and checks that every system call
//! they made is one their unit allows, as systemd-analyze expands the
//! unit's groups. Paths not taken here (TLS, PROXY headers) are not covered.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use uptun_e2e::deploy::{read, unit_settings};
use uptun_e2e::procs::{bin, have, http_get, http_get_with, skip, tempdir};
use uptun_e2e::server::connect_with_stdin;
use uptun_e2e::{targets, wait_for, WAIT};

/// A workspace binary running under `strace -f`, which writes every system
/// call of it and its threads to a file.
struct Traced {
    strace: Child,
    calls: PathBuf,
    stderr: PathBuf,
    _dir: tempdir::Dir,
}

impl Traced {
    fn start(program: &str, args: &[&str]) -> Traced {
        let dir = tempdir::Dir::new();
        let calls = dir.path().join("strace.out");
        let stderr = dir.path().join("stderr");
        let strace = Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&calls)
            .arg(bin(program))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start strace");
        Traced {
            strace,
            calls,
            stderr,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn wait_log(&self, needle: &str) -> String {
        wait_for(&format!("{needle:?} in the log"), WAIT, || async {
            let log = self.log();
            log.contains(needle).then_some(log)
        })
        .await
    }

    /// The traced program's pid: the first field of strace's first line.
    fn pid(&self) -> Option<String> {
        let out = std::fs::read_to_string(&self.calls).ok()?;
        let first = out.lines().next()?.split_whitespace().next()?;
        Some(first.to_string())
    }

    fn signal(&self, name: &str) {
        let pid = self.pid().expect("the traced program has started");
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success(), "kill {name} {pid}");
    }

    /// Sends TERM and waits until the program (and so strace) has exited.
    async fn stop(&mut self) {
        self.signal("-TERM");
        let strace = &mut self.strace;
        wait_for("the traced program to exit after TERM", WAIT, || {
            let done = strace.try_wait().unwrap().is_some();
            async move { done.then_some(()) }
        })
        .await;
    }

    /// The names of the system calls made, from lines like
    /// `1234  openat(AT_FDCWD, …) = 3` (and `<... openat resumed>`).
    fn calls(&self) -> BTreeSet<String> {
        let out = std::fs::read_to_string(&self.calls).unwrap();
        out.lines()
            .filter_map(|line| {
                let rest = line.split_once(' ')?.1.trim_start();
                let rest = rest.strip_prefix("<... ").unwrap_or(rest);
                let name = rest.split(['(', ' ']).next()?;
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    .then(|| name.to_string())
            })
            .filter(|name| !name.is_empty())
            .collect()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        // strace killed alone would leave its tracee running, untraced.
        if self.strace.try_wait().ok().flatten().is_none() {
            if let Some(pid) = self.pid() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            let _ = self.strace.kill();
            let _ = self.strace.wait();
        }
    }
}

/// The system calls in a group such as `@system-service`, groups within it
/// expanded, as systemd-analyze lists them.
fn group(name: &str) -> BTreeSet<String> {
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {name}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut calls = BTreeSet::new();
    for line in text.lines().skip(1).map(str::trim) {
        match line {
            "" => {}
            _ if line.starts_with('#') => {}
            _ if line.starts_with('@') => calls.extend(group(line)),
            call => {
                calls.insert(call.to_string());
            }
        }
    }
    assert!(!calls.is_empty(), "{name} lists no system calls");
    calls
}

/// What a unit's `SystemCallFilter=` lines let through: the union of the
/// allowed lists, less the union of the `~` (denied) ones.
fn allowed_by(unit: &str) -> BTreeSet<String> {
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for (key, value) in unit_settings(&read(&format!("deploy/{unit}"))) {
        if key != "SystemCallFilter" {
            continue;
        }
        let (into, list) = match value.strip_prefix('~') {
            Some(list) => (&mut denied, list),
            None => (&mut allowed, value.as_str()),
        };
        for item in list.split_whitespace() {
            match item.starts_with('@') {
                true => into.extend(group(item)),
                false => into.extend([item.to_string()]),
            }
        }
    }
    assert!(!allowed.is_empty(), "{unit} has no SystemCallFilter");
    allowed.difference(&denied).cloned().collect()
}

fn assert_allowed(traced: &Traced, unit: &str) {
    let calls = traced.calls();
    assert!(
        calls.len() > 20,
        "{unit}: only {calls:?}: is the trace read?"
    );
    let allowed = allowed_by(unit);
    let outside: Vec<&String> = calls.difference(&allowed).collect();
    assert!(
        outside.is_empty(),
        "{unit} would kill its binary (SIGSYS) for {outside:?}; it used {calls:?}"
    );
}

async fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, Vec<u8>) {
    http_get_with(addr, path, headers).await.unwrap()
}

#[tokio::test]
async fn the_binaries_make_only_system_calls_their_units_allow() {
    for program in ["strace", "systemd-analyze"] {
        if !have(program) {
            return skip(&format!("{program} is not installed; .ci/run installs it"));
        }
    }
    let dir = tempdir::Dir::new();
    let config = dir.path().join("uptun.toml");
    std::fs::write(&config, "").unwrap();
    let (agent_token, client_token) = ("sc-agent", "sc-client");
    let config = config.to_str().unwrap();
    let mut server = Traced::start(
        "public-server",
        &[
            "--listen",
            "127.0.0.1:0",
            "--agent-token",
            agent_token,
            "--client-token",
            client_token,
            "--admin-token",
            "sc-admin",
            "--config",
            config,
        ],
    );
    let log = server.wait_log("listening addr=").await;
    let addr: SocketAddr = log
        .split("listening addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let url = format!("http://{addr}");
    let web = format!("web={}", targets::http().await);
    let mut agent = Traced::start(
        "local-agent",
        &[
            "--server",
            &url,
            "--token",
            agent_token,
            "--channel",
            &web,
            "--channel",
            "sock=unix:/nonexistent/uptun.sock",
        ],
    );
    server.wait_log("agent link up").await;

    let (status, body) = http_get(addr, "/hello").await.unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello from the target\n"[..])
    );
    for path in ["/_uptun/status", "/_uptun/metrics"] {
        let (status, _) = get(addr, path, "Authorization: Bearer sc-admin\r\n").await;
        assert_eq!(status, 200, "{path}");
    }
    // A client link, and an agent dialing a unix: target that is not there.
    let out = connect_with_stdin(&url, client_token, "sock", b"x".to_vec()).await;
    assert!(!out.status.success(), "the unix target does not exist");
    server.signal("-HUP");
    server.wait_log("HUP: config reloaded").await;
    agent.stop().await;
    server.stop().await;

    assert_allowed(&server, "public-server.service");
    assert_allowed(&agent, "local-agent.service");
}
