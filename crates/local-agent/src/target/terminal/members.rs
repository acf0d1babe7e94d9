//! Which processes a terminal's hang-up reaches: the process group of
//! `sh`, and every process of its session. A shell with job control puts
//! each job in a group of its own, and a background job outlives the
//! shell's SIGHUP; none of them may outlive the stream. Linux lists a
//! session's processes in `/proc` (as `pkill -s` reads them); where there
//! is no `/proc`, the group is all that is reached.

use rustix::process::{kill_process, kill_process_group, test_kill_process_group, Pid, Signal};

/// The processes of the session `sh` leads; `sh` called setsid, so its
/// pid is both its session's and its group's id.
#[derive(Debug, Clone, Copy)]
pub(super) struct Members {
    leader: Pid,
}

impl Members {
    pub fn of(leader: Pid) -> Members {
        Members { leader }
    }

    /// Sends `signal` to the group and to every process of the session.
    pub fn signal(self, signal: Signal) {
        // ESRCH: gone already, which is the point.
        let _ = kill_process_group(self.leader, signal);
        for pid in session(self.leader).unwrap_or_default() {
            let _ = kill_process(pid, signal);
        }
    }

    /// Whether any of them still runs (zombies run nothing and don't count).
    pub fn alive(self) -> bool {
        match session(self.leader) {
            Some(members) => !members.is_empty(),
            None => test_kill_process_group(self.leader).is_ok(),
        }
    }
}

/// The running processes of session `sid`, or `None` without `/proc`.
fn session(sid: Pid) -> Option<Vec<Pid>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let members = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| in_session(&stat, sid.as_raw_nonzero().get()))
        })
        .filter_map(Pid::from_raw)
        .collect();
    Some(members)
}

/// Whether a `/proc/PID/stat` line is a running process of session `sid`:
/// `PID (COMM) STATE PPID PGRP SESSION …`, where COMM may hold anything.
fn in_session(stat: &str, sid: i32) -> bool {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    let session = fields.nth(2).and_then(|s| s.parse::<i32>().ok());
    state != Some("Z") && session == Some(sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_odd_names() {
        let line = "4242 (a) b) S 1 4242 4200 34816 4242 4194560 0";
        assert!(in_session(line, 4200));
        assert!(!in_session(line, 4242));
        assert!(!in_session("4242 (sh) Z 1 4242 4200 0", 4200));
        assert!(!in_session("garbage", 4200));
    }

    /// A child that leads a session of its own is found as its member,
    /// and is not once it is gone. (The test's own session may lead
    /// outside this pid namespace, where `getsid` answers 0.)
    #[test]
    fn a_session_leader_is_a_member_of_its_session() {
        // `setsid` execs `sleep` in place: the harness's child leads no
        // group, so setsid(2) needs no fork and the pid stays the same.
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .expect("setsid(1) from util-linux");
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !session(pid).unwrap().contains(&pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never led a session"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(Members::of(pid).alive());
        Members::of(pid).signal(Signal::KILL);
        child.wait().unwrap();
        assert!(!session(pid).unwrap().contains(&pid));
        assert!(!Members::of(pid).alive());
    }
}
