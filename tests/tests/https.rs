//! Agents and clients over `https://`: a real nginx terminates TLS in
//! front of the public server, as a platform router does, with a leaf
//! certificate from a throwaway CA. Through it an agent with `--ca` (and a
//! second one on `wss://`), curl
//! over HTTPS, `connect` as a pipe and as ssh's ProxyCommand; without
//! `--ca`, or with the wrong name, one line that says what to pass, and
//! exit code 2; `--insecure` connects and warns on every dial.

use std::process::Command;

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{bin, have, run_bounded, skip, Proc, Server};
use uptun_e2e::server::connect_with_stdin_and;
use uptun_e2e::{nginx, sshd, targets, tls, wait_for, WAIT};

#[tokio::test(flavor = "multi_thread")]
async fn agent_curl_connect_and_ssh_all_over_https_through_nginx() {
    if !have("curl") {
        return skip("curl is not installed; .ci/run installs it");
    }
    let Some(sshd) = sshd::start().await else {
        return;
    };
    let (web, digest) = (targets::http().await, targets::digest().await);
    let server = Server::start(&[]).await;
    let Some(router) = nginx::start_tls(server.addr, nginx::Issuer::Ca).await else {
        return;
    };
    let (url, ca) = (router.https_url(), router.trust());
    let ca = ca.to_str().unwrap();
    let channels = [format!("web={web}"), format!("ssh={}", sshd.addr)];
    let agent = server.agent_at(&url, &channels, &["--ca", ca]).await;
    assert!(agent.log().contains("transport=tcp"), "{}", agent.log());
    // A second agent on wss:// through the same router serves `tcp`.
    let wss = url.replacen("https://", "wss://", 1);
    let ws_agent = server
        .agent_at(&wss, &[format!("tcp={digest}")], &["--ca", ca])
        .await;
    let log = ws_agent.wait_log("link up").await;
    assert!(log.contains("transport=websocket"), "{log}");

    // curl over HTTPS to the web channel, checking nginx's certificate too.
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--fail", "--cacert", ca])
        .arg(format!("{url}/bytes/1048576/8"));
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut curl, WAIT))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        router.logs()
    );
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&pattern(8, 1 << 20)));

    // `connect` as a pipe, half-closing stdin, to the wss:// agent's
    // channel: the digest target answers with the length and checksum.
    let data = pattern(12, 2 << 20);
    let want = format!("{} {}\n", data.len(), sha256_hex(&data));
    let token = &server.client_token;
    let out = connect_with_stdin_and(&url, token, "tcp", &["--ca", ca], data).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{stderr}");

    // Real ssh with `connect --server https://…` as its ProxyCommand.
    let proxy = format!(
        "{} connect --server {url} --token {token} --ca {ca} ssh",
        bin("local-agent").display()
    );
    let ssh = sshd.ssh(&[
        "-o",
        &format!("ProxyCommand={proxy}"),
        &format!("{}@uptun-ssh", sshd.user),
        "echo",
        "ok",
    ]);
    sshd.assert_echoes_ok(vec![("through connect over https", ssh)])
        .await;

    // The clients' links came through nginx's TLS port and were upgraded
    // there; nginx logs each once it has closed (the agent's is still open).
    wait_for("both client links in nginx's access log", WAIT, || async {
        let logs = router.file("access.log");
        let upgraded = logs.matches("\"HEAD /_uptun/link HTTP/1.1\" 101 ").count();
        (upgraded == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_ca_or_a_wrong_name_is_one_line_that_says_what_to_pass() {
    let server = Server::start(&[]).await;
    let Some(router) = nginx::start_tls(server.addr, nginx::Issuer::Ca).await else {
        return;
    };
    let ca = router.trust();
    let ca = ca.to_str().unwrap();

    // Without --ca: the CA is named, --ca is the fix; said once, exit 2.
    let (code, log) = server.agent_exit(&router.https_url(), &[]).await;
    assert_eq!(code, Some(2), "{log}");
    let want = format!(
        "certificate for localhost is issued by \"{}\", a CA this machine does not trust: \
         pass --ca FILE",
        tls::CA_NAME
    );
    assert_eq!(log.matches(&want).count(), 1, "{log}");
    assert!(log.contains("--insecure"), "{log}");

    // A name the certificate does not hold, even with the right CA.
    let by_address = format!("https://127.0.0.1:{}", router.addr.port());
    let (code, log) = server.agent_exit(&by_address, &["--ca", ca]).await;
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("not valid for 127.0.0.1 (it names localhost): put the name"),
        "{log}"
    );

    // A client is told the same, with the exit code of a mistake.
    let out = connect_with_stdin_and(
        &router.https_url(),
        &server.client_token,
        "web",
        &[],
        Vec::new(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("pass --ca FILE").count(), 1, "{stderr}");
    // None of these got as far as a link.
    assert!(!router.file("access.log").contains("/_uptun/link"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_called_that_and_trusted_with_ca() {
    let web = targets::http().await;
    let server = Server::start(&[]).await;
    let Some(router) = nginx::start_tls(server.addr, nginx::Issuer::Itself).await else {
        return;
    };
    let (code, log) = server.agent_exit(&router.https_url(), &[]).await;
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("certificate for localhost is self-signed, so nothing this machine trusts")
            && log.contains("pass --ca FILE with that certificate"),
        "{log}"
    );
    // Doing what the line says works.
    let trust = router.trust();
    let _agent = server
        .agent_at(
            &router.https_url(),
            &[format!("web={web}")],
            &["--ca", trust.to_str().unwrap()],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_ca_certificate_as_the_servers_own_says_how_to_make_a_leaf() {
    // `openssl req -x509` as most people run it: CA:TRUE by default, which
    // no trust makes acceptable as a server's certificate.
    let Some(target) = tls::start("localhost").await else {
        return;
    };
    let server = Server::start(&[]).await;
    let url = format!("https://localhost:{}", target.addr.port());
    let cert = target.cert.to_str().unwrap();
    for extra in [&[][..], &["--ca", cert]] {
        let (code, log) = server.agent_exit(&url, extra).await;
        assert_eq!(code, Some(2), "{log}");
        assert!(
            log.contains("certificate for localhost is self-signed and marked as a CA")
                && log.contains("-addext basicConstraints=critical,CA:FALSE"),
            "{extra:?}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_connects_without_ca_and_warns_on_every_dial() {
    let web = targets::http().await;
    let server = Server::start(&[]).await;
    let addr = server.addr;
    let Some(router) = nginx::start_tls(addr, nginx::Issuer::Ca).await else {
        return;
    };
    // From the environment, as a service file would set it.
    let agent = Proc::spawn_env(
        "local-agent",
        &[
            "--server",
            &router.https_url(),
            "--token",
            &server.token,
            "--channel",
            &format!("web={web}"),
        ],
        &[("RUST_LOG", "info"), ("UPTUN_INSECURE", "true")],
    );
    server.wait_channels(&["web"]).await;
    const WARNING: &str = "--insecure: NOT checking the server's certificate";
    assert_eq!(agent.log().matches(WARNING).count(), 1, "{}", agent.log());

    // The server restarts on its port; the agent dials again and warns again.
    drop(server);
    let server = Server::start_on(&addr.to_string(), &[]).await;
    server.wait_channels(&["web"]).await;
    agent.wait_log_count(WARNING, 2).await;
    let (status, body) = wait_for("a user through the new link", WAIT, || async {
        let got = uptun_e2e::procs::http_get(server.addr, "/bytes/65536/3").await;
        got.ok().filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(3, 65536)));
}
