//! `--channel logs=session:COMMAND` end to end: a real public server, a
//! real agent running COMMAND on a pty, and clients through the server
//! (in-process terminal clients, and `local-agent connect` for one that
//! never reads). One process, every stream sees it and may type into it;
//! a late joiner sees the screen first; a stuck reader stalls nobody and
//! costs the agent no memory; the exit status ends every stream; the
//! restart policy; the smallest writer's size.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use uptun_e2e::procs::{bin, have, skip, without_proxy_env, Proc};
use uptun_e2e::server::Server;
use uptun_e2e::term::{numbers_after, pid_alive, wait_pid_gone, Term};
use uptun_e2e::{wait_for, WAIT};
use uptun_protocol::{ExitStatus, StreamError, StreamEvent};

/// Every test's own bound, well inside the 15 s a test may take.
const QUICK: Duration = Duration::from_secs(10);

/// A server and an agent serving `logs=session:COMMAND` with `extra` flags.
async fn session(command: &str, extra: &[&str]) -> (Server, Proc) {
    let server = Server::start(&[]).await;
    let agent = server
        .agent_with(&[format!("logs=session:{command}")], extra)
        .await;
    (server, agent)
}

async fn quick<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(QUICK, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {QUICK:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_see_what_one_typed_and_a_late_joiner_gets_it_from_the_ring() {
    let (server, _agent) = session("sh", &[]).await;
    let a = Term::open(&server, "logs").await;
    let b = Term::open(&server, "logs").await;
    // The typed line shows `$((6*7))`; only the shell's answer says 42.
    a.send(b"X=$((6*7)); echo \"$X-done\"\n").await;
    quick("a's answer", a.read_until("42-done")).await;
    quick("b's copy of it", b.read_until("42-done")).await;
    // Either may type: b's line reaches the same shell, a sees the answer.
    b.send(b"echo \"from-b-$((X+1))\"\n").await;
    quick("a sees b's answer", a.read_until("from-b-43")).await;
    quick("b's own answer", b.read_until("from-b-43")).await;
    drop((a, b));

    // Nobody types from here: what c gets first is the ring, the screen.
    let c = Term::open(&server, "logs").await;
    let screen = quick("c's screen", c.read_until("from-b-43")).await;
    assert!(
        screen.contains("X=$((6*7))") && screen.contains("42-done"),
        "{screen:?}"
    );
    // The same shell lived on after a and b left.
    c.send(b"echo \"still-$X\"\n").await;
    quick("the same shell", c.read_until("still-42")).await;
}

/// A stream's FIN says it types no more; unlike a pty's, the shared shell
/// gets no end of input from it, and its output keeps coming.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_whose_input_ended_still_gets_the_output() {
    let (server, _agent) = session("sh", &[]).await;
    let done = Term::open(&server, "logs").await;
    done.send(b"echo \"typed-$((3*3))\"\n").await;
    done.finish().await;
    quick("its own answer", done.read_until("typed-9")).await;
    let other = Term::open(&server, "logs").await;
    other.send(b"echo \"later-$((3*4))\"\n").await;
    quick("the other's answer", other.read_until("later-12")).await;
    quick("output after its FIN", done.read_until("later-12")).await;
}

/// An attachment on which nothing moved either way for the idle timeout is
/// closed; the shared process is not: it is not that stream's alone.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_attachment_is_closed_and_the_session_lives_on() {
    let (server, agent) = session("sh", &["--idle-timeout", "logs=1s"]).await;
    let log = agent.wait_log("session started").await;
    let pid = numbers_after(&log, "pid=")[0];
    let quiet = Term::open(&server, "logs").await;
    let mut last = Instant::now();
    let end = quick("the idle cut", async {
        loop {
            match quiet.recv_event().await {
                Ok(StreamEvent::Data(_)) => last = Instant::now(),
                other => break other,
            }
        }
    })
    .await;
    let waited = last.elapsed();
    match end {
        Err(StreamError::Reset(reason)) => assert!(reason.contains("--idle-timeout"), "{reason}"),
        other => panic!("expected a reset, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(pid_alive(pid), "the session's shell went with the stream");
    let next = Term::open(&server, "logs").await;
    next.send(b"echo \"alive-$((1+1))\"\n").await;
    quick("the shell's answer", next.read_until("alive-2")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_starts_in_the_pty_cwd() {
    let dir = uptun_e2e::procs::tempdir::Dir::new();
    let cwd = dir.path().to_str().unwrap();
    let (server, _agent) = session("sh", &["--pty-cwd", cwd]).await;
    let term = Term::open(&server, "logs").await;
    term.send(b"echo \"in:$(pwd):\"\n").await;
    quick("pwd", term.read_until(&format!("in:{cwd}:"))).await;
}

/// What a fast reader saw: the byte count and the end of the text.
struct Seen {
    bytes: usize,
    tail: String,
}

/// Reads `term` until `needle`, keeping only the last bytes (a flood of
/// megabytes would make a growing string quadratic).
async fn read_flood_until(term: &Term, needle: &str) -> Seen {
    let mut seen = Seen {
        bytes: 0,
        tail: String::new(),
    };
    while !seen.tail.contains(needle) {
        match term.recv_event().await {
            Ok(StreamEvent::Data(chunk)) => {
                seen.bytes += chunk.len();
                seen.tail.push_str(&String::from_utf8_lossy(&chunk));
                let cut = seen.tail.len().saturating_sub(4096);
                let cut = (cut..seen.tail.len())
                    .find(|&i| seen.tail.is_char_boundary(i))
                    .unwrap_or(0);
                seen.tail.drain(..cut);
            }
            Ok(StreamEvent::Resize(_)) => {}
            other => panic!("the stream ended ({other:?}) before {needle:?}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_stalls_no_one_while_the_session_prints_megabytes() {
    for program in ["yes", "head"] {
        if !have(program) {
            return skip(&format!("{program} is not installed"));
        }
    }
    let (server, agent) = session("sh", &[]).await;
    // A real client whose stdout nobody reads: its pipe fills, it stops
    // reading its stream, and the stream's window runs out.
    let mut connect = std::process::Command::new(bin("local-agent"));
    without_proxy_env(&mut connect)
        .args(["connect", "--server", &server.url(), "--token"])
        .args([&server.client_token, "logs"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut stuck = tokio::process::Command::from(connect)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for("the stuck client's stream", WAIT, || async {
        (server.streams_per_agent().await == [1]).then_some(())
    })
    .await;
    let a = Term::open(&server, "logs").await;
    let b = Term::open(&server, "logs").await;
    let before = agent.rss_kib();

    // 41 bytes × 500,000 lines: 20.5 MB, 80 times what the stuck client's
    // pipe and window can hold.
    let flood = b"yes 0123456789012345678901234567890123456789 | head -n 500000; \
                  echo \"flood-done-$((40+2))\"\n";
    a.send(flood).await;
    let started = Instant::now();
    let (seen_a, seen_b) = quick("both readers through the flood", async {
        tokio::join!(
            read_flood_until(&a, "flood-done-42"),
            read_flood_until(&b, "flood-done-42")
        )
    })
    .await;
    let took = started.elapsed();
    let grew = agent.rss_kib().saturating_sub(before);
    eprintln!(
        "flood: a got {} bytes, b {} bytes in {took:?}; the agent grew {grew} KiB",
        seen_a.bytes, seen_b.bytes
    );
    // Without a bound, the agent would hold the 20 MB for the stuck one.
    assert!(grew < 12 * 1024, "the agent grew {grew} KiB");

    // Once it reads again, the stuck client catches up to the screen,
    // told how much it missed.
    let mut out = stuck.stdout.take().unwrap();
    let caught_up = quick("the stuck client to catch up", async {
        let mut tail = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = out.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stuck client ended");
            tail.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&tail).into_owned();
            if let Some(note) = text.find("[uptun: this stream fell behind; ") {
                if text[note..].contains("flood-done-42") {
                    return text[note..].to_string();
                }
            }
            let keep = tail.len().saturating_sub(128 * 1024);
            tail.drain(..keep);
        }
    })
    .await;
    let skipped = numbers_after(&caught_up, "fell behind; ");
    assert!(
        skipped.first().is_some_and(|&n| n > 10_000_000),
        "{skipped:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exit_status_ends_every_stream_and_never_refuses_later_ones() {
    let (server, agent) = session("sh", &["--session-restart", "never"]).await;
    let log = agent.wait_log("session started").await;
    let pid = numbers_after(&log, "pid=")[0];
    let a = Term::open(&server, "logs").await;
    let b = Term::open(&server, "logs").await;
    a.send(b"exit 3\n").await;
    for term in [&a, &b] {
        let (_, end) = quick("the end", term.read_to_end()).await;
        assert_eq!(end, Ok(Some(ExitStatus::Code(3))));
    }
    wait_pid_gone(pid, QUICK).await;

    let refused = Term::open_at(server.addr, &server.client_token, "logs").await;
    assert!(refused.is_err(), "a stream after the end is refused");
    // The server tells users no more than "cannot be reached"; the agent's
    // reason, in its log and the server's, says what to do.
    agent
        .wait_log("session `sh` is over (exit code 3), and the agent runs it only once (--session-restart never): restart the agent")
        .await;
    server.proc.wait_log("runs it only once").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_exit_starts_a_fresh_process_with_a_fresh_screen() {
    let (server, agent) = session("sh", &[]).await;
    let a = Term::open(&server, "logs").await;
    a.send(b"echo \"old-$((1+1))\"; exit 4\n").await;
    let (seen, end) = quick("the end", a.read_to_end()).await;
    assert!(seen.contains("old-2"), "{seen:?}");
    assert_eq!(end, Ok(Some(ExitStatus::Code(4))));

    let log = quick("the restart", agent.wait_log_count("session started", 2)).await;
    let pids = numbers_after(&log, "pid=");
    assert!(pids.len() == 2 && pids[0] != pids[1], "{pids:?}");
    let b = Term::open(&server, "logs").await;
    b.send(b"echo \"new-$((2+3))\"\n").await;
    let seen = quick("the new shell", b.read_until("new-5")).await;
    assert!(
        !seen.contains("old"),
        "a new process, a new screen: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_exits_at_once_is_restarted_with_backoff_not_in_a_spin() {
    let (_server, agent) = session("exit 1", &[]).await;
    quick("the first end", agent.wait_log("session ended")).await;
    let first_end = Instant::now();
    let log = quick("three restarts", agent.wait_log_count("session started", 4)).await;
    let took = first_end.elapsed();
    // Delays of 0.25–0.5 s, 0.5–1 s and 1–2 s (half to all of a doubling
    // step) come before the second, third and fourth start.
    assert!(
        took >= Duration::from_millis(1500),
        "restarted after {took:?}"
    );
    assert!(log.contains("status=exit code 1"), "{log}");
    let starts = agent.log().matches("session started").count();
    assert!(starts <= 5, "{starts} starts in {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_the_agent_hangs_the_session_up() {
    let (_server, mut agent) = session("sh", &[]).await;
    let log = agent.wait_log("session started").await;
    let pid = numbers_after(&log, "pid=")[0];
    assert!(pid_alive(pid));
    let term = std::process::Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert_eq!(quick("the agent's exit", agent.wait_exit()).await, Some(0));
    wait_pid_gone(pid, QUICK).await;
}

/// Asks the shell for its terminal's size until it is `want` ("ROWS COLS").
async fn wait_size(term: &Term, want: &str) {
    let mut last = String::new();
    let asked = async {
        loop {
            term.send(b"stty size; echo \"size-$((1+1))\"\n").await;
            let seen = term.read_until("size-2").await;
            last = seen
                .lines()
                .rev()
                .find(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    words.len() == 2 && words.iter().all(|w| w.parse::<u16>().is_ok())
                })
                .unwrap_or_default()
                .to_string();
            if last == want {
                return;
            }
        }
    };
    if tokio::time::timeout(QUICK, asked).await.is_err() {
        panic!("the size stayed {last:?}, not {want:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_smallest_writer_sets_the_size_and_a_stream_without_resize_never_shrinks_it() {
    let (server, _agent) = session("sh", &[]).await;
    let a = Term::open(&server, "logs").await;
    a.send_resize(100, 30).await;
    wait_size(&a, "30 100").await;
    let b = Term::open(&server, "logs").await;
    b.send_resize(120, 20).await;
    // Narrowest of the widths, lowest of the heights.
    wait_size(&b, "20 100").await;
    // A read-only attachment sends no RESIZE: its (default 80×24)
    // terminal does not count.
    let watcher = Term::open(&server, "logs").await;
    wait_size(&a, "20 100").await;
    // The one that set the height leaves: the session grows back.
    drop(b);
    wait_size(&a, "30 100").await;
    drop(watcher);
}
