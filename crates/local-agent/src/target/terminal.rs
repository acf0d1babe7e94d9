//! A command on a pseudo-terminal of its own, for the terminal kinds
//! (`pty:`, `session:`): started through `sh -c` as the leader of a new
//! session whose controlling terminal is the pty; its output read from the
//! master in bounded chunks, input and sizes written to it; hung up with
//! SIGHUP to its process group and session, then SIGKILL after a grace.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uptun_protocol::{ExitStatus, TermSize};

use members::Members;

mod members;

/// `TERM` when the client sent none.
pub(crate) const DEFAULT_TERM: &str = "xterm-256color";

/// How long a hung-up process group gets between SIGHUP and SIGKILL: time
/// for a shell to save its history, not for an editor to ask questions.
pub(crate) const HANG_UP_GRACE: Duration = Duration::from_secs(2);

/// What to run, and the terminal it starts on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec<'a> {
    /// Run as `sh -c COMMAND`.
    pub command: &'a str,
    /// Where it starts (`--pty-cwd`); the agent's directory when `None`.
    pub cwd: Option<&'a Path>,
    /// Its `TERM`.
    pub term: &'a str,
    pub size: TermSize,
}

/// A pty with no process on it yet. Allocated before the stream is
/// accepted, so a machine out of ptys refuses the stream with the reason.
pub(crate) struct Pty {
    master: pty_process::Pty,
    slave: pty_process::Pts,
}

/// A command running on its pty, in three parts that can be driven
/// apart: what it prints, what it is sent, and the process itself.
pub(crate) struct Terminal {
    pub output: Output,
    pub input: Input,
    pub process: Process,
}

impl Pty {
    /// A new pty. Must be called inside the tokio runtime.
    pub fn open() -> Result<Pty, String> {
        let (master, slave) =
            pty_process::open().map_err(|err| format!("could not open a pty: {err}"))?;
        Ok(Pty { master, slave })
    }

    /// Starts `sh -c COMMAND` on this pty, sized and with `TERM` as `spec`
    /// says. The agent's own settings (`UPTUN_*`, the token among them)
    /// are not passed on: whoever reaches the terminal must not read them.
    pub fn spawn(self, spec: &Spec<'_>) -> Result<Terminal, String> {
        let failed = |err: &dyn std::fmt::Display| {
            format!("could not start `sh -c {:?}`: {err}", spec.command)
        };
        self.master
            .resize(pty_size(spec.size))
            .map_err(|e| failed(&e))?;
        let mut command = pty_process::Command::new("sh")
            .arg("-c")
            .arg(spec.command)
            .env("TERM", spec.term);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("UPTUN_") {
                command = command.env_remove(name);
            }
        }
        if let Some(dir) = spec.cwd {
            command = command.current_dir(dir);
        }
        // The slave is moved in and closed here once the child has its
        // copies: the master reads EOF only when no process holds it.
        let child = command.spawn(self.slave).map_err(|e| failed(&e))?;
        let pid = child.id().expect("a child that was just spawned has a pid");
        let (read, write) = self.master.into_split();
        Ok(Terminal {
            output: Output(read),
            input: Input {
                pty: write,
                line_open: false,
            },
            process: Process {
                child,
                // The child called setsid: its pid is its session's and
                // its process group's.
                members: Pid::from_raw(pid as i32).map(Members::of),
                pid,
                done: false,
            },
        })
    }
}

/// What the command prints.
pub(crate) struct Output(pty_process::OwnedReadPty);

impl Output {
    /// The next chunk of at most `max` bytes; `None` once the terminal has
    /// closed: every process that had it open is gone.
    pub async fn read(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        let mut buf = BytesMut::with_capacity(max);
        match (&mut self.0).take(max as u64).read_buf(&mut buf).await {
            Ok(0) => Ok(None),
            // A keystroke's echo must not hold a whole buffer while it
            // waits in the link's queue.
            Ok(n) if n < max / 4 => Ok(Some(Bytes::copy_from_slice(&buf))),
            Ok(_) => Ok(Some(buf.freeze())),
            // Linux says EIO, not EOF, on a master whose slave is closed.
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }
}

/// What the command is sent: keystrokes and sizes.
pub(crate) struct Input {
    pty: pty_process::OwnedWritePty,
    /// Whether the last byte typed left a line open (not `\n` or `\r`).
    line_open: bool,
}

impl Input {
    /// Types `data`. Waits while the terminal's input queue is full (the
    /// command reads nothing): the caller's own backpressure.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(&last) = data.last() {
            self.line_open = last != b'\n' && last != b'\r';
        }
        self.pty.write_all(data).await
    }

    /// Sets the terminal's size; the command gets SIGWINCH.
    pub fn resize(&self, size: TermSize) -> io::Result<()> {
        self.pty
            .resize(pty_size(size))
            .map_err(|err| io::Error::other(err.to_string()))
    }

    /// Ends the input as a person at the terminal would: Enter after a
    /// line left open, then Ctrl-D, which a terminal in canonical mode
    /// turns into end of file for the next read (`sh` exits). Unlike a
    /// closed pipe, it answers one read only, so the caller may call this
    /// again while the command runs.
    pub async fn end(&mut self) -> io::Result<()> {
        let eof: &[u8] = if self.line_open { b"\r\x04" } else { b"\x04" };
        self.line_open = false;
        self.pty.write_all(eof).await
    }
}

/// The process running the command, leader of its own session and
/// process group. Dropping it without [`Process::hang_up`] hangs it up in
/// the background.
pub(crate) struct Process {
    child: tokio::process::Child,
    members: Option<Members>,
    pid: u32,
    /// Hung up, and nothing of it left.
    done: bool,
}

impl Process {
    /// The pid of `sh`, which is also its session's and group's id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the command to end. Cancel safe: a dropped wait loses
    /// nothing.
    pub async fn wait(&mut self) -> ExitStatus {
        match self.child.wait().await {
            Ok(status) => exit_status(status),
            // Only if the process was reaped elsewhere, which nothing does.
            Err(_) => ExitStatus::Code(255),
        }
    }

    /// Hangs up the terminal's processes: SIGHUP to the group and the
    /// session; once `grace` has passed, SIGKILL to whatever of them is
    /// left. Returns how `sh` ended. Also clears up after a command that
    /// exited on its own, leaving children behind.
    pub async fn hang_up(mut self, grace: Duration) -> ExitStatus {
        self.signal(Signal::HUP);
        let deadline = tokio::time::Instant::now() + grace;
        let status = tokio::time::timeout_at(deadline, self.wait()).await.ok();
        while self.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.alive() {
            self.signal(Signal::KILL);
        }
        let status = match status {
            Some(status) => status,
            None => self.wait().await,
        };
        self.done = true;
        status
    }

    fn signal(&self, signal: Signal) {
        if let Some(members) = self.members {
            members.signal(signal);
        }
    }

    fn alive(&self) -> bool {
        self.members.is_some_and(Members::alive)
    }
}

impl Drop for Process {
    /// A terminal dropped without an orderly hang-up (its task aborted,
    /// the agent shutting down) still loses its processes: SIGHUP now,
    /// SIGKILL after the grace if a runtime is left to wait for it.
    fn drop(&mut self) {
        let Some(members) = self.members.filter(|_| !self.done) else {
            return;
        };
        members.signal(Signal::HUP);
        let kill = move || {
            if members.alive() {
                members.signal(Signal::KILL);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(HANG_UP_GRACE).await;
                    kill();
                });
            }
            Err(_) => kill(),
        }
    }
}

fn pty_size(size: TermSize) -> pty_process::Size {
    pty_process::Size::new(size.rows, size.cols)
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code as u32),
        (None, Some(signal)) => ExitStatus::Signal(signal as u32),
        (None, None) => ExitStatus::Code(255),
    }
}

#[cfg(test)]
#[path = "terminal_tests.rs"]
mod tests;
