//! Debian's `tinyproxy` as the corporate HTTP proxy agents and clients must
//! go through: CONNECT only to the ports it is told, Basic auth if asked,
//! and a log that shows every CONNECT it was sent.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::procs::{have, tempdir};
use crate::{wait_for, WAIT};

const TINYPROXY: &str = "tinyproxy";

/// A running tinyproxy on 127.0.0.1, killed when dropped.
pub struct Tinyproxy {
    pub addr: SocketAddr,
    child: Child,
    dir: tempdir::Dir,
}

/// Starts tinyproxy allowing CONNECT to `connect_ports` only (tinyproxy's
/// own default allows every port; a corporate proxy usually allows 443),
/// asking for Basic auth when `basic_auth` is `Some((user, password))`.
/// `None` (after saying why) when tinyproxy is not installed.
pub async fn start(connect_ports: &[u16], basic_auth: Option<(&str, &str)>) -> Option<Tinyproxy> {
    if !have(TINYPROXY) {
        crate::procs::skip("tinyproxy is not installed; .ci/run installs it");
        return None;
    }
    let dir = tempdir::Dir::new();
    let d = dir.path().display().to_string();
    // The port must be in the config file: take a free one and hand it over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 100\n\
         LogFile \"{d}/tinyproxy.log\"\nLogLevel Connect\nPidFile \"{d}/tinyproxy.pid\"\n"
    );
    for p in connect_ports {
        config.push_str(&format!("ConnectPort {p}\n"));
    }
    if let Some((user, password)) = basic_auth {
        config.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(&conf, config).unwrap();
    let child = Command::new(TINYPROXY)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("start tinyproxy");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = Tinyproxy { addr, child, dir };
    wait_for("tinyproxy to listen", WAIT, || async {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await;
    Some(proxy)
}

impl Tinyproxy {
    /// `http://127.0.0.1:PORT`, with `user:password@` when given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(u) => format!("http://{u}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Everything tinyproxy has logged so far.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        read("tinyproxy.log") + &read("stderr.log")
    }

    /// How many CONNECT requests to `target` tinyproxy has been sent (it logs
    /// each one as it reads it, before answering).
    pub fn connects_to(&self, target: SocketAddr) -> usize {
        self.log()
            .matches(&format!("CONNECT {target} HTTP/1.1"))
            .count()
    }

    /// How many connections tinyproxy has accepted, for any purpose.
    pub fn connections(&self) -> usize {
        self.log().matches("Connect (file descriptor").count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- tinyproxy ----\n{}", self.log());
        }
    }
}
