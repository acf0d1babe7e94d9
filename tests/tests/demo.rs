//! The README's first command as a newcomer meets it: every line the demo
//! prints runs as printed, pasted whole, from a directory outside the
//! repository. The second agent it offers joins and serves the page.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uptun_e2e::procs::{bin, have, http_get, run_bounded, skip, tempdir};
use uptun_e2e::{wait_for, WAIT};

/// Kills the demo (or a line's process) when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command of a printed line: what follows the label column
/// (`  curl    curl -i …`), or nothing for prose and the URL to open.
fn command(line: &str) -> Option<&str> {
    let (label, rest) = (line.get(..10)?, line.get(10..)?);
    let label = label.trim();
    let known = ["", "curl", "tcp", "status", "ssh"];
    (line.starts_with("  ") && known.contains(&label) && !rest.starts_with([' ', '(']))
        .then_some(rest)
}

/// Runs `line` with `sh -c` in `dir`; its stdout.
fn sh(line: &str, dir: &std::path::Path) -> String {
    let out = run_bounded(Command::new("sh").args(["-c", line]).current_dir(dir), WAIT);
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_line_the_demo_prints_runs_as_printed() {
    // Not inside the repository, and not started by cargo: the demo must
    // name a local-agent that runs from anywhere.
    let dir = tempdir::Dir::new();
    let printed = dir.path().join("demo.out");
    let _demo = Killed(
        Command::new(bin("uptun-demo"))
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("CARGO")
            .env_remove("CARGO_MANIFEST_DIR")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&printed).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let text = wait_for("the demo's instructions", WAIT, || async {
        let text = std::fs::read_to_string(&printed).unwrap_or_default();
        text.contains("Press Ctrl-C").then_some(text)
    })
    .await;
    assert!(!text.contains("cargo run"), "{text}");
    let commands: Vec<&str> = text.lines().filter_map(command).collect();
    assert!(commands.len() >= 5, "{commands:#?}\n{text}");
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches(['/', ',']);
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let (status, body) = http_get(addr, "/").await.unwrap();
    assert_eq!(status, 200, "the URL to open: {url}");
    assert!(String::from_utf8_lossy(&body).contains("It works"));

    for line in commands {
        run_line(line, addr, dir.path()).await;
    }
}

/// Runs one printed command and checks it did what the demo says.
async fn run_line(line: &str, addr: SocketAddr, dir: &std::path::Path) {
    if line.starts_with("curl") {
        if !have("curl") {
            return skip("curl is not installed");
        }
        let out = sh(line, dir);
        let expect = if line.contains("/_uptun/status") {
            "demo-agent"
        } else {
            "It works"
        };
        assert!(out.contains(expect), "{line}: {out}");
    } else if line.starts_with("nc ") {
        // Interactive: do what it says (type a line) over a socket instead.
        assert!(
            line.starts_with(&format!("nc {} {} ", addr.ip(), addr.port())),
            "{line}"
        );
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(b"hello through nc\n").await.unwrap();
        let mut back = [0u8; 17];
        uptun_e2e::bounded("the echo", socket.read_exact(&mut back))
            .await
            .unwrap();
        assert_eq!(&back, b"hello through nc\n");
    } else if line.starts_with("echo hello |") {
        assert_eq!(sh(line, dir), "hello\n", "{line}");
    } else if line.contains("--name second-agent") {
        second_agent(line, addr, dir).await;
    } else if line.starts_with("ssh ") {
        // Only printed when an sshd listens on 127.0.0.1:22; logging in
        // needs keys this test does not have, so it checks the banner.
        ssh_banner(line, addr, dir).await;
    } else {
        panic!("the demo printed a line this test does not run: {line}");
    }
}

/// The "another agent" line: it joins channel web, its target serves the
/// page, and the page keeps working with both members, some users going
/// to the new one.
async fn second_agent(line: &str, addr: SocketAddr, dir: &std::path::Path) {
    let target = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("web="))
        .unwrap();
    let (status, _) = http_get(target.parse().unwrap(), "/").await.unwrap();
    assert_eq!(status, 200, "the second agent's target {target}");

    let log = dir.join("second-agent.log");
    let _agent = Killed(
        Command::new("sh")
            .args(["-c", &format!("exec {line}")])
            .current_dir(dir)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the second agent's link", WAIT, || async {
        read().contains("link up: serving channels").then_some(())
    })
    .await;
    // Members take turns on ties, so some of these go to the new agent.
    for _ in 0..10 {
        let (status, body) = http_get(addr, "/").await.unwrap();
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains("It works"));
    }
    wait_for(
        "a stream served by the second agent",
        Duration::from_secs(5),
        || async { read().contains("stream done").then_some(()) },
    )
    .await;
    assert!(!read().contains("stream refused"), "{}", read());
}

/// An ssh line reaches sshd: the plain one through the public port, the
/// ProxyCommand one through `local-agent connect`.
async fn ssh_banner(line: &str, addr: SocketAddr, dir: &std::path::Path) {
    let banner = match line.split_once("ProxyCommand='") {
        Some((_, rest)) => {
            let inner = rest.split('\'').next().unwrap();
            sh(
                &format!("printf 'SSH-2.0-test\\r\\n' | {inner} | head -c 4"),
                dir,
            )
        }
        None => {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket.write_all(b"SSH-2.0-test\r\n").await.unwrap();
            let mut banner = [0u8; 4];
            uptun_e2e::bounded("sshd's banner", socket.read_exact(&mut banner))
                .await
                .unwrap();
            String::from_utf8_lossy(&banner).into_owned()
        }
    };
    assert_eq!(banner, "SSH-", "{line}");
}

#[test]
fn commands_are_told_from_prose() {
    let printed = "  open    http://127.0.0.1:1/     the sample page\n\
                   \x20 curl    curl -i http://127.0.0.1:1/hello\n\
                   \x20         echo hello | /x/local-agent connect tcp\n\
                   \x20 ssh     (no sshd on 127.0.0.1:22)\n\
                   \x20 another agent: a second member\n";
    let found: Vec<&str> = printed.lines().filter_map(command).collect();
    assert_eq!(
        found,
        [
            "curl -i http://127.0.0.1:1/hello",
            "echo hello | /x/local-agent connect tcp"
        ]
    );
}
