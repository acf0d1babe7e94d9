//! nginx as a stand-in for a PaaS router: plain HTTP/1.1 reverse proxy with
//! the usual upgrade pass-through, in front of the public server.

use std::net::SocketAddr;
use std::process::Command;

use crate::procs::{have, tempdir};
use crate::{wait_for, WAIT};

pub struct Nginx {
    pub addr: SocketAddr,
    child: std::process::Child,
    dir: tempdir::Dir,
}

const NGINX: &str = "/usr/sbin/nginx";

/// `None` (after saying why) when nginx is not installed.
pub async fn start(upstream: SocketAddr) -> Option<Nginx> {
    if !have(NGINX) {
        crate::procs::skip("nginx is not installed; .ci/run installs it");
        return None;
    }
    let dir = tempdir::Dir::new();
    let d = dir.path().display().to_string();
    // nginx cannot report a port-0 choice: take a free port and hand it over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = running_as_root();
    let config = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"#,
        user = if root { "user root;" } else { "" },
    );
    std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("start nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for("nginx to listen", WAIT, || async {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await;
    Some(Nginx { addr, child, dir })
}

/// Whether this process runs as root (nginx then needs `user root;` so its
/// worker can write the temporary directory).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Nginx {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn logs(&self) -> String {
        ["error.log", "access.log", "stderr.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM makes the master stop its workers; SIGKILL would orphan
        // them, and they hold the test runner's output pipes open.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + WAIT;
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- nginx ----\n{}", self.logs());
        }
    }
}
