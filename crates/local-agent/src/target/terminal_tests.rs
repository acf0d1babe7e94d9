//! The pty primitives against real `sh` processes.

use std::time::Duration;

use super::*;

const BOUND: Duration = Duration::from_secs(10);

fn spec(command: &str) -> Spec<'_> {
    Spec {
        command,
        cwd: None,
        term: DEFAULT_TERM,
        size: TermSize::DEFAULT,
    }
}

/// Everything the terminal prints until it closes.
async fn read_all(output: &mut Output) -> String {
    let mut all = Vec::new();
    let read = async {
        while let Some(chunk) = output.read(1024).await.unwrap() {
            assert!(chunk.len() <= 1024);
            all.extend_from_slice(&chunk);
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("the pty closes");
    String::from_utf8_lossy(&all).into_owned()
}

/// Output until it contains `needle`.
async fn read_until(output: &mut Output, needle: &str) -> String {
    let mut all = String::new();
    let read = async {
        while !all.contains(needle) {
            let chunk = output.read(1024).await.unwrap().expect("output before EOF");
            all.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    match tokio::time::timeout(BOUND, read).await {
        Ok(()) => all,
        Err(_) => panic!("no {needle:?} in {all:?}"),
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[tokio::test]
async fn a_command_runs_on_a_terminal_with_term_size_and_cwd_and_its_status_comes_back() {
    let dir = std::env::temp_dir();
    let spec = Spec {
        command: "tty >/dev/null && echo tty=yes; echo term=$TERM; stty size; pwd; exit 3",
        cwd: Some(&dir),
        term: "vt100",
        size: TermSize {
            cols: 100,
            rows: 30,
        },
    };
    let mut terminal = Pty::open().unwrap().spawn(&spec).unwrap();
    let out = read_all(&mut terminal.output).await;
    let status = terminal.process.wait().await;
    assert_eq!(status, ExitStatus::Code(3), "{out}");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    let want_dir = dir.canonicalize().unwrap();
    let want_dir = want_dir.to_str().unwrap();
    assert_eq!(
        lines,
        ["tty=yes", "term=vt100", "30 100", want_dir],
        "{out}"
    );
}

#[tokio::test]
async fn input_reaches_the_command_and_ctrl_d_ends_it() {
    let mut terminal = Pty::open().unwrap().spawn(&spec("cat; echo done")).unwrap();
    terminal.input.write(b"hello\n").await.unwrap();
    // Once from the terminal's echo, once from cat.
    read_until(&mut terminal.output, "hello\r\nhello\r\n").await;
    terminal.input.end().await.unwrap();
    let rest = read_all(&mut terminal.output).await;
    assert!(rest.contains("done"), "{rest}");
    assert_eq!(terminal.process.wait().await, ExitStatus::Code(0));
}

#[tokio::test]
async fn ctrl_d_after_an_open_line_still_ends_the_shell() {
    let mut terminal = Pty::open().unwrap().spawn(&spec("sh")).unwrap();
    terminal.input.write(b"echo $((6*7))").await.unwrap();
    terminal.input.end().await.unwrap();
    let out = read_all(&mut terminal.output).await;
    // Only the shell's arithmetic makes 42: the echo of the line has none.
    assert!(out.contains("42"), "{out:?}");
    assert_eq!(terminal.process.wait().await, ExitStatus::Code(0));
}

#[tokio::test]
async fn a_resize_reaches_the_command() {
    let command = "trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done";
    let mut terminal = Pty::open().unwrap().spawn(&spec(command)).unwrap();
    read_until(&mut terminal.output, "ready").await;
    let size = TermSize {
        cols: 132,
        rows: 43,
    };
    terminal.input.resize(size).unwrap();
    read_until(&mut terminal.output, "43 132").await;
    let status = terminal.process.hang_up(HANG_UP_GRACE).await;
    assert_eq!(status, ExitStatus::Signal(1), "SIGHUP ended it");
}

#[tokio::test]
async fn hanging_up_ends_the_whole_group_and_kills_what_ignores_sighup() {
    // A child that ignores SIGHUP, beside sh: only SIGKILL ends it.
    let command = "(trap '' HUP; echo child=$(sh -c 'echo $PPID'); sleep 60) & wait";
    let mut terminal = Pty::open().unwrap().spawn(&spec(command)).unwrap();
    let sh = terminal.process.id();
    let out = read_until(&mut terminal.output, "\r\n").await;
    let child: u32 = out
        .trim()
        .strip_prefix("child=")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("a pid in {out:?}"));
    assert!(alive(sh) && alive(child));
    let grace = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let status = terminal.process.hang_up(grace).await;
    assert_eq!(status, ExitStatus::Signal(1));
    assert!(started.elapsed() >= grace, "waited the grace for the child");
    assert!(!alive(sh));
    // The orphan is killed by now; its new parent reaps it soon after.
    let gone = async {
        while alive(child) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, gone)
        .await
        .expect("the child is killed");
}

/// A job in a process group of its own (job control, as an interactive
/// shell runs them) is still the terminal's: the hang-up reaches it.
#[tokio::test]
async fn hanging_up_reaches_jobs_in_groups_of_their_own() {
    let command = "set -m; sleep 60 & echo job=$!; wait";
    let mut terminal = Pty::open().unwrap().spawn(&spec(command)).unwrap();
    let out = read_until(&mut terminal.output, "\r\n").await;
    let job: u32 = out
        .trim()
        .strip_prefix("job=")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("a pid in {out:?}"));
    let group = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<String> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        fields[2].clone()
    };
    assert_ne!(
        group(job),
        group(terminal.process.id()),
        "the job has a group of its own"
    );
    terminal.process.hang_up(HANG_UP_GRACE).await;
    let gone = async {
        while alive(job) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, gone)
        .await
        .expect("the job is gone");
}

#[tokio::test]
async fn a_dropped_process_is_hung_up() {
    let mut terminal = Pty::open()
        .unwrap()
        .spawn(&spec("echo up; sleep 60"))
        .unwrap();
    read_until(&mut terminal.output, "up").await;
    let pid = terminal.process.id();
    drop(terminal.process);
    let gone = async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, gone).await.expect("sh is gone");
}

#[tokio::test]
async fn the_agents_own_settings_stay_out_of_the_terminal() {
    // Set before the spawn reads the environment; no other test reads it.
    std::env::set_var("UPTUN_TOKEN_TEST_ONLY", "s3cret");
    let mut terminal = Pty::open().unwrap().spawn(&spec("env")).unwrap();
    let out = read_all(&mut terminal.output).await;
    assert!(out.contains("TERM=xterm-256color"), "{out}");
    assert!(!out.contains("s3cret"), "{out}");
}

#[tokio::test]
async fn a_missing_directory_is_said() {
    let missing = Path::new("/nonexistent/uptun");
    let spec = Spec {
        cwd: Some(missing),
        ..spec("true")
    };
    let err = Pty::open().unwrap().spawn(&spec).err().unwrap();
    assert!(err.contains("could not start `sh -c \"true\"`"), "{err}");
}
