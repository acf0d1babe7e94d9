//! Debian's `pebble`, the ACME test CA, with `pebble-challtestsrv` as its
//! DNS server (every name resolves to 127.0.0.1), so a test can order a
//! certificate for any name and have it validated on its own server's port.
//!
//! Pebble takes fixed ports from its JSON config and cannot be told port 0,
//! nor can challtestsrv: their ports (and the port pebble sends TLS-ALPN-01
//! challenges to) are taken from the OS by binding port 0 and releasing it
//! just before the program starts. Another process could grab one in that
//! moment; the program would then fail to start, and the test say so.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::pki::Ca;
use crate::procs::{have, run_bounded, skip, tempdir};
use crate::{wait_for, WAIT};

pub struct Pebble {
    /// The ACME directory URL (`--acme-directory`).
    pub directory: String,
    /// The CA of pebble's own HTTPS certificate (`--acme-ca`).
    pub https_ca: PathBuf,
    management: SocketAddr,
    children: Vec<Child>,
    pub dir: tempdir::Dir,
}

/// A free TCP port on 127.0.0.1, released for a program to take.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A port free for both UDP and TCP (a DNS server listens on both).
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts pebble and its DNS server, validating TLS-ALPN-01 challenges on
/// `tls_port`; `None` (after saying why) when they are not installed.
pub async fn start(tls_port: u16) -> Option<Pebble> {
    for program in ["pebble", "pebble-challtestsrv", "curl"] {
        if !have(program) {
            skip(&format!("{program} is not installed; .ci/run installs it"));
            return None;
        }
    }
    let dir = tempdir::Dir::new();
    let ca = Ca::new(dir.path(), "pebble-https");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    ca.issue(&["127.0.0.1", "localhost"], &cert, &key);
    let dns: SocketAddr = ([127, 0, 0, 1], free_dns_port()).into();
    let challtestsrv = spawn(
        dir.path(),
        "pebble-challtestsrv",
        Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &dns.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())]),
    );
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let management: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = serde_json::json!({ "pebble": {
        "listenAddress": listen.to_string(),
        "managementListenAddress": management.to_string(),
        "certificate": cert, "privateKey": key,
        "httpPort": tls_port, "tlsPort": tls_port,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let pebble = spawn(
        dir.path(),
        "pebble",
        Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns.to_string(), "-strict=false"])
            // Validate at once, and never reject a good nonce: the test
            // is of uptun's client, not of its patience.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0"),
    );
    let pebble = Pebble {
        directory: format!("https://{listen}/dir"),
        https_ca: ca.cert.clone(),
        management,
        children: vec![challtestsrv, pebble],
        dir,
    };
    for addr in [dns, listen, management] {
        wait_for(&format!("pebble to listen on {addr}"), WAIT, || async {
            tokio::net::TcpStream::connect(addr).await.ok().map(drop)
        })
        .await;
    }
    Some(pebble)
}

fn spawn(dir: &Path, name: &str, command: &mut Command) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {name}: {err}"))
}

impl Pebble {
    /// Pebble's root CA (new with every start), written to `path` for
    /// `curl --cacert`; fetched from its management interface.
    pub fn root(&self, path: &Path) {
        let url = format!("https://{}/roots/0", self.management);
        let out = run_bounded(
            Command::new("curl")
                .args(["-sS", "--fail", "--cacert"])
                .arg(&self.https_ca)
                .arg("-o")
                .arg(path)
                .arg(url),
            WAIT,
        );
        assert!(
            out.status.success(),
            "fetching pebble's root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What pebble and its DNS server logged, for a failing test's message.
    pub fn logs(&self) -> String {
        ["pebble", "pebble-challtestsrv"]
            .iter()
            .map(|name| {
                let path = self.dir.path().join(format!("{name}.log"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                format!("--- {name}:\n{text}")
            })
            .collect()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
