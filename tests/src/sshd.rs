//! A throwaway OpenSSH server for the tests: fresh host and user keys in a
//! temporary directory, listening on a free loopback port, this user only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use crate::procs::{have, run_bounded, tempdir};
use crate::WAIT;

pub struct Sshd {
    pub addr: SocketAddr,
    pub user: String,
    pub user_key: PathBuf,
    child: std::process::Child,
    pub dir: tempdir::Dir,
}

const SSHD: &str = "/usr/sbin/sshd";

/// `None` (after saying why) when OpenSSH is not installed.
pub async fn start() -> Option<Sshd> {
    if !have(SSHD) || !have("ssh") || !have("ssh-keygen") {
        crate::procs::skip("OpenSSH (sshd, ssh, ssh-keygen) is not installed; .ci/run installs it");
        return None;
    }
    let dir = tempdir::Dir::new();
    let p = |name: &str| dir.path().join(name);
    for key in ["host_key", "user_key"] {
        let out = run_bounded(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(p(key)),
            WAIT,
        );
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::copy(p("user_key.pub"), p("authorized_keys")).unwrap();
    // sshd as root needs its privilege-separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let user = String::from_utf8(run_bounded(Command::new("id").arg("-un"), WAIT).stdout)
        .unwrap()
        .trim()
        .to_string();
    // Port 0 is not an option for sshd: take a free port from the OS and hand it over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n",
        p("host_key").display(),
        p("authorized_keys").display(),
    );
    std::fs::write(p("sshd_config"), config).unwrap();
    let log = std::fs::File::create(p("sshd.log")).unwrap();
    let child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(p("sshd_config"))
        .stderr(log)
        .spawn()
        .expect("start sshd");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    crate::wait_for("sshd to send its banner", WAIT, || async {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut banner = [0u8; 4];
        tokio::time::timeout(WAIT, s.read_exact(&mut banner))
            .await
            .ok()?
            .ok()?;
        (&banner == b"SSH-").then_some(())
    })
    .await;
    Some(Sshd {
        addr,
        user,
        user_key: p("user_key"),
        child,
        dir,
    })
}

impl Sshd {
    /// `ssh` with throwaway settings, our key, batch mode, and `extra` options.
    pub fn ssh(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=30",
        ])
        .arg("-i")
        .arg(&self.user_key)
        .args(extra);
        cmd
    }

    /// Runs each `ssh … echo ok` command (named by how it reaches sshd)
    /// and asserts it printed `ok`; a failure shows ssh's stderr and
    /// sshd's log.
    pub async fn assert_echoes_ok(&self, ways: Vec<(&str, Command)>) {
        for (how, mut cmd) in ways {
            let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, WAIT))
                .await
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "ok\n",
                "ssh {how}: stderr {}\nsshd log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
