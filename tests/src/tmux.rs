//! A real terminal for tests: a tmux server on a private socket, one
//! session whose pane runs `sh`, keys typed with `send-keys` and the screen
//! read with `capture-pane`. Every wait polls the screen with a bound; the
//! tmux server is killed when the value is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::procs::tempdir::Dir;
use crate::{wait_for, WAIT};

/// The session's name on the private server.
const SESSION: &str = "uptun";

/// A tmux server with one session, `cols`×`rows`, no status line (so the
/// pane is the whole window).
pub struct Tmux {
    socket: PathBuf,
    /// Scratch space for the test (files a command in the pane writes).
    pub dir: Dir,
}

impl Tmux {
    /// Starts the server and a session running `sh`.
    pub fn start(cols: u16, rows: u16) -> Tmux {
        let dir = Dir::new();
        let socket = dir.path().join("tmux.sock");
        let tmux = Tmux { socket, dir };
        let (cols, rows) = (cols.to_string(), rows.to_string());
        // No user or system config (`-f /dev/null`), and `sh`, not the
        // user's shell with its rc files.
        let session = [
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            &cols,
            "-y",
            &rows,
            "sh",
        ];
        tmux.run(&[&["-f", "/dev/null"][..], &session].concat());
        tmux.run(&["set-option", "-g", "status", "off"]);
        tmux
    }

    /// Runs `tmux -S SOCKET ARGS`; panics with its stderr if it fails.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Types `text` as it is, then Enter.
    pub fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", SESSION, "-l", text]);
        self.run(&["send-keys", "-t", SESSION, "Enter"]);
    }

    /// Presses keys by tmux's names (`C-]`, `d`, `Enter`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The screen and its scrollback, wrapped lines joined.
    pub fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-S", "-2000", "-t", SESSION]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until a line of the screen satisfies `found`; returns what
    /// `found` returned for it.
    pub async fn wait_line<T>(&self, what: &str, found: impl Fn(&str) -> Option<T>) -> T {
        wait_for(&format!("{what} on the tmux screen"), WAIT, || {
            let hit = self.screen().lines().find_map(|l| found(l.trim_end()));
            async move { hit }
        })
        .await
    }

    /// Waits until some line of the screen ends with `text` (a prompt may
    /// come before output on its line).
    pub async fn wait_end(&self, text: &str) {
        self.wait_line(text, |l| l.ends_with(text).then_some(()))
            .await
    }

    /// The pane's size, as tmux keeps it: (cols, rows).
    pub fn pane_size(&self) -> (u16, u16) {
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            SESSION,
            "#{pane_width} #{pane_height}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut numbers = text.split_whitespace().map(|n| n.parse().unwrap());
        (numbers.next().unwrap(), numbers.next().unwrap())
    }

    /// Resizes the window (and with it the pane) to `cols`×`rows`.
    pub fn resize(&self, cols: u16, rows: u16) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.run(&["resize-window", "-t", SESSION, "-x", &cols, "-y", &rows]);
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Reads a file a command in the pane wrote, once it has a whole line.
    pub async fn read_when_written(&self, path: &Path) -> String {
        wait_for(&format!("{} to be written", path.display()), WAIT, || {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            async move { text.ends_with('\n').then_some(text) }
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- tmux screen ---\n{}", self.screen_or_nothing());
        }
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

impl Tmux {
    fn screen_or_nothing(&self) -> String {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-J", "-S", "-2000", "-t", SESSION])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}
