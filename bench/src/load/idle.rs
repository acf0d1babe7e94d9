//! Many open idle connections: each sends a few bytes (so it is routed at
//! once, not after a sniff timeout) and then stays silent. A child process
//! (`uptun-bench hold`) holds the client ends, so that neither it nor the
//! bench (which holds the target ends) needs two descriptors per connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{connect, step};
use crate::procs::Proc;
use crate::target::{TargetStats, MODE_SINK};

/// Connections being opened at once; more overflows accept backlogs.
const IN_FLIGHT: usize = 64;
/// uptun classifies on four bytes, and waits out its sniff timeout for fewer.
const FIRST_BYTES: [u8; 16] = [MODE_SINK; 16];

/// `uptun-bench hold`: opens `count` idle connections to `to`, prints
/// `held count=N`, and keeps them until killed.
pub async fn hold(to: SocketAddr, count: usize) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let permit = permits.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            let mut socket = connect(to).await?;
            step("sending the first bytes", socket.write_all(&FIRST_BYTES)).await?;
            anyhow::Ok(socket)
        });
    }
    let mut sockets = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        let socket = done
            .context("a connecting task panicked")?
            .with_context(|| format!("only {} of {count} connections opened", sockets.len()))?;
        sockets.push(socket);
    }
    println!("held count={}", sockets.len());
    std::future::pending::<()>().await;
    Ok(())
}

/// Idle connections held by a child process, closed when it is stopped.
pub struct IdleConnections {
    holder: Proc,
    /// How many reached the target (a tunnel may lose some on the way).
    pub reached: usize,
}

impl IdleConnections {
    pub async fn close(self) {
        self.holder.stop().await;
    }
}

/// A tunnel that has not passed on a connection for this long has lost it.
const STALL: Duration = Duration::from_secs(10);

/// Opens `n` idle connections through `entry` and waits until every one
/// reached the target, or until no more arrive.
pub async fn idle_connections(
    bench: &Path,
    dir: &Path,
    entry: SocketAddr,
    n: usize,
    stats: &TargetStats,
    limit: Duration,
) -> anyhow::Result<IdleConnections> {
    let base = stats.active();
    let deadline = Instant::now() + limit;
    let args = [
        "hold",
        "--to",
        &entry.to_string(),
        "--count",
        &n.to_string(),
    ]
    .map(String::from);
    let mut holder = Proc::spawn(dir, "idle-holder", bench, &args)?;
    holder.wait_for_log("held count=", limit).await?;
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let reached = stats.active().saturating_sub(base);
        if reached != last {
            (last, last_change) = (reached, Instant::now());
        }
        let stalled = last_change.elapsed() > STALL || Instant::now() > deadline;
        if reached >= n || (stalled && reached > 0) {
            return Ok(IdleConnections { holder, reached });
        }
        if stalled {
            holder.stop().await;
            bail!("none of {n} idle connections reached the target");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
