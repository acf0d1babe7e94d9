//! Support for uptun's end-to-end tests: real `public-server` and
//! `local-agent` processes on port 0, in-process target servers, and
//! checksummed data.

pub mod data;
pub mod deploy;
pub mod hostile;
pub mod inproc;
pub mod legacy;
pub mod nginx;
pub mod pebble;
pub mod pki;
pub mod procs;
pub mod server;
pub mod sshd;
pub mod targets;
pub mod term;
pub mod tinyproxy;
pub mod tls;
pub mod tmux;

use std::future::Future;
use std::time::Duration;

/// The bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, or panics after `limit` saying what
/// was awaited. Polling, not sleeping: it returns as soon as the condition holds.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir_path() -> procs::tempdir::Dir {
    procs::tempdir::Dir::new()
}

/// Runs `fut` with the standard bound, naming it if it overruns.
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
}

/// Sends `data`, half-closes, and returns everything read until EOF.
pub async fn half_closed_exchange(addr: std::net::SocketAddr, data: Vec<u8>) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = socket.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    got
}
