//! CPU time the tunnel's own processes spend during a measurement window
//! (user + system, all threads, from /proc). Throughput on a shared VM swings
//! with the host's load; CPU per request or per gigabyte swings far less, so
//! it is the figure to compare across runs.

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use crate::load::Window;

/// Clock ticks per second in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of one process, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("could not read {path}"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / TICKS_PER_SECOND)
        .with_context(|| format!("no CPU times in {path}"))
}

/// Fields 14 and 15 of a stat line, counted after the command name (which
/// sits in parentheses and may hold spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn total(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

/// CPU seconds of a set of processes over a window, read in the background.
pub struct CpuMeter {
    task: JoinHandle<Option<f64>>,
}

impl CpuMeter {
    /// `None` for a system without processes of its own (direct).
    pub fn start(pids: Vec<u32>, window: Window) -> Option<Self> {
        if pids.is_empty() {
            return None;
        }
        let task = tokio::spawn(async move {
            sleep_until(window.start).await;
            let before = total(&pids).ok()?;
            sleep_until(window.end).await;
            let after = total(&pids).ok()?;
            Some(after - before)
        });
        Some(CpuMeter { task })
    }

    /// The CPU seconds spent in the window; `None` if a process vanished.
    pub async fn finish(self) -> Option<f64> {
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .ok()?
            .ok()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_even_with_spaces_in_the_name() {
        let stat = "4242 (local agent) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 269 0 0 20 0 6 0";
        assert_eq!(parse_cpu_ticks(stat), Some(1000));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn a_process_that_is_gone_is_an_error() {
        assert!(cpu_seconds(u32::MAX).is_err());
    }
}
