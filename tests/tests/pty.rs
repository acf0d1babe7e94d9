//! `--channel NAME=pty:COMMAND` end to end: a real public server, a real
//! agent running real shells on real ptys, and users that are either
//! `local-agent connect` with a pipe or the terminal client of
//! `uptun_e2e::term` (for sizes, statuses and walking away).

use std::time::{Duration, Instant};

use uptun_e2e::procs::{connect_with_stdin, have, skip, Proc, Server};
use uptun_e2e::term::{numbers_after, pid_alive, wait_pid_gone, Term};
use uptun_protocol::{ExitStatus, StreamError, StreamEvent};

/// Long enough for anything these tests wait on (the agent's hang-up
/// grace is 2 s), short enough that a hang fails fast.
const SOON: Duration = Duration::from_secs(8);

async fn serve(channels: &[&str], extra: &[&str]) -> (Server, Proc) {
    let server = Server::start(&[]).await;
    let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
    let agent = server.agent_with(&channels, extra).await;
    (server, agent)
}

#[tokio::test]
async fn a_shell_through_connect_with_a_pipe_runs_the_command_and_ends() {
    let (server, _agent) = serve(&["console=pty:sh"], &[]).await;
    let out = connect_with_stdin(
        &server.url(),
        &server.client_token,
        "console",
        b"echo $((6*7))\n".to_vec(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Only the shell's arithmetic makes 42: the echo of the line has none.
    assert!(stdout.contains("42"), "{stdout:?}");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// bash reads with readline, which switches the terminal's mode and drops
/// a Ctrl-D typed ahead: the one the agent types a second later ends it.
#[tokio::test]
async fn bash_through_a_pipe_ends_too() {
    if !have("bash") {
        return skip("bash is not installed");
    }
    let (server, _agent) = serve(&["console=pty:bash --norc --noprofile"], &[]).await;
    let input = b"echo $((6*7))\n".to_vec();
    let out = connect_with_stdin(&server.url(), &server.client_token, "console", input).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("42"), "{stdout:?}");
    assert!(out.status.success(), "{:?}", out.status);
}

#[tokio::test]
async fn the_command_starts_at_the_first_size_and_follows_later_ones() {
    let (server, _agent) = serve(&["size=pty:stty size", "console=pty:sh"], &[]).await;
    // A command that asks at once gets the size sent with the stream.
    let term = Term::open(&server, "size").await;
    term.send_resize(100, 30).await;
    let (out, end) = term.read_to_end().await;
    assert_eq!(out.trim(), "30 100");
    assert_eq!(end, Ok(Some(ExitStatus::Code(0))));
    // Without a RESIZE, 80×24.
    let term = Term::open(&server, "size").await;
    let (out, _) = term.read_to_end().await;
    assert_eq!(out.trim(), "24 80");
    // A later RESIZE changes it for the next command.
    let term = Term::open(&server, "console").await;
    term.send_resize(120, 40).await;
    term.send(b"stty size\n").await;
    term.read_until("40 120").await;
    term.send_resize(90, 33).await;
    term.send(b"stty size\n").await;
    term.read_until("33 90").await;
}

#[tokio::test]
async fn the_exit_status_comes_with_the_end() {
    let (server, _agent) = serve(&["console=pty:sh", "die=pty:kill -9 $$"], &[]).await;
    let term = Term::open(&server, "console").await;
    term.send(b"echo $((6*7)); exit 3\n").await;
    let (out, end) = term.read_to_end().await;
    assert!(out.contains("42"), "{out:?}");
    assert_eq!(end, Ok(Some(ExitStatus::Code(3))));
    // A signal that ends `sh -c` itself (a shell it started and that was
    // killed is an exit code of sh, 137, as shells report it).
    let term = Term::open(&server, "die").await;
    let (_, end) = term.read_to_end().await;
    assert_eq!(end, Ok(Some(ExitStatus::Signal(9))));
}

/// The user walks away (RESET, its link gone) while a job runs in the
/// background and the shell ignores SIGHUP: both are gone soon after.
#[tokio::test]
async fn a_user_who_goes_away_leaves_no_process_behind() {
    let (server, _agent) = serve(&["console=pty:sh"], &[]).await;
    let term = Term::open(&server, "console").await;
    // `$((40+2))ok` is 42ok only once the shell ran it, not in the echo.
    term.send(b"sleep 600 & trap '' HUP; echo pid=$$ pid=$! $((40+2))ok\n")
        .await;
    let out = term.read_until("42ok").await;
    let pids = numbers_after(&out, "pid=");
    assert_eq!(pids.len(), 2, "{out:?}");
    assert!(pids.iter().all(|&pid| pid_alive(pid)), "{pids:?}");
    let gone = Instant::now();
    drop(term);
    for pid in pids {
        wait_pid_gone(pid, SOON).await;
    }
    // The shell ignored SIGHUP: only the SIGKILL after the grace ended it.
    assert!(
        gone.elapsed() >= Duration::from_secs(1),
        "{:?}",
        gone.elapsed()
    );
}

#[tokio::test]
async fn an_idle_stream_closes_at_its_timeout_and_its_process_goes() {
    let (server, _agent) = serve(&["console=pty:sh"], &["--idle-timeout", "console=1s"]).await;
    let term = Term::open(&server, "console").await;
    term.send(b"echo pid=$$ $((40+2))ok\n").await;
    let out = term.read_until("42ok").await;
    let pid = numbers_after(&out, "pid=")[0];
    // Quiet from here on, once the prompt is out: the last thing either
    // way is what the clock starts from.
    let mut last = Instant::now();
    let end = loop {
        match term.recv_event().await {
            Ok(StreamEvent::Data(_)) => last = Instant::now(),
            other => break other,
        }
    };
    let quiet = last.elapsed();
    match end {
        Err(StreamError::Reset(reason)) => {
            assert!(reason.contains("--idle-timeout"), "{reason}")
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    assert!(
        quiet >= Duration::from_millis(900),
        "closed after {quiet:?}"
    );
    assert!(quiet < Duration::from_secs(5), "closed after {quiet:?}");
    wait_pid_gone(pid, SOON).await;
}

/// `TERM` when the client sends none, `--pty-cwd`, and an environment
/// without the agent's settings: its token came from `UPTUN_TOKEN`.
#[tokio::test]
async fn term_directory_and_environment_of_the_command() {
    let server = Server::start(&[]).await;
    let dir = uptun_e2e::tempdir_path();
    let dir = dir.path().canonicalize().unwrap();
    let dir = dir.to_str().unwrap();
    let url = server.url();
    let args = [
        "--server",
        &url,
        "--channel",
        "env=pty:echo TERM=$TERM; pwd; env",
    ];
    let env = [("RUST_LOG", "info"), ("UPTUN_TOKEN", server.token.as_str())];
    let _agent = Proc::spawn_env(
        "local-agent",
        &[&args[..], &["--pty-cwd", dir]].concat(),
        &env,
    );
    server.wait_channels(&["env"]).await;
    let term = Term::open(&server, "env").await;
    let (out, end) = term.read_to_end().await;
    assert_eq!(end, Ok(Some(ExitStatus::Code(0))));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["TERM=xterm-256color", dir], "{out}");
    assert!(out.contains("\nPWD="), "a real environment: {out}");
    assert!(!out.contains(&server.token), "{out}");
    assert!(!out.contains("UPTUN_"), "{out}");
}

/// A user who reads nothing holds the command back through the pty; the
/// agent buffers no more than the stream's window, and the output is all
/// there once the user reads.
#[tokio::test]
async fn a_user_who_does_not_read_holds_the_command_back() {
    let (server, agent) = serve(&["flood=pty:echo pid=$$; exec yes"], &[]).await;
    let before = agent.rss_kib();
    let term = Term::open(&server, "flood").await;
    let out = term.read_until("\n").await;
    let pid = numbers_after(&out, "pid=")[0];
    // Until `yes` stops writing: blocked on the full pty.
    let written = || -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        io.lines()
            .find_map(|l| l.strip_prefix("wchar: "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut last = (written(), 0);
    let stalled = uptun_e2e::wait_for("yes to be held back", SOON, || {
        let now = written();
        last = if now == last.0 {
            (now, last.1 + 1)
        } else {
            (now, 0)
        };
        let steady = last.1 >= 10;
        async move { steady.then_some(now) }
    })
    .await;
    assert!(
        stalled < 32 << 20,
        "{stalled} bytes written before it was held"
    );
    let grown = agent.rss_kib().saturating_sub(before);
    eprintln!("held back after {stalled} bytes; the agent grew by {grown} KiB");
    assert!(grown < 16 << 10, "the agent grew by {grown} KiB");
    // Reading again lets it go on.
    let mut more = 0;
    while more < 4 << 20 {
        match term.recv_event().await {
            Ok(StreamEvent::Data(chunk)) => more += chunk.len(),
            other => panic!("{other:?}"),
        }
    }
    assert!(written() > stalled);
    drop(term);
    wait_pid_gone(pid, SOON).await;
}
