//! The public server holding its own certificate, with real programs:
//! curl over HTTPS and ssh through `openssl s_client` on the same port as
//! plain ssh and a plain agent; a certificate renewed on disk and put in
//! force by `HUP`; and a certificate from an ACME CA (Debian's pebble),
//! validated with TLS-ALPN-01 on the server's one port.
//!
//! Agents still dial `http://` here, which a TLS port serves too: dialing
//! `https://` (`local-agent --server https://… --ca FILE`) is being added
//! to the agent separately. Until it lands, an agent speaking the link
//! handshake over TLS is covered in-process (crates/public-server/tests/tls.rs).
//! TODO(issue 10): once it has, start the agents below with `https://`.

use std::path::Path;
use std::process::Command;

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::pebble::{self, free_port};
use uptun_e2e::pki::Ca;
use uptun_e2e::procs::{have, run_bounded, skip, Server};
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
    ca.issue(&[NAME], &cert, &key);
    let text = |p: &Path| p.to_string_lossy().into_owned();
    (text(&cert), text(&key))
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_ssh_over_tls_and_plain_ssh_share_one_port() {
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
    let web = targets::http().await;
    let _agent = server
        .agent(&[format!("web={web}"), format!("ssh={}", sshd.addr)])
        .await;
    let port = server.addr.port();

    let len = 1 << 20;
    let body = https_get(&ca.cert, port, &format!("/bytes/{len}/7"))
        .await
        .unwrap_or_else(|err| panic!("curl over TLS: {err:?}"));
    assert_eq!(body.len(), len);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(7, len)));

    // ssh inside TLS (openssl s_client verifying the name and the CA),
    // and plain ssh at the same port, told apart by their first byte.
    let s_client = format!(
        "openssl s_client -quiet -verify_return_error -verify_hostname {NAME} -CAfile {} -servername {NAME} -connect 127.0.0.1:{port}",
        ca.cert.display()
    );
    let over_tls = sshd.ssh(&[
        "-o",
        &format!("ProxyCommand={s_client}"),
        &format!("{}@{NAME}", sshd.user),
        "echo",
        "ok",
    ]);
    let port_arg = port.to_string();
    let plain = sshd.ssh(&[
        "-p",
        &port_arg,
        &format!("{}@127.0.0.1", sshd.user),
        "echo",
        "ok",
    ]);
    for (how, mut cmd) in [("inside TLS", over_tls), ("plain", plain)] {
        let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, WAIT))
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ok\n",
            "ssh {how}: stderr {}\nsshd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
    }
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
