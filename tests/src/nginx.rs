//! nginx as a stand-in for a PaaS router: plain HTTP/1.1 reverse proxy with
//! the usual upgrade pass-through, in front of the public server; and nginx
//! as a target that reads PROXY protocol headers.

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
    launch(|port, _| {
        format!(
            r#"
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        {location}
    }}"#,
            location = proxy_location(upstream),
        )
    })
    .await
}

/// The name in [`start_tls`]'s certificate.
pub const TLS_NAME: &str = "localhost";

/// Who vouches for [`start_tls`]'s certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// A throwaway CA, as a real server's certificate comes from one.
    Ca,
    /// Nobody: the certificate signs itself.
    Itself,
}

/// Like [`start`], terminating TLS the way a platform router does, with a
/// certificate for [`TLS_NAME`] (see [`Nginx::trust`]). `None` (after
/// saying why) when nginx or openssl is not installed.
pub async fn start_tls(upstream: SocketAddr, issuer: Issuer) -> Option<Nginx> {
    tls_router(upstream, issuer, false).await
}

/// [`start_tls`] that passes only WebSocket upgrades, as
/// [`start_websocket_only`] does.
pub async fn start_tls_websocket_only(upstream: SocketAddr, issuer: Issuer) -> Option<Nginx> {
    tls_router(upstream, issuer, true).await
}

async fn tls_router(upstream: SocketAddr, issuer: Issuer, websocket_only: bool) -> Option<Nginx> {
    if !have("openssl") {
        crate::procs::skip("openssl is not installed; .ci/run installs it");
        return None;
    }
    launch(|port, d| {
        let dir = std::path::Path::new(d);
        match issuer {
            Issuer::Ca => crate::tls::make_ca_and_leaf(dir, TLS_NAME),
            Issuer::Itself => crate::tls::make_self_signed(dir, TLS_NAME),
        }
        format!(
            r#"
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    {refused}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/{leaf};
        ssl_certificate_key {d}/{key};
        {location}
    }}"#,
            leaf = crate::tls::LEAF,
            key = crate::tls::LEAF_KEY,
            refused = if websocket_only { UPGRADE_REFUSED } else { "" },
            location = proxy_location_with(upstream, websocket_only),
        )
    })
    .await
}

/// A reverse proxy to `upstream` that passes upgrades (a router's usual).
fn proxy_location(upstream: SocketAddr) -> String {
    proxy_location_with(upstream, false)
}

/// Which upgrades a WebSocket-only router refuses: any but `websocket`.
const UPGRADE_REFUSED: &str =
    "map $http_upgrade $upgrade_refused { default 1; '' 0; ~*^websocket$ 0; }";

/// [`proxy_location`], which with `websocket_only` answers a plain 400 of
/// nginx's own to any upgrade but WebSocket (needs [`UPGRADE_REFUSED`]).
fn proxy_location_with(upstream: SocketAddr, websocket_only: bool) -> String {
    let guard = match websocket_only {
        true => "if ($upgrade_refused) { return 400; }",
        false => "",
    };
    format!(
        r#"location / {{
            {guard}
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}"#
    )
}

/// Like [`start`], but nginx passes only WebSocket upgrades, as some
/// platform routers and CDNs do: any other `Upgrade` (`tcp`) gets a plain
/// 400 from nginx itself; requests without one pass as usual.
pub async fn start_websocket_only(upstream: SocketAddr) -> Option<Nginx> {
    launch(|port, _| {
        format!(
            r#"
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    {UPGRADE_REFUSED}
    server {{
        listen 127.0.0.1:{port};
        {location}
    }}"#,
            location = proxy_location_with(upstream, true),
        )
    })
    .await
}

/// The body every request to [`start_proxy_protocol`]'s nginx gets.
pub const PROXY_BODY: &str = "hello from behind a PROXY header\n";

/// nginx that expects a PROXY protocol header (v1 or v2) on every
/// connection and answers [`PROXY_BODY`]. Each request is logged to
/// `proxy.log` (see [`Nginx::file`]) as
/// `ADDR:PORT SERVER_ADDR:SERVER_PORT "REQUEST" STATUS`, the addresses
/// being the header's source and destination.
pub async fn start_proxy_protocol() -> Option<Nginx> {
    launch(|port, d| {
        format!(
            r#"
    log_format pp '$proxy_protocol_addr:$proxy_protocol_port '
                  '$proxy_protocol_server_addr:$proxy_protocol_server_port '
                  '"$request" $status';
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        access_log {d}/proxy.log pp;
        location / {{ return 200 "{body}"; }}
    }}"#,
            body = PROXY_BODY.escape_default(),
        )
    })
    .await
}

/// Starts nginx with `servers(port, dir)` inside its `http` block, on a
/// free port of 127.0.0.1, and waits until it listens.
async fn launch(servers: impl FnOnce(u16, &str) -> String) -> Option<Nginx> {
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
{servers}
}}
"#,
        user = if root { "user root;" } else { "" },
        servers = servers(port, &d),
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

    /// `https://localhost:PORT`, for [`start_tls`]'s nginx: the name its
    /// certificate was issued for.
    pub fn https_url(&self) -> String {
        format!("https://{TLS_NAME}:{}", self.addr.port())
    }

    /// What a client passes as `--ca` to trust [`start_tls`]'s
    /// certificate (PEM): the CA, or the self-signed certificate itself.
    pub fn trust(&self) -> std::path::PathBuf {
        self.dir.path().join(crate::tls::TRUST)
    }

    pub fn logs(&self) -> String {
        ["error.log", "access.log", "proxy.log", "stderr.log"]
            .iter()
            .map(|f| self.file(f))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One of nginx's files in its directory (`proxy.log`, …), or "".
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
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
