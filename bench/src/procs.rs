//! Child processes of a system under test: started with their output in a
//! log file (a pipe nobody drains would stall them), killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// One running program of a system (uptun's server, rathole's client, …).
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `program args…` with stdout and stderr in `dir/name.log`.
    pub fn spawn(dir: &Path, name: &str, program: &Path, args: &[String]) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("could not create {}", log.display()))?;
        let err = out.try_clone().context("could not share the log file")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env("NO_COLOR", "1")
            // Every program logs at its own default level, whatever the bench was run with.
            .env_remove("RUST_LOG");
        // The bench sets uptun's options by flag, and links stay on
        // 127.0.0.1: local-agent dials through a proxy named in the
        // environment, as curl does.
        let proxies = ["http_proxy", "https_proxy", "all_proxy"];
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("UPTUN_") || proxies.contains(&text.to_lowercase().as_str()) {
                command.env_remove(&name);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start {}", program.display()))?;
        Ok(Proc {
            name: name.to_string(),
            log,
            child,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until the log has a line containing `marker` and returns the
    /// word after it (e.g. the address after `addr=`).
    pub async fn wait_for_log(&mut self, marker: &str, limit: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(word) = word_after(&text, marker) {
                return Ok(word);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before logging {marker:?}; its log:\n{}",
                    self.name,
                    tail(&text, 10)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not log {marker:?} within {limit:?}; its log:\n{}",
                    self.name,
                    tail(&text, 10)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the socket address the process logs after `marker`.
    pub async fn wait_for_addr(&mut self, marker: &str) -> anyhow::Result<std::net::SocketAddr> {
        let word = self.wait_for_log(marker, Duration::from_secs(10)).await?;
        word.parse()
            .with_context(|| format!("{} logged an odd address {word:?}", self.name))
    }

    /// Fails if the process has exited (it should run until killed).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                tail(&text, 10)
            );
        }
        Ok(())
    }

    /// The WARN/ERROR lines logged so far.
    pub fn warnings(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(strip_ansi)
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect()
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn word_after(text: &str, marker: &str) -> Option<String> {
    text.lines().map(strip_ansi).find_map(|line| {
        let rest = &line[line.find(marker)? + marker.len()..];
        let word = rest.split_whitespace().next()?;
        Some(word.trim_matches(|c| c == '"' || c == ',').to_string())
    })
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Removes terminal colour codes, in case a program ignores `NO_COLOR`.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_after_a_marker_in_coloured_logs() {
        let log = "x\n\u{1b}[32m INFO\u{1b}[0m listening \u{1b}[3maddr\u{1b}[0m=127.0.0.1:4000\n";
        assert_eq!(word_after(log, "addr=").as_deref(), Some("127.0.0.1:4000"));
        assert_eq!(word_after(log, "nothing"), None);
    }
}
