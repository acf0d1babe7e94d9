//! A real TLS target: `openssl s_server -WWW` with a fresh self-signed
//! certificate for one name, serving the files of its own directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::procs::{have, run_bounded, skip, tempdir};
use crate::{wait_for, WAIT};

pub struct TlsTarget {
    pub addr: SocketAddr,
    /// The certificate, which is its own CA (`curl --cacert`).
    pub cert: PathBuf,
    pub dir: tempdir::Dir,
    child: Child,
}

/// A target whose certificate names `name` (`*.example.com` works); `None`
/// (after saying why) when openssl is not installed.
pub async fn start(name: &str) -> Option<TlsTarget> {
    if !have("openssl") {
        skip("openssl is not installed; .ci/run installs it");
        return None;
    }
    let dir = tempdir::Dir::new();
    let out = run_bounded(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-keyout", "key.pem", "-out", "cert.pem", "-subj"])
            .arg(format!("/CN={name}"))
            .arg("-addext")
            .arg(format!("subjectAltName=DNS:{name}"))
            .current_dir(dir.path()),
        WAIT,
    );
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = dir.path().join("s_server.out");
    let child = Command::new("openssl")
        .args(["s_server", "-accept", "127.0.0.1:0", "-WWW"])
        .args(["-cert", "cert.pem", "-key", "key.pem"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    // Port 0 is fine for s_server: it prints `ACCEPT 127.0.0.1:PORT`.
    let addr = wait_for("openssl s_server to listen", WAIT, || async {
        let printed = std::fs::read_to_string(&stdout).ok()?;
        let line = printed.lines().find_map(|l| l.strip_prefix("ACCEPT "))?;
        line.trim().parse().ok()
    })
    .await;
    Some(TlsTarget {
        addr,
        cert: dir.path().join("cert.pem"),
        dir,
        child,
    })
}

impl TlsTarget {
    /// Serves `bytes` at `/NAME`.
    pub fn put(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
