//! rhost compatibility under load (issue 12): many concurrent streams
//! between a legacy client and a legacy agent, and a bulk upload to a legacy
//! agent that reads slowly, where the protocol has no flow control and the
//! server must bound what it holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::legacy::{have_node, round_trip, LegacyAgent, LegacyClient};
use uptun_e2e::procs::Server;
use uptun_e2e::{bounded, targets};

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_streams_of_four_mib_cross_legacy_client_and_agent_intact() {
    if !have_node() {
        return;
    }
    let echo = targets::echo().await;
    let server = Server::start_env(&[("KEYS_SSH", "admin")], &[]).await;
    let _agent = LegacyAgent::start(server.addr, "/ssh", "admin", "t16", echo).await;
    let client = LegacyClient::start(server.addr, "/ssh", "t16").await;

    let streams: Vec<_> = (0..16u64)
        .map(|i| {
            let addr = client.addr;
            tokio::spawn(async move {
                let data = pattern(100 + i, 4 << 20);
                let want = sha256_hex(&data);
                let got = round_trip(addr, data).await;
                assert_eq!(sha256_hex(&got), want, "stream {i}");
            })
        })
        .collect();
    bounded("16 streams of 4 MiB", async {
        for s in streams {
            s.await.unwrap();
        }
    })
    .await;
}

/// A target that reads and discards everything; the counter is the bytes
/// it has received, i.e. what the legacy agent has read from its link.
async fn counting_sink() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, count)
}

/// `field` (`VmRSS`, `VmHWM`) of process `pid`, in KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

const MIB: u64 = 1 << 20;
/// How fast the legacy agent reads its link.
const READ_RATE: u64 = 4 * MIB;

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_upload_to_a_slow_legacy_agent_keeps_the_server_bounded() {
    if !have_node() {
        return;
    }
    let (sink, read_by_agent) = counting_sink().await;
    let server = Server::start_env(&[("KEYS_", "rootkey")], &[]).await;
    let rate = READ_RATE.to_string();
    let _agent = LegacyAgent::start_with(
        server.addr,
        "/",
        "rootkey",
        "t",
        sink,
        &["--read-rate", &rate],
    )
    .await;
    let pid = server.proc.child.id();
    let rss_before = vm_kib(pid, "VmRSS");

    // A raw user pushes up to 256 MiB as fast as the server takes it. Its
    // own send buffer is kept small, so what it has written is what the
    // server (or the buffers between the server and the agent) took.
    let pushed = Arc::new(AtomicU64::new(0));
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(64 * 1024).unwrap();
    let mut user = socket.connect(server.addr).await.unwrap();
    let counter = pushed.clone();
    let upload = tokio::spawn(async move {
        let chunk = {
            let mut c = pattern(5, 64 * 1024);
            c[0] = 0; // a raw user: routed to `tcp`, which the root serves
            c
        };
        for _ in 0..(256 * MIB / chunk.len() as u64) {
            if user.write_all(&chunk).await.is_err() {
                return;
            }
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });

    // Measure for a few seconds; the whole transfer would take a minute.
    let started = Instant::now();
    let mut most_ahead = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < Duration::from_secs(4) {
        ticks.tick().await;
        let ahead =
            pushed.load(Ordering::Relaxed) as i64 - read_by_agent.load(Ordering::Relaxed) as i64;
        most_ahead = most_ahead.max(ahead);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (pushed, read) = (
        pushed.load(Ordering::Relaxed),
        read_by_agent.load(Ordering::Relaxed),
    );
    let peak_growth = vm_kib(pid, "VmHWM").saturating_sub(rss_before);
    upload.abort();
    eprintln!(
        "pushed {} MiB, agent read {} MiB in {elapsed:.1} s, most ahead {} MiB, server peak +{} MiB",
        pushed / MIB,
        read / MIB,
        most_ahead / MIB as i64,
        peak_growth / 1024
    );

    // The agent read at its pace (else nothing here was tested), and did read.
    assert!(read > MIB, "the agent read only {read} bytes");
    let at_most = (READ_RATE as f64 * (elapsed + 1.0)) as u64;
    assert!(read <= at_most, "the agent read {read} bytes: not slowly");
    // The user was held back near what the agent read, and the server
    // buffered little of the difference.
    assert!(
        most_ahead < 16 * MIB as i64,
        "the user got {} MiB ahead of the agent",
        most_ahead / MIB as i64
    );
    assert!(
        peak_growth < 64 * 1024,
        "the server's RSS grew by {peak_growth} KiB during the upload"
    );
}
