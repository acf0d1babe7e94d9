//! Signals sent to the real binaries, as ProxyMachine documents them: `QUIT`
//! drains without a deadline, `TERM` stops within `--grace` (at once when
//! nothing is open), and the agent and `forward` drain on `TERM` too.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{Proc, Server};
use uptun_e2e::{bounded, targets};

/// Sends `SIG{name}` to a process, as an operator's `kill -{name}` would.
fn signal(proc: &Proc, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), proc.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{name} failed");
}

/// How long the process takes to exit, and its exit code (`None` if a
/// signal ended it instead of its own clean exit).
async fn exit_after(proc: &mut Proc, since: Instant) -> (Duration, Option<i32>) {
    let code = proc.wait_exit().await;
    (since.elapsed(), code)
}

/// A raw user whose stream to an echo target is open: one round trip made.
async fn open_echo_user(addr: SocketAddr) -> TcpStream {
    let mut user = TcpStream::connect(addr).await.unwrap();
    // A zero first byte: neither HTTP nor SSH-, so the tcp channel.
    user.write_all(&[0, 1, 2]).await.unwrap();
    let mut back = [0u8; 3];
    bounded("the echo", user.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(back, [0, 1, 2]);
    user
}

/// The user's socket ends with a reset, not a clean EOF: an end forced by
/// a grace period is not disguised as a finished stream.
async fn assert_reset(user: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = bounded("the user's end", user.read_to_end(&mut rest)).await;
    let err = read.expect_err("a forced end must not look like EOF");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

/// Sends a GET for `len` pattern bytes and reads the first MiB of the reply.
async fn start_download(addr: SocketAddr, len: usize, seed: u64) -> (TcpStream, Vec<u8>) {
    let mut user = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /bytes/{len}/{seed} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    user.write_all(request.as_bytes()).await.unwrap();
    let mut start = vec![0u8; 1 << 20];
    bounded("the start of the download", user.read_exact(&mut start))
        .await
        .unwrap();
    (user, start)
}

/// Reads the rest of a download and checks the body against the pattern.
async fn finish_download(mut user: TcpStream, mut got: Vec<u8>, len: usize, seed: u64) {
    bounded("the rest of the download", user.read_to_end(&mut got))
        .await
        .unwrap();
    let body_at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - body_at, len, "body length");
    assert_eq!(sha256_hex(&got[body_at..]), sha256_hex(&pattern(seed, len)));
}

#[tokio::test(flavor = "multi_thread")]
async fn quit_lets_a_transfer_in_flight_finish_while_the_port_refuses() {
    let web = targets::http().await;
    // A zero grace: were QUIT to keep any deadline, the download would be cut.
    let mut server = Server::start(&["--grace", "0s"]).await;
    let agent = server.agent(&[format!("web={web}")]).await;
    let len = 64 << 20;
    let (user, start) = start_download(server.addr, len, 31).await;

    signal(&server.proc, "QUIT");
    server.proc.wait_log("stopped accepting").await;
    let refused = TcpStream::connect(server.addr).await.map(|_| ());
    let err = refused.expect_err("the port must be closed after QUIT");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    agent.wait_log("peer sent GOAWAY").await;

    finish_download(user, start, len, 31).await;
    let (_, code) = exit_after(&mut server.proc, Instant::now()).await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn term_closes_an_open_stream_when_the_grace_runs_out() {
    let echo = targets::echo().await;
    let mut server = Server::start(&["--grace", "2s"]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    let mut user = open_echo_user(server.addr).await;

    let sent = Instant::now();
    signal(&server.proc, "TERM");
    let (took, code) = exit_after(&mut server.proc, sent).await;
    assert_eq!(code, Some(0));
    // The stream stayed open the whole grace, and the exit followed it.
    assert!(
        took >= Duration::from_secs(2),
        "exited after {took:?}, inside the grace"
    );
    assert!(took < Duration::from_secs(3), "exited after {took:?}");
    assert_reset(&mut user).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn term_with_only_an_idle_agent_link_exits_at_once() {
    let echo = targets::echo().await;
    let mut server = Server::start(&[]).await;
    let agent = server.agent(&[format!("tcp={echo}")]).await;
    // A finished user leaves nothing open behind it.
    drop(open_echo_user(server.addr).await);
    uptun_e2e::wait_for(
        "the finished user's stream gone",
        uptun_e2e::WAIT,
        || async { (server.streams_per_agent().await == [0]).then_some(()) },
    )
    .await;

    let sent = Instant::now();
    signal(&server.proc, "TERM");
    let (took, code) = exit_after(&mut server.proc, sent).await;
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(1),
        "an idle server took {took:?}"
    );
    agent.wait_log("peer sent GOAWAY").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_term_closes_at_once() {
    let echo = targets::echo().await;
    let mut server = Server::start(&["--grace", "1h"]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    let mut user = open_echo_user(server.addr).await;

    signal(&server.proc, "TERM");
    server.proc.wait_log("stopped accepting").await;
    let sent = Instant::now();
    signal(&server.proc, "INT");
    let (took, code) = exit_after(&mut server.proc, sent).await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_reset(&mut user).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_on_term_drains_its_streams_within_its_grace() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;

    // Idle: it exits at once.
    let mut agent = server.agent(&[format!("tcp={echo}")]).await;
    let sent = Instant::now();
    signal(&agent, "TERM");
    let (took, code) = exit_after(&mut agent, sent).await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "an idle agent took {took:?}");
    server.wait_agents(0).await;

    // A stream that does not end by itself holds it for its grace, then is
    // reset; the exit is still a clean one.
    let mut agent = server
        .agent_with(&[format!("tcp={echo}")], &["--grace", "1s"])
        .await;
    let mut user = open_echo_user(server.addr).await;
    let sent = Instant::now();
    signal(&agent, "TERM");
    server.proc.wait_log("the agent is shutting down").await;
    let (took, code) = exit_after(&mut agent, sent).await;
    assert_eq!(code, Some(0));
    assert!(
        took >= Duration::from_secs(1),
        "exited after {took:?}, inside the grace"
    );
    assert!(took < Duration::from_secs(2), "exited after {took:?}");
    assert_reset(&mut user).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_on_term_finishes_its_connections_and_closes_its_port() {
    let digest = targets::digest().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={digest}")]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut forward = server.client("forward", &[&format!("{local}=tcp")]);
    forward.wait_log("forwarding").await;

    // Half the data before TERM, half after: the connection outlives the signal.
    let data = pattern(41, 8 << 20);
    let (first, second) = data.split_at(data.len() / 2);
    let mut user = TcpStream::connect(local).await.unwrap();
    user.write_all(first).await.unwrap();
    signal(&forward, "TERM");
    server.proc.wait_log("the client is shutting down").await;
    let err = TcpStream::connect(local).await.map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

    user.write_all(second).await.unwrap();
    user.shutdown().await.unwrap();
    let mut reply = String::new();
    bounded("the digest", user.read_to_string(&mut reply))
        .await
        .unwrap();
    assert_eq!(reply, format!("{} {}\n", data.len(), sha256_hex(&data)));
    assert_eq!(forward.wait_exit().await, Some(0));
}
