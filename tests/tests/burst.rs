//! A burst of users that arrives while the agent is stalled is served once
//! it resumes: waiting is what these users want, not a refusal.

use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use uptun_e2e::procs::Server;
use uptun_e2e::{bounded, targets};

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn three_thousand_users_during_a_two_second_agent_stall_are_all_served() {
    let web = targets::http().await;
    let server = Server::start(&["--connect-timeout", "60s"]).await;
    let agent = server.agent(&[format!("web={web}")]).await;

    signal(agent.child.id(), "-STOP");
    let stalled = Instant::now();
    let (sent_tx, mut sent) = mpsc::channel(3000);
    let users: Vec<_> = (0..3000)
        .map(|_| {
            let addr = server.addr;
            let sent = sent_tx.clone();
            tokio::spawn(async move {
                let mut user = TcpStream::connect(addr).await.unwrap();
                user.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                sent.send(()).await.unwrap();
                let mut answer = Vec::new();
                user.read_to_end(&mut answer).await.unwrap();
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    for _ in 0..3000 {
        bounded("3000 requests sent", sent.recv()).await;
    }
    // The stall is the fault this test injects: two seconds of it.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(stalled.elapsed())).await;
    signal(agent.child.id(), "-CONT");

    let mut served = 0;
    for user in users {
        let answer = bounded("an answer after the stall", user).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello from the target\n"),
            "user {served} got {answer:?}"
        );
        served += 1;
    }
    assert_eq!(served, 3000);
}
