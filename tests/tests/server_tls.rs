//! The public server holding its own certificate, with real programs: an
//! agent and `connect` on `https://` with `--ca`, curl over HTTPS, ssh
//! through `connect` and through `openssl s_client`, all on the same port
//! as plain ssh; an agent without `--ca`, or facing an expired certificate,
//! told in one line what is wrong; a certificate renewed on disk and put in
//! force by `HUP`; and a certificate from an ACME CA (Debian's pebble),
//! validated with TLS-ALPN-01 on the server's one port.

use std::path::Path;
use std::process::Command;

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::pebble::{self, free_port};
use uptun_e2e::pki::Ca;
use uptun_e2e::procs::{bin, have, run_bounded, skip, Server};
use uptun_e2e::server::connect_with_stdin_and;
use uptun_e2e::{sshd, targets, tempdir_path, WAIT};

const NAME: &str = "tunnel.uptun.test";

/// False (after saying why) unless every program is installed.
fn have_all(programs: &[&str]) -> bool {
    match programs.iter().find(|p| !have(p)) {
        Some(missing) => {
            skip(&format!("{missing} is not installed; .ci/run installs it"));
            false
        }
        None => true,
    }
}

/// `curl` for `https://NAME:PORT/PATH`, trusting only `ca`, with NAME
/// resolved to 127.0.0.1: the body, or the exit code and stderr.
fn https_get(
    ca: &Path,
    port: u16,
    path: &str,
) -> impl std::future::Future<Output = Result<Vec<u8>, (Option<i32>, String)>> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "60", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{NAME}:{port}:127.0.0.1"))
        .arg(format!("https://{NAME}:{port}{path}"));
    async move {
        let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, WAIT))
            .await
            .unwrap();
        match out.status.success() {
            true => Ok(out.stdout),
            false => Err((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into(),
            )),
        }
    }
}

/// A certificate for [`NAME`] signed by `ca`, at `dir/cert.pem` and `dir/key.pem`.
fn issue(ca: &Ca, dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    ca.issue(&[NAME, "localhost"], &cert, &key);
    let text = |p: &Path| p.to_string_lossy().into_owned();
    (text(&cert), text(&key))
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_connect_curl_and_ssh_over_tls_and_plain_ssh_share_one_port() {
    if !have_all(&["curl", "openssl"]) {
        return;
    }
    let Some(sshd) = sshd::start().await else {
        return;
    };
    let dir = tempdir_path();
    let ca = Ca::new(dir.path(), "server");
    let (cert, key) = issue(&ca, dir.path());
    let server = Server::start(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let port = server.addr.port();
    let url = format!("https://localhost:{port}");
    let ca_arg = ca.cert.to_str().unwrap();

    // Without --ca the agent names the problem and the fix, and gives up.
    let (code, log) = server.agent_exit(&url, &[]).await;
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("a CA this machine does not trust: pass --ca FILE"),
        "{log}"
    );

    let (web, digest) = (targets::http().await, targets::digest().await);
    let channels = [
        format!("web={web}"),
        format!("tcp={digest}"),
        format!("ssh={}", sshd.addr),
    ];
    let _agent = server.agent_at(&url, &channels, &["--ca", ca_arg]).await;
    let status = server.status_json().await.unwrap();
    let agent = &status["agents"][0];
    assert_eq!(
        (&agent["transport"], &agent["tls"]),
        (&"tcp".into(), &true.into())
    );

    let len = 1 << 20;
    let body = https_get(&ca.cert, port, &format!("/bytes/{len}/7"))
        .await
        .unwrap_or_else(|err| panic!("curl over TLS: {err:?}"));
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(7, len)));

    let data = pattern(13, 1 << 20);
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));
    let token = &server.client_token;
    let out = connect_with_stdin_and(&url, token, "tcp", &["--ca", ca_arg], data).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{stderr}");

    // ssh through `connect` over TLS, through `openssl s_client` (ssh
    // inside TLS, routed by the server), and plain ssh at the same port,
    // told apart by their first byte.
    let connect = format!(
        "{} connect --server {url} --token {token} --ca {ca_arg} ssh",
        bin("local-agent").display()
    );
    let s_client = format!(
        "openssl s_client -quiet -verify_return_error -verify_hostname {NAME} -CAfile {ca_arg} -servername {NAME} -connect 127.0.0.1:{port}"
    );
    let user = &sshd.user;
    let via = |proxy: &str| {
        let proxy = format!("ProxyCommand={proxy}");
        sshd.ssh(&["-o", &proxy, &format!("{user}@{NAME}"), "echo", "ok"])
    };
    let port_arg = port.to_string();
    let plain = sshd.ssh(&["-p", &port_arg, &format!("{user}@127.0.0.1"), "echo", "ok"]);
    let ways = vec![
        ("through connect", via(&connect)),
        ("inside TLS", via(&s_client)),
        ("plain", plain),
    ];
    sshd.assert_echoes_ok(ways).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_certificate_is_one_line_that_says_it_needs_renewing() {
    let dir = tempdir_path();
    let ca = Ca::new(dir.path(), "server");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    ca.issue_expired(&["localhost"], &cert, &key);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = Server::start(&["--tls-cert", cert, "--tls-key", key]).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let (code, log) = server
        .agent_exit(&url, &["--ca", ca.cert.to_str().unwrap()])
        .await;
    assert_eq!(code, Some(2), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("expired on 2001-01-01"))
        .unwrap_or_else(|| panic!("no line about the expiry: {log}"));
    assert!(line.contains("renewed certificate"), "{line}");
    assert_eq!(log.matches("expired on").count(), 1, "{log}");
}

fn hup(server: &Server) {
    let sent = Command::new("kill")
        .args(["-HUP", &server.proc.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -HUP failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn hup_puts_a_renewed_certificate_in_force_and_keeps_it_over_a_broken_one() {
    if !have_all(&["curl"]) {
        return;
    }
    let dir = tempdir_path();
    let (old_ca, new_ca) = (Ca::new(dir.path(), "old"), Ca::new(dir.path(), "new"));
    let (cert, key) = issue(&old_ca, dir.path());
    let server = Server::start(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let port = server.addr.port();
    let health = |ca: &Path| https_get(ca, port, "/_uptun/health");
    assert_eq!(health(&old_ca.cert).await.unwrap(), b"ok\n");

    issue(&new_ca, dir.path());
    hup(&server);
    server.proc.wait_log("HUP: TLS certificate reloaded").await;
    assert_eq!(health(&new_ca.cert).await.unwrap(), b"ok\n");
    let (code, err) = health(&old_ca.cert).await.unwrap_err();
    // 60: the peer's certificate cannot be verified with the CA given.
    assert_eq!(code, Some(60), "{err}");

    std::fs::write(&key, "half a renewal\n").unwrap();
    hup(&server);
    let log = server.proc.wait_log("TLS certificate not reloaded").await;
    assert!(log.contains("no private key in the key file"), "{log}");
    assert!(
        !log.contains("half a renewal"),
        "a key file's text reached the log"
    );
    assert_eq!(health(&new_ca.cert).await.unwrap(), b"ok\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn acme_gets_a_certificate_from_pebble_on_the_one_port_and_caches_it() {
    if !have_all(&["curl"]) {
        return;
    }
    // Pebble sends its challenge to a fixed port: the server's, chosen first.
    let port = free_port();
    let Some(pebble) = pebble::start(port).await else {
        return;
    };
    let cache = tempdir_path();
    let listen = format!("127.0.0.1:{port}");
    // Kept beside the cache: the restart below runs after pebble is gone.
    let https_ca = cache.path().join("pebble-https-ca.pem");
    std::fs::copy(&pebble.https_ca, &https_ca).unwrap();
    let https_ca = https_ca.to_string_lossy().into_owned();
    let directory = pebble.directory.clone();
    let cache_dir = cache.path().join("acme").to_string_lossy().into_owned();
    let args = [
        "--acme-domain",
        NAME,
        "--acme-directory",
        &directory,
        "--acme-ca",
        &https_ca,
        "--acme-cache",
        &cache_dir,
        "--acme-contact",
        "mailto:ops@uptun.test",
    ];
    let server = Server::start_on(&listen, &args).await;
    server.proc.wait_log("ACME: new certificate in use").await;
    let root = cache.path().join("pebble-root.pem");
    pebble.root(&root);
    let web = targets::http().await;
    let _agent = server.agent(&[format!("web={web}")]).await;
    let len = 64 << 10;
    let body = https_get(&root, port, &format!("/bytes/{len}/9"))
        .await
        .unwrap_or_else(|err| panic!("curl with pebble's certificate: {err:?}"));
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(9, len)));
    let mode = std::fs::metadata(&cache_dir).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700,
        "the cache holds private keys"
    );

    // Without the CA, a restart serves the certificate from the cache.
    drop((server, pebble));
    let again = Server::start_on(&listen, &args).await;
    again
        .proc
        .wait_log("ACME: certificate from the cache in use")
        .await;
    assert_eq!(
        https_get(&root, port, "/_uptun/health").await.unwrap(),
        b"ok\n"
    );
}
