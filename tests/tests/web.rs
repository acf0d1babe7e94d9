//! Web users through the public port, with curl as the browser.

use std::process::Command;

use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{have, http_get, run_bounded, Server};
use uptun_e2e::{targets, tempdir_path, WAIT};

/// False (after saying so) when curl is not installed; .ci/run installs it.
fn have_curl() -> bool {
    let found = have("curl");
    if !found {
        uptun_e2e::procs::skip("curl is not installed; .ci/run installs it");
    }
    found
}

fn curl(args: &[&str]) -> std::process::Output {
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "--max-time", "120"])
            .args(args),
        WAIT * 3,
    );
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_gets_exact_bodies_of_every_size() {
    if !have_curl() {
        return;
    }
    let target = targets::http().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("web={target}")]).await;
    for (len, seed) in [(0usize, 1u64), (1 << 20, 2), (100 << 20, 3)] {
        let url = format!("{}/bytes/{len}/{seed}", server.url());
        let body = tokio::task::spawn_blocking(move || curl(&[&url]).stdout)
            .await
            .unwrap();
        assert_eq!(body.len(), len, "length of the {len}-byte body");
        assert_eq!(
            sha256_hex(&body),
            sha256_hex(&pattern(seed, len)),
            "checksum of the {len}-byte body"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_requests_are_all_answered() {
    if !have_curl() {
        return;
    }
    let target = targets::http().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("web={target}")]).await;
    let dir = tempdir_path();
    let mut args: Vec<String> = [
        "--parallel",
        "--parallel-immediate",
        "--parallel-max",
        "200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..200u64 {
        args.push("-o".into());
        args.push(dir.path().join(format!("{i}")).display().to_string());
        args.push(format!("{}/bytes/{}/{i}", server.url(), 1000 + i * 37));
    }
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    })
    .await
    .unwrap();
    for i in 0..200u64 {
        let got = std::fs::read(dir.path().join(format!("{i}"))).unwrap();
        assert_eq!(got, pattern(i, (1000 + i * 37) as usize), "response {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn head_requests_are_web_users_and_health_answers() {
    if !have_curl() {
        return;
    }
    let target = targets::http().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("web={target}")]).await;
    let url = format!("{}/hello", server.url());
    let out = tokio::task::spawn_blocking(move || curl(&["-I", &url]))
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Length: 22"),
        "the target answered the HEAD: {head}"
    );
    let (status, body) = http_get(server.addr, "/_uptun/health").await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_agent_gives_a_503_that_names_the_channel() {
    let server = Server::start(&["--connect-timeout", "200ms"]).await;
    let (status, body) = http_get(server.addr, "/").await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 503);
    assert!(
        body.contains("no agent is serving channel \"web\""),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_target_gives_a_502_that_hides_the_target() {
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = Server::start(&[]).await;
    let agent = server.agent(&[format!("web={dead}")]).await;
    let (status, body) = http_get(server.addr, "/").await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502);
    assert!(body.contains("channel \"web\""), "{body}");
    // The user learns the channel; the target and the OS error stay in the logs.
    for secret in [dead.to_string(), dead.port().to_string(), "os error".into()] {
        assert!(!body.contains(&secret), "page shows {secret:?}: {body}");
    }
    agent.wait_log("stream refused").await;
    server
        .proc
        .wait_log(&format!("could not reach {dead}"))
        .await;
}
