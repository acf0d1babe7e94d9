//! Mistakes a newcomer makes, and what they are told: `connect` to a channel
//! no agent serves says what it waits for and, when the server gives up, why
//! and what to check.

use std::time::Instant;

use uptun_e2e::data::sha256_hex;
use uptun_e2e::procs::Server;
use uptun_e2e::targets;

#[tokio::test(flavor = "multi_thread")]
async fn connect_to_an_unserved_channel_says_what_it_waits_for_and_why_it_gave_up() {
    let echo = targets::echo().await;
    let server = Server::start(&["--connect-timeout", "3s"]).await;
    // An agent serving another channel: the link is fine, the channel is not.
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    let started = Instant::now();
    let mut client = server.client("connect", &["db"]);

    let waiting = client.wait_log("waiting for an agent of channel").await;
    assert!(
        waiting.contains("\"db\"") && waiting.contains("--connect-timeout"),
        "{waiting}"
    );
    let code = client.wait_exit().await;
    let log = client.log();
    assert_eq!(code, Some(1), "{log}");
    // The server waited its --connect-timeout, then told the client why.
    assert!(started.elapsed().as_secs_f64() >= 3.0, "{log}");
    for needle in [
        "no agent served channel \"db\" within 3.0 s",
        "--connect-timeout",
        "--channel db=TARGET",
        "link up",
    ] {
        assert!(log.contains(needle), "{needle:?} missing:\n{log}");
    }
    assert!(!log.contains(&server.client_token), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_to_a_served_channel_says_nothing_about_waiting() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server.agent(&[format!("tcp={echo}")]).await;
    let data = uptun_e2e::data::pattern(9, 64 * 1024);
    let out = uptun_e2e::procs::connect_with_stdin(
        &server.url(),
        &server.client_token,
        "tcp",
        data.clone(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&data));
    assert!(!stderr.contains("waiting"), "{stderr}");
}
