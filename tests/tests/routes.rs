//! Routing from a config file, end to end: every matcher carries its users
//! to the right agent through the one port; replies and closes arrive
//! byte-exact; per-route connect timeouts hold; HUP swaps routes for new
//! connections while old ones keep flowing. ProxyMachine's own case too:
//! two real `git daemon`s behind `git-alpha` and `git-beta`, one port.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uptun_e2e::procs::{have, run_bounded, skip, Server};
use uptun_e2e::{bounded, targets, tempdir_path};

/// An HTTP target that answers every request with its own name.
async fn named(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let page = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = socket.write_all(page.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// Writes `config` to a file in `dir`; returns its path.
fn config_file(dir: &Path, config: &str) -> String {
    let path = dir.join("uptun.toml");
    std::fs::write(&path, config).unwrap();
    path.to_string_lossy().into_owned()
}

/// `GET path` for `host`: (status, body).
async fn get(server: &Server, path: &str, host: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = say(server.addr, request.as_bytes(), false).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// Sends `data` (half-closing after it if `finish`), then reads until the
/// server closes.
async fn say(addr: SocketAddr, data: &[u8], finish: bool) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(data).await.unwrap();
    if finish {
        socket.shutdown().await.unwrap();
    }
    let mut got = Vec::new();
    bounded("reading to EOF", socket.read_to_end(&mut got))
        .await
        .unwrap();
    got
}

const ROUTES: &str = r#"
[[route]]
host = "*.api.example.test"
channel = "api"

[[route]]
path = "/admin"
channel = "admin"

[[route]]
path = "/nobody"
channel = "nobody"
connect_timeout = "1s"

[[route]]
http = true
channel = "web"

[[route]]
prefix = "QUIT"
close = "bye\n"

[[route]]
prefix = "HELLO\n"
reply = "who are you?\n"

[[route]]
prefix = "HELLO\nme"
channel = "me"

[[route]]
prefix = "LATE"
channel = "late"
connect_timeout = "30s"

[[route]]
silent = true
sniff_timeout = "200ms"
channel = "banner"

[[route]]
channel = "tcp"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn each_matcher_and_action_routes_through_the_one_port() {
    let dir = tempdir_path();
    let config = config_file(dir.path(), ROUTES);
    let server = Server::start(&["--config", &config]).await;
    let (api, admin, web) = (named("api").await, named("admin").await, named("web").await);
    let echo = targets::echo().await;
    let (banner, _) = targets::recorder(Some(b"220 banner first\r\n")).await;
    let _agent = server
        .agent(&[
            format!("api={api}"),
            format!("admin={admin}"),
            format!("web={web}"),
            format!("me={echo}"),
            format!("banner={banner}"),
            format!("tcp={echo}"),
        ])
        .await;

    // host, with a wildcard; path by whole segments; HTTP for the rest.
    assert_eq!(get(&server, "/", "v1.api.example.test").await.1, "api");
    assert_eq!(get(&server, "/", "api.example.test").await.1, "web");
    assert_eq!(
        get(&server, "/admin/users", "example.test").await.1,
        "admin"
    );
    assert_eq!(
        get(&server, "/administrator", "example.test").await.1,
        "web"
    );

    // close with a reply: exactly these bytes, then EOF.
    assert_eq!(say(server.addr, b"QUIT\r\n", false).await, b"bye\n");

    // reply, then route again on what the user says next: nothing lost.
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(b"HELLO\n").await.unwrap();
    let mut question = [0u8; 13];
    socket.read_exact(&mut question).await.unwrap();
    assert_eq!(&question, b"who are you?\n");
    socket.write_all(b"me\n").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    bounded("echo", socket.read_to_end(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, b"HELLO\nme\n");

    // silent: the server-speaks-first target's banner arrives unasked.
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let mut first = [0u8; 18];
    bounded("banner", socket.read_exact(&mut first))
        .await
        .unwrap();
    assert_eq!(&first, b"220 banner first\r\n");

    // Anything else: the catch-all.
    assert_eq!(say(server.addr, b"\x00\x01raw", true).await, b"\x00\x01raw");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_routes_connect_timeout_bounds_the_wait_and_rides_out_a_restart() {
    let dir = tempdir_path();
    let config = config_file(dir.path(), ROUTES);
    let server = Server::start(&["--config", &config]).await;

    // No agent for `nobody`: its 1 s connect timeout, not the server's 10 s.
    let asked = Instant::now();
    let (status, body) = get(&server, "/nobody", "example.test").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"nobody\""), "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );

    // `late` waits up to 30 s: a user that comes before its agent is
    // carried once the agent is up.
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(b"LATE hello").await.unwrap();
    server
        .proc
        .wait_log("no agent serves the channel yet")
        .await;
    let echo = targets::echo().await;
    let _agent = server.agent(&[format!("late={echo}")]).await;
    socket.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    bounded("late echo", socket.read_to_end(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, b"LATE hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn hup_swaps_routes_for_new_connections_while_old_ones_flow() {
    let dir = tempdir_path();
    let before = "[[route]]\nprefix = \"PING\"\nchannel = \"one\"\n";
    let config = config_file(dir.path(), before);
    let server = Server::start(&["--config", &config]).await;
    let echo = targets::echo().await;
    let (two, _) = targets::recorder(Some(b"two\n")).await;
    let _agent = server
        .agent(&[format!("one={echo}"), format!("two={two}")])
        .await;

    let mut old = TcpStream::connect(server.addr).await.unwrap();
    old.write_all(b"PING 1\n").await.unwrap();
    let mut got = [0u8; 7];
    old.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"PING 1\n");

    // A broken file changes nothing.
    config_file(
        dir.path(),
        "[[route]]\nprefix = \"PING\"\nchannel = \"a b\"\n",
    );
    hup(&server);
    let log = server.proc.wait_log("config not reloaded").await;
    assert!(log.contains("uptun.toml:3:"), "{log}");

    config_file(
        dir.path(),
        "[[route]]\nprefix = \"PING\"\nchannel = \"two\"\n",
    );
    hup(&server);
    server.proc.wait_log("HUP: config reloaded").await;
    let mut new = TcpStream::connect(server.addr).await.unwrap();
    new.write_all(b"PING 2\n").await.unwrap();
    let mut greeting = [0u8; 4];
    bounded("new route", new.read_exact(&mut greeting))
        .await
        .unwrap();
    assert_eq!(&greeting, b"two\n");

    // The stream from before the reload still reaches `one`.
    old.write_all(b"PING 3\n").await.unwrap();
    old.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"PING 3\n");
}

fn hup(server: &Server) {
    let pid = server.proc.child.id().to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success());
}

/// Serves git's own protocol on a port: each connection gets a real
/// `git daemon --inetd` with the socket as its stdin and stdout.
async fn git_daemon(base: &Path) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = base.to_path_buf();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let socket = socket.into_std().unwrap();
            socket.set_nonblocking(false).unwrap();
            let output = OwnedFd::from(socket.try_clone().unwrap());
            let base_path = format!("--base-path={}", base.display());
            let mut daemon = Command::new("git")
                .args(["daemon", "--inetd", "--export-all", &base_path])
                .arg(&base)
                .stdin(Stdio::from(OwnedFd::from(socket)))
                .stdout(Stdio::from(output))
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            tokio::task::spawn_blocking(move || daemon.wait());
        }
    });
    addr
}

/// A bare repository `NAME.git` under `base` whose one file says NAME.
fn repository(base: &Path, name: &str) {
    let work = base.join(format!("{name}-work"));
    let git = |args: &[&str], dir: &Path| {
        let out = run_bounded(
            Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(dir),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    std::fs::create_dir_all(&work).unwrap();
    git(&["init", "-q"], &work);
    std::fs::write(work.join("who"), name).unwrap();
    git(&["add", "who"], &work);
    git(&["commit", "-q", "-m", name], &work);
    let bare = format!("{name}.git");
    git(
        &[
            "clone",
            "-q",
            "--bare",
            ".",
            base.join(&bare).to_str().unwrap(),
        ],
        &work,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn git_clones_reach_their_own_daemon_by_regex_capture() {
    if !have("git") {
        return skip("git is not installed");
    }
    let dir = tempdir_path();
    let (alpha_base, beta_base) = (dir.path().join("alpha"), dir.path().join("beta"));
    for (base, name) in [(&alpha_base, "alpha"), (&beta_base, "beta")] {
        std::fs::create_dir_all(base).unwrap();
        repository(base, name);
    }
    let config = config_file(
        dir.path(),
        "[[route]]\nregex = '[0-9a-f]{4}git-upload-pack /([a-z]+)\\.git'\nchannel = \"git-$1\"\n",
    );
    let server = Server::start(&["--config", &config]).await;
    let (alpha, beta) = (git_daemon(&alpha_base).await, git_daemon(&beta_base).await);
    let _agent = server
        .agent(&[format!("git-alpha={alpha}"), format!("git-beta={beta}")])
        .await;
    for name in ["alpha", "beta"] {
        let url = format!("git://{}/{name}.git", server.addr);
        let into = dir.path().join(format!("{name}-clone"));
        let out = run_bounded(
            Command::new("git").args(["clone", "-q", &url, into.to_str().unwrap()]),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "git clone {url}: {out:?}");
        assert_eq!(std::fs::read_to_string(into.join("who")).unwrap(), name);
    }
    // A repository no route names is not served by anyone.
    let url = format!("git://{}/gamma.git", server.addr);
    let into = dir.path().join("gamma-clone");
    let out = run_bounded(
        Command::new("git").args(["clone", "-q", &url, into.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
}
