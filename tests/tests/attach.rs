//! `local-agent attach` in a real terminal: a tmux pane runs it against a
//! `pty:sh` channel, types into it with `send-keys` and reads the screen
//! with `capture-pane`. The pty's size is the pane's and follows a resize;
//! `exit 3` there makes attach exit 3; the pane's terminal settings
//! (`stty -g`) are the same before and after, whether attach ended by the
//! remote exit, a detach or a signal. `--read-only` on a session watches
//! without typing or shrinking it. Without a terminal, attach (and connect)
//! are pipes that exit with the remote status.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use uptun_e2e::procs::{bin, have, skip, Server};
use uptun_e2e::term::Term;
use uptun_e2e::tmux::Tmux;
use uptun_e2e::{bounded, wait_for, WAIT};

/// A server and an agent serving `console=pty:sh`.
async fn console() -> (Server, uptun_e2e::procs::Proc) {
    let server = Server::start(&[]).await;
    let agent = server.agent(&["console=pty:sh".to_string()]).await;
    (server, agent)
}

/// `local-agent attach … console` as typed in the pane, with `extra` flags.
fn attach_line(server: &Server, extra: &str) -> String {
    attach_to(server, extra, "console")
}

fn attach_to(server: &Server, extra: &str, channel: &str) -> String {
    format!(
        "{} attach --server {} --token {} {extra} {channel}",
        bin("local-agent").display(),
        server.url(),
        server.client_token
    )
}

/// A tmux pane, or `None` (a skip; a failure under CI=true) without tmux.
fn tmux(cols: u16, rows: u16) -> Option<Tmux> {
    if !have("tmux") {
        skip("tmux is not installed (apt-get install tmux)");
        return None;
    }
    Some(Tmux::start(cols, rows))
}

/// Runs `command` in the pane between two `stty -g` snapshots, then prints
/// `attach exited N`.
fn run_between_snapshots(tmux: &Tmux, command: &str) {
    let (before, after) = (tmux.path("before"), tmux.path("after"));
    tmux.type_line(&format!(
        "stty -g > {}; {command}; echo \"attach exited $?\"; stty -g > {}",
        before.display(),
        after.display()
    ));
}

/// [`run_between_snapshots`], returning once the remote shell answered,
/// so attach is up and in raw mode.
async fn attach_in(tmux: &Tmux, command: &str) {
    run_between_snapshots(tmux, command);
    tmux.type_line("echo \"remote $((6*7))\"");
    tmux.wait_end("remote 42").await;
}

/// Waits for `attach exited CODE`, and checks the terminal is as it was.
async fn exited_with(tmux: &Tmux, code: i32) {
    tmux.wait_end(&format!("attach exited {code}")).await;
    let before = tmux.read_when_written(&tmux.path("before")).await;
    let after = tmux.read_when_written(&tmux.path("after")).await;
    assert_eq!(before, after, "stty -g before and after attach");
}

/// Runs COMMAND in the remote shell and returns what it printed. The
/// answer is marked `NAME=`, which the echoed command line does not hold
/// (it says `NAME""=`); it starts its line, after the prompt if the
/// output came before the prompt was printed.
async fn remote(tmux: &Tmux, name: &str, command: &str) -> String {
    tmux.type_line(&format!("echo \"{name}\"\"=$({command})\""));
    let marker = format!("{name}=");
    tmux.wait_line(&marker, |l| {
        let after_prompt = l.trim_start_matches(['#', '$', ' ']);
        after_prompt.strip_prefix(&marker).map(str::to_string)
    })
    .await
}

/// "ROWS COLS" as `stty size` prints it, for a (cols, rows) pair.
fn stty_size((cols, rows): (u16, u16)) -> String {
    format!("{rows} {cols}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pty_has_the_pane_s_size_and_term_follows_a_resize_and_exit_3_is_attach_s_exit() {
    let Some(tmux) = tmux(100, 30) else { return };
    let (server, _agent) = console().await;
    tmux.type_line("echo \"local-term=$TERM\"");
    let term = tmux
        .wait_line("local-term=", |l| {
            l.strip_prefix("local-term=").map(str::to_string)
        })
        .await;
    attach_in(&tmux, &attach_line(&server, "")).await;

    assert_eq!(
        remote(&tmux, "size", "stty size").await,
        stty_size(tmux.pane_size())
    );
    // TERM crossed: the client's, not the agent's default xterm-256color.
    assert_eq!(remote(&tmux, "term", "printenv TERM").await, term);

    tmux.resize(72, 18);
    let want = stty_size(tmux.pane_size());
    assert_eq!(want, "18 72", "the pane follows resize-window");
    // SIGWINCH → RESIZE → the pty: asked again until it shows (each ask
    // waits for its own answer; a bounded number of asks).
    let mut asks = 0;
    wait_for("the remote stty size to follow the resize", WAIT, || {
        asks += 1;
        let (tmux, name) = (&tmux, format!("size{asks}"));
        async move { (remote(tmux, &name, "stty size").await == "18 72").then_some(()) }
    })
    .await;

    tmux.type_line("exit 3");
    exited_with(&tmux, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_detach_keys_end_attach_with_0_and_hang_up_the_pty() {
    let Some(tmux) = tmux(90, 25) else { return };
    let (server, _agent) = console().await;
    attach_in(&tmux, &attach_line(&server, "")).await;
    let pid: u32 = remote(&tmux, "pid", "echo $$").await.parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Ctrl-] twice is one Ctrl-] for the remote shell, which ignores it;
    // then Ctrl-] d detaches.
    tmux.keys(&["C-]", "C-]"]);
    tmux.keys(&["C-]", "d"]);
    exited_with(&tmux, 0).await;
    tmux.wait_end("local-agent: detached from channel \"console\"")
        .await;
    wait_for("the remote shell to be hung up", WAIT, || async move {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_restores_the_terminal_and_exits_143() {
    let Some(tmux) = tmux(80, 24) else { return };
    let (server, _agent) = console().await;
    let pid_file = tmux.path("attach.pid");
    let command = format!(
        "sh -c 'echo $$ > {}; exec {}'",
        pid_file.display(),
        attach_line(&server, "--detach-keys none")
    );
    attach_in(&tmux, &command).await;
    let pid = tmux.read_when_written(&pid_file).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    exited_with(&tmux, 143).await;
    tmux.wait_line("the stop note", |l| {
        l.contains("stopped by SIGTERM").then_some(())
    })
    .await;
}

/// Runs `local-agent SUBCOMMAND … console` with `input` on stdin (a pipe,
/// no terminal): (exit code, stdout, stderr).
async fn piped(server: &Server, subcommand: &str, input: &[u8]) -> (Option<i32>, String, String) {
    let mut child = tokio::process::Command::new(bin("local-agent"))
        .args([
            subcommand,
            "--server",
            &server.url(),
            "--token",
            &server.client_token,
        ])
        .arg("console")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env("TERM", "vt100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = bounded("the piped client", child.wait_with_output())
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_attach_and_connect_are_pipes_with_the_remote_status() {
    let (server, _agent) = console().await;
    for subcommand in ["attach", "connect"] {
        let script = b"echo \"answer $((6*7)) $TERM\"\nexit 3\n";
        let (code, stdout, stderr) = piped(&server, subcommand, script).await;
        assert_eq!(code, Some(3), "{subcommand}: {stdout}\n{stderr}");
        assert!(stdout.contains("answer 42 vt100"), "{subcommand}: {stdout}");
        // Nothing about a terminal it does not have.
        assert!(
            !stderr.contains("attached") && !stderr.contains("raw"),
            "{subcommand}: {stderr}"
        );
    }
}

/// `--read-only` on a session: the pane shows what a writer does there,
/// but what is typed in the pane goes nowhere, and the pane's smaller size
/// never shrinks the session (a read-only attach sends no RESIZE).
#[tokio::test(flavor = "multi_thread")]
async fn read_only_watches_a_session_without_typing_or_shrinking_it() {
    let Some(tmux) = tmux(40, 10) else { return };
    let server = Server::start(&[]).await;
    let _agent = server.agent(&["logs=session:sh".to_string()]).await;
    let writer = Term::open(&server, "logs").await;
    writer.send_resize(100, 30).await;
    run_between_snapshots(&tmux, &attach_to(&server, "--read-only", "logs"));
    tmux.wait_line("the attach note", |l| {
        l.contains("attached to \"logs\"").then_some(())
    })
    .await;
    writer.send(b"echo \"seen-$((2+2))\"\n").await;
    // The pane watches: the writer's output reaches it.
    tmux.wait_end("seen-4").await;
    tmux.type_line("echo \"leaked-$((1+1))\"");
    writer
        .send(b"echo \"size:$(stty size):\"; echo \"done-$((3+3))\"\n")
        .await;
    let seen = writer.read_until("done-6").await;
    assert!(!seen.contains("leaked-2"), "{seen}");
    let size = seen
        .lines()
        .find_map(|l| l.trim_start_matches(['#', '$', ' ']).strip_prefix("size:"))
        .expect("the size line");
    assert_eq!(size, "30 100:", "the writer's size, not the pane's 10 40");
    tmux.keys(&["C-]", "d"]);
    exited_with(&tmux, 0).await;
    // The session goes on for its writer.
    writer.send(b"echo \"alive-$((4+4))\"\n").await;
    writer.read_until("alive-8").await;
}
